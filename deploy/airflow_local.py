"""Airflow 3 on the embedded default, for data engineers: ``make airflow``.

Starts, on the project-local ``AIRFLOW_HOME`` (SQLite metadata DB, LocalExecutor), the same
components as the deployment: api-server (UI and REST API, on 127.0.0.1 only), scheduler,
dag-processor and triggerer, with the project's DAGs, plugins and pools (``deploy/pools.json``).
Prints the URL and the login, and on Ctrl-C (or SIGTERM) stops every process it started, whole
process groups, so nothing is left behind.

Login: user ``admin``; its password is generated once into ``$AIRFLOW_HOME/passwords.json``
(mode 600) and printed in this terminal only, never in a log. Triggering ``ti_geography`` in the
UI runs the whole Asset-chained cascade to a published release, as in production.

Environment (set by the Makefile): ``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``,
``AIRFLOW__CORE__PLUGINS_FOLDER``, ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``; ``AIRFLOW__API__PORT``
(default 8080). ``--ready-file PATH``: write the URL there once the api-server is healthy and the
DAGs are parsed (used by the test).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
CHAIN_DAGS = ("ti_geography", "ti_sirene", "ti_employment", "ti_indicators", "ti_publish", "ti_review",
              "ti_sirene_updates")


def _secret(home: Path, name: str, make) -> str:
    """A value kept in ``$AIRFLOW_HOME/local-secrets.json`` (600) so restarts keep sessions."""
    path = home / "local-secrets.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if name not in data:
        data[name] = make()
        path.write_text(json.dumps(data) + "\n")
        path.chmod(0o600)
    return data[name]


def environment(port: int) -> tuple[dict, str]:
    env = dict(os.environ)
    home = Path(env.get("AIRFLOW_HOME") or REPO / "var" / "airflow_home")
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}) + "\n")
        passwords.chmod(0o600)
    password = json.loads(passwords.read_text())["admin"]
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": _secret(home, "api_secret_key", lambda: secrets.token_urlsafe(24)),
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home, "jwt_secret", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
    })
    return env, password


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def _parsed(env: dict) -> bool:
    out = subprocess.run([AIRFLOW, "dags", "list", "--output", "json"], env=env, capture_output=True, text=True,
                         timeout=120)
    # the JSON list is the line starting with "[" (Airflow may print warnings before it)
    line = next((ln for ln in (out.stdout or "").splitlines() if ln.startswith("[")), "[]")
    try:
        have = {d["dag_id"] for d in json.loads(line)}
    except (ValueError, TypeError, KeyError):
        return False
    return set(CHAIN_DAGS) <= have


def stop_all(procs: dict[str, subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM every process group, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        alive = []
        for p in procs.values():
            try:
                os.killpg(p.pid, sig)
                alive.append(p)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            still = []
            for p in alive:
                p.poll()
                try:
                    os.killpg(p.pid, 0)
                    still.append(p)
                except ProcessLookupError:
                    pass
            alive = still
            time.sleep(0.3)
        if not alive:
            return


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ready-file", type=Path)
    args = ap.parse_args(argv)
    port = int(os.environ.get("AIRFLOW__API__PORT") or 8080)
    env, password = environment(port)
    home = Path(env["AIRFLOW_HOME"])
    for cmd in ([AIRFLOW, "db", "migrate"], [AIRFLOW, "pools", "import", str(REPO / "deploy" / "pools.json")]):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
            return 1
    logs = home / "component-logs"
    logs.mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen] = {}
    stopping = {"flag": False}

    def on_signal(signum, _frame):
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name in COMPONENTS:
            fh = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the process's life
            procs[name] = subprocess.Popen([AIRFLOW, name], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        print(f"Airflow starting on http://127.0.0.1:{port} (logs: {logs}) ...", flush=True)
        t0 = time.monotonic()
        while not stopping["flag"] and not (_healthy(port) and _parsed(env)):
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                print(f"{', '.join(dead)} stopped (see {logs}); stopping the others", file=sys.stderr)
                return 1
            if time.monotonic() - t0 > 300:
                print(f"Airflow not ready after 300 s (see {logs})", file=sys.stderr)
                return 1
            time.sleep(2)
        if not stopping["flag"]:
            url = f"http://127.0.0.1:{port}"
            print(f"\nAirflow UI: {url}  (login: admin / {password})\n"
                  f"DAGs: {', '.join(CHAIN_DAGS)}. Trigger ti_geography to run the whole chain to a published "
                  f"release.\nCtrl-C stops every component.", flush=True)
            if args.ready_file:
                args.ready_file.write_text(url + "\n")
        while not stopping["flag"]:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                print(f"{', '.join(dead)} stopped (see {logs}); stopping the others", file=sys.stderr)
                return 1
            time.sleep(1)
        return 0
    finally:
        print("stopping Airflow components ...", flush=True)
        stop_all(procs)


if __name__ == "__main__":
    raise SystemExit(main())
