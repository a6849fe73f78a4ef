"""The production executor for real: CeleryExecutor with Redis as broker and PostgreSQL as
metadata DB, result backend and warehouse, all on loopback.

The test starts the same components as ``docker-compose.yaml`` (api-server with the execution
API, scheduler, dag-processor, one Celery worker), imports ``deploy/pools.json``, logs in to the
REST API with the admin password file as ``airflow-init`` writes it, unpauses the five chain DAGs,
triggers only ``ti_geography`` and waits (bounded) until the Asset schedules have cascaded to a
successful ``ti_publish`` run. Every process is started in its own session and its whole process group is
stopped in a ``finally``; the PostgreSQL databases are dropped and the Redis DB is flushed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from .airflow_env import (
    AIRFLOW,
    CHAIN,
    REDIS_HOST,
    REDIS_PORT,
    REPO,
    airflow_env,
    api_call,
    create_database,
    drop_database,
    free_port,
    migrate,
    postgres_unavailable,
    redis_unavailable,
    start,
    stop,
    unique_name,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WAIT_PUBLISH_S = 8 * 60  # bound for the whole cascade ti_geography -> ... -> ti_publish
WAIT_PARSE_S = 180  # dag-processor: first parse of the DAG folder
WAIT_API_S = 120


def _redis(db: int, *cmd: str) -> bytes:
    """``SELECT db`` then one command, in RESP on a raw socket (no Redis client needed by the test).
    Returns the reply to the command."""
    import socket

    def resp(*args: str) -> bytes:
        return f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)

    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=5) as s:
        s.sendall(resp("SELECT", str(db)) + resp(*cmd))
        data = b""
        while data.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    first, _, rest = data.partition(b"\r\n")
    return rest if first == b"+OK" else b"-ERR SELECT " + first  # e.g. a server with fewer than 16 DBs


def _claim_redis_db(owner: str) -> int:
    """A Redis DB number (1-15, random order) that held no key, claimed with ``SET ... NX`` so
    that two concurrent runs can never pick the same one."""
    import random

    candidates = list(range(1, 16))
    random.shuffle(candidates)
    for n in candidates:
        if not _redis(n, "DBSIZE").startswith(b":0\r\n"):
            continue
        # claimed for one hour at most: a run killed before its clean-up does not hold the DB for ever
        if _redis(n, "SET", "ti_test_owner", owner, "NX", "EX", "3600").startswith(b"+OK"):
            return n
    pytest.skip("every Redis DB 1-15 holds keys: no free DB for an isolated broker")


def _wait(what: str, check, timeout: float, procs: dict, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, p in procs.items():
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with code {p.returncode} while waiting for {what}")
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _api_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _task_errors(home: Path) -> str:
    """The error records (with exception type and message) of every task log, for a failure message."""
    out = []
    for p in sorted((home / "logs").glob("dag_id=*/**/*.log")):
        for line in p.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("level") == "error":
                excs = "; ".join(f"{e.get('exc_type')}: {e.get('exc_value')}" for e in rec.get("error_detail") or [])
                out.append(f"{p.relative_to(home / 'logs')}: {rec.get('event')} {excs}".strip())
    return "\n".join(out) or "(no error record in the task logs)"


@pytest.fixture()
def servers():
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(f"CeleryExecutor test needs PostgreSQL and Redis on 127.0.0.1: {reason}")
    meta_url = create_database("ti_af_meta")
    wh_url = create_database("ti_wh")
    redis_db = _claim_redis_db(unique_name("ti_celery_test"))
    try:
        yield meta_url, wh_url, redis_db
    finally:
        drop_database(meta_url)
        drop_database(wh_url)
        _redis(redis_db, "FLUSHDB")


def test_celery_workers_run_the_asset_chain_to_a_published_release(tmp_path, servers):
    from cryptography.fernet import Fernet

    meta_url, wh_url, redis_db = servers
    api_port = free_port()
    queue = unique_name("ti_q")
    meta_pg = meta_url.replace("postgresql+psycopg2://", "postgresql://")
    admin_password = secrets.token_hex(12)
    passwords_file = tmp_path / "auth" / "passwords.json"
    passwords_file.parent.mkdir()
    passwords_file.write_text(json.dumps({"admin": admin_password}) + "\n")
    env = airflow_env(
        tmp_path,
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta_url,
        AIRFLOW__CELERY__BROKER_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+{meta_pg}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="2",
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=queue,  # a queue of our own: no other worker takes our tasks
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(24),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        # as in docker-compose.yaml: one admin user, password file written beforehand (airflow-init)
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords_file),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        TI_WAREHOUSE_URL=wh_url,
    )
    home = Path(env["AIRFLOW_HOME"])
    migrate(env)
    # the pools of the deployment, imported exactly as airflow-init does it
    out = subprocess.run([AIRFLOW, "pools", "import", str(REPO / "deploy" / "pools.json")], env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    logs = tmp_path / "proc-logs"
    procs: dict[str, subprocess.Popen] = {}
    meta = sa.create_engine(meta_url)
    t0 = time.monotonic()
    try:
        procs["api-server"] = start([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(api_port)], env,
                                    logs / "api-server.log")
        procs["scheduler"] = start([AIRFLOW, "scheduler"], env, logs / "scheduler.log")
        procs["dag-processor"] = start([AIRFLOW, "dag-processor"], env, logs / "dag-processor.log")
        procs["celery-worker"] = start([AIRFLOW, "celery", "worker", "--queues", queue, "--concurrency", "2",
                                        "--celery-hostname", f"{queue}@%h", "--skip-serve-logs"], env,
                                       logs / "celery-worker.log")
        try:
            _wait("the api-server health endpoint", lambda: _api_healthy(api_port), WAIT_API_S, procs)

            def parsed():
                with meta.connect() as c:
                    got = c.execute(sa.text("SELECT dag_id FROM dag WHERE dag_id = ANY(:ids)"), {"ids": CHAIN}).scalars()
                    return set(got) == set(CHAIN)

            _wait("the dag-processor to serialize the chain DAGs", parsed, WAIT_PARSE_S, procs)
            t_ready = time.monotonic() - t0

            # an operator's path: log in to the REST API, unpause the chain, trigger its first DAG
            status, _ = api_call(api_port, "POST", "/auth/token", {"username": "admin", "password": "wrong"})
            assert status == 401
            status, body = api_call(api_port, "POST", "/auth/token", {"username": "admin", "password": admin_password})
            assert status == 201, body
            token = body["access_token"]
            assert api_call(api_port, "GET", "/api/v2/dags/ti_geography")[0] == 401  # no token, no API
            for dag_id in CHAIN:
                status, body = api_call(api_port, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token)
                assert status == 200 and body["is_paused"] is False, (dag_id, status, body)
            status, body = api_call(api_port, "POST", "/api/v2/dags/ti_geography/dagRuns", {"logical_date": None}, token)
            assert status == 200, body

            def published():
                with meta.connect() as c:
                    rows = c.execute(sa.text("SELECT dag_id, state FROM dag_run WHERE dag_id = ANY(:ids)"),
                                     {"ids": CHAIN}).all()
                failed = [d for d, s in rows if s == "failed"]
                assert not failed, f"DAG run(s) failed: {failed}\n{_task_errors(home)}"
                return any(d == "ti_publish" and s == "success" for d, s in rows)

            _wait("a successful ti_publish run (Asset cascade from ti_geography)", published, WAIT_PUBLISH_S, procs)
            t_done = time.monotonic() - t0
        except AssertionError as exc:
            tails = "\n".join(f"===== {n}\n{_tail(logs / f'{n}.log')}" for n in procs)
            raise AssertionError(f"{exc}\n{tails}") from None
    finally:
        for name in list(procs)[::-1]:  # worker first, api-server last
            try:
                stop(procs[name])
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"stopping {name} (pid {procs[name].pid}) failed: {exc!r}")
        meta.dispose()

    for name, p in procs.items():
        assert p.poll() is not None, f"{name} (pid {p.pid}) still running after stop()"
        with pytest.raises(ProcessLookupError):
            os.killpg(p.pid, 0)

    eng = sa.create_engine(meta_url)
    with eng.connect() as c:
        runs = c.execute(sa.text("SELECT dag_id, run_type, state FROM dag_run WHERE dag_id = ANY(:ids)"),
                         {"ids": CHAIN}).all()
        tis = c.execute(sa.text("SELECT dag_id, task_id, state, queue, hostname FROM task_instance "
                                "WHERE dag_id = ANY(:ids) AND state = 'success'"), {"ids": CHAIN}).all()
        celery_ok = c.execute(sa.text("SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")).scalar_one()
        pool = c.execute(sa.text("SELECT slots, include_deferred FROM slot_pool WHERE pool = 'insee_api'")).one()
    eng.dispose()
    by_dag = {}
    for dag_id, run_type, state in runs:
        by_dag.setdefault(dag_id, []).append((run_type, state))
    # only ti_geography was triggered by hand; the four others were started by Asset events
    assert ("manual", "success") in by_dag["ti_geography"]
    for dag_id in CHAIN[1:]:
        assert ("asset_triggered", "success") in by_dag[dag_id], (dag_id, by_dag.get(dag_id))
    assert {d for d, *_ in tis} == set(CHAIN)
    assert all(q == queue and h for _, _, _, q, h in tis), tis  # executed from our queue by a Celery worker
    assert celery_ok >= len(CHAIN)  # each task reported SUCCESS to the Celery result backend
    assert tuple(pool) == (1, False)  # deploy/pools.json: insee_api, one slot
    api_log = (logs / "api-server.log").read_text(errors="replace")
    assert admin_password not in api_log and "Password for user" not in api_log  # nothing generated or printed

    wh = sa.create_engine(wh_url)
    with wh.connect() as c:
        assert c.execute(sa.text("SELECT release_id FROM current_release")).scalar_one() == "2026-11"
        assert c.execute(sa.text("SELECT synthetic FROM releases WHERE release_id = '2026-11'")).scalar_one() is True
        n_values = c.execute(sa.text("SELECT count(*) FROM latest_indicator_values")).scalar_one()
        deps = set(c.execute(sa.text("SELECT territory_id FROM latest_territories WHERE level = 'departement'")).scalars())
    wh.dispose()
    assert n_values > 0
    assert deps == {"2A", "2B"}
    print(f"\ncelery chain: components ready after {t_ready:.0f} s, ti_publish success after {t_done:.0f} s, "
          f"{n_values} indicator values in the PostgreSQL warehouse")
