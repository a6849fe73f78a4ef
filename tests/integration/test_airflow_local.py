"""Issue 17 part 2: ``make airflow`` — Airflow 3 on the embedded default, for data engineers.

Starts ``deploy/airflow_local.py`` (what ``make airflow`` runs) on a temporary home, as a user
would, waits for it to say it is ready, then: logs in through the REST API v2 with the generated
password, lists the DAGs, unpauses the chain and triggers ``ti_geography``; waits for the Asset
cascade to publish; triggers ``ti_review`` with typed parameters from the trigger form's schema and
waits for its success; opens the grid view of a DAG in headless Chromium (screenshot kept in the
test folder). Then sends Ctrl-C (SIGINT) to the launcher and checks that no process it started is
left, and that the password never reached a component log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .airflow_env import CHAIN, REPO, airflow_env, api_call, free_port

pytestmark = pytest.mark.slow

WAIT_READY_S = 300
WAIT_PUBLISH_S = 8 * 60
WAIT_REVIEW_S = 180


def _descendants(pid: int) -> set[int]:
    """Every process whose ancestry contains ``pid`` (read from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(d.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = set(), {pid}
    while frontier:
        kids = {p for p, pp in parent.items() if pp in frontier} - out
        out |= kids
        frontier = kids
    return out


def _wait(what: str, check, timeout: float, launcher: subprocess.Popen, log: Path, every: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise AssertionError(f"make airflow exited ({launcher.returncode}) while waiting for {what}:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_make_airflow_runs_the_chain_from_the_ui_api_and_stops_cleanly(tmp_path):
    port = free_port()
    env = airflow_env(tmp_path, AIRFLOW__API__PORT=str(port), TI_MC_DRAWS="50",
                      AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
                      AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
                      AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2")
    home = Path(env["AIRFLOW_HOME"])
    ready, log = tmp_path / "ready", tmp_path / "make-airflow.log"
    fh = open(log, "wb")  # noqa: SIM115 - closed below
    launcher = subprocess.Popen([sys.executable, str(REPO / "deploy" / "airflow_local.py"), "--ready-file", str(ready)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    started: set[int] = set()
    try:
        _wait("the launcher to report ready", ready.exists, WAIT_READY_S, launcher, log)
        started = _descendants(launcher.pid)
        assert len(started) >= 4  # api-server, scheduler, dag-processor, triggerer (and their children)
        _drive(port, home, env, launcher, log, tmp_path)
        started |= _descendants(launcher.pid)
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends
            try:
                launcher.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
        fh.close()
    time.sleep(1)
    left = {p for p in started if Path(f"/proc/{p}").exists()}
    assert left == set(), f"processes left after Ctrl-C: {sorted(left)}"
    assert launcher.returncode == 0, log.read_text(errors="replace")[-3000:]
    password = json.loads((home / "passwords.json").read_text())["admin"]
    for p in (home / "component-logs").glob("*.log"):
        assert password not in p.read_text(errors="replace"), p.name


def _drive(port: int, home: Path, env: dict, launcher, log: Path, tmp_path: Path) -> None:
    password = json.loads((home / "passwords.json").read_text())["admin"]
    out = log.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}" in out and "login: admin" in out  # URL and login printed
    assert api_call(port, "POST", "/auth/token", {"username": "admin", "password": "wrong"})[0] == 401
    status, body = api_call(port, "POST", "/auth/token", {"username": "admin", "password": password})
    assert status == 201, body
    token = body["access_token"]
    status, body = api_call(port, "GET", "/api/v2/dags?limit=100", token=token)
    assert status == 200
    assert set(CHAIN) | {"ti_review", "ti_sirene_updates"} <= {d["dag_id"] for d in body["dags"]}
    for dag_id in (*CHAIN, "ti_review"):
        status, body = api_call(port, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token)
        assert status == 200, (dag_id, body)
    status, body = api_call(port, "POST", "/api/v2/dags/ti_geography/dagRuns", {"logical_date": None}, token)
    assert status == 200, body

    def runs(dag_id):
        status, body = api_call(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns", token=token)
        assert status == 200, body
        states = [r["state"] for r in body["dag_runs"]]
        assert "failed" not in states, f"{dag_id} failed"
        return states

    _wait("ti_publish to succeed (Asset cascade)", lambda: "success" in runs("ti_publish"), WAIT_PUBLISH_S,
          launcher, log)
    # the trigger form's schema is the DAG's params: typed values, a list of EPCI SIREN
    status, body = api_call(port, "GET", "/api/v2/dags/ti_review/details", token=token)
    assert status == 200 and "epci_codes" in body["params"], body
    conf = {"name": "Essai Corse", "epci_codes": ["200015162", "200033827"]}
    status, body = api_call(port, "POST", "/api/v2/dags/ti_review/dagRuns", {"logical_date": None, "conf": conf}, token)
    assert status == 200, body
    _wait("ti_review to succeed", lambda: "success" in runs("ti_review"), WAIT_REVIEW_S, launcher, log)
    assert list((Path(env["TI_DATA_DIR"]) / "reviews").rglob("review.html")), "the review wrote its HTML page"
    _grid_screenshot(port, token, tmp_path)


def _grid_screenshot(port: int, token: str, tmp_path: Path) -> None:
    from .cdp_browser import Browser, BrowserError, chromium_path

    if chromium_path() is None:
        print("chromium is not installed (apt-get install -y chromium): grid view not checked")
        return
    with Browser(tmp_path) as b:
        # the cookie is set through the protocol, not by script in a page: the UI redirects itself
        # while it boots, and a script racing that navigation fails ("Inspected target navigated")
        b.set_cookie("_token", token, f"http://127.0.0.1:{port}/")
        b.goto(f"http://127.0.0.1:{port}/dags/ti_geography")
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            try:
                text = b.eval("document.body ? document.body.innerText : ''") or ""
            except BrowserError as exc:  # the single-page app navigating between two reads
                if "navigated" not in str(exc):
                    raise
                text = ""
            if "ti_geography" in text and "success" in text.lower():
                break
            time.sleep(1)
        b.screenshot(tmp_path / "grid.png")
    assert "ti_geography" in text, text[:500]
    assert (tmp_path / "grid.png").stat().st_size > 10_000
