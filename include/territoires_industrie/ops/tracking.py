"""Wrap a stage function: time it, record its metrics, notify on failure or warnings."""

from __future__ import annotations

import functools
import logging
import os
import time

from .memory import bound_native_heap
from .metrics import now_utc, record_stage
from .notify import notify

log = logging.getLogger(__name__)


def _run_ids() -> tuple[str, str | None]:
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    dag_id = os.environ.get("AIRFLOW_CTX_DAG_ID")
    return (run_id or f"cli-{now_utc():%Y%m%dT%H%M%S}"), dag_id


def _engine(settings):
    from ..warehouse import get_engine

    return get_engine(settings.warehouse_url)


def tracked(stage: str, fn):
    """Return ``fn`` wrapped: metrics in ``run_metrics``; a readable notification when it
    fails, or when its summary carries validation warnings."""

    @functools.wraps(fn)
    def wrapper(settings=None, **kwargs):  # kwargs: e.g. release= of a re-run (issue 9)
        from ..config import get_settings

        settings = settings or get_settings()
        bound_native_heap()
        run_id, dag_id = _run_ids()
        started, t0 = now_utc(), time.perf_counter()
        try:
            summary = fn(settings, **kwargs)
        except Exception as exc:
            duration = time.perf_counter() - t0
            _safe_record(settings, run_id, dag_id, stage, "failed", started, duration, None, f"{type(exc).__name__}: {exc}")
            notify("failure", f"Stage {stage} failed ({dag_id or 'cli'} / {run_id})",
                   [f"{type(exc).__name__}: {str(exc)[:800]}",
                    "Nothing was published by this run; the previous release stays current.",
                    "See docs/operations.md: re-run the period once the cause is fixed."])
            raise
        duration = time.perf_counter() - t0
        status = "skipped" if isinstance(summary, dict) and summary.get("skipped") else "success"
        _safe_record(settings, run_id, dag_id, stage, status, started, duration, summary, None)
        warnings = _warnings(summary)
        if warnings:
            notify("warning", f"Stage {stage} finished with {len(warnings)} warning(s) ({run_id})", warnings)
        return summary

    return wrapper


def _warnings(summary) -> list[str]:
    out = []
    if isinstance(summary, dict):
        for key, value in summary.items():
            if key in ("soft_failures", "warnings") and isinstance(value, list):
                out += [str(v)[:300] for v in value]
            elif isinstance(value, dict):
                out += _warnings(value)
    return out


def _safe_record(settings, *args) -> None:
    """Metrics must not break a run: a metrics failure is logged, not raised."""
    try:
        engine = _engine(settings)
        record_stage(engine, run_id=args[0], dag_id=args[1], stage=args[2], status=args[3], started_at=args[4],
                     duration_s=args[5], summary=args[6], error=args[7])
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        log.error("could not record run metrics for %s: %s", args[2], type(exc).__name__)
