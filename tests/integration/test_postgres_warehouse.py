"""Warehouse publication on SQLite AND PostgreSQL: the same code, the same guarantees.

Every test runs twice: on a SQLite file and on a fresh PostgreSQL database (created with a unique
name on 127.0.0.1:5432 and dropped afterwards). On PostgreSQL the rows go through ``COPY``; the
tests check that the bulk path is really taken and that awkward values survive it unchanged.
The PostgreSQL variants are skipped, with the reason, when no server answers.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from territoires_industrie import warehouse

from .airflow_env import create_database, drop_database, postgres_unavailable


def _tables(value: float, *, label: str = "CC X", n_communes=7):
    return {
        "territories": pd.DataFrame([{"level": "epci", "territory_id": "200000172", "label": label, "departement": "74",
                                      "region": "84", "n_communes": n_communes, "population": 1000.0}]),
        "indicator_values": pd.DataFrame([{"level": "epci", "territory_id": "200000172", "indicator_id": "ind_share",
                                           "period": "2025", "value": value, "numerator": 1.0, "denominator": 2.0,
                                           "unit": "%"}]),
        "indicator_dictionary": pd.DataFrame([{"indicator_id": "ind_share", "label_fr": "Part", "unit": "%",
                                               "formula": "f", "source": "s", "period": "2025"}]),
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        e = warehouse.get_engine(f"sqlite:///{tmp_path}/w.db")
        yield e
        e.dispose()
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL variant skipped: {reason}")
    url = create_database("ti_wh_test")
    e = warehouse.get_engine(url)
    try:
        yield e
    finally:
        e.dispose()
        drop_database(url)


@pytest.fixture()
def copy_calls(monkeypatch):
    """Records the tables loaded through ``warehouse._copy`` (the PostgreSQL COPY path)."""
    calls: list[tuple[str, int]] = []
    real = warehouse._copy

    def spy(conn, table, df):
        calls.append((table.name, len(df)))
        return real(conn, table, df)

    monkeypatch.setattr(warehouse, "_copy", spy)
    return calls


def _count(engine, sql: str) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(sql)).scalar_one()


def test_republishing_a_period_replaces_it(engine, copy_calls):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {"synthetic": True})
    warehouse.publish_release(engine, "2026-10", _tables(51.0), {"synthetic": True})
    assert warehouse.read_latest(engine)["value"].tolist() == [51.0]
    assert _count(engine, "select count(*) from indicator_values") == 1
    assert _count(engine, "select count(*) from territories") == 1
    assert _count(engine, "select count(*) from releases") == 1
    if engine.dialect.name == "postgresql":  # three tables per publication, all through COPY
        assert copy_calls == [("territories", 1), ("indicator_values", 1), ("indicator_dictionary", 1)] * 2
    else:
        assert copy_calls == []


def test_older_period_republished_keeps_newest_current(engine):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {})
    warehouse.publish_release(engine, "2026-11", _tables(60.0), {})
    warehouse.publish_release(engine, "2026-10", _tables(55.0), {})  # backfill of an older period
    assert warehouse.current_release_id(engine) == "2026-11"
    assert warehouse.read_latest(engine)["value"].tolist() == [60.0]
    with engine.connect() as c:
        per_release = dict(c.execute(sa.text("select release_id, value from indicator_values")).all())
    assert per_release == {"2026-10": 55.0, "2026-11": 60.0}


def test_failed_publication_leaves_previous_release(engine):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {})
    bad = _tables(70.0)
    bad["indicator_values"] = pd.concat([bad["indicator_values"]] * 2)  # duplicate primary key
    with pytest.raises(sa.exc.IntegrityError):  # the same SQLAlchemy error class on both back-ends
        warehouse.publish_release(engine, "2026-11", bad, {})
    assert warehouse.current_release_id(engine) == "2026-10"
    assert warehouse.read_latest(engine)["value"].tolist() == [50.0]
    assert _count(engine, "select count(*) from territories where release_id='2026-11'") == 0
    assert _count(engine, "select count(*) from releases where release_id='2026-11'") == 0


def test_awkward_values_survive_the_bulk_load(engine):
    """Separators, quotes, line breaks, accents, a literal backslash-N, empty text vs NULL and a missing
    integer: what goes in comes out, on both back-ends."""
    label = 'Communauté "Pays de l\'Ain", 1\nligne 2; \\N'
    t = _tables(float("nan"), label=label, n_communes=float("nan"))  # float64 column: 12 is written "12.0"
    t["territories"] = pd.concat([t["territories"], t["territories"].assign(territory_id="200000173", label="",
                                                                            n_communes=12)])
    warehouse.publish_release(engine, "2026-10", t, {"synthetic": True})
    terr = warehouse.read_latest(engine, "latest_territories").sort_values("territory_id").reset_index(drop=True)
    assert terr["label"].tolist() == [label, ""]
    assert terr["territory_id"].tolist() == ["200000172", "200000173"]  # codes stay strings
    assert pd.isna(terr.loc[0, "n_communes"]) and terr.loc[1, "n_communes"] == 12
    assert terr.loc[1, "population"] == 1000.0
    iv = warehouse.read_latest(engine)
    assert pd.isna(iv.loc[0, "value"])  # NaN published as NULL
    assert iv.loc[0, "numerator"] == 1.0 and iv.loc[0, "denominator"] == 2.0
    with engine.connect() as c:
        synthetic = c.execute(sa.text("select synthetic from releases")).scalar_one()
    assert bool(synthetic) is True


def test_latest_views_follow_the_pointer(engine):
    warehouse.publish_release(engine, "2026-10", _tables(50.0), {})
    warehouse.publish_release(engine, "2026-11", _tables(60.0), {})
    with engine.connect() as c:
        views = set(sa.inspect(c).get_view_names())
        assert set(warehouse.LATEST_VIEWS) <= views
        c.execute(sa.text("update current_release set release_id = '2026-10'"))  # roll back by moving the pointer
        c.commit()
    assert warehouse.read_latest(engine)["value"].tolist() == [50.0]
    assert warehouse.read_latest(engine, "latest_territories")["release_id"].tolist() == ["2026-10"]
