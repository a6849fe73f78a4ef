"""URSSAF: salaried jobs and employer establishments by commune x APE, private sector,
régime général, at 31/12 (open.urssaf.fr export, ``;``, WIDE years, licence ODbL)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pandas as pd

from .. import codes
from ..nomenclature import INDUSTRIAL_DIVISIONS
from ..schemas import URSSAF, URSSAF_YEAR_RE
from .tabular import TabularFileError, sniff_header

log = logging.getLogger(__name__)
DATASET_ID = "etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last"
EXPORT_URL = f"https://open.urssaf.fr/api/explore/v2.1/catalog/datasets/{DATASET_ID}/exports/csv"


def parse_urssaf(path: Path, known_communes: set[str], years: range | None = None,
                 block_size: int = 16 << 20) -> tuple[pd.DataFrame, dict]:
    """Wide -> long. Returns (codgeo, division, is_industrial, year, n_etab, jobs) and a report.

    Year columns are discovered by regex (``effectifs_salaries_2025``...). Empty cells are
    missing (secret or absent), never zero; negative counts are an error naming the row.

    The file is streamed in blocks of ``block_size`` bytes: each block is summed to
    commune x division while still wide (an APE sous-classe -> division sum divides the rows),
    the partial sums are merged, and the long table is laid out straight from the wide
    matrix (rows already in (codgeo, division) order, years in order: no sort, no stack).
    Memory is about the wide sums plus the long output, not the file.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    t0 = time.perf_counter()
    header, sep = sniff_header(path, ";")
    if sep != ";":
        log.warning("%s: separator %r instead of ';' (accepted: header is unambiguous)", path.name, sep)
    # year columns are discovered by regex below, not declared one by one in the schema
    base_cols = URSSAF.check_header([c for c in header if not re.match(URSSAF_YEAR_RE, c)], path)
    year_cols = {}
    for c in header:
        m = re.match(URSSAF_YEAR_RE, c)
        if m and (years is None or int(m.group(2)) in years):
            year_cols[c] = (m.group(1), int(m.group(2)))
    if not any(k == "effectifs_salaries" for k, _ in year_cols.values()):
        raise TabularFileError(f"{path.name}: no effectifs_salaries_YYYY column found (columns: {header[:10]}...)")
    value_cols = list(year_cols)
    cols = [c for c in base_cols if c in ("code_commune", "code_ape")] + value_cols
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols,
                column_types={**{c: pa.string() for c in ("code_commune", "code_ape")}, **{c: pa.float64() for c in year_cols}},
            ),
        )
    except pa.ArrowInvalid as exc:
        raise TabularFileError(f"{path.name}: {_locate_bad_number(path, sep, value_cols) or exc}") from exc

    rows = repaired = 0
    unknown_rows: dict[str, int] = {}
    partials: list[pd.DataFrame] = []
    next_log, t_log = 500_000, time.perf_counter()
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise TabularFileError(f"{path.name}: {_locate_bad_number(path, sep, value_cols) or exc}") from exc
        df = batch.to_pandas()
        neg = (df[value_cols] < 0).any(axis=1)
        if neg.any():
            i = int(neg.to_numpy().nonzero()[0][0])
            bad = [c for c in value_cols if df[c].iat[i] < 0]
            raise TabularFileError(f"{path.name}: negative count at data row {rows + i + 2} (file line), column(s) {bad}")
        rows += len(df)
        df["codgeo"] = codes.arm_to_commune(codes.normalise_commune(df["code_commune"]))
        repaired += int((df["code_commune"].astype("string").str.len() == 4).sum())
        df["division"] = codes.naf_with_dot(df["code_ape"]).str[:2]
        unknown = ~df["codgeo"].isin(known_communes)
        if unknown.any():
            for code, n in df.loc[unknown, "codgeo"].dropna().value_counts().items():
                unknown_rows[code] = unknown_rows.get(code, 0) + int(n)
            df = df[~unknown]
        partials.append(df.groupby(["codgeo", "division"], sort=False)[value_cols].sum(min_count=1))
        del df
        if rows >= next_log:
            el = time.perf_counter() - t_log
            log.info("%s: %d rows read (%.0f rows/s)", path.name, rows, rows / el if el else 0.0)
            next_log += 500_000
    if rows == 0:
        raise TabularFileError(f"{path.name}: header only, no data rows")
    report = {
        "file": path.name,
        "rows": rows,
        "years": sorted({y for _, y in year_cols.values()}),
        "commune_codes_zero_padded": repaired,
        "unknown_commune_codes": len(unknown_rows),
        "unknown_communes_sample": sorted(unknown_rows)[:20],
    }
    if unknown_rows:
        log.warning("%s: %d row(s) in %d commune code(s) outside the COG vintage: %s", path.name,
                    sum(unknown_rows.values()), report["unknown_commune_codes"], report["unknown_communes_sample"])
    wide = partials[0] if len(partials) == 1 else pd.concat(partials)
    del partials
    if len(wide.index) and not wide.index.is_unique:
        wide = wide.groupby(level=["codgeo", "division"], sort=False).sum(min_count=1)
    wide = wide.sort_index()
    # long layout: row r of the wide sums -> len(years) consecutive rows, years ascending
    years_sorted = sorted({y for _, y in year_cols.values()})
    n_groups, n_years = len(wide), len(years_sorted)
    measures = {}
    for measure, name in (("nombre_d_etablissements", "n_etab"), ("effectifs_salaries", "jobs")):
        by_year = {y: c for c, (k, y) in year_cols.items() if k == measure}
        m = np.full((n_groups, n_years), np.nan)
        for j, y in enumerate(years_sorted):
            if y in by_year:
                m[:, j] = wide[by_year[y]].to_numpy(dtype="float64")
        measures[name] = m.ravel()
    codgeo_idx = wide.index.get_level_values("codgeo")
    division_idx = wide.index.get_level_values("division")
    del wide
    take = pa.array(np.repeat(np.arange(n_groups, dtype=np.int64), n_years))
    division = _strings(division_idx, take)
    out = pd.DataFrame({
        "codgeo": _strings(codgeo_idx, take),
        "division": division,
        "year": np.tile(np.asarray(years_sorted, dtype="int64"), n_groups),
        "n_etab": measures.pop("n_etab"),
        "jobs": measures.pop("jobs"),
        "is_industrial": division.isin(list(INDUSTRIAL_DIVISIONS)),
    }, copy=False)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    report["as_of_year"] = int(out.loc[out["jobs"].notna(), "year"].max())
    log.info("%s: %d rows -> %d commune x division x year rows in %.1f s", path.name, rows, len(out), report["seconds"])
    return out, report


def _strings(values: pd.Index, take) -> pd.api.extensions.ExtensionArray:
    """``values[take]`` as a pandas ``str`` (Arrow-backed) array, taken in Arrow (no objects)."""
    import pyarrow as pa

    return pa.array(values.astype(str).to_numpy(dtype=object), pa.large_string()).take(take).to_pandas().array


def _locate_bad_number(path: Path, sep: str, year_cols: list[str]) -> str | None:
    """Error path only: the first non-numeric count cell, named by file line and column."""
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, usecols=year_cols, keep_default_na=False, encoding="utf-8-sig")
    except Exception:  # noqa: BLE001 - fall back to the parser's own message
        return None
    for c in year_cols:
        v = df[c].str.strip()
        bad = (v != "") & pd.to_numeric(v, errors="coerce").isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            return f"non-numeric count {df[c].iat[i]!r} at data row {i + 1} (file line {i + 2}), column {c!r}"
    return None


# --- live fetch: open.urssaf.fr (Opendatasoft) export ------------------------------------------
def dataset_metadata(client) -> dict:
    """``GET {TI_URL_URSSAF}/catalog/datasets/{id}``: the dataset's metadata (``metas.default.modified``)."""
    _, data = client.get_json(client.url("urssaf", f"catalog/datasets/{DATASET_ID}"), label=f"open.urssaf.fr {DATASET_ID}")
    return data


def modified_date(meta: dict) -> str:
    """Publisher's as-of (``metas.default.modified``; v2.0 responses wrap it in ``dataset``)."""
    from ..http import UpstreamFormatError

    d = meta.get("dataset", meta) if isinstance(meta, dict) else {}
    default = (d.get("metas") or {}).get("default") or {}
    value = default.get("modified") or default.get("data_processed")
    if not value:
        raise UpstreamFormatError(f"open.urssaf.fr {DATASET_ID}: no metas.default.modified/data_processed in the "
                                  f"catalog response (keys: {sorted(d)[:10]})")
    return str(value)


def acquire_export(client, settings):
    """Land the full CSV export (``;``, field names not labels) in ``raw/urssaf/<modified date>/``.

    The header is checked by column name before landing (required columns, year columns)."""
    from ..fetch import count_rows, land_download

    meta = dataset_metadata(client)
    modified = modified_date(meta)
    url = client.url("urssaf", f"catalog/datasets/{DATASET_ID}/exports/csv")

    def validate(path: Path) -> int | None:
        header, sep = sniff_header(path, ";")
        URSSAF.check_header(header, path)
        if not any(re.match(URSSAF_YEAR_RE, c) for c in header):
            raise TabularFileError(f"{path.name}: no nombre_d_etablissements_YYYY / effectifs_salaries_YYYY column "
                                   f"(found {header[:10]})")
        return count_rows(path)

    return land_download(client, settings, source="urssaf", file_name=f"{DATASET_ID}.csv", url=url,
                         params={"delimiter": ";", "use_labels": "false"}, vintage=modified[:10],
                         upstream={"dataset": DATASET_ID, "modified": modified}, expect="csv", validate=validate,
                         extra={"vintage_basis": "open.urssaf.fr metas.default modified", "licence": "ODbL"})
