"""SIRENE establishment history (``StockEtablissementHistorique``): state at chosen dates.

The national file has ~96 M rows (one per establishment period, 18 columns, ~1.1 GB zip).
It is streamed with pyarrow from the zip member (or its Parquet twin), columns selected by
name, and every batch is filtered **first** to the SIRETs of interest (the industrial units of
the stock, ~10 %), so only the periods of those units ever reach pandas.

For each reference date ``d`` (31/12 of chosen years) a period covers ``d`` when
``dateDebut <= d`` (empty = since ever) and ``dateFin >= d`` (empty = still current); the
state of the unit at ``d`` is the one of that period: administrative state (A/F), employer
flag (O/N/empty) and activity (code + nomenclature). A unit with no covering period did not
exist yet at ``d`` (no row). The history has no address: the commune comes from the stock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schemas import SIRENE_HISTORY, SourceSchema
from .sirene import DEFAULT_BLOCK_SIZE, SireneFileError, iter_stock_batches

log = logging.getLogger(__name__)

HISTORY_MEMBER = "StockEtablissementHistorique_utf8.csv"
STATE_COLUMNS = ["siret", "year", "etat", "employer", "naf", "nomenclature"]


@dataclass
class HistoryParseReport:
    file: str
    rows: int = 0
    rows_kept: int = 0
    sirets_requested: int = 0
    sirets_found: int = 0  # present in the history file
    sirets_with_state: int = 0  # with a period covering at least one requested year end
    overlapping_periods: int = 0
    seconds: float = 0.0
    years: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"file": self.file, "rows": self.rows, "rows_kept": self.rows_kept,
                "sirets_requested": self.sirets_requested, "sirets_found": self.sirets_found,
                "sirets_missing": self.sirets_requested - self.sirets_found,
                "sirets_with_state": self.sirets_with_state,
                "sirets_without_state": self.sirets_found - self.sirets_with_state,
                "overlapping_periods": self.overlapping_periods, "seconds": round(self.seconds, 3),
                "years": self.years}


def iter_history_batches(path: Path, schema: SourceSchema = SIRENE_HISTORY, block_size: int = DEFAULT_BLOCK_SIZE):
    """Yield RecordBatches of the needed history columns, all typed as strings: the stock's
    reader (verified ISA-L inflate of the zip member, small blocks overlapped with parsing),
    or the Parquet twin with column projection."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix == ".parquet":
        pf = pq.ParquetFile(path)
        cols = schema.check_header(pf.schema_arrow.names, path)
        for batch in pf.iter_batches(columns=cols, batch_size=1_000_000):
            yield batch.cast(pa.schema([(c, pa.string()) for c in batch.schema.names]))
        return
    yield from iter_stock_batches(path, schema, block_size=block_size, member=HISTORY_MEMBER)


class _SiretSet:
    """Membership of SIRETs: sorted int64 + binary search (a SIRET is 14 digits), so a batch
    costs O(rows x log n) instead of re-hashing the millions of wanted SIRETs for every batch
    (what ``pyarrow.compute.is_in`` does). Non-numeric values fall back to ``is_in``."""

    def __init__(self, wanted: pa.Array):
        self.wanted = wanted
        try:
            self.ints = np.unique(pc.cast(wanted, pa.int64()).to_numpy(zero_copy_only=False)) if len(wanted) else None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            self.ints = None
        if self.ints is not None and not pc.all(pc.equal(pc.utf8_length(wanted), 14)).as_py():
            self.ints = None

    def mask(self, sirets) -> pa.Array:
        if self.ints is None or len(self.ints) == 0:
            return pc.is_in(sirets, value_set=self.wanted)
        try:
            if not pc.all(pc.equal(pc.utf8_length(sirets), 14)).as_py():
                raise ValueError
            v = pc.cast(sirets, pa.int64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, ValueError):
            return pc.is_in(sirets, value_set=self.wanted)
        pos = np.minimum(np.searchsorted(self.ints, v), len(self.ints) - 1)
        return pa.array(self.ints[pos] == v)


def _states_in_batch(t: pa.Table, dates: list[tuple[int, str]]) -> list[pa.Table]:
    out = []
    debut, fin = t["dateDebut"], t["dateFin"]
    for year, d in dates:
        ds = pa.scalar(d, pa.string())
        covers = pc.and_(pc.less_equal(debut, ds), pc.or_(pc.equal(fin, ""), pc.greater_equal(fin, ds)))
        sel = t.filter(covers)
        if sel.num_rows == 0:
            continue
        out.append(pa.table({
            "siret": sel["siret"], "year": pa.array([year] * sel.num_rows, pa.int32()),
            "etat": sel["etatAdministratifEtablissement"], "employer": sel["caractereEmployeurEtablissement"],
            "naf": sel["activitePrincipaleEtablissement"],
            "nomenclature": sel["nomenclatureActivitePrincipaleEtablissement"],
            "dateDebut": sel["dateDebut"],
        }))
    return out


def states_at_year_ends(path: Path, sirets, years: list[int], progress_every: int = 10_000_000,
                        on_batch=None) -> tuple[pd.DataFrame, HistoryParseReport]:
    """State of each requested SIRET at 31/12 of each year: (siret, year, etat, employer, naf,
    nomenclature). Rows of other SIRETs are dropped batch by batch (memory ~ the kept rows)."""
    path = Path(path)
    t0 = time.perf_counter()
    wanted = pa.array(sorted(set(sirets)), pa.string())
    members = _SiretSet(wanted)
    dates = [(int(y), f"{int(y)}-12-31") for y in sorted(set(years))]
    report = HistoryParseReport(file=path.name, sirets_requested=len(wanted), years=[y for y, _ in dates])
    parts: list[pa.Table] = []
    seen: list[pa.Array] = []  # SIRETs present in the file (any period), deduplicated per batch
    next_log = progress_every
    for batch in iter_history_batches(path):
        if on_batch is not None:
            on_batch(batch)
        report.rows += batch.num_rows
        t = pa.Table.from_batches([batch])
        t = t.filter(members.mask(t["siret"].combine_chunks()))
        report.rows_kept += t.num_rows
        if t.num_rows:
            seen.append(pc.unique(t["siret"]))
            parts.extend(_states_in_batch(t, dates))
        if report.rows >= next_log:
            el = time.perf_counter() - t0
            log.info("%s: %s rows read, %s kept, %.0f rows/s", path.name, f"{report.rows:,}", f"{report.rows_kept:,}",
                     report.rows / max(el, 1e-9))
            next_log += progress_every
    if report.rows == 0:
        raise SireneFileError(f"{path.name}: no data rows (header only or empty file)")
    if parts:
        df = pa.concat_tables(parts).to_pandas()
    else:
        df = pd.DataFrame({c: pd.Series(dtype="str") for c in [*STATE_COLUMNS, "dateDebut"]})
        df["year"] = df["year"].astype("int32")
    # overlapping periods (data errors): keep the most recent start for a (siret, date)
    df = df.sort_values(["siret", "year", "dateDebut"])
    dup = df.duplicated(["siret", "year"], keep="last")
    report.overlapping_periods = int(dup.sum())
    df = df[~dup].drop(columns="dateDebut").reset_index(drop=True)
    df["year"] = df["year"].astype("int64")
    report.sirets_found = int(pc.count_distinct(pa.chunked_array(seen, pa.string())).as_py()) if seen else 0
    report.sirets_with_state = int(df["siret"].nunique())
    report.seconds = time.perf_counter() - t0
    log.info("%s: %s rows in %.1f s (%.0f rows/s), %s kept: %d of %d SIRETs found, %d with a state at the year "
             "ends (others created later), %d states", path.name, f"{report.rows:,}", report.seconds,
             report.rows / max(report.seconds, 1e-9), f"{report.rows_kept:,}", report.sirets_found,
             report.sirets_requested, report.sirets_with_state, len(df))
    return df[STATE_COLUMNS], report
