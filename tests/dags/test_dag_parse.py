"""Strict DAG validation, in the style of apache/airflow's example-DAG tests.

- every file in dags/ imports without error and defines the expected DAGs;
- parsing performs ZERO connection or Variable look-ups (they are made to raise);
- parsing imports no heavy library (pandas, GX, pyarrow, sqlalchemy, requests...);
- each file's parse time is measured and printed (target < 0.2 s, see bench/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("ti_*.py") if p.name != "ti_common.py")
EXPECTED = {"ti_geography", "ti_sirene", "ti_employment", "ti_indicators", "ti_publish", "ti_sirene_updates", "ti_source_check",
            "ti_review"}
HEAVY = ("pandas", "great_expectations", "pyarrow", "polars", "duckdb", "sqlalchemy", "requests", "openpyxl",
         "territoires_industrie.pipeline")


def _forbidden(*a, **k):
    raise AssertionError(f"connection/variable look-up at DAG parse time: {a}")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    with mock.patch("airflow.sdk.execution_time.context._get_connection", _forbidden), \
         mock.patch("airflow.sdk.execution_time.context._get_variable", _forbidden), \
         mock.patch("airflow.sdk.bases.hook.BaseHook.get_connection", _forbidden):
        bag = DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors


def test_expected_dags_with_docs_and_tags(dagbag):
    assert set(dagbag.dags) == EXPECTED
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert "territoires-industrie" in dag.tags
        assert dag.catchup is False
        assert dag.max_active_runs == 1


def test_asset_chain(dagbag):
    """geography -> (sirene, employment) -> indicators -> publish, by Assets."""
    def outlets(dag_id):
        return {o.name for t in dagbag.dags[dag_id].tasks for o in t.outlets}

    assert outlets("ti_geography") == {"ti_staging_geography"}
    assert outlets("ti_indicators") == {"ti_staging_indicators"}
    assert "ti_staging_sirene_stock" in repr(dagbag.dags["ti_indicators"].timetable.asset_condition)
    assert "ti_staging_employment" in repr(dagbag.dags["ti_indicators"].timetable.asset_condition)
    assert "ti_staging_indicators" in repr(dagbag.dags["ti_publish"].timetable.asset_condition)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_time_and_no_heavy_imports(path, capsys):
    """Parse each file in a fresh interpreter (Airflow already imported) and measure it."""
    code = f"""
import json, sys, time, runpy
sys.path[:0] = [{str(DAGS_DIR)!r}, {str(DAGS_DIR.parent / "plugins")!r}]
import airflow.sdk  # the fixed cost every DAG file shares
before = set(sys.modules)
t = time.perf_counter()
runpy.run_path({str(path)!r})
dt = time.perf_counter() - t
heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {json.dumps([h.split('.')[0] for h in HEAVY])} or m in {list(HEAVY)!r})
print(json.dumps({{"seconds": dt, "heavy": heavy}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print(f"\n  DAG parse time {path.name:<22} {res['seconds'] * 1000:7.1f} ms")
    assert res["heavy"] == [], f"{path.name} imports heavy modules at parse time: {res['heavy']}"
    assert res["seconds"] < 2.0  # generous bound for CI noise; the 0.2 s target is tracked in bench/


def test_release_params_refuse_what_the_cli_refuses(dagbag):
    """The trigger form of ti_publish and ti_review validates ``release`` with the same pattern as
    the CLI and the library (issue 21): a path or a trailing character never reaches a task."""
    from territoires_industrie.arguments import RELEASE_ID_PATTERN

    for dag_id in ("ti_publish", "ti_review"):
        param = dagbag.dags[dag_id].params.get_param("release")
        assert param.schema.get("pattern") == RELEASE_ID_PATTERN
        assert param.resolve("2026-11") == "2026-11"
        assert param.resolve(None) is None
        for bad in ("../2026-11", "2026-11 ", "2026-13", "2026-11/../../etc"):
            with pytest.raises(Exception, match="does not match|Invalid input|not valid"):
                param.resolve(bad)


def test_make_run_runs_the_dags_the_chain_test_runs():
    """``make run`` and the DAG-chain test run the same DAGs in the same order."""
    from pathlib import Path

    from tests.integration.airflow_env import RUN_ORDER

    line = next(ln for ln in (Path(__file__).parents[2] / "Makefile").read_text().splitlines() if ln.startswith("DAGS ="))
    assert line.split("=", 1)[1].split() == RUN_ORDER
