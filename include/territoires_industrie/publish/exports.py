"""Exports of a published release for people who work in spreadsheets and for analysts.

Written by :func:`build_exports` into ``exports/<release>/`` (names carry ``_SYNTHETIC``
when sample data fed the release):

| file | content |
|---|---|
| ``indicateurs_territoires_<release>.csv`` | every territory except communes, one row each, machine column names, ``,`` separator, ``.`` decimals, with ``data_status`` |
| ``indicateurs_territoires_<release>_fr.csv`` | same rows, French headers, ``;`` separator, ``,`` decimals, UTF-8 with BOM (French Excel) |
| ``indicateurs_territoires_<release>.xlsx`` | "Lisez-moi" sheet, one sheet per level (communes included), "Dictionnaire" sheet; frozen header, numbers stored as numbers |
| ``indicateurs_territoires_<release>.parquet`` | the wide table, every level |
| ``indicator_values_<release>.parquet`` | the long published table (one row per territory x indicator x period) |
| ``MANIFEST.json`` | bytes and sha256 of every file, release, pipeline version |

Every file is written atomically (temp file + rename) and the bytes are the same for the
same release (no timestamps inside the XLSX, sorted rows, fixed rounding).
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from .. import storage
from .tables import (
    DATA_STATUS,
    LEVEL_LABELS_FR,
    ReleaseData,
    dictionary_table,
    french_table,
    readme_rows,
    wide_table,
)

log = logging.getLogger(__name__)

#: Fixed date written in the XLSX document properties and zip entries (reproducible bytes).
FIXED_DATETIME = datetime(2000, 1, 1, 0, 0, 0)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# --- generic writers -----------------------------------------------------------------------

def _readable(path: Path) -> Path:
    """Published files are world-readable (temp files are created 0600)."""
    os.chmod(path, 0o644)
    return Path(path)


def write_csv(df: pd.DataFrame, dest: Path, sep: str = ",") -> Path:
    """CSV in UTF-8. ``sep=","``: ``.`` decimals, no BOM (machines). ``sep=";"``: ``,``
    decimals and a BOM so that French Excel opens it with the right accents and numbers."""
    if sep not in (",", ";"):
        raise ValueError(f"CSV separator must be ',' or ';', got {sep!r}")
    french = sep == ";"
    with storage.atomic_path(dest) as tmp:
        df.to_csv(tmp, index=False, sep=sep, decimal="," if french else ".", lineterminator="\n",
                  encoding="utf-8-sig" if french else "utf-8")
    return _readable(dest)


def write_parquet(df: pd.DataFrame, dest: Path) -> Path:
    with storage.atomic_path(dest) as tmp:
        df.to_parquet(tmp, index=False)
    return _readable(dest)


def _number_format(series: pd.Series) -> str | None:
    if series.dtype.kind in "iu" or str(series.dtype) == "Int64":
        return "#,##0"
    if series.dtype.kind == "f":
        s = series.dropna()
        if len(s) and (s == s.round(0)).all():
            return "#,##0"
        return "#,##0.0##"
    return None


def _width(name: str, series: pd.Series) -> float:
    sample = series.dropna().astype("str").head(200)
    longest = max([len(name) * 0.6, *(len(v) for v in sample)], default=8)
    return float(min(max(longest + 2, 8), 60))


def _cell_value(v):
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item"):  # numpy scalar -> Python
        v = v.item()
    return v


def write_xlsx(sheets: dict[str, pd.DataFrame], dest: Path, readme: list[tuple[str, str]] | None = None) -> Path:
    """One sheet per DataFrame (bold frozen header, auto filter, numbers as numbers, text
    codes kept as text), plus an optional first "Lisez-moi" sheet of key / value lines.
    Streaming (write-only) workbook; reproducible bytes."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook(write_only=True)
    wb.properties.creator = "territoires-industrie-indicators"
    wb.properties.created = FIXED_DATETIME
    wb.properties.modified = FIXED_DATETIME
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDE5F0")
    if readme:
        ws = wb.create_sheet("Lisez-moi")
        ws.column_dimensions["A"].width = 34
        ws.column_dimensions["B"].width = 110
        for key, value in readme:
            k = WriteOnlyCell(ws, value=key)
            k.font = Font(bold=True, color="B00020" if key == "ATTENTION" else None)
            v = WriteOnlyCell(ws, value=value)
            v.alignment = Alignment(wrap_text=True, vertical="top")
            ws.append([k, v])
    for name, df in sheets.items():
        ws = wb.create_sheet(name[:31])
        ws.freeze_panes = "A2"
        formats = {c: _number_format(df[c]) for c in df.columns}
        for i, c in enumerate(df.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = _width(str(c), df[c])
        if len(df.columns):
            ws.auto_filter.ref = f"A1:{get_column_letter(len(df.columns))}{max(len(df), 1) + 1}"
        header = []
        for c in df.columns:
            cell = WriteOnlyCell(ws, value=str(c))
            cell.font = bold
            cell.fill = head_fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            header.append(cell)
        ws.append(header)
        cols = list(df.columns)
        fmt_list = [formats[c] for c in cols]
        for row in df.itertuples(index=False, name=None):
            out = []
            for v, fmt in zip(row, fmt_list):
                v = _cell_value(v)
                if fmt is not None and v is not None:
                    cell = WriteOnlyCell(ws, value=v)
                    cell.number_format = fmt
                    out.append(cell)
                else:
                    out.append(v)
            ws.append(out)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()  # not wb.save(): it stamps the current time
    with storage.atomic_path(dest) as tmp:
        _repack_reproducible(buf.getvalue(), tmp)
    return _readable(dest)


def _repack_reproducible(data: bytes, dest: Path) -> None:
    """Rewrite a zip with fixed entry dates and order (openpyxl stamps the current time)."""
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            out.writestr(zi, src.read(info.filename))


# --- the release exports ----------------------------------------------------------------------

def export_names(release_id: str, synthetic: bool) -> dict[str, str]:
    s = "_SYNTHETIC" if synthetic else ""
    return {
        "csv": f"indicateurs_territoires_{release_id}{s}.csv",
        "csv_fr": f"indicateurs_territoires_{release_id}{s}_fr.csv",
        "xlsx": f"indicateurs_territoires_{release_id}{s}.xlsx",
        "parquet": f"indicateurs_territoires_{release_id}{s}.parquet",
        "long_parquet": f"indicator_values_{release_id}{s}.parquet",
    }


def xlsx_sheets(rd: ReleaseData, wide: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The sheets of the XLSX: one French table per level, then the dictionary."""
    wide = wide_table(rd) if wide is None else wide
    sheets = {}
    for lv in rd.levels:
        part = wide[wide["level"] == lv].reset_index(drop=True)
        sheets[LEVEL_LABELS_FR.get(lv, lv)] = french_table(rd, part)
    sheets["Dictionnaire"] = dictionary_table(rd, list(wide.columns))
    return sheets


def build_exports(rd: ReleaseData, out_dir: Path) -> dict:
    """Write every export of release ``rd`` into ``out_dir``; returns {kind: path} + manifest."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    names = export_names(rd.release_id, rd.synthetic)
    wide = wide_table(rd)
    status = "SYNTHETIC" if rd.synthetic else "official"
    not_commune = wide[wide["level"] != "commune"].reset_index(drop=True)
    main = not_commune.copy()
    main.insert(0, DATA_STATUS[0], status)
    paths = {}
    paths["csv"] = write_csv(main, out_dir / names["csv"], sep=",")
    fr = french_table(rd, main)
    paths["csv_fr"] = write_csv(fr, out_dir / names["csv_fr"], sep=";")
    t1 = time.perf_counter()
    paths["xlsx"] = write_xlsx(xlsx_sheets(rd, wide), out_dir / names["xlsx"], readme=readme_rows(rd))
    t2 = time.perf_counter()
    full = wide.copy()
    full.insert(0, DATA_STATUS[0], status)
    paths["parquet"] = write_parquet(full, out_dir / names["parquet"])
    long = rd.indicator_values.copy()
    long.insert(0, DATA_STATUS[0], status)
    paths["long_parquet"] = write_parquet(long, out_dir / names["long_parquet"])
    files = {p.name: {"kind": k, "bytes": p.stat().st_size, "sha256": storage.sha256_file(p)} for k, p in paths.items()}
    manifest = {"release_id": rd.release_id, "pipeline_version": rd.meta.get("pipeline_version"),
                "synthetic": rd.synthetic, "source_vintages": rd.meta.get("source_vintages"),
                "rows": {"wide_all_levels": int(len(wide)), "csv": int(len(main)),
                         "indicator_values": int(len(long))},
                "files": files}
    _readable(storage.atomic_write_text(out_dir / "MANIFEST.json", json.dumps(
        manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"))
    elapsed = time.perf_counter() - t0
    log.info("exports %s: %d territories (%d cells) in %.1fs (xlsx %.1fs, %.0f rows/s) -> %s", rd.release_id, len(wide),
             wide.size, elapsed, t2 - t1, len(wide) / max(t2 - t1, 1e-9), out_dir)
    return {**{k: str(p) for k, p in paths.items()}, "manifest": str(out_dir / "MANIFEST.json"),
            "seconds": round(elapsed, 2)}


def read_manifest(out_dir: Path) -> dict | None:
    p = Path(out_dir) / "MANIFEST.json"
    return json.loads(p.read_text()) if p.exists() else None


def exports_complete(out_dir: Path, release_id: str) -> bool:
    """True when ``out_dir`` holds the exports of ``release_id`` with the bytes of its manifest."""
    m = read_manifest(out_dir)
    if not m or m.get("release_id") != release_id:
        return False
    for name, entry in m.get("files", {}).items():
        p = Path(out_dir) / name
        if not p.exists() or p.stat().st_size != entry["bytes"] or storage.sha256_file(p) != entry["sha256"]:
            return False
    return True
