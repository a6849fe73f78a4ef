"""Run metrics and notifications (SMTP to a local aiosmtpd server, webhook to a local HTTP server)."""

from __future__ import annotations

import json
import logging
import socket

import pytest
import sqlalchemy as sa
from territoires_industrie.config import get_settings
from territoires_industrie.ops import notify as notify_mod
from territoires_industrie.ops.tracking import tracked


def _settings(tmp_path):
    return get_settings({"TI_DATA_DIR": str(tmp_path)})


def _metrics(tmp_path):
    eng = sa.create_engine(f"sqlite:///{tmp_path}/warehouse.db")
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT stage, status, vintage, metric, value, text_value FROM run_metrics ORDER BY id")).all()
    eng.dispose()
    return rows


@pytest.fixture(autouse=True)
def _no_channels(monkeypatch):
    for k in ("TI_NOTIFY_SMTP_URL", "TI_NOTIFY_WEBHOOK_URL", "AIRFLOW_CTX_DAG_RUN_ID", "AIRFLOW_CTX_DAG_ID"):
        monkeypatch.delenv(k, raising=False)


def test_success_metrics_are_queryable(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__1")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "ti_employment")
    stage = tracked("employment", lambda s: {"urssaf": {"vintage": "2025", "rows": 1200, "path": "/x"},
                                             "census": {"rows": 35}})
    assert stage(_settings(tmp_path))["census"]["rows"] == 35
    rows = {r.metric: r for r in _metrics(tmp_path)}
    assert rows["urssaf.rows"].value == 1200
    assert rows["urssaf.vintage"].text_value == "2025"
    assert "urssaf.path" not in rows  # paths are not metrics
    assert rows["duration_s"].status == "success"
    assert rows["census.rows"].stage == "employment"


def test_failure_is_recorded_and_reraised_without_channels(tmp_path):
    def boom(settings):
        raise ValueError("urssaf.csv: negative count at data row 7")

    with pytest.raises(ValueError, match="row 7"):
        tracked("employment", boom)(_settings(tmp_path))
    rows = _metrics(tmp_path)
    assert {r.status for r in rows} == {"failed"}
    assert any(r.metric == "error" and "row 7" in r.text_value for r in rows)


def test_nothing_configured_sends_nothing():
    assert notify_mod.notifiers_configured({}) is False
    assert notify_mod.notify("failure", "t", ["x"], env={}) == {"smtp": False, "webhook": False}


def test_webhook_receives_one_readable_summary(httpserver, tmp_path, monkeypatch):
    httpserver.expect_oneshot_request("/hooks/abc", method="POST").respond_with_data("ok")
    monkeypatch.setenv("TI_NOTIFY_WEBHOOK_URL", httpserver.url_for("/hooks/abc"))

    def boom(settings):
        raise RuntimeError("hard gate failed for urssaf 2025")

    with pytest.raises(RuntimeError):
        tracked("employment", boom)(_settings(tmp_path))
    (req, _), = httpserver.log
    text = json.loads(req.get_data())["text"]
    assert "Stage employment failed" in text and "hard gate failed for urssaf 2025" in text
    assert "previous release stays current" in text


def test_soft_gate_warnings_are_notified(httpserver, tmp_path, monkeypatch):
    httpserver.expect_oneshot_request("/w", method="POST").respond_with_data("ok")
    monkeypatch.setenv("TI_NOTIFY_WEBHOOK_URL", httpserver.url_for("/w"))
    tracked("sirene", lambda s: {"vintage": "2026-11-01", "validation": {"soft_failures": ["drift dep 25: +14 %"]}})(
        _settings(tmp_path))
    (req, _), = httpserver.log
    assert "drift dep 25: +14 %" in json.loads(req.get_data())["text"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smtp_message_delivered_and_password_never_logged(caplog):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    port = _free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        env = {"TI_NOTIFY_SMTP_URL": f"smtp://127.0.0.1:{port}?from=ti@example.org&to=ops@example.org,data@example.org"}
        with caplog.at_level(logging.DEBUG):
            sent = notify_mod.notify("warning", "2 soft-gate warnings", ["drift dep 25"], env=env)
    finally:
        ctl.stop()
    assert sent["smtp"] is True
    (env_,) = received
    assert env_.rcpt_tos == ["ops@example.org", "data@example.org"]
    assert b"drift dep 25" in env_.content


def test_broken_channel_does_not_raise_nor_leak_secret(caplog):
    env = {"TI_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/hook?token=S3CRET-TOKEN",
           "TI_NOTIFY_SMTP_URL": "smtp://user:P4SSWORD@127.0.0.1:9?to=a@b.c"}
    with caplog.at_level(logging.DEBUG):
        sent = notify_mod.notify("failure", "x", ["y"], env=env, timeout=1)
    assert sent == {"smtp": False, "webhook": False}
    assert "S3CRET-TOKEN" not in caplog.text and "P4SSWORD" not in caplog.text


def test_dag_failure_notifier_works_with_a_serialized_dag(httpserver, monkeypatch):
    """Airflow 3 passes a SerializedDAG (no template env) to DAG-level callbacks."""
    from types import SimpleNamespace

    from ti_notifier import TiRunNotifier

    httpserver.expect_oneshot_request("/n", method="POST").respond_with_data("ok")
    monkeypatch.setenv("TI_NOTIFY_WEBHOOK_URL", httpserver.url_for("/n"))
    ctx = {"dag": object(), "dag_run": SimpleNamespace(dag_id="ti_publish", run_id="manual__1"),
           "ti": SimpleNamespace(task_id="publish_release", try_number=1), "exception": RuntimeError("disk full")}
    TiRunNotifier()(ctx)
    (req, _), = httpserver.log
    text = json.loads(req.get_data())["text"]
    assert "ti_publish" in text and "disk full" in text
