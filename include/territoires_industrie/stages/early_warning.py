"""Stage: early warning from the daily API Sirene updates (issue 15).

Merges every landed updates batch newer than the store's watermark into the versioned store of
industrial establishments (seeded from the current SIRENE stock on first use), derives the
events, computes the per-territory signals against the history's closures, writes the
warehouse tables in one transaction and sends **one digest** notification per run with the new
alerts, most difficult territories first. State: ``staging/early_warning/<watermark>/``
(``store.parquet``, ``events.parquet``, ``state.json``), moved by ``CURRENT`` only once complete.
"""

from __future__ import annotations

import json
import logging
import time

import pandas as pd

from .. import storage
from ..config import Settings, get_settings
from .common import load_geography

log = logging.getLogger(__name__)
NAME = "early_warning"


def _load_or_seed(settings: Settings, map_commune, rebuild: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from ..alerts import store as st

    try:
        if rebuild:
            raise FileNotFoundError("rebuild asked")
        _, folder = storage.current(settings.staging_dir, NAME)
        state = json.loads((folder / "state.json").read_text())
        return st.read_store(folder / "store.parquet"), pd.read_parquet(folder / "events.parquet"), state
    except FileNotFoundError:
        pass
    vintage, stock_folder = storage.current(settings.staging_dir, "sirene_stock")
    rep = stock_folder / "parse_report.json"
    as_of = (json.loads(rep.read_text()).get("as_of") if rep.exists() else None) or vintage
    extract = pd.read_parquet(stock_folder / "industrial_establishments.parquet")
    store = st.seed(extract, map_commune, as_of)
    log.info("early warning: store seeded from the SIRENE stock %s (as of %s): %d industrial establishments",
             vintage, as_of, len(store))
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in st.EVENT_COLUMNS})
    return store, empty, {"seeded_from": vintage, "seeded_as_of": as_of, "watermark": as_of, "batches": {}}


def merge_landed(settings: Settings, geo, store: pd.DataFrame, events: pd.DataFrame, state: dict):
    """Merge the landed batches the store has not seen, in time order: (store, events, merged ids)."""
    from ..alerts import store as st
    from ..sources import sirene_api

    merged, t0, records = [], time.perf_counter(), 0
    windows = sorted(sirene_api.landed_windows(settings), key=lambda w: w["window_to"])
    for w in windows:
        if w["window_to"] < state["seeded_as_of"]:
            continue  # before the stock the store was seeded from: already in it
        path = settings.raw_dir / w["path"]
        batch_id = w.get("vintage") or w["path"]
        fp = storage.sha256_file(path)  # the landed file never changes: its checksum is the batch's identity
        batch = st.load_batch(path, store, geo.map_commune)
        if st.plan_batch(state, batch_id, fp, batch["treated"].max() if len(batch) else None) == "replay":
            continue
        store, ev, counts = st.merge_batch(store, batch, batch_id, state["seeded_as_of"])
        events = pd.concat([events, ev], ignore_index=True) if len(ev) else events
        latest = batch["treated"].max() if len(batch) else state["watermark"]
        state["batches"][batch_id] = {"digest": fp, "merged_at": pd.Timestamp.now("UTC").isoformat(timespec="seconds"),
                                      "max_treated": latest, **counts}
        state["watermark"], state["last_batch"] = max(state["watermark"], latest), batch_id
        merged.append(batch_id)
        records += counts["records"]
        log.info("early warning: batch %s merged: %d records, %d versions, %d events (%d records in %.1f s, %.0f/s)",
                 batch_id, counts["records"], counts["versions_written"], counts["events"], records,
                 time.perf_counter() - t0, records / max(time.perf_counter() - t0, 1e-9))
    return store, events, merged


def _baseline(settings: Settings, store: pd.DataFrame, membership: pd.DataFrame, as_of: str,
              days: list[int]) -> pd.Series:
    from ..alerts import signals

    try:
        _, folder = storage.current(settings.staging_dir, "sirene_history")
        closures = pd.read_parquet(folder / "closures.parquet")
    except FileNotFoundError:
        log.warning("early warning: no staged SIRENE history closures: expected counts use the zero-history prior")
        return pd.Series(dtype="float64")
    commune_of = store.drop_duplicates("siret", keep="last").set_index("siret")["codgeo"]
    return signals.baseline(closures, commune_of, membership, as_of, windows=days)


def run_early_warning(settings: Settings | None = None, engine=None, rebuild: bool = False) -> dict:
    """Merge the new landed batches, recompute the signals, publish them, send one digest.
    ``rebuild``: reseed the store from the current stock and merge every landed batch after it
    (after a long gap in the updates, or to merge a batch the watermark refused)."""
    from .. import warehouse
    from ..alerts import signals, tables

    settings = settings or get_settings()
    t0 = time.perf_counter()
    try:
        storage.current(settings.staging_dir, "sirene_stock")
    except FileNotFoundError:  # a fresh install: nothing to seed the store from yet
        log.info("early warning: no SIRENE stock staged yet: nothing to do until ti_sirene has run")
        return {"skipped": True, "reason": "no SIRENE stock staged yet: run ti_sirene first"}
    geo = load_geography(settings)
    store, events, state = _load_or_seed(settings, geo.map_commune, rebuild)
    store, events, merged = merge_landed(settings, geo, store, events, state)
    vintage = state["watermark"].replace(":", "").replace(".", "")[:17]  # 2026-11-30T060015
    folder = storage.staging_partition(settings.staging_dir, NAME, vintage)
    storage.write_parquet(store, folder / "store.parquet")
    storage.write_parquet(events, folder / "events.parquet")
    storage.write_json(folder / "state.json", state)
    # CURRENT moves only once the warehouse has the events of these batches (below): a run that
    # fails in between is redone from the previous store by the next run, never half-published

    as_of = state["watermark"][:10]
    membership = _membership(settings, geo)
    coverage = signals.covered_windows(as_of, state["seeded_as_of"])
    past = _baseline(settings, store, membership, as_of, sorted(set(coverage.values())))
    stock_vintage = storage.current(settings.staging_dir, "sirene_stock")[0]
    sig = signals.territory_signals(events, membership, past, as_of, coverage=coverage, stock_date=stock_vintage)
    published = _published_events(events[events["batch"].isin(merged)], membership)
    synthetic = settings.source_mode != "live"
    own = engine is None
    engine = engine or warehouse.get_engine(settings.warehouse_url)
    try:
        previous = tables.latest_as_of(engine)
        before = tables.read_signals(engine, previous) if previous else None  # a rerun of as_of: itself
        written = tables.write(engine, as_of, published, sig, merged, "SYNTHETIC" if synthetic else "officiel")
        storage.set_current(settings.staging_dir, NAME, vintage)
        digest = _digest(engine, sig, before, as_of, synthetic)
    finally:
        if own:
            engine.dispose()
    out = {"as_of": as_of, "batches_merged": len(merged), "store_versions": int(len(store)),
           "events_total": int(len(events)), "events_published": written["events"],
           "alerted": int(sig.loc[sig["alerted"], ["level", "territory_id"]].drop_duplicates().shape[0]),
           "notified": digest, "seconds": round(time.perf_counter() - t0, 1), "synthetic": synthetic}
    log.info("early warning %s: %s", as_of, out)
    return out


def _membership(settings: Settings, geo) -> pd.DataFrame:
    """Commune -> territories: the one the last indicators run used (both phases of Territoires
    d'industrie), else the geography's (phase 1 only; no download from here)."""
    from ..indicators.base import memberships

    try:
        _, folder = storage.current(settings.staging_dir, "indicators")
        path = folder / "membership_internal.parquet"
        if path.exists():
            return pd.read_parquet(path)[["level", "territory_id", "codgeo"]]
    except FileNotFoundError:
        pass
    log.warning("early warning: no indicators run yet: territories from the geography only (TI phase 1)")
    return memberships(geo.communes, geo.ti)


def _published_events(events: pd.DataFrame, membership: pd.DataFrame) -> pd.DataFrame:
    """Fully diffusible establishments only (others are never named or located), with their
    EPCI, zone d'emploi and département."""
    ev = events[events["diffusible"].astype(bool)].drop(columns=["diffusible"])
    for level in ("epci", "ze", "departement"):
        m = membership[membership["level"] == level].drop_duplicates("codgeo").set_index("codgeo")["territory_id"]
        ev = ev.assign(**{level: ev["codgeo"].map(m)})
    return ev


def _digest(engine, sig: pd.DataFrame, before: pd.DataFrame | None, as_of: str, synthetic: bool) -> dict:
    """One notification for the run: territories newly alerted since the previous run (a rerun
    of the same day alerts nobody twice)."""
    from .. import warehouse
    from ..alerts import tables
    from ..ops.notify import notify

    alerted = sig[sig["alerted"]]
    if before is not None and not before.empty:
        old = set(map(tuple, before.loc[before["alerted"].astype(bool), ["level", "territory_id"]].to_numpy()))
        alerted = alerted[[(lv, t) not in old for lv, t in zip(alerted["level"], alerted["territory_id"])]]
    if alerted.empty:
        return {"sent": False, "new_alerts": 0}
    try:
        comp = warehouse.read_latest(engine, "latest_composite")
        terr = warehouse.read_latest(engine, "latest_territories")
    except Exception:  # no release published yet: alerts are still sent, unranked
        comp, terr = pd.DataFrame(), pd.DataFrame()
    ranked = tables.ranked_alerts(alerted, comp, terr)
    lines = [f"{r['priority']:>3}. {r['level']} {r.get('label') or r['territory_id']} : {int(r['closures'])} "
             f"fermeture(s) en {int(r['window_days'])} j (attendu {r['expected']:.1f}), "
             f"{r['alert_reason']}" for r in ranked.head(20).to_dict("records")]
    if len(ranked) > 20:
        lines.append(f"... et {len(ranked) - 20} autre(s) : ti-indicators alerts --since {as_of}")
    title = f"{'[SYNTHETIC] ' if synthetic else ''}Alertes fermetures industrielles au {as_of} : {len(ranked)} territoire(s)"
    sent = notify("alerts", title, lines)
    return {"sent": any(sent.values()) if isinstance(sent, dict) else bool(sent), "new_alerts": int(len(ranked))}
