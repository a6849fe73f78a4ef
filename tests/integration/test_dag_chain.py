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


def test_report_maps_in_a_browser(chain_run, tmp_path):
    """The report of the chain (embedded default, real commune boundaries of Corsica): the overview
    map has one shape per EPCI of the release, filled by its composite class (a higher score never
    gets a lower class), the variable selector recolours, ZE and TI pages show their local map."""
    import json
    from pathlib import Path

    from .cdp_browser import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): map not checked in a browser")
    tmp, env = chain_run
    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    rel = t["current_release"]["release_id"].item()
    epci = set(t["territories"].loc[t["territories"]["level"] == "epci", "territory_id"])
    site = Path(tmp) / "data" / "reports" / rel
    with Browser(tmp_path) as b:
        b.goto((site / "index.html").as_uri())
        b.wait_for("document.querySelectorAll('#map-epci path[data-class]').length > 0")
        shapes = json.loads(b.eval("JSON.stringify(Array.from(document.querySelectorAll('#map-epci path[data-id]'))"
                                   ".map(p => [p.dataset.id, p.getAttribute('fill'), p.dataset.class]))"))
        data = json.loads(b.eval("document.querySelector('#overview-map script.map-data').textContent"))
        assert {s[0] for s in shapes} == epci and len(shapes) == len(epci)
        scores = {c: v["score"] for c, v in data["epci"]["values"].items()}
        by_score = sorted((scores[c], int(k)) for c, _, k in shapes if k != "none")
        assert len({k for _, k in by_score}) >= 3 and all(a[1] <= b[1] for a, b in zip(by_score, by_score[1:]))
        assert all(f.startswith("#") for c, f, k in shapes if scores.get(c) is not None)
        before = [s[1] for s in shapes]
        b.eval("(() => { const s = document.getElementById('map-var'); s.value = 'domain_c';"
               " s.dispatchEvent(new Event('change')); })()")
        after = json.loads(b.eval("JSON.stringify(Array.from(document.querySelectorAll('#map-epci path[data-id]'))"
                                  ".map(p => p.getAttribute('fill')))"))
        assert after != before  # domain C classes are not the composite's
        b.screenshot(tmp_path / "map.png")
        for page in sorted((site / "ze").glob("*.html"))[:1] + sorted((site / "ti").glob("*.html"))[:1]:
            b.goto(page.as_uri())
            n = b.eval("document.querySelectorAll('#local-map path[data-id]').length")
            assert n >= 1 and b.eval("document.querySelectorAll('#local-map path.focus').length") == 1, page.name
        assert b.console_errors() == []
    assert (tmp_path / "map.png").stat().st_size > 10_000
