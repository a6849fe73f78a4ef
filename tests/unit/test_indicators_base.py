"""Counts per commune summed to every level, on a 3-commune fixture; every expected value
worked out by hand."""

import pandas as pd
import pytest
from territoires_industrie.indicators import base


@pytest.fixture()
def fixture():
    communes = pd.DataFrame({
        "codgeo": ["00001", "00002", "00003"], "epci": ["E1", "E1", "E2"], "ze2020": ["Z1", "Z1", "Z2"],
        "dep": ["25", "25", "25"], "reg": ["27", "27", "27"],
    })
    sirene = pd.DataFrame({
        "codgeo": ["00001", "00001", "00001", "00002", "00003"],
        "is_industrial": [True, True, False, True, True],
        "etat": ["A", "A", "A", "F", "A"],
        "employer": ["O", "N", "O", "O", "O"],
        "tranche": ["01", "NN", "12", "", "02"],
        "n_etab": [4, 6, 100, 3, 2],
    })
    rows = []
    # commune, division, year, jobs
    for c, d, y, j in [("00001", "25", 2020, 100), ("00001", "25", 2025, 80), ("00001", "47", 2025, 120),
                       ("00001", "47", 2020, 100), ("00002", "10", 2020, 50), ("00002", "10", 2025, 60),
                       ("00003", "47", 2025, 40), ("00003", "47", 2020, 40)]:
        rows.append({"codgeo": c, "division": d, "year": y, "jobs": j, "n_etab": 1, "is_industrial": d in ("25", "10")})
    urssaf = pd.DataFrame(rows)
    q = ["2025-T3", "2025-T4", "2026-T1", "2026-T2"]
    chom = pd.DataFrame({"ze2020": ["Z1"] * 4 + ["Z2"] * 4, "quarter": q * 2, "rate": [8, 8, 10, 10, 5, 5, 5, 5]})
    census = pd.DataFrame({"codgeo": ["00001", "00002", "00003"], "rp1_act1564": [1000.0, 500.0, 500.0],
                           "rp1_chom1564": [90.0, 45.0, 25.0], "rp1_pop": [2000.0, 1000.0, 900.0],
                           "rp0_pop": [2100.0, 1000.0, 900.0]})
    ti = pd.DataFrame({"ti_id": ["T1", "T1"], "codgeo": ["00002", "00003"]})
    return communes, sirene, urssaf, chom, census, ti, q


def test_levels_sum_counts_then_divide(fixture):
    communes, sirene, urssaf, chom, census, ti, q = fixture
    cb, national_rates = base.commune_base(communes, sirene, urssaf, chom, census, t1=2025, quarters=q)
    agg, excluded = base.aggregate_levels(cb, base.memberships(communes, ti))
    assert excluded.empty
    wide = base.derive(agg, base.national_totals(cb)).set_index(["level", "territory_id"])

    e1 = wide.loc[("epci", "E1")]
    assert e1["estab_ind_active"] == 10  # 4 + 6 active industrial; 3 closed excluded
    assert e1["estab_ind_employer"] == 4
    assert e1["jobs_ind"] == 140  # 80 + 60
    assert e1["jobs_total"] == 260  # 80 + 120 + 60
    assert e1["ind_share"] == pytest.approx(100 * 140 / 260)
    # national: ind 140 / total 300
    assert e1["ind_lq"] == pytest.approx((140 / 260) / (140 / 300))
    assert e1["jobs_ind_change_5y"] == pytest.approx(100 * (140 - 150) / 150)
    assert e1["a1_ind_jobs_decline"] == pytest.approx(-100 * (140 - 150) / 150)
    # ZE rates: Z1 mean 9 %, both communes of E1 in Z1
    assert e1["unemployment_rate"] == pytest.approx(9.0)
    # population change 3000 -> 3100 from 2015 to 2021: decline = -100 * (3000 - 3100) / 3100
    assert e1["d1_population_decline"] == pytest.approx(-100 * (3000 - 3100) / 3100)

    # TI T1 = communes 2 (Z1, 9 %, 500 actives) and 3 (Z2, 5 %, 500 actives): (45 + 25) / 1000
    t1 = wide.loc[("ti", "T1")]
    assert t1["unemployment_rate"] == pytest.approx(7.0)
    assert t1["jobs_ind_change_5y"] == pytest.approx(100 * (60 - 50) / 50)
    assert t1["estab_ind_active"] == 2

    # département = everything: rate = (1500 * 9 + 500 * 5) / 2000 = 8 (not the mean of ZE rates, 7)
    assert wide.loc[("departement", "25"), "unemployment_rate"] == pytest.approx(8.0)
    assert wide.loc[("departement", "25"), "ind_lq"] == pytest.approx(1.0)
    # national industrial growth 150 -> 140
    assert national_rates["g_N"] == pytest.approx(140 / 150 - 1)


def test_census_adjusted_unemployment_rate(fixture):
    """C1 = mapped ZE rate x clip(census rate of the territory / census rate of its ZE mix).

    Census rates: Z1 = (90 + 45) / 1500 = 9 %, Z2 = 25 / 500 = 5 %.
    Commune 1: own census rate 9 %, ZE census 9 % -> ratio 1 -> C1 = 9 %.
    TI T1 (communes 2 and 3): census rate (45 + 25) / 1000 = 7 %, ZE-mix census rate
    (500 x 9 % + 500 x 5 %) / 1000 = 7 % -> ratio 1 -> C1 = mapped 7 %.
    EPCI E2 (commune 3): census 5 %, ZE census 5 % -> 5 %.
    """
    communes, sirene, urssaf, chom, census, ti, q = fixture
    census = census.assign(rp1_chom1564=[90.0, 45.0, 25.0])
    cb, _ = base.commune_base(communes, sirene, urssaf, chom, census, t1=2025, quarters=q)
    agg, _ = base.aggregate_levels(cb, base.memberships(communes, ti))
    wide = base.derive(agg, base.national_totals(cb)).set_index(["level", "territory_id"])
    assert wide.loc[("commune", "00001"), "c1_unemployment_rate"] == pytest.approx(9.0)
    assert wide.loc[("ti", "T1"), "c1_unemployment_rate"] == pytest.approx(7.0)
    # commune 2 alone: census 45/500 = 9 %, ZE 9 % -> mapped 9 %
    assert wide.loc[("commune", "00002"), "c1_unemployment_rate"] == pytest.approx(9.0)

    # now commune 2 has a census rate twice its ZE's: 90/500 = 18 %; Z1 census (90+90)/1500 = 12 %
    census2 = census.assign(rp1_chom1564=[90.0, 90.0, 25.0])
    cb, _ = base.commune_base(communes, sirene, urssaf, chom, census2, t1=2025, quarters=q)
    agg, _ = base.aggregate_levels(cb, base.memberships(communes, ti))
    wide = base.derive(agg, base.national_totals(cb)).set_index(["level", "territory_id"])
    assert wide.loc[("commune", "00002"), "c1_unemployment_rate"] == pytest.approx(9.0 * 18 / 12)
    assert wide.loc[("commune", "00001"), "c1_unemployment_rate"] == pytest.approx(9.0 * 9 / 12)


def test_partly_covered_territory_is_excluded_not_published(fixture):
    communes, sirene, urssaf, chom, census, ti, q = fixture
    census = census[census["codgeo"] != "00003"]  # no census for commune 3
    cb, _ = base.commune_base(communes, sirene, urssaf, chom, census, t1=2025, quarters=q)
    agg, excluded = base.aggregate_levels(cb, base.memberships(communes, ti))
    published = set(zip(agg["level"], agg["territory_id"]))
    partial = set(zip(excluded["level"], excluded["territory_id"]))
    assert ("epci", "E2") not in published | partial  # no data at all: outside coverage
    assert ("ti", "T1") in partial and ("ti", "T1") not in published  # 1 of 2 communes covered
    assert ("epci", "E1") in published


def test_commune_without_urssaf_rows_counts_zero_jobs(fixture):
    """Coverage is the census: a commune with no employer establishment has 0 jobs, and
    its EPCI is still published (it used to be dropped as 'no data')."""
    communes, sirene, urssaf, chom, census, ti, q = fixture
    urssaf = urssaf[urssaf["codgeo"] != "00003"]
    cb, _ = base.commune_base(communes, sirene, urssaf, chom, census, t1=2025, quarters=q)
    row = cb.set_index("codgeo").loc["00003"]
    assert row["jobs_total_t1"] == 0 and row["jobs_ind_t1"] == 0
    agg, _ = base.aggregate_levels(cb, base.memberships(communes, ti))
    assert ("epci", "E2") in set(zip(agg["level"], agg["territory_id"]))
