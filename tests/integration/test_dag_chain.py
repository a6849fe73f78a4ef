"""The real DAG chain, run with ``airflow dags test`` on a tiny synthetic sample (Corsica),
asserting on the rows written to the warehouse and on idempotency."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from .airflow_env import CHAIN, airflow_env, dags_test, migrate, recount_active_industrial_by_epci

pytestmark = pytest.mark.slow


def _tables(url: str) -> dict[str, pd.DataFrame]:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        out = {
            t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY {order}"), c)
            for t, order in (("territories", "1, 2, 3"), ("indicator_values", "1, 2, 3, 4, 5"),
                             ("indicator_dictionary", "1, 2"), ("releases", "1"), ("current_release", "1"))
        }
    eng.dispose()
    return out


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    env = airflow_env(tmp)
    migrate(env)
    for dag_id in CHAIN:
        dags_test(dag_id, env)
    return tmp, env


def test_chain_publishes_a_synthetic_release(chain_run):
    tmp, env = chain_run
    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    rel = t["current_release"]["release_id"].item()
    assert rel == "2026-11"  # SIRENE stock of 1 Nov 2026 (last update 2026-10-31 in the data)
    row = t["releases"].set_index("release_id").loc[rel]
    assert bool(row["synthetic"]) is True
    levels = set(t["territories"]["level"])
    assert {"epci", "departement", "region", "ti"} <= levels
    assert set(t["territories"].loc[t["territories"]["level"] == "departement", "territory_id"]) == {"2A", "2B"}
    csvs = list((tmp / "data" / "exports" / rel).glob("indicateurs_territoires_*_SYNTHETIC.csv"))
    assert len(csvs) == 1
    exported = pd.read_csv(csvs[0], dtype={"territory_id": str})
    assert set(exported["data_status"]) == {"SYNTHETIC"}


def test_epci_establishment_counts_match_an_independent_count(chain_run, geography):
    """Recount active industrial establishments per EPCI straight from the sample zip."""
    tmp, env = chain_run
    expected = recount_active_industrial_by_epci(tmp / "data", geography)

    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    iv = t["indicator_values"]
    got = iv[(iv["level"] == "epci") & (iv["indicator_id"] == "estab_ind_active")].set_index("territory_id")["value"]
    assert len(got) > 0
    for epci, value in got.items():
        assert value == expected.get(epci, 0), epci


def test_rerun_is_idempotent(chain_run):
    tmp, env = chain_run
    url = f"sqlite:///{tmp}/data/warehouse.db"
    before = _tables(url)
    csv = next((tmp / "data" / "exports" / "latest").glob("*.csv"))  # the path users read (a release link)
    csv_before = csv.read_bytes()
    for dag_id in ("ti_indicators", "ti_publish"):
        dags_test(dag_id, env)
    after = _tables(url)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_like=False)
    assert csv.read_bytes() == csv_before
