"""Helpers to run the real DAGs with ``airflow dags test`` in a throw-away Airflow home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
CHAIN = ["ti_geography", "ti_sirene", "ti_employment", "ti_indicators", "ti_publish"]


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
