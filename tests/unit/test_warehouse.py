"""Release publication: atomic replace per period, pointer to the newest release."""

import pandas as pd
import pytest
import sqlalchemy as sa
from territoires_industrie import warehouse


def _tables(value: float):
    return {
        "territories": pd.DataFrame([{"level": "epci", "territory_id": "200000172", "label": "CC X", "departement": "74",
                                      "region": "84", "n_communes": 7, "population": 1000.0}]),
        "indicator_values": pd.DataFrame([{"level": "epci", "territory_id": "200000172", "indicator_id": "ind_share",
                                           "period": "2025", "value": value, "numerator": 1.0, "denominator": 2.0,
                                           "unit": "%"}]),
        "indicator_dictionary": pd.DataFrame([{"indicator_id": "ind_share", "label_fr": "Part", "unit": "%",
                                               "formula": "f", "source": "s", "period": "2025"}]),
    }


@pytest.fixture()
def engine(tmp_path):
    e = warehouse.get_engine(f"sqlite:///{tmp_path}/w.db")
    yield e
    e.dispose()


def test_republishing_a_period_replaces_it(engine):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {"synthetic": True})
    warehouse.publish_release(engine, "2026-10", _tables(51.0), {"synthetic": True})
    latest = warehouse.read_latest(engine)
    assert latest["value"].tolist() == [51.0]
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from indicator_values")).scalar_one() == 1


def test_older_period_republished_keeps_newest_current(engine):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {})
    warehouse.publish_release(engine, "2026-11", _tables(60.0), {})
    warehouse.publish_release(engine, "2026-10", _tables(55.0), {})  # backfill
    assert warehouse.current_release_id(engine) == "2026-11"
    assert warehouse.read_latest(engine)["value"].tolist() == [60.0]


def test_failed_publication_leaves_previous_release(engine):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {})
    bad = _tables(70.0)
    bad["indicator_values"] = pd.concat([bad["indicator_values"]] * 2)  # duplicate primary key
    with pytest.raises(sa.exc.IntegrityError):
        warehouse.publish_release(engine, "2026-11", bad, {})
    assert warehouse.current_release_id(engine) == "2026-10"
    assert warehouse.read_latest(engine)["value"].tolist() == [50.0]
    with engine.connect() as c:
        assert c.execute(sa.text("select count(*) from territories where release_id='2026-11'")).scalar_one() == 0
