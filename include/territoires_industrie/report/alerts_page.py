"""The report's "Alertes" page (issue 15): industrial closures from the daily API Sirene updates,
per territory, alerted territories first and the most difficult of them at the top.

Built from the warehouse tables ``territory_signals`` and ``establishment_events`` (fully
diffusible establishments only: no other establishment is named or located anywhere) and the
release's published composite. Each alerted territory gets a small chart: its closures over
7 / 30 / 90 days against the band expected from its own history (Poisson 5 %-95 %)."""

from __future__ import annotations

import logging

import pandas as pd

from ..publish.tables import LEVEL_SINGULAR_FR

log = logging.getLogger(__name__)

REASON_FR = {"fermeture_50_plus": "fermeture d'un établissement industriel de 50 salariés ou plus",
             "fermetures_improbables": "fermetures plus nombreuses que ce que l'historique rend plausible (p < 0,01)"}
MAX_EVENTS = 300


def _reason(code: str) -> str:
    return " ; ".join(REASON_FR.get(c, c) for c in str(code).split("+") if c)


def chart(rows: pd.DataFrame, width: int = 240, height: int = 70) -> dict:
    """Coordinates of the small chart of one territory: per window, the observed closures (bar)
    and the expected band (5 %-95 %) with its mean (tick)."""
    rows = rows.sort_values("window_days")
    top = max(1.0, float(rows["closures"].max()), float(rows["expected_hi"].max()))
    n = len(rows)
    slot = width / max(n, 1)
    bars = []
    for i, r in enumerate(rows.to_dict("records")):
        x = i * slot + slot * 0.25
        w = slot * 0.5

        def y(v):
            return height - 14 - (height - 24) * float(v) / top
        bars.append({"x": round(x, 1), "w": round(w, 1), "y": round(y(r["closures"]), 1),
                     "h": round(y(0) - y(r["closures"]), 1), "band_y": round(y(r["expected_hi"]), 1),
                     "band_h": round(y(r["expected_lo"]) - y(r["expected_hi"]), 1), "mean_y": round(y(r["expected"]), 1),
                     "label": f"{int(r['window_days'])} j", "label_x": round(x + w / 2, 1), "closures": int(r["closures"]),
                     "expected": float(r["expected"]), "lo": int(r["expected_lo"]), "hi": int(r["expected_hi"]),
                     "days": int(r["days_observed"]), "alerted": bool(r["alerted"])})
    return {"width": width, "height": height, "bars": bars, "base_y": height - 14}


def read_signals(engine) -> pd.DataFrame:
    """The latest early-warning signals (empty without a run, or when unreadable: an
    operational table must not stop the report)."""
    from ..alerts import tables

    try:
        return tables.read_signals(engine)
    except Exception as exc:  # noqa: BLE001
        log.warning("early-warning tables unreadable (%s): no alerts in the report", exc)
        return pd.DataFrame()


def context(engine, sig: pd.DataFrame, composite: pd.DataFrame, territories: pd.DataFrame, page_url=None) -> dict:
    """Everything the page shows (``sig``: :func:`read_signals`); ``available`` False when no
    early-warning run wrote its tables."""
    from ..alerts import tables
    from ..alerts.store import EVENT_TYPES

    if sig.empty:
        return {"available": False}
    as_of = str(sig["as_of"].iloc[0])
    ranked = tables.ranked_alerts(sig, composite, territories)
    by_terr = {k: g for k, g in sig.groupby(["level", "territory_id"])}
    alerts = []
    for r in ranked.to_dict("records"):
        rows = by_terr[(r["level"], r["territory_id"])]
        alerts.append({**{k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()},
                       "level_fr": LEVEL_SINGULAR_FR.get(r["level"], r["level"]), "reason_fr": _reason(r["alert_reason"]),
                       "url": page_url(r["level"], r["territory_id"]) if page_url else None,
                       "only_nondiffusible": int(r["closures"]) > 0 and int(r["closures_nondiffusible"]) == int(r["closures"]),
                       "chart": chart(rows)})
    events = tables.read_events(engine)
    lab = territories[territories["level"] == "epci"].drop_duplicates("territory_id").set_index("territory_id")["label"] \
        if not territories.empty else pd.Series(dtype="object")
    ev_rows = [{**e, "type_fr": EVENT_TYPES.get(e["type"], e["type"]), "epci_label": lab.get(e["epci"])}
               for e in events.head(MAX_EVENTS).astype(object).where(events.head(MAX_EVENTS).notna(), None).to_dict("records")]
    counts = events["type"].value_counts().to_dict() if not events.empty else {}
    win = sig[sig["level"] == "region"].groupby("window_days")[["closures", "closures_nondiffusible"]].sum()
    return {"available": True, "as_of": as_of, "alerts": alerts, "events": ev_rows, "n_events": int(len(events)),
            "type_counts": [(EVENT_TYPES[k], int(counts.get(k, 0))) for k in EVENT_TYPES],
            "windows": [{"days": int(w), "closures": int(v["closures"]), "nondiffusible": int(v["closures_nondiffusible"])}
                        for w, v in win.iterrows()],
            "data_status": str(sig["data_status"].iloc[0]) if "data_status" in sig else None,
            "n_territories": int(sig[["level", "territory_id"]].drop_duplicates().shape[0])}


def since_stock_rows(sig: pd.DataFrame) -> dict:
    """(level, territory_id) -> {stock_date, as_of, closures_since_stock, closures_large_since_stock,
    creations_since_stock, alerted} of the latest early-warning run (``sig``); empty when none ran."""
    if sig.empty or "closures_since_stock" not in sig:
        return {}
    alerted = sig.groupby(["level", "territory_id"])["alerted"].any()
    rows = sig.sort_values("window_days").drop_duplicates(["level", "territory_id"], keep="last")
    out = {}
    for r in rows.to_dict("records"):
        key = (r["level"], r["territory_id"])
        out[key] = {"stock_date": r["stock_date"], "as_of": r["as_of"], "alerted": bool(alerted.get(key, False)),
                    **{c: int(r[c]) for c in ("closures_since_stock", "closures_large_since_stock",
                                              "creations_since_stock")}}
    return out
