"""Helpers to run the real DAGs with ``airflow dags test`` in a throw-away Airflow home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
CHAIN = ["ti_geography", "ti_sirene", "ti_employment", "ti_indicators", "ti_publish"]  # chained by Assets
#: what ``make run`` runs: the monthly chain plus the daily updates (SYNTHETIC feed) before publication
RUN_ORDER = ["ti_geography", "ti_sirene", "ti_employment", "ti_indicators", "ti_sirene_updates", "ti_publish"]


def airflow_env(tmp: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TI_"))}
    home = tmp / "airflow_home"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        GX_ANALYTICS_ENABLED="false",
        PYTHONPATH=os.pathsep.join([str(REPO / "dags"), str(REPO / "plugins")]),
        TI_DATA_DIR=str(tmp / "data"),
        TI_SAMPLE_DEPARTEMENTS="2A,2B",
        TI_SAMPLE_SCALE="0.3",
        TI_TASK_RETRIES="0",
    )
    env.update(extra)
    return env


def migrate(env: dict) -> None:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    out = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def dags_test(dag_id: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([AIRFLOW, "dags", "test", dag_id], env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, f"{dag_id} failed:\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}"
    return out


# --- real servers on loopback (PostgreSQL, Redis) and processes started by a test ------------------
# Added for the deployment tests (issue 10). Every database / Redis DB / port is unique per test
# run so concurrent runs on one machine do not collide, and everything is removed afterwards.

PG_ADMIN_URL = os.environ.get("TI_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def postgres_unavailable() -> str | None:
    """``None`` when the PostgreSQL server of the tests answers, else the reason (for ``pytest.skip``)."""
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server for these tests"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server answers at {PG_ADMIN_URL.split('@')[-1]} ({first})"
    return None


def unique_name(prefix: str) -> str:
    import uuid

    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}".lower()


def create_database(prefix: str) -> str:
    """CREATE DATABASE with a unique name; returns its SQLAlchemy URL (psycopg2 driver)."""
    import sqlalchemy as sa

    name = unique_name(prefix)
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    """DROP DATABASE ... WITH (FORCE): also ends the sessions a killed process may have left."""
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_unavailable() -> str | None:
    import socket

    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3) as s:
            s.sendall(b"PING\r\n")
            if not s.recv(64).startswith(b"+PONG"):
                return f"the server at {REDIS_HOST}:{REDIS_PORT} does not answer PING like Redis"
    except OSError as exc:
        return f"no Redis server answers at {REDIS_HOST}:{REDIS_PORT} ({exc})"
    return None


def start(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start a long-running process in its own session (process group) with its output in ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    proc._ti_log = fh  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the whole process group, SIGKILL what is left after ``grace`` seconds."""
    import signal
    import time

    pgid = proc.pid  # start_new_session=True: the leader's pid is the group id
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(pgid, 0)  # anything left in the group?
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            continue
        break
    proc.poll()
    fh = getattr(proc, "_ti_log", None)
    if fh is not None:
        fh.close()


def recount_active_industrial_by_epci(data_dir: Path, geography):
    """Independent recount, straight from the sample SIRENE zip with plain pandas, of active
    industrial establishments (NAF rev. 2 divisions 05-39) per EPCI."""
    import zipfile

    import pandas as pd

    z = Path(data_dir) / "sample" / "sirene" / "StockEtablissement_utf8.zip"
    with zipfile.ZipFile(z) as zf, zf.open("StockEtablissement_utf8.csv") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False,
                         usecols=["codeCommuneEtablissement", "etatAdministratifEtablissement",
                                  "activitePrincipaleEtablissement", "nomenclatureActivitePrincipaleEtablissement"])
    ind = df[(df["etatAdministratifEtablissement"] == "A")
             & (df["nomenclatureActivitePrincipaleEtablissement"] == "NAFRev2")
             & df["activitePrincipaleEtablissement"].str[:2].isin([f"{d:02d}" for d in range(5, 40)])]
    return ind["codeCommuneEtablissement"].map(geography.communes.set_index("codgeo")["epci"]).value_counts()


def api_call(port: int, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    """One call to the api-server's public REST API (JSON in, JSON out)."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {"detail": e.read().decode(errors="replace")[:500]}
