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


def parse_urssaf(path: Path, known_communes: set[str], years: range | None = None) -> tuple[pd.DataFrame, dict]:
    """Wide -> long. Returns (codgeo, division, is_industrial, year, n_etab, jobs) and a report.

    Year columns are discovered by regex (``effectifs_salaries_2025``...). Empty cells are
    missing (secret or absent), never zero; negative counts are an error naming the row.
    """
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
    cols = [c for c in base_cols if c in ("code_commune", "code_ape")] + list(year_cols)
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols,
                column_types={**{c: pa.string() for c in ("code_commune", "code_ape")}, **{c: pa.float64() for c in year_cols}},
            ),
        )
    except pa.ArrowInvalid as exc:
        raise TabularFileError(f"{path.name}: {_locate_bad_number(path, sep, list(year_cols)) or exc}") from exc
    df = table.to_pandas()
    if df.empty:
        raise TabularFileError(f"{path.name}: header only, no data rows")
    neg = (df[list(year_cols)] < 0).any(axis=1)
    if neg.any():
        i = int(neg.idxmax())
        bad = [c for c in year_cols if df.at[i, c] < 0]
        raise TabularFileError(f"{path.name}: negative count at data row {i + 2} (file line), column(s) {bad}")
    df["codgeo"] = codes.arm_to_commune(codes.normalise_commune(df["code_commune"]))
    repaired = int((df["code_commune"].astype("string").str.len() == 4).sum())
    naf = codes.naf_with_dot(df["code_ape"])
    df["division"] = naf.str[:2]
    unknown = ~df["codgeo"].isin(known_communes)
    report = {
        "file": path.name,
        "rows": int(len(df)),
        "years": sorted({y for _, y in year_cols.values()}),
        "commune_codes_zero_padded": repaired,
        "unknown_commune_codes": int(df.loc[unknown, "codgeo"].nunique()),
        "unknown_communes_sample": sorted(df.loc[unknown, "codgeo"].dropna().unique().tolist())[:20],
    }
    if unknown.any():
        log.warning("%s: %d row(s) in %d commune code(s) outside the COG vintage: %s", path.name, int(unknown.sum()),
                    report["unknown_commune_codes"], report["unknown_communes_sample"])
    df = df[~unknown]
    # Sum the commune x APE rows to commune x division while still wide (far fewer rows), then
    # reshape each measure to long: memory stays close to the size of the file itself.
    wide = df.groupby(["codgeo", "division"], sort=True)[list(year_cols)].sum(min_count=1)
    years = sorted({y for _, y in year_cols.values()})
    measures = {}
    for measure in ("nombre_d_etablissements", "effectifs_salaries"):
        by_year = {y: c for c, (k, y) in year_cols.items() if k == measure}
        m = pd.DataFrame({y: wide[by_year[y]] if y in by_year else float("nan") for y in years}, index=wide.index)
        m.columns.name = "year"
        measures[measure] = m.stack(future_stack=True)
    out = pd.DataFrame(measures).reset_index()
    out["year"] = out["year"].astype("int64")
    out = out.rename(columns={"nombre_d_etablissements": "n_etab", "effectifs_salaries": "jobs"})
    out["is_industrial"] = out["division"].isin(INDUSTRIAL_DIVISIONS)
    out = out.sort_values(["codgeo", "division", "year"]).reset_index(drop=True)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    report["as_of_year"] = int(out.loc[out["jobs"].notna(), "year"].max())
    log.info("%s: %d rows -> %d commune x division x year rows in %.1f s", path.name, len(df), len(out), report["seconds"])
    return out, report


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
