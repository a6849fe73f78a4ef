"""Stage 2b: SIRENE establishment history -> state of the industrial units at year ends.

Reads the industrial units of the current SIRENE stock partition (their SIRETs), streams the
``StockEtablissementHistorique`` file and writes ``staging/sirene_history/<vintage>/states.parquet``
(siret, year, etat, employer, naf, nomenclature at 31/12 of ``year``) for the six year ends
``t1f − 5 .. t1f`` (``t1f`` = last full year before the stock date), then moves ``CURRENT``.
Units of the extract closed on or before the first of those year ends are not looked up
(closed at every date kept, they cannot enter any flow).
The vintage is the one of the stock the SIRETs come from, so both always match.
"""

from __future__ import annotations

import logging

from .. import storage
from ..config import Settings, get_settings
from ..errors import DataError
from ..fetch import acquire
from ..validation import gate
from .common import load_geography

log = logging.getLogger(__name__)
YEARS_KEPT = 6


def flow_end_year(stock_vintage: str) -> int:
    """Last 31/12 strictly before the stock date (``2026-11-01`` -> 2025, ``2027-01-01`` -> 2026)."""
    return int(str(stock_vintage)[:4]) - 1


class HistoryStatesError(DataError, ValueError):
    pass


def _check_states(states, years: list[int], rep: dict) -> None:
    """Hard checks of the staged states (names the field and gives sample values)."""
    if rep["sirets_requested"] and states.empty:
        raise HistoryStatesError(f"{rep['file']}: none of the {rep['sirets_requested']} industrial SIRETs of the stock "
                                 "has a period covering the requested year ends (wrong file or vintage?)")
    bad = states[~states["etat"].isin(["A", "F"])]
    if len(bad):
        raise HistoryStatesError(f"{rep['file']}: etatAdministratifEtablissement not in (A, F) for {len(bad)} state(s), "
                                 f"e.g. siret {bad['siret'].iloc[0]} year {bad['year'].iloc[0]}: {bad['etat'].iloc[0]!r}")
    out = states[~states["year"].isin(years)]
    if len(out):
        raise HistoryStatesError(f"{rep['file']}: unexpected year(s) {sorted(out['year'].unique())[:5]}")
    # one state per (siret, year): made so by the parser (overlaps resolved and counted) and
    # enforced by the hard gate's compound-uniqueness check, not re-hashed here


def run_sirene_history(settings: Settings | None = None, force: bool = False) -> dict:
    """Build the states partition for the current stock vintage (skipped when it exists)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..sources import sirene_history

    settings = settings or get_settings()
    stock_vintage, stock_folder = storage.current(settings.staging_dir, "sirene_stock")
    done = settings.staging_dir / "sirene_history" / stock_vintage / "states.parquet"
    try:
        current = storage.current(settings.staging_dir, "sirene_history")[0]
    except FileNotFoundError:
        current = None
    if not force and current == stock_vintage and done.exists():
        log.info("sirene_history %s already staged (%s): skipped", stock_vintage, done)
        return {"vintage": stock_vintage, "skipped": True, "path": str(done.parent)}
    geo = load_geography(settings)
    # Arrow, not pandas: millions of SIRETs nationally
    ext = pq.read_table(stock_folder / "industrial_establishments.parquet",
                        columns=["siret", "etatAdministratifEtablissement", "dateDebut"])
    got = acquire("sirene_history", settings, geo)
    t1 = flow_end_year(stock_vintage)
    years = list(range(t1 - YEARS_KEPT + 1, t1 + 1))
    # a unit closed on or before the first year end kept is closed at every date kept: it can
    # never be active, created or closed in the window, so its periods are not extracted
    closed_before = pc.fill_null(pc.and_(pc.equal(ext["etatAdministratifEtablissement"], "F"),
                                         pc.less_equal(pc.fill_null(ext["dateDebut"], ""), f"{years[0]}-12-31")), False)
    # the extract (millions of rows) is released before the history is streamed
    wanted = sirene_history.wanted_sirets(ext["siret"].filter(pc.invert(closed_before)))
    units = {"units_in_stock_extract": int(ext.num_rows),
             "units_closed_before_window": int(pc.sum(closed_before).as_py() or 0)}
    del ext, closed_before
    closure_parts: list = []
    states, report = sirene_history.states_at_year_ends(got.path, wanted, years, closures=closure_parts)
    # the early warning compares with the same windows of the 5 previous years: 6 years kept
    closures = sirene_history.assemble_closures(closure_parts, wanted, since_day=(years[0] - 1) * 10000 + 101)
    del closure_parts, wanted
    rep = {**report.as_dict(), "stock_vintage": stock_vintage, "history_vintage": got.vintage, **units}
    if got.vintage != stock_vintage:
        log.warning("SIRENE history vintage %s differs from the stock vintage %s: flows mix two dates",
                    got.vintage, stock_vintage)
    _check_states(states, years, rep)
    try:
        gate("sirene_history", states, settings=settings, vintage=stock_vintage, context={"report": rep})
    except ValueError as exc:  # no suite registered for this dataset yet: own checks above still apply
        if "no validation suite" not in str(exc):
            raise
        log.warning("sirene_history: %s; staged with the stage's own checks only", exc)
    folder = storage.staging_partition(settings.staging_dir, "sirene_history", stock_vintage)
    storage.write_parquet(states, folder / "states.parquet")
    # closure dates of the same units: the early warning's baseline (same windows, past years)
    storage.write_parquet(closures, folder / "closures.parquet")
    rep["closures"] = int(len(closures))
    storage.write_json(folder / "parse_report.json", rep)
    storage.set_current(settings.staging_dir, "sirene_history", stock_vintage)
    log.info("sirene_history %s: %d states for %d SIRETs over %s", stock_vintage, len(states),
             report.sirets_found, years)
    return {"vintage": stock_vintage, "rows": report.rows, "states": int(len(states)),
            "sirets_found": report.sirets_found, "sirets_missing": rep["sirets_missing"], "years": years,
            "path": str(folder)}
