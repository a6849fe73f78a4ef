"""Warehouse tables of the early warning: ``establishment_events`` (published events, fully
diffusible establishments only) and ``territory_signals`` (one row per territory, window and
as-of date). Written in one transaction per run: the signals of the as-of date and the events
of the merged batches are replaced together, so a failed run leaves the previous state and a
rerun writes the same rows (idempotent per as-of date and per batch)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from ..warehouse import _insert
from .signals import SIGNAL_COLUMNS

_md = sa.MetaData()
events_table = sa.Table(
    "establishment_events", _md,
    sa.Column("event_id", sa.String(16), primary_key=True),
    sa.Column("type", sa.String(24), nullable=False, comment="fermeture, reouverture, transfert, sortie_industrie, "
                                                              "entree_industrie, baisse_effectif, creation"),
    sa.Column("siret", sa.String(14)),
    sa.Column("name", sa.Text, comment="denominationUsuelleEtablissement or enseigne1Etablissement"),
    sa.Column("effective_date", sa.String(10), comment="start of the new period (closures, re-openings), else treatment day"),
    sa.Column("treated", sa.String(32), comment="dateDernierTraitementEtablissement (API Sirene)"),
    sa.Column("codgeo", sa.String(5), comment="commune (reference COG)"),
    sa.Column("codgeo_from", sa.String(5), comment="former commune of a transfer"),
    sa.Column("epci", sa.String(9)), sa.Column("ze", sa.String(4)), sa.Column("departement", sa.String(3)),
    sa.Column("naf", sa.String(8)), sa.Column("naf_from", sa.String(8)),
    sa.Column("tranche", sa.String(2)), sa.Column("tranche_to", sa.String(2)),
    sa.Column("jobs_lo", sa.Float), sa.Column("jobs_hi", sa.Float),
    sa.Column("jobs_mid", sa.Float, comment="geometric midpoint of the band: an ESTIMATE"),
    sa.Column("batch", sa.String(80), comment="landed API Sirene batch the event comes from"),
    sa.Column("data_status", sa.String(12), comment="SYNTHETIC (sample feed) or officiel"),
    comment="Events of industrial establishments from the daily API Sirene updates (diffusible only)",
)
signals_table = sa.Table(
    "territory_signals", _md,
    sa.Column("as_of", sa.String(10), primary_key=True),
    sa.Column("level", sa.String(16), primary_key=True),
    sa.Column("territory_id", sa.String(16), primary_key=True),
    sa.Column("window_days", sa.Integer, primary_key=True),
    sa.Column("days_observed", sa.Integer, comment="days of updates behind the window (shorter just after the seed)"),
    *[sa.Column(c, sa.Integer) for c in ("closures", "closures_large", "closures_nondiffusible", "creations",
                                         "transfers_in", "transfers_out", "history_years")],
    *[sa.Column(c, sa.Float) for c in ("jobs_lo", "jobs_mid", "jobs_hi", "expected", "expected_lo", "expected_hi",
                                       "rate", "p_tail")],
    sa.Column("alerted", sa.Boolean),
    sa.Column("alert_reason", sa.String(64)),
    sa.Column("stock_date", sa.String(10), comment="date of the current SIRENE stock"),
    *[sa.Column(c, sa.Integer, comment="since the current SIRENE stock (all windows alike)")
      for c in ("closures_since_stock", "closures_large_since_stock", "creations_since_stock")],
    sa.Column("data_status", sa.String(12)),
    comment="Closures per territory and window against the same windows of previous years",
)
TABLES = (events_table, signals_table)
#: levels in the order a reader acts on them (the programme's units first)
LEVEL_ORDER = ("epci", "ti", "ze", "departement", "region")


def write(engine: sa.Engine, as_of: str, events: pd.DataFrame, signals: pd.DataFrame, batches: list[str],
          data_status: str) -> dict:
    """Replace, in one transaction, the events of ``batches`` and the signals of ``as_of``."""
    for t in TABLES:
        t.create(engine, checkfirst=True)
    sig = signals.assign(data_status=data_status)[[*SIGNAL_COLUMNS, "data_status"]]
    ev = events.assign(data_status=data_status)
    with engine.begin() as conn:
        for i in range(0, len(batches), 500):
            conn.execute(events_table.delete().where(events_table.c.batch.in_(batches[i:i + 500])))
        conn.execute(signals_table.delete().where(signals_table.c.as_of == as_of))
        _insert(conn, events_table, ev)
        _insert(conn, signals_table, sig)
    return {"events": int(len(ev)), "signals": int(len(sig))}


def has_tables(engine: sa.Engine) -> bool:
    insp = sa.inspect(engine)
    return all(insp.has_table(t.name) for t in TABLES)


def latest_as_of(engine: sa.Engine) -> str | None:
    if not has_tables(engine):
        return None
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(signals_table.c.as_of))).scalar()


def read_signals(engine: sa.Engine, as_of: str | None = None) -> pd.DataFrame:
    as_of = as_of or latest_as_of(engine)
    if as_of is None:
        return pd.DataFrame(columns=[c.name for c in signals_table.columns])
    with engine.connect() as conn:
        return pd.read_sql(sa.select(signals_table).where(signals_table.c.as_of == as_of), conn)


def read_events(engine: sa.Engine, since: str | None = None, until: str | None = None) -> pd.DataFrame:
    if not has_tables(engine):
        return pd.DataFrame(columns=[c.name for c in events_table.columns])
    q = sa.select(events_table)
    if since:
        q = q.where(events_table.c.effective_date >= since)
    if until:
        q = q.where(events_table.c.effective_date <= until)
    with engine.connect() as conn:
        return pd.read_sql(q.order_by(events_table.c.effective_date.desc(), events_table.c.event_id), conn)


def ranked_alerts(signals: pd.DataFrame, composite: pd.DataFrame, territories: pd.DataFrame) -> pd.DataFrame:
    """Alerted territories (any window), per level (:data:`LEVEL_ORDER`) and most difficult first:
    ordered by the published composite score of the territory in its own reference set, then by its probability of being in the top
    20 % (uncertainty), then by jobs at stake. One row per territory: its strongest window (the
    shortest window that alerts), with the composite columns and the label joined."""
    if signals.empty:
        return signals.assign(score=[], p_top20=[], label=[])
    al = signals[signals["alerted"].astype(bool)].sort_values(["level", "territory_id", "window_days"])
    al = al.drop_duplicates(["level", "territory_id"], keep="first")
    comp = composite[["level", "territory_id", "reference_set", "score", "percentile_national", "decile", "p_top20",
                      "mc_rank_p05", "mc_rank_p95", "n_reference"]] if not composite.empty else pd.DataFrame(
        columns=["level", "territory_id", "reference_set", "score", "percentile_national", "decile", "p_top20",
                 "mc_rank_p05", "mc_rank_p95", "n_reference"])
    comp = comp.drop_duplicates(["level", "territory_id"])
    lab = territories[["level", "territory_id", "label"]].drop_duplicates(["level", "territory_id"]) \
        if not territories.empty else pd.DataFrame(columns=["level", "territory_id", "label"])
    out = al.merge(comp, on=["level", "territory_id"], how="left").merge(lab, on=["level", "territory_id"], how="left")
    out["level_order"] = out["level"].map({lv: i for i, lv in enumerate(LEVEL_ORDER)}).fillna(len(LEVEL_ORDER))
    out = out.sort_values(["level_order", "score", "p_top20", "jobs_mid"], ascending=[True, False, False, False],
                          na_position="last", kind="stable").drop(columns=["level_order"])
    out.insert(0, "priority", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def _s(v) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def format_text(ranked: pd.DataFrame, events: pd.DataFrame, as_of: str, synthetic: bool, since: str | None) -> str:
    """Terminal view: alerted territories (most difficult first), then the events since ``since``."""
    from .store import EVENT_TYPES

    out = []
    if synthetic:
        out.append("DONNÉES SYNTHÉTIQUES — SYNTHETIC feed: no establishment or closure below is real")
    out.append(f"Alertes au {as_of}: {len(ranked)} territoire(s) (rang = difficulté publiée, la plus forte d'abord)")
    for r in ranked.to_dict("records"):
        score = "" if pd.isna(r.get("score")) else f" score {r['score']:.1f}"
        jobs = f", emplois en jeu {int(r['jobs_lo'])}-{int(r['jobs_hi'])} (≈{int(r['jobs_mid'])}, estimation)" \
            if r["jobs_hi"] else ""
        nd = f", {int(r['closures_nondiffusible'])} non diffusible(s)" if r["closures_nondiffusible"] else ""
        out.append(f"{r['priority']:>4}  {r['level']:<11} {(_s(r.get('label')) or r['territory_id'])[:40]:<40}{score}: "
                   f"{int(r['closures'])} fermeture(s) en {int(r['days_observed'])} j, attendu {r['expected']:.1f} "
                   f"({int(r['expected_lo'])}-{int(r['expected_hi'])}), p={r['p_tail']:.3g}{jobs}{nd} [{r['alert_reason']}]")
    out.append("")
    out.append(f"Événements{' depuis le ' + since if since else ''} (établissements diffusibles): {len(events)}")
    for e in events.head(200).to_dict("records"):
        band = f" {_s(e.get('tranche'))}"
        out.append(f"  {e['effective_date']}  {EVENT_TYPES.get(e['type'], e['type'])[:45]:<45} {e['siret']} "
                   f"{_s(e.get('name'))[:30]:<30} {_s(e.get('codgeo')) or '-----'} EPCI {_s(e.get('epci')) or '?'}{band}")
    if len(events) > 200:
        out.append(f"  ... {len(events) - 200} autre(s) (--json pour tout)")
    return "\n".join(out)
