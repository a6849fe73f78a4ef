"""Closure signals per territory against what is usual for it.

For a territory T, a window of ``w`` days ending on ``as_of`` and the industrial closures of the
events (effective date in ``(as_of − w, as_of]``):

- ``closures``: count; ``closures_large``: those of a diffusible establishment of **50 employees
  or more** (lower bound of its size band ≥ 50); ``closures_nondiffusible``: those of
  establishments that are not fully diffusible (counted, never named or located, their size band
  never used: a "50+" alert would tell it);
- ``jobs_lo`` / ``jobs_mid`` / ``jobs_hi``: jobs at stake, the sum of the size bands of the
  *diffusible* closed establishments (``jobs_mid`` = sum of the geometric midpoints, an estimate);
- **baseline**: the industrial closures of the same units' history
  (``StockEtablissementHistorique``) in the same calendar window of each of the ``years``
  previous years, located by the establishment's commune: ``expected`` = their mean; the count
  is modelled as Poisson with rate ``λ = (Σ past counts + ½) / years`` (the ½ keeps a territory
  with no past closure from having a zero rate, the Jeffreys prior), ``expected_lo`` /
  ``expected_hi`` its 5 % and 95 % quantiles and ``p_tail = P(X ≥ closures | λ)``;
- a window longer than what the store has seen since it was seeded is shortened to the days
  observed (``days_observed``), for the count and its baseline alike;
- **alert** when a 50+ establishment closed in the window (``fermeture_50_plus``) or when
  ``p_tail < 0.01`` (``fermetures_improbables``: more closures than the territory's history makes
  plausible). With many territories and windows about 1 % of them pass the second rule by
  chance: the report ranks alerts by the territory's published difficulty, and says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOWS = (7, 30, 90)
HISTORY_YEARS = 5
LARGE_JOBS = 50.0
P_ALERT = 0.01
SIGNAL_COLUMNS = ["as_of", "level", "territory_id", "window_days", "days_observed", "closures", "closures_large",
                  "closures_nondiffusible", "jobs_lo", "jobs_mid", "jobs_hi", "creations", "transfers_in",
                  "transfers_out", "expected", "expected_lo", "expected_hi", "rate", "history_years", "p_tail",
                  "alerted", "alert_reason", "stock_date", "closures_since_stock", "closures_large_since_stock",
                  "creations_since_stock"]
LEVELS = ("epci", "ze", "departement", "region", "ti")


def _window(dates: pd.Series, as_of: pd.Timestamp, days: int, years_back: int = 0) -> np.ndarray:
    end = as_of - pd.DateOffset(years=years_back)
    d = pd.to_datetime(dates, errors="coerce", format="%Y-%m-%d")
    return ((d > end - pd.Timedelta(days=days)) & (d <= end)).to_numpy()


def _per_territory(codgeo: pd.Series, membership: pd.DataFrame, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sum ``values`` (one per event) per (level, territory_id) through the commune membership."""
    frame = pd.DataFrame({"codgeo": codgeo.to_numpy(), **values})
    by_commune = frame.groupby("codgeo", sort=False).sum(numeric_only=True)
    joined = membership.merge(by_commune, left_on="codgeo", right_index=True, how="inner")
    return joined.groupby(["level", "territory_id"], sort=True)[list(values)].sum()


def baseline(closures: pd.DataFrame, commune_of: pd.Series, membership: pd.DataFrame, as_of: str,
             windows=WINDOWS, years: int = HISTORY_YEARS) -> pd.DataFrame:
    """Past industrial closures in the same windows: (level, territory_id, window_days) ->
    ``past_total`` over the ``years`` previous years.

    ``closures``: (siret, date, naf) from the history; ``commune_of``: siret -> codgeo."""
    from ..nomenclature import INDUSTRIAL_DIVISIONS

    c = closures[closures["naf"].astype(str).str[:2].isin(INDUSTRIAL_DIVISIONS)]
    key = c["siret"]
    if pd.api.types.is_integer_dtype(commune_of.index):  # the store keys SIRETs as int64
        key = pd.to_numeric(key, errors="coerce").astype("Int64")
    codgeo = key.map(commune_of).astype(object)
    c, codgeo = c[codgeo.notna()], codgeo[codgeo.notna()]
    t = pd.Timestamp(as_of)
    out = []
    for w in windows:
        hits = np.zeros(len(c))
        for k in range(1, years + 1):
            hits += _window(c["date"], t, w, k)
        agg = _per_territory(codgeo, membership, {"past_total": hits})
        out.append(agg.assign(window_days=w).reset_index())
    res = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["level", "territory_id", "past_total"])
    return res.set_index(["level", "territory_id", "window_days"])["past_total"]


def covered_windows(as_of: str, covered_from: str | None, windows=WINDOWS) -> dict[int, int]:
    """window -> days actually observed: the store sees events only since it was seeded, so a
    90-day window 30 days after the seed compares 30 days with the same 30 days of past years."""
    if not covered_from:
        return {w: w for w in windows}
    # the seed day counts: a closure dated on the stock's day is not in the stock's snapshot
    days = max(1, (pd.Timestamp(as_of) - pd.Timestamp(covered_from[:10])).days + 1)
    return {w: min(w, days) for w in windows}


def since_stock(events: pd.DataFrame, membership: pd.DataFrame, since: str | None) -> pd.DataFrame:
    """Per territory: industrial closures (and those of 50+ establishments) and creations with an
    effective date on or after ``since`` (the current SIRENE stock's date), shown in the monthly
    release next to the stock-based indicators."""
    cols = ["closures_since_stock", "closures_large_since_stock", "creations_since_stock"]
    if not since or events.empty:
        return _empty(cols)
    ev = events[(events["effective_date"].astype(str) >= since[:10])]
    typ = ev["type"].to_numpy()
    lo = ev["jobs_lo"].astype("float64").fillna(0.0).to_numpy()
    closed = typ == "fermeture"
    diff = ev["diffusible"].astype(bool).to_numpy()
    return _per_territory(ev["codgeo"], membership, {
        "closures_since_stock": closed * 1.0,
        "closures_large_since_stock": (closed & diff & (lo >= LARGE_JOBS)) * 1.0,
        "creations_since_stock": (typ == "creation") * 1.0}) if len(ev) else _empty(cols)


def territory_signals(events: pd.DataFrame, membership: pd.DataFrame, past: pd.Series, as_of: str,
                      windows=WINDOWS, years: int = HISTORY_YEARS, coverage: dict[int, int] | None = None,
                      stock_date: str | None = None) -> pd.DataFrame:
    """One row per (territory of ``membership`` at the levels of :data:`LEVELS`, window).
    ``coverage``: window -> days observed (:func:`covered_windows`); ``past`` must then hold the
    baseline of those day counts. ``stock_date``: counts since that stock (:func:`since_stock`)."""
    from scipy.stats import poisson

    t = pd.Timestamp(as_of)
    coverage = coverage or {w: w for w in windows}
    terr = membership.loc[membership["level"].isin(LEVELS), ["level", "territory_id"]].drop_duplicates()
    rows = []
    for w in windows:
        days = coverage[w]
        inw = _window(events["effective_date"], t, days) if len(events) else np.zeros(0, bool)
        ev = events[inw]
        typ = ev["type"].to_numpy()
        closed = typ == "fermeture"
        diff = ev["diffusible"].astype(bool).to_numpy()
        lo, hi, mid = (ev[c].astype("float64").fillna(0.0).to_numpy() for c in ("jobs_lo", "jobs_hi", "jobs_mid"))
        # a non-diffusible establishment's size band is never used: it is counted, nothing more
        vals = {"closures": closed * 1.0, "closures_large": (closed & diff & (lo >= LARGE_JOBS)) * 1.0,
                "closures_nondiffusible": (closed & ~diff) * 1.0, "jobs_lo": np.where(closed & diff, lo, 0.0),
                "jobs_mid": np.where(closed & diff, mid, 0.0), "jobs_hi": np.where(closed & diff, hi, 0.0),
                "creations": (typ == "creation") * 1.0, "transfers_in": (typ == "transfert") * 1.0}
        agg = _per_territory(ev["codgeo"], membership, vals) if len(ev) else _empty(list(vals))
        moved = ev[typ == "transfert"]
        out_ = (_per_territory(moved["codgeo_from"], membership, {"transfers_out": np.ones(len(moved))})
                if len(moved) else _empty(["transfers_out"]))
        frame = terr.set_index(["level", "territory_id"]).join(agg).join(out_).fillna(0.0)
        if len(moved):  # a move inside the territory is neither in nor out
            both = frame[["transfers_in", "transfers_out"]].min(axis=1)
            inside = _internal_moves(moved, membership)
            frame["transfers_in"] -= inside.reindex(frame.index).fillna(0.0).clip(upper=both)
            frame["transfers_out"] -= inside.reindex(frame.index).fillna(0.0).clip(upper=both)
        p = past.xs(days, level="window_days") if len(past) and days in past.index.get_level_values(2) \
            else pd.Series(dtype="float64")
        total = p.reindex(frame.index).fillna(0.0).to_numpy()
        frame["expected"] = total / years
        rate = (total + 0.5) / years
        frame["rate"] = rate
        frame["expected_lo"] = poisson.ppf(0.05, rate)
        frame["expected_hi"] = poisson.ppf(0.95, rate)
        k = frame["closures"].to_numpy()
        frame["p_tail"] = np.where(k > 0, poisson.sf(k - 1, rate), 1.0)
        frame["window_days"] = w
        frame["days_observed"] = days
        rows.append(frame.reset_index())
    sig = pd.concat(rows, ignore_index=True)
    since = since_stock(events, membership, stock_date)
    sig = sig.merge(since.reset_index(), on=["level", "territory_id"], how="left") if len(since) else \
        sig.assign(closures_since_stock=0, closures_large_since_stock=0, creations_since_stock=0)
    sig["stock_date"] = stock_date[:10] if stock_date else None
    large = sig["closures_large"] > 0
    improbable = sig["p_tail"] < P_ALERT
    sig["alerted"] = large | improbable
    sig["alert_reason"] = np.select([large & improbable, large, improbable],
                                    ["fermeture_50_plus+fermetures_improbables", "fermeture_50_plus",
                                     "fermetures_improbables"], "")
    sig["history_years"] = years
    sig["as_of"] = as_of
    for c in ("closures", "closures_large", "closures_nondiffusible", "creations", "transfers_in", "transfers_out",
              "days_observed", "closures_since_stock", "closures_large_since_stock", "creations_since_stock"):
        sig[c] = sig[c].fillna(0).astype("int64")
    return sig[SIGNAL_COLUMNS].sort_values(["level", "territory_id", "window_days"], kind="stable").reset_index(drop=True)


def _empty(columns: list[str]) -> pd.DataFrame:
    idx = pd.MultiIndex.from_arrays([[], []], names=["level", "territory_id"])
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns}, index=idx)


def _internal_moves(moved: pd.DataFrame, membership: pd.DataFrame) -> pd.Series:
    """Transfers whose old and new communes are in the same territory, per territory."""
    a = membership.merge(pd.DataFrame({"codgeo": moved["codgeo_from"].to_numpy(), "i": range(len(moved))}), on="codgeo")
    b = membership.merge(pd.DataFrame({"codgeo": moved["codgeo"].to_numpy(), "i": range(len(moved))}), on="codgeo")
    both = a.merge(b, on=["level", "territory_id", "i"])
    return both.groupby(["level", "territory_id"]).size().astype("float64")
