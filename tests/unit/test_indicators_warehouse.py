"""Publication of the composite table and of the new indicator_values columns."""

import pandas as pd
import sqlalchemy as sa
from territoires_industrie import warehouse


def _tables(score: float) -> dict:
    iv = pd.DataFrame([
        {"level": "epci", "territory_id": "200000172", "indicator_id": "a1_ind_jobs_decline", "period": "2020-2025",
         "value": 12.5, "value_raw": 14.0, "shrink_weight": 0.8, "reliable": False, "secret_status": "V",
         "n_units": 9.0, "numerator": -28.0, "denominator": 200.0, "unit": "%", "domain": "A", "direction": 1},
        {"level": "epci", "territory_id": "200000172", "indicator_id": "jobs_ind", "period": "2025",
         "value": None, "value_raw": None, "shrink_weight": 1.0, "reliable": True, "secret_status": "B",
         "n_units": 9.0, "numerator": None, "denominator": None, "unit": "emplois", "domain": "G", "direction": -1},
    ])
    comp = pd.DataFrame([{"level": "epci", "territory_id": "200000172", "reference_set": "epci", "score": score,
                          "domain_a": 80.0, "domain_b": 10.0, "domain_c": 40.0, "domain_d": 5.0, "rank_national": 3,
                          "rank_regional": 1.0, "percentile_national": 99.0, "percentile_regional": 100.0, "decile": 10,
                          "mc_rank_median": 4.0, "mc_rank_p05": 1.0, "mc_rank_p95": 30.0, "p_top10": 0.7,
                          "p_top20": 0.9, "uncertain": True, "gate_industrial": True, "n_reference": 1250,
                          "region": "84", "n_indicators_missing": 0, "mc_mean_rank_shift": 6.0}])
    terr = pd.DataFrame([{"level": "epci", "territory_id": "200000172", "label": "CC X", "departement": "74",
                          "region": "84", "n_communes": 7, "population": 1000.0, "ti_phase": None}])
    dic = pd.DataFrame([{"indicator_id": "a1_ind_jobs_decline", "label_fr": "Recul", "unit": "%", "formula": "f",
                         "source": "s", "period": "2020-2025", "domain": "A", "direction": 1, "reliability_min": "x"}])
    return {"territories": terr, "indicator_values": iv, "indicator_dictionary": dic, "composite": comp}


def test_composite_and_new_columns_are_published(tmp_path):
    eng = warehouse.get_engine(f"sqlite:///{tmp_path}/w.db")
    warehouse.publish_release(eng, "2026-11", _tables(61.5), {"synthetic": True})
    comp = warehouse.read_latest(eng, "latest_composite")
    assert comp["score"].tolist() == [61.5] and bool(comp["uncertain"].iloc[0]) is True
    iv = warehouse.read_latest(eng).set_index("indicator_id")
    assert iv.loc["a1_ind_jobs_decline", "value_raw"] == 14.0
    assert iv.loc["a1_ind_jobs_decline", "shrink_weight"] == 0.8
    assert iv.loc["jobs_ind", "secret_status"] == "B" and pd.isna(iv.loc["jobs_ind", "value"])
    # republishing replaces the composite rows of the release too
    warehouse.publish_release(eng, "2026-11", _tables(62.0), {"synthetic": True})
    assert warehouse.read_latest(eng, "latest_composite")["score"].tolist() == [62.0]
    eng.dispose()


def test_older_warehouse_gains_the_new_columns(tmp_path):
    """A warehouse created before this release (indicator_values without secrecy columns)
    is migrated in place (columns added), and the old rows stay readable."""
    eng = warehouse.get_engine(f"sqlite:///{tmp_path}/old.db")
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE indicator_values (release_id VARCHAR(32), level VARCHAR(16), "
                          "territory_id VARCHAR(16), indicator_id VARCHAR(48), period VARCHAR(32), value FLOAT, "
                          "numerator FLOAT, denominator FLOAT, unit VARCHAR(24), "
                          "PRIMARY KEY (release_id, level, territory_id, indicator_id, period))"))
        c.execute(sa.text("INSERT INTO indicator_values VALUES ('2026-10', 'epci', '1', 'x', '2025', 1, 1, 1, '%')"))
    warehouse.publish_release(eng, "2026-11", _tables(50.0), {})
    cols = {c["name"] for c in sa.inspect(eng).get_columns("indicator_values")}
    assert {"value_raw", "shrink_weight", "reliable", "secret_status", "n_units", "domain", "direction"} <= cols
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT COUNT(*) FROM indicator_values WHERE release_id = '2026-10'")).scalar_one() == 1
    eng.dispose()
