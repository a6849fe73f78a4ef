"""The DAG chain with Airflow's metadata DB on PostgreSQL and the warehouse on PostgreSQL.

Same DAGs, same library, only environment variables change (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``
and ``TI_WAREHOUSE_URL``): the production configuration path. Both databases are created with
unique names on 127.0.0.1:5432 and dropped afterwards; skipped with the reason when no server answers.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from .airflow_env import (
    CHAIN,
    airflow_env,
    create_database,
    dags_test,
    drop_database,
    migrate,
    postgres_unavailable,
    recount_active_industrial_by_epci,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_chain(tmp_path_factory):
    reason = postgres_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL pipeline test skipped: {reason}")
    tmp = tmp_path_factory.mktemp("pg_chain")
    meta_url = create_database("ti_af_meta")
    wh_url = create_database("ti_wh")
    try:
        env = airflow_env(tmp, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta_url, TI_WAREHOUSE_URL=wh_url)
        migrate(env)
        for dag_id in CHAIN:
            dags_test(dag_id, env)
        yield tmp, env, meta_url, wh_url
    finally:
        drop_database(meta_url)
        drop_database(wh_url)


def _read(url: str, sql: str) -> pd.DataFrame:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        df = pd.read_sql(sa.text(sql), c)
    eng.dispose()
    return df


def test_airflow_metadata_lives_in_postgresql(pg_chain):
    tmp, env, meta_url, wh_url = pg_chain
    runs = _read(meta_url, "SELECT dag_id, state FROM dag_run")
    assert set(runs["dag_id"]) == set(CHAIN)
    assert set(runs["state"]) == {"success"}
    assert not list((tmp / "airflow_home").glob("*.db"))  # no SQLite metadata file was created
    assert not (tmp / "data" / "warehouse.db").exists()  # and the warehouse is not the SQLite default


def test_release_is_published_in_the_postgresql_warehouse(pg_chain, geography):
    tmp, env, meta_url, wh_url = pg_chain
    assert _read(wh_url, "SELECT release_id FROM current_release")["release_id"].tolist() == ["2026-11"]
    rel = _read(wh_url, "SELECT * FROM releases")
    assert rel["release_id"].tolist() == ["2026-11"] and bool(rel["synthetic"].item()) is True
    latest = _read(wh_url, "SELECT * FROM latest_indicator_values")
    assert len(latest) == rel["n_indicator_values"].item() > 0
    assert set(latest["release_id"]) == {"2026-11"}

    # the EPCI counts of active industrial establishments equal an independent recount from the sample zip
    expected = recount_active_industrial_by_epci(tmp / "data", geography)
    got = latest[(latest["level"] == "epci") & (latest["indicator_id"] == "estab_ind_active")]
    assert len(got) > 0
    for epci, value in got.set_index("territory_id")["value"].items():
        assert value == expected.get(epci, 0), epci

    deps = _read(wh_url, "SELECT territory_id FROM latest_territories WHERE level = 'departement'")
    assert sorted(deps["territory_id"]) == ["2A", "2B"]  # codes kept as strings


def test_republishing_on_postgresql_is_idempotent(pg_chain):
    tmp, env, meta_url, wh_url = pg_chain
    q = "SELECT * FROM indicator_values ORDER BY release_id, level, territory_id, indicator_id, period"
    before = _read(wh_url, q)
    dags_test("ti_publish", env)
    after = _read(wh_url, q)
    pd.testing.assert_frame_equal(before, after)
    assert _read(wh_url, "SELECT count(*) AS n FROM releases")["n"].item() == 1
