"""Run metrics: one row per (run, stage, metric) in the ``run_metrics`` table of the warehouse.

Every stage's summary (rows read, codes rejected, validation status, vintages, duration)
lands here, so trends can be queried with SQL instead of read from chat messages:

    SELECT stage, metric, vintage, value FROM run_metrics
    WHERE metric = 'rows' ORDER BY started_at;
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import sqlalchemy as sa

log = logging.getLogger(__name__)
_md = sa.MetaData()
run_metrics_table = sa.Table(
    "run_metrics", _md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False, comment="Airflow dag_run id, or cli-<time> outside Airflow"),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, comment="success / failed / skipped"),
    sa.Column("vintage", sa.String(64), comment="vintage or release the stage produced"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("metric", sa.String(250), nullable=False, comment="dotted path in the stage summary, e.g. urssaf.rows"),
    sa.Column("value", sa.Float),
    sa.Column("text_value", sa.Text, comment="non-numeric values (vintages, statuses, error message)"),
    comment="Operational metrics of every stage run (not a published table)",
)


def _flatten(obj, prefix="") -> list[tuple[str, float | None, str | None]]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}{k}.")
    elif isinstance(obj, bool):
        out.append((prefix[:-1], float(obj), None))
    elif isinstance(obj, (int, float)):
        out.append((prefix[:-1], float(obj), None))
    elif isinstance(obj, (list, tuple)):
        out.append((prefix[:-1], float(len(obj)), json.dumps(obj, default=str)[:2000]))
    elif obj is not None:
        out.append((prefix[:-1], None, str(obj)[:2000]))
    return out


def _vintage(summary: dict) -> str | None:
    for key in ("release_id", "vintage"):
        if isinstance(summary.get(key), str):
            return summary[key]
    return None


def record_stage(engine: sa.Engine, *, run_id: str, dag_id: str | None, stage: str, status: str,
                 started_at: datetime, duration_s: float, summary: dict | None = None,
                 error: str | None = None) -> int:
    """Insert the metrics of one stage run; returns the number of rows written."""
    run_metrics_table.create(engine, checkfirst=True)
    rows = [
        {"metric": m, "value": v, "text_value": t}
        for m, v, t in _flatten(summary or {})
        if m and not m.endswith(("path", "csv")) and "warehouse" not in m  # paths/URLs are not metrics
    ]
    rows.append({"metric": "duration_s", "value": duration_s, "text_value": None})
    if error:
        rows.append({"metric": "error", "value": None, "text_value": error[:2000]})
    base = {"run_id": run_id, "dag_id": dag_id, "stage": stage, "status": status,
            "vintage": _vintage(summary or {}), "started_at": started_at.astimezone(timezone.utc),
            "duration_s": duration_s}
    with engine.begin() as conn:
        conn.execute(run_metrics_table.insert(), [{**base, **r} for r in rows])
    return len(rows)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
