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
    """Positions of SIRETs in the sorted wanted list: binary search on int64 (a SIRET is 14
    digits, so the string order is the numeric order), O(rows x log n) per batch instead of
    re-hashing the millions of wanted SIRETs for every batch (what ``pyarrow.compute.is_in``
    / ``index_in`` do). Non-numeric values fall back to ``index_in``."""

    def __init__(self, wanted: pa.Array):
        self.wanted = wanted  # sorted, unique
        self.ints = None
        if len(wanted):
            try:
                if pc.all(pc.equal(pc.utf8_length(wanted), 14)).as_py():
                    self.ints = pc.cast(wanted, pa.int64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.ints = None

    def index(self, sirets) -> np.ndarray:
        """int64 position in ``wanted`` of every value, -1 when not wanted."""
        if len(self.wanted) == 0:
            return np.full(len(sirets), -1, dtype=np.int64)
        if self.ints is not None:
            try:
                if not pc.all(pc.equal(pc.utf8_length(sirets), 14)).as_py():
                    raise ValueError
                v = pc.cast(sirets, pa.int64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, ValueError):
                v = None
            if v is not None:
                pos = np.minimum(np.searchsorted(self.ints, v), len(self.ints) - 1)
                return np.where(self.ints[pos] == v, pos, -1)
        idx = pc.index_in(sirets, value_set=self.wanted)
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)


_STATE_TEXT = {"etat": "etatAdministratifEtablissement", "employer": "caractereEmployeurEtablissement",
               "naf": "activitePrincipaleEtablissement", "nomenclature": "nomenclatureActivitePrincipaleEtablissement"}


def _day_number(dates) -> np.ndarray:
    """"YYYY-MM-DD" -> int32 YYYYMMDD (same order); empty or odd -> 0."""
    digits = pc.replace_substring(dates, "-", "")
    ok = pc.and_(pc.equal(pc.utf8_length(digits), 8), pc.utf8_is_digit(digits))
    return pc.cast(pc.if_else(ok, digits, "0"), pa.int32()).to_numpy(zero_copy_only=False)


class _StateRows:
    """The kept state rows, as growing numpy columns: the SIRET as its position in the wanted
    list (int32), the year (int16), the period start as YYYYMMDD (int32) and each text as an
    int16 code in one dictionary per column kept across batches (about 18 bytes a row).

    The dictionaries grow in first-appearance order over the batches that yield states, which
    is the order Arrow's ``unify_dictionaries`` gave when the rows were kept as one small
    dictionary-encoded table per batch and year (the categories of the staged file are the
    same); those small tables cost about 90 bytes a row nationally, their dictionaries and
    buffers included."""

    def __init__(self):
        self.values: dict[str, list] = {k: [] for k in _STATE_TEXT}
        self._codes: dict[str, dict] = {k: {} for k in _STATE_TEXT}
        self.chunks: dict[str, list[np.ndarray]] = {k: [] for k in ("w", "year", "day", *_STATE_TEXT)}

    def _encode(self, k: str, arr) -> np.ndarray:
        """int16 codes of ``arr`` in the column's global dictionary (null -> -1)."""
        enc = pc.dictionary_encode(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        known, values = self._codes[k], self.values[k]
        lut = np.empty(len(enc.dictionary) + 1, dtype=np.int16)
        for i, v in enumerate(enc.dictionary.to_pylist()):
            if v not in known:
                if len(values) >= np.iinfo(np.int16).max:
                    raise SireneFileError(f"{_STATE_TEXT[k]}: more than {len(values)} distinct values in the history")
                known[v] = len(values)
                values.append(v)
            lut[i] = known[v]
        lut[-1] = -1
        return lut[pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False)]

    def add(self, t: pa.Table, w: np.ndarray, dates: list[tuple[int, str]]) -> None:
        """State rows of one batch (rows of wanted SIRETs only, ``w`` their positions)."""
        debut, fin = t["dateDebut"], t["dateFin"]
        rows, years = [], []
        for year, d in dates:
            ds = pa.scalar(d, pa.string())
            covers = pc.and_(pc.less_equal(debut, ds), pc.or_(pc.equal(fin, ""), pc.greater_equal(fin, ds)))
            r = np.flatnonzero(pc.fill_null(covers, False).to_numpy(zero_copy_only=False))
            if len(r):
                rows.append(r)
                years.append(np.full(len(r), year, np.int16))
        if not rows:
            return
        r = np.concatenate(rows)
        self.chunks["w"].append(w[r].astype(np.int32))
        self.chunks["year"].append(np.concatenate(years))
        self.chunks["day"].append(_day_number(debut)[r])
        for k, v in _STATE_TEXT.items():
            self.chunks[k].append(self._encode(k, t[v])[r])

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks["w"])

    def column(self, k: str) -> np.ndarray:
        """One column, its chunks concatenated and released."""
        parts = self.chunks[k]
        out = np.concatenate(parts) if parts else np.empty(0, np.int32)
        parts.clear()
        return out


def _closures_in_batch(t: pa.Table, w: np.ndarray) -> pa.Table | None:
    """Closure periods of one batch (rows of wanted SIRETs only): a period whose state is F and
    whose state changed at its start (``changementEtatAdministratifEtablissement``); its start
    is the closure date. Kept compactly: SIRET position, YYYYMMDD, activity at closure."""
    if "changementEtatAdministratifEtablissement" not in t.column_names:
        return None
    closed = pc.and_(pc.equal(t["etatAdministratifEtablissement"], "F"),
                     pc.equal(pc.utf8_lower(t["changementEtatAdministratifEtablissement"]), "true"))
    rows = np.flatnonzero(pc.fill_null(closed, False).to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return None
    take = pa.array(rows)
    return pa.table({"w": pa.array(w[rows].astype(np.int32)), "day": pa.array(_day_number(t["dateDebut"].take(take))),
                     "naf": pc.dictionary_encode(t["activitePrincipaleEtablissement"].take(take))})


def assemble_closures(parts: list[pa.Table], wanted: pa.Array, since_day: int = 0) -> pd.DataFrame:
    """(siret as int64, date YYYY-MM-DD, naf as categorical) of the closures collected by
    :func:`states_at_year_ends` on or after ``since_day`` (YYYYMMDD): compact, nationally a few
    hundred thousand rows."""
    if not parts:
        return pd.DataFrame({"siret": pd.Series(dtype="int64"), "date": pd.Series(dtype="str"),
                             "naf": pd.Series(dtype="category")})
    t = pa.concat_tables(parts).unify_dictionaries().combine_chunks()
    parts.clear()
    day = t["day"].to_numpy().astype(np.int64)
    ok = np.flatnonzero((day > 0) & (day >= since_day))
    date = pd.Series(day[ok].astype(str))
    siret = pc.cast(wanted.take(pa.array(t["w"].to_numpy()[ok])), pa.int64()).to_numpy()
    return pd.DataFrame({"siret": siret, "date": (date.str[:4] + "-" + date.str[4:6] + "-" + date.str[6:8]).to_numpy(),
                         "naf": t["naf"].take(pa.array(ok)).to_pandas()})


def wanted_sirets(sirets) -> pa.Array:
    """The SIRETs as one sorted, unique Arrow string array (returned as is when it is one)."""
    wanted = sirets if isinstance(sirets, (pa.Array, pa.ChunkedArray)) else pa.array(list(sirets), pa.string())
    if isinstance(wanted, pa.ChunkedArray):
        wanted = wanted.combine_chunks()
    wanted = wanted.cast(pa.string())
    if wanted.null_count == 0 and (len(wanted) < 2 or pc.all(pc.greater(wanted[1:], wanted[:-1])).as_py()):
        return wanted
    wanted = pc.unique(pc.drop_null(wanted))
    return wanted.take(pc.sort_indices(wanted))


def states_at_year_ends(path: Path, sirets, years: list[int], progress_every: int = 10_000_000,
                        on_batch=None, closures: list | None = None) -> tuple[pd.DataFrame, HistoryParseReport]:
    """State of each requested SIRET at 31/12 of each year: (siret, year, etat, employer, naf,
    nomenclature), sorted by SIRET and year. Rows of other SIRETs are dropped batch by batch and
    kept rows are stored compactly (SIRET position, dictionary-encoded texts), so memory is
    about the states, not the file; ``etat``, ``employer``, ``naf`` and ``nomenclature`` come
    back as pandas categoricals (a few distinct values over millions of rows).
    ``closures``: a list that receives the closure periods of the same SIRETs (compact tables,
    :func:`assemble_closures` turns them into a frame) — the early warning's baseline."""
    path = Path(path)
    t0 = time.perf_counter()
    wanted = wanted_sirets(sirets)
    members = _SiretSet(wanted)
    dates = [(int(y), f"{int(y)}-12-31") for y in sorted(set(years))]
    report = HistoryParseReport(file=path.name, sirets_requested=len(wanted), years=[y for y, _ in dates])
    states = _StateRows()
    found = np.zeros(len(wanted), dtype=bool)  # SIRETs present in the file (any period)
    next_log = progress_every
    for batch in iter_history_batches(path):
        if on_batch is not None:
            on_batch(batch)
        report.rows += batch.num_rows
        t = pa.Table.from_batches([batch])
        w = members.index(t["siret"].combine_chunks())
        keep = np.flatnonzero(w >= 0)
        report.rows_kept += len(keep)
        if len(keep):
            found[w[keep]] = True
            kept = t.take(pa.array(keep))
            states.add(kept, w[keep], dates)
            if closures is not None and (c := _closures_in_batch(kept, w[keep])) is not None:
                closures.append(c)
        if report.rows >= next_log:
            el = time.perf_counter() - t0
            log.info("%s: %s rows read, %s kept, %.0f rows/s", path.name, f"{report.rows:,}", f"{report.rows_kept:,}",
                     report.rows / max(el, 1e-9))
            next_log += progress_every
    if report.rows == 0:
        raise SireneFileError(f"{path.name}: no data rows (header only or empty file)")
    report.sirets_found = int(found.sum())
    del found
    df = _assemble(states, wanted, report)
    report.sirets_with_state = int(df["siret"].nunique())
    report.seconds = time.perf_counter() - t0
    log.info("%s: %s rows in %.1f s (%.0f rows/s), %s kept: %d of %d SIRETs found, %d with a state at the year "
             "ends (others created later), %d states", path.name, f"{report.rows:,}", report.seconds,
             report.rows / max(report.seconds, 1e-9), f"{report.rows_kept:,}", report.sirets_found,
             report.sirets_requested, report.sirets_with_state, len(df))
    return df, report


def _assemble(states: _StateRows, wanted: pa.Array, report: HistoryParseReport) -> pd.DataFrame:
    """Order the compact state rows by (SIRET, year, period start), keep the most recent start
    where periods overlap (data errors, counted), and build the DataFrame (texts as categoricals
    of the global dictionaries)."""
    if not len(states):
        df = pd.DataFrame({c: pd.Series(dtype="str") for c in STATE_COLUMNS})
        df["year"] = df["year"].astype("int64")
        return df
    w, year, day = states.column("w"), states.column("year"), states.column("day")
    order = np.lexsort((day, year, w))
    del day
    w, year = w[order], year[order]
    last = np.ones(len(w), dtype=bool)  # the last row of each (SIRET, year): most recent start
    last[:-1] = (w[1:] != w[:-1]) | (year[1:] != year[:-1])
    report.overlapping_periods = int((~last).sum())
    rows = order[last]
    del order
    w, year = w[last], year[last]
    del last
    df = pd.DataFrame({"siret": wanted.take(pa.array(w)).to_pandas().array, "year": year.astype("int64")})
    del w, year
    for k in _STATE_TEXT:
        categories = pd.Index(pa.array(states.values[k], pa.string()).to_pandas())
        df[k] = pd.Categorical.from_codes(states.column(k)[rows], categories=categories)
    return df
