"""Airflow glue: a notifier for DAG-level failures (timeouts, killed tasks, import errors at
run time) that the in-task tracking cannot see. The message itself and the channels
(SMTP / chat webhook, from the connections ``ti_notify_smtp`` / ``ti_notify_webhook``)
live in ``territoires_industrie.ops.notify``; nothing is sent when they are not configured.
"""

from __future__ import annotations

from airflow.sdk import BaseNotifier


class TiRunNotifier(BaseNotifier):
    """``on_failure_callback=TiRunNotifier()`` on the pipeline DAGs."""

    def render_template_fields(self, context, jinja_env=None) -> None:
        # No templated fields; in Airflow 3 DAG-level callbacks receive a SerializedDAG, which
        # has no template environment, so the base implementation would fail here.
        return None

    def notify(self, context) -> None:
        from territoires_industrie.ops.notify import notify

        dag_run = context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        exc = context.get("exception")
        lines = [
            f"DAG: {getattr(dag_run, 'dag_id', '?')}, run: {getattr(dag_run, 'run_id', '?')}",
            f"Task: {getattr(ti, 'task_id', '?')} (try {getattr(ti, 'try_number', '?')})",
        ]
        if exc is not None:
            lines.append(f"{type(exc).__name__}: {str(exc)[:800]}")
        lines.append("The previous release stays current. See docs/operations.md to re-run the period.")
        notify("failure", f"Pipeline run failed: {getattr(dag_run, 'dag_id', '?')}", lines)
