"""The whole indicators computation on a small world: published tables, secrecy, composite."""

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import release
from territoires_industrie.indicators.definitions import INDICATOR_IDS
from territoires_industrie.indicators.uncertainty import MCConfig

from .indicators_world import PERIODS, make_world

CONFIG = release.ReleaseConfig(mc=MCConfig(draws=200, seed=9))


@pytest.fixture(scope="module")
def world():
    return make_world()


@pytest.fixture(scope="module")
def res(world):
    w = world
    return release.compute_release(w["communes"], w["ti"], w["sirene"], w["urssaf"], w["chomage"], w["census"], PERIODS,
                                   industrial=w["industrial"], states=w["states"], config=CONFIG)


def test_long_table_shape_and_columns(res):
    long = res.long
    assert set(long["level"]) == {"commune", "epci", "ze", "departement", "region", "ti"}
    n_terr = res.territories.shape[0]
    assert len(long) == n_terr * len(INDICATOR_IDS)
    assert not long.duplicated(["level", "territory_id", "indicator_id", "period"]).any()
    for c in ("value", "value_raw", "shrink_weight", "reliable", "secret_status", "n_units", "numerator", "denominator",
              "unit", "domain", "direction"):
        assert c in long.columns
    assert set(long["secret_status"]) <= {"V", "A", "B", "D"}
    a = long[long["indicator_id"] == "a1_ind_jobs_decline"].iloc[0]
    assert (a["period"], a["unit"], a["domain"], a["direction"]) == ("2020-2025", "%", "A", 1)


def test_secret_cells_carry_no_number(res):
    long = res.long
    hidden = long[long["secret_status"] != "V"]
    assert len(hidden) > 0  # the world has 1-establishment communes and a dominant plant
    assert hidden[["value", "value_raw", "numerator", "denominator"]].isna().all().all()
    # the concentration index is published in classes only, never as a number
    b3 = long[long["indicator_id"] == "b3_concentration_class"]
    assert b3["value_raw"].isna().all()
    assert set(b3["value"].dropna()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # the wide table is masked the same way
    w = res.wide.set_index(["level", "territory_id"])
    jl = long[long["indicator_id"] == "jobs_ind"].set_index(["level", "territory_id"])
    masked = jl.index[jl["secret_status"] != "V"]
    assert w.loc[masked, "jobs_ind"].isna().all()


def test_counts_add_up_from_communes(res):
    long = res.long
    est = long[long["indicator_id"] == "estab_ind_active"]
    com = est[est["level"] == "commune"].set_index("territory_id")["value"]
    epci = est[est["level"] == "epci"].set_index("territory_id")["value"]
    assert epci.sum() == com.sum()
    reg = est[est["level"] == "region"]["value"].sum()
    assert reg == com.sum()


def test_shrinkage_only_for_unreliable_small_areas(res):
    long = res.long
    shrunk = long[long["shrink_weight"] < 1.0]
    assert len(shrunk) > 0
    assert set(shrunk["level"]) <= {"commune", "epci"}
    assert not shrunk["reliable"].any()
    large = long[long["level"].isin(["ze", "departement", "region", "ti"])]
    assert (large.loc[large["secret_status"] == "V", "shrink_weight"] == 1.0).all()
    assert large.loc[large["secret_status"] != "V", "shrink_weight"].isna().all()  # nothing about a hidden cell
    # published value lies between the raw value and... it differs from it when w < 1
    pub = shrunk.dropna(subset=["value", "value_raw"])
    assert (pub["value"] != pub["value_raw"]).any()


def test_composite_per_reference_set(res):
    c = res.composite
    assert set(c["reference_set"]) == {"epci", "ze", "departement", "region", "ti_2018_2022", "ti_2023_2027"}
    sizes = c.groupby("reference_set").size()
    assert (c["n_reference"] == c["reference_set"].map(sizes)).all()
    assert sizes["epci"] == 8 and sizes["ti_2018_2022"] == 2 and sizes["ti_2023_2027"] == 2
    assert c["score"].between(0, 100).all()
    for d in "abcd":
        assert c[f"domain_{d}"].between(0, 100).all()
    assert (c["mc_rank_p05"] <= c["mc_rank_median"]).all() and (c["mc_rank_median"] <= c["mc_rank_p95"]).all()
    assert c[["p_top10", "p_top20"]].stack().between(0, 1).all()
    e = c[c["reference_set"] == "epci"].sort_values("rank_national")
    assert e["rank_national"].tolist() == list(range(1, 9))
    assert e["score"].is_monotonic_decreasing
    # gate: LQ >= 1 and industrial jobs >= 500, from the unmasked counts
    w = res.counts.set_index(["level", "territory_id"])
    for _, r in e.iterrows():
        jobs = w.loc[("epci", r["territory_id"]), "jobs_ind_t1"]
        lq = (jobs / w.loc[("epci", r["territory_id"]), "jobs_total_t1"]) / (
            w.xs("region", level=0)["jobs_ind_t1"].sum() / w.xs("region", level=0)["jobs_total_t1"].sum())
        assert r["gate_industrial"] == bool(lq >= 1 and jobs >= 500)
    assert res.mc_summary["sets"]["epci"]["draws"] == 200


def test_same_seed_same_release(world, res):
    w = world
    again = release.compute_release(w["communes"], w["ti"], w["sirene"], w["urssaf"], w["chomage"], w["census"],
                                    PERIODS, industrial=w["industrial"], states=w["states"], config=CONFIG)
    pd.testing.assert_frame_equal(res.composite, again.composite)
    pd.testing.assert_frame_equal(res.long, again.long)


def test_dictionary_lists_every_indicator(res):
    d = res.dictionary.set_index("indicator_id")
    assert list(d.index) == list(INDICATOR_IDS)
    assert d.loc["b1_net_closure_rate", "period"] == "2022-2025"
    assert d.loc["c1_unemployment_rate", "period"] == "2025-T3..2026-T2"
    assert d.loc["a1_ind_jobs_decline", "reliability_min"].startswith("E_ind,t0 ≥ 200")
    assert np.isin(d["domain"], list("ABCDGX")).all()
