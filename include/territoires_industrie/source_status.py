"""The ``source_status`` table: what the daily source check (``ti_source_check``) saw, one row
per source per check; read by ``ti-indicators sources`` and the report's "Sources" section.
The checks themselves are :mod:`territoires_industrie.stages.source_check`."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

UNCHANGED, NEW, DRIFT, UNREACHABLE, NOT_CHECKED = "unchanged", "new vintage", "contract drift", "unreachable", "not checked"
STATES = (UNCHANGED, NEW, DRIFT, UNREACHABLE, NOT_CHECKED)

_md = sa.MetaData()
source_status_table = sa.Table(
    "source_status", _md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(32), nullable=False, comment=" / ".join(STATES)),
    sa.Column("marker", sa.Text, comment="JSON: what identifies the upstream vintage (dates, sizes, years)"),
    sa.Column("details", sa.Text, comment="what changed or what broke, in words"),
    sa.Column("url", sa.String(1000), comment="the metadata URL asked (no credential)"),
    sa.Column("seconds", sa.Float),
    comment="Daily source health check (ti_source_check): one row per source per check",
)


def latest_status(engine: sa.Engine) -> list[dict]:
    """The newest row of every source (empty when no check ever ran)."""
    if not sa.inspect(engine).has_table("source_status"):
        return []
    t = source_status_table
    newest = sa.select(t.c.source, sa.func.max(t.c.id).label("id")).group_by(t.c.source).subquery()
    q = sa.select(t).join(newest, t.c.id == newest.c.id).order_by(t.c.source)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    for r in rows:
        r["marker"] = json.loads(r["marker"]) if r["marker"] else None
    return rows


def format_table(rows: list[dict]) -> str:
    """The latest state of every source, as a terminal table."""
    if not rows:
        return "no source check recorded yet (run the DAG ti_source_check, or: ti-indicators sources --check)"
    head = ("source", "state", "checked at (UTC)", "details")
    lines = [(r["source"], r["state"], _ts(r["checked_at"]), (r["details"] or "")[:160]) for r in rows]
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(head[:3])]
    out = ["  ".join(h.ljust(w) for h, w in zip(head[:3], widths)) + "  " + head[3]]
    out += ["  ".join(v.ljust(w) for v, w in zip(x[:3], widths)) + "  " + x[3] for x in lines]
    return "\n".join(out)


def _ts(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)[:16]
