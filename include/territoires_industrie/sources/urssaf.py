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
from ..schemas import CEILING_ESTABLISHMENTS, CEILING_JOBS, URSSAF, URSSAF_YEAR_RE
from .tabular import TabularFileError, sniff_header

log = logging.getLogger(__name__)
DATASET_ID = "etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last"
EXPORT_URL = f"https://open.urssaf.fr/api/explore/v2.1/catalog/datasets/{DATASET_ID}/exports/csv"


#: years always kept by ``last_years`` (the pre-Covid base year of the alternative shift-share)
ALWAYS_KEPT_YEARS = (2019,)


def parse_urssaf(path: Path, known_communes: set[str], years: range | None = None,
                 block_size: int = 16 << 20, last_years: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Wide -> long. Returns (codgeo, division, is_industrial, year, n_etab, jobs) and a report.

    ``years``: keep only these year columns; ``last_years``: keep the latest ``last_years``
    years of the file (plus :data:`ALWAYS_KEPT_YEARS`): the indicators read t1, t1-5 and 2019,
    and 20 years of 1M commune x division groups would be 20M rows to validate and stage.

    Year columns are discovered by regex (``effectifs_salaries_2025``...). Empty cells are
    missing (secret or absent), never zero; negative counts are an error naming the row.

    Two streaming passes over the file, in blocks of ``block_size`` bytes, so memory is the
    size of the result, not of the file (1.2M x 40 columns would be ~0.4 GB of floats, and
    pandas' wide -> long reshapes several times that):

    1. the commune and APE columns only: every row gets the id of its commune x division
       group (arrondissements -> commune, stripped zeros restored; rows outside the vintage
       get no group and are reported);
    2. the count columns only: summed per group with ``bincount`` into one (groups x years)
       matrix per measure; a cell that no row filled stays missing (``min_count=1``).

    The long table is the row-major view of those matrices, groups sorted by (codgeo,
    division), years ascending: no stack, no sort of the long rows.
    """
    path = Path(path)
    t0 = time.perf_counter()
    header, sep = sniff_header(path, ";")
    if sep != ";":
        log.warning("%s: separator %r instead of ';' (accepted: header is unambiguous)", path.name, sep)
    year_cols, dropped_years = _year_columns(header, path, years, last_years)
    years_sorted = sorted({y for _, y in year_cols.values()})
    reader = _Blocks(path, sep, block_size, list(year_cols))
    keys, ids, rows, repaired, unknown_rows = _group_ids(reader, known_communes)
    n_groups = len(keys)
    log.info("%s: %d rows in %d commune x division groups (pass 1, %.1f s)", path.name, rows, n_groups,
             time.perf_counter() - t0)
    sums = _sum_groups(reader, ids, year_cols, years_sorted, n_groups)
    del ids
    report = {
        "file": path.name,
        "rows": rows,
        "years": years_sorted,
        "years_not_staged": dropped_years,
        "commune_codes_zero_padded": repaired,
        "unknown_commune_codes": len(unknown_rows),
        "unknown_communes_sample": sorted(unknown_rows)[:20],
    }
    if unknown_rows:
        log.warning("%s: %d row(s) in %d commune code(s) outside the COG vintage: %s", path.name,
                    sum(unknown_rows.values()), report["unknown_commune_codes"], report["unknown_communes_sample"])
    out = _long_table(keys, sums, years_sorted)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    report["as_of_year"] = int(out.loc[out["jobs"].notna(), "year"].max())
    log.info("%s: %d rows -> %d commune x division x year rows in %.1f s", path.name, rows, len(out), report["seconds"])
    return out, report


def _year_columns(header: list[str], path: Path, years, last_years) -> tuple[dict, list[int]]:
    """{column: (measure, year)} of the year columns kept, and the years left out."""
    # year columns are discovered by regex, not declared one by one in the schema
    URSSAF.check_header([c for c in header if not re.match(URSSAF_YEAR_RE, c)], path)
    year_cols = {}
    for c in header:
        m = re.match(URSSAF_YEAR_RE, c)
        if m and (years is None or int(m.group(2)) in years):
            year_cols[c] = (m.group(1), int(m.group(2)))
    if not any(k == "effectifs_salaries" for k, _ in year_cols.values()):
        raise TabularFileError(f"{path.name}: no effectifs_salaries_YYYY column found (columns: {header[:10]}...)")
    dropped_years: list[int] = []
    if last_years:
        latest = max(y for k, y in year_cols.values() if k == "effectifs_salaries")
        keep = {y for _, y in year_cols.values() if y > latest - last_years or y in ALWAYS_KEPT_YEARS}
        dropped_years = sorted({y for _, y in year_cols.values()} - keep)
        year_cols = {c: ky for c, ky in year_cols.items() if ky[1] in keep}
    return year_cols, dropped_years


class _Blocks:
    """Streaming reads of some columns of the file, block by block (a bad number is located)."""

    def __init__(self, path: Path, sep: str, block_size: int, value_cols: list[str]):
        self.path, self.sep, self.block_size, self.value_cols = path, sep, block_size, value_cols

    def __call__(self, columns: list[str], types: dict):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        try:
            reader = pacsv.open_csv(
                self.path, read_options=pacsv.ReadOptions(block_size=self.block_size),
                parse_options=pacsv.ParseOptions(delimiter=self.sep),
                convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types,
                                                     null_values=[""]))  # only an empty cell is missing
            while True:
                try:
                    yield reader.read_next_batch()
                except StopIteration:
                    return
        except pa.ArrowInvalid as exc:
            raise TabularFileError(
                f"{self.path.name}: {_locate_bad_number(self.path, self.sep, self.value_cols) or exc}") from exc


def _group_ids(batches: _Blocks, known_communes: set[str]):
    """Pass 1: the commune x division group of every row (-1: outside the vintage or no APE).
    Returns (group keys "codgeo|division" in first-seen order, ids, rows, codes zero-padded,
    rows per unknown commune code)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = pa.array([], pa.string())
    ids_parts: list[np.ndarray] = []
    rows = repaired = 0
    unknown_rows: dict[str, int] = {}
    for batch in batches(["code_commune", "code_ape"], {"code_commune": pa.string(), "code_ape": pa.string()}):
        raw = batch.column("code_commune").to_pandas()
        codgeo = codes.arm_to_commune(codes.normalise_commune(raw))
        repaired += int((raw.astype("string").str.len() == 4).sum())
        division = codes.naf_with_dot(batch.column("code_ape").to_pandas()).str[:2]
        known = codgeo.isin(known_communes).to_numpy(dtype=bool) & division.notna().to_numpy(dtype=bool)
        if not known.all():
            for code, n in codgeo[~known & codgeo.notna().to_numpy()].value_counts().items():
                if code not in known_communes:
                    unknown_rows[code] = unknown_rows.get(code, 0) + int(n)
        key = pa.array((codgeo + "|" + division).to_numpy(dtype=object, na_value=None), pa.string())
        idx = pc.index_in(key, value_set=keys)
        missing = pc.and_(pc.is_null(idx), pa.array(known))
        if pc.any(missing).as_py():  # groups first seen in this block
            keys = pa.concat_arrays([keys, pc.unique(key.filter(missing))])
            idx = pc.index_in(key, value_set=keys)
        ids = idx.to_numpy(zero_copy_only=False)
        ids = np.where(known, np.nan_to_num(ids, nan=-1), -1).astype(np.int64)
        ids_parts.append(ids)
        rows += len(ids)
    if rows == 0:
        raise TabularFileError(f"{batches.path.name}: header only, no data rows")
    ids = np.concatenate(ids_parts)
    return keys, ids, rows, repaired, unknown_rows


def _sum_groups(batches: _Blocks, ids, year_cols: dict, years_sorted: list[int], n_groups: int) -> list:
    """Pass 2: sums per group, one (groups x years) matrix per measure (establishments, jobs);
    each block is sorted by group and reduced with one reduceat per measure (cost ~ the block,
    not the groups); a cell that no row filled stays missing."""
    import numpy as np
    import pyarrow as pa

    n_years = len(years_sorted)
    measure_cols = [[None] * n_years, [None] * n_years]
    for c, (k, y) in year_cols.items():
        measure_cols[0 if k == "nombre_d_etablissements" else 1][years_sorted.index(y)] = c
    sums = [np.zeros((n_groups, n_years)), np.zeros((n_groups, n_years))]
    filled = [np.zeros((n_groups, n_years), dtype=bool), np.zeros((n_groups, n_years), dtype=bool)]
    pos = 0
    for batch in batches(batches.value_cols, {c: pa.float64() for c in batches.value_cols}):
        n = batch.num_rows
        b_ids = ids[pos:pos + n]
        keep = np.flatnonzero(b_ids >= 0)
        o = keep[np.argsort(b_ids[keep], kind="stable")]
        g = b_ids[o]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
        for m in (0, 1):
            block = np.full((n, n_years), np.nan)
            present = np.zeros((n, n_years), dtype=bool)
            for j, c in enumerate(measure_cols[m]):
                if c is not None:
                    column = batch.column(c)
                    block[:, j] = column.to_numpy(zero_copy_only=False)
                    present[:, j] = column.is_valid().to_numpy(zero_copy_only=False)
            _check_counts(batches.path, block, present, measure_cols[m], pos,
                          CEILING_ESTABLISHMENTS if m == 0 else CEILING_JOBS)
            del present
            if len(g):
                block = block[o]
                has = ~np.isnan(block)
                sums[m][g[starts]] += np.add.reduceat(np.where(has, block, 0.0), starts, axis=0)
                filled[m][g[starts]] |= np.logical_or.reduceat(has, starts, axis=0)
            del block
        pos += n
    for m in (0, 1):
        sums[m][~filled[m]] = np.nan
    return sums


def _long_table(keys, sums: list, years_sorted: list[int]) -> pd.DataFrame:
    """The long table as the row-major view of the matrices: groups in (codgeo, division) order,
    years ascending (no stack, no sort of the long rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n_groups, n_years = len(keys), len(years_sorted)
    # codgeo has 5 characters, so "codgeo|division" sorts like the pair
    order = pc.sort_indices(keys).to_numpy()
    for m in (0, 1):  # one matrix copy at a time
        sums[m] = sums[m][order]
    parts = pc.split_pattern(keys.take(pa.array(order)), "|", max_splits=1)
    del keys, order
    group_codgeo = pc.list_element(parts, 0)
    group_division = pc.list_element(parts, 1)
    take = pa.array(np.repeat(np.arange(n_groups, dtype=np.int64), n_years))
    out = pd.DataFrame({"codgeo": group_codgeo.take(take).to_pandas().array,
                        "division": group_division.take(take).to_pandas().array})
    del take
    out["year"] = np.tile(np.asarray(years_sorted, dtype="int64"), n_groups)
    # columns added one by one: a dict of same-dtype arrays would be consolidated (copied)
    out["n_etab"] = sums[0].ravel()  # row-major views: group by group, years ascending
    out["jobs"] = sums[1].ravel()
    sums.clear()
    ind = pc.is_in(group_division, value_set=pa.array(list(INDUSTRIAL_DIVISIONS))).to_numpy(zero_copy_only=False)
    out["is_industrial"] = np.repeat(ind, n_years)
    return out


def _check_counts(path: Path, block, present, cols: list, pos: int, ceiling: float) -> None:
    """Counts by meaning (issue 21): every cell is empty (secret/absent: the only missing value)
    or a finite, non-negative whole number below a plausible ceiling; ``NaN``/``inf`` texts are
    values, refused. The first violation names the file, the file line, the column and the value."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        bad = present & ~(np.isfinite(block) & (block >= 0) & (block <= ceiling) & (np.floor(block) == block))
    if not bad.any():
        return
    i, j = (int(x[0]) for x in np.nonzero(bad))
    v = float(block[i, j])
    reason = ("negative count" if v < 0 else "non-finite count" if not np.isfinite(v)
              else f"count above the plausible ceiling {ceiling:,.0f}" if v > ceiling else "non-integer count")
    line = pos + i + 2  # header = file line 1
    raise TabularFileError(f"{path.name}: {reason} {v!r} at data row {line - 1} (file line {line}), "
                           f"column {cols[j]!r}")


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
    from ..landing import count_rows, land_download

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
