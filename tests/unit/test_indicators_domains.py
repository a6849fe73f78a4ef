"""Domain formulas on hand-made tables; every expected value is worked out in the comments."""

import math

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import domains


def _jobs(rows):
    return pd.DataFrame([{"codgeo": c, "division": d, "year": y, "jobs": j, "n_etab": n} for c, d, y, j, n in rows])


@pytest.fixture()
def two_communes():
    # X: div 10 100 -> 80, div 25 50 -> 70 ; Y: div 10 100 -> 90, div 25 150 -> 150
    return _jobs([("X", "10", 2020, 100, 5), ("X", "10", 2025, 80, 4), ("X", "25", 2020, 50, 3), ("X", "25", 2025, 70, 3),
                  ("Y", "10", 2020, 100, 6), ("Y", "10", 2025, 90, 6), ("Y", "25", 2020, 150, 9),
                  ("Y", "25", 2025, 150, 9), ("Y", "47", 2025, 999, 50)])  # division 47 is not industry


def test_shift_share_hand_computed(two_communes):
    """National: div 10 200 -> 170 (g = -0.15), div 25 200 -> 220 (g = +0.10), all 400 -> 390
    (g_N = -0.025).
    X: national effect 150 x -0.025 = -3.75; mix 100(-0.15 + 0.025) + 50(0.10 + 0.025) = -6.25;
       local 100(-0.20 + 0.15) + 50(0.40 - 0.10) = 10; total 0.
    Y: national 250 x -0.025 = -6.25; mix 100(-0.125) + 150(0.125) = 6.25;
       local 100(-0.10 + 0.15) + 150(0 - 0.10) = -10; total -10."""
    ss, nat = domains.shift_share_counts(two_communes, 2020, 2025)
    assert nat["g_N"] == pytest.approx(-0.025)
    assert nat["g_Ns"] == pytest.approx({"10": -0.15, "25": 0.10})
    x, y = ss.loc["X"], ss.loc["Y"]
    assert (x["jobs_ind_t0"], x["jobs_ind_t1"]) == (150, 150)
    assert x["ss_national"] == pytest.approx(-3.75)
    assert x["ss_mix"] == pytest.approx(-6.25)
    assert x["ss_local"] == pytest.approx(10.0)
    assert y["ss_national"] == pytest.approx(-6.25)
    assert y["ss_mix"] == pytest.approx(6.25)
    assert y["ss_local"] == pytest.approx(-10.0)
    assert y["n_etab_ind_t1"] == 15  # 6 + 9, division 47 excluded
    # the three components add up to the total change, territory by territory and summed
    delta = ss["jobs_ind_t1"] - ss["jobs_ind_t0"]
    np.testing.assert_allclose(ss["ss_national"] + ss["ss_mix"] + ss["ss_local"], delta)
    tot = ss.sum()
    assert tot["ss_mix"] == pytest.approx(0.0) and tot["ss_local"] == pytest.approx(0.0)
    # mix squared deviations: X 100 x 0.125^2 + 50 x 0.125^2
    assert x["ss_mix_sq"] == pytest.approx(150 * 0.125**2)


def test_a_domain_indicators_from_counts(two_communes):
    ss, _ = domains.shift_share_counts(two_communes, 2020, 2025)
    df = ss.assign(estab_ind_employer=[12, 30])
    ind = domains.compute_indicators(_complete(df), pd.Series({"jobs_ind_t1": 240.0, "jobs_total_t1": 1239.0}))
    # X: A1 = -100 x 0 / 150 = 0 ; A2 = -100 x 10 / 150 ; A3 = -100 x -6.25 / 150
    assert ind.loc["X", "a1_ind_jobs_decline"] == pytest.approx(0.0)
    assert ind.loc["X", "a2_local_effect"] == pytest.approx(-100 * 10 / 150)
    assert ind.loc["X", "a3_industry_mix"] == pytest.approx(100 * 6.25 / 150)
    # Y: A1 = +4 (10 jobs lost out of 250), A1 = A2 + A3 - 100 g_N
    assert ind.loc["Y", "a1_ind_jobs_decline"] == pytest.approx(4.0)
    assert ind.loc["Y", "a1_ind_jobs_decline"] == pytest.approx(
        ind.loc["Y", "a2_local_effect"] + ind.loc["Y", "a3_industry_mix"] - 100 * -0.025)
    # reliability: >= 200 jobs at t0 and >= 10 employer establishments -> only Y
    assert not ind.loc["X", "reliable__a1_ind_jobs_decline"]
    assert ind.loc["Y", "reliable__a1_ind_jobs_decline"]


def _complete(df: pd.DataFrame) -> pd.DataFrame:
    """Add the non-A counts (zeros) so compute_indicators runs."""
    out = df.copy()
    for c in ("flow_stock_t0", "flow_closures", "flow_creations", "large_t0", "large_lost", "band_n", "band_sum",
              "band_sumsq", "band_max", "active_rated", "unemployed_est", "chom_rp_rated", "unemployed_rp_ze",
              "nonemp_2554", "pop_2554", "unemployed_change", "active_rated_prev", "population", "population_t0",
              "emplt_t1", "emplt_t0", "jobs_total_t1"):
        if c not in out:
            out[c] = 0.0
    return out


def _states(rows):
    return pd.DataFrame([{"siret": s, "year": y, "etat": e, "employer": m, "naf": n, "nomenclature": "NAFRev2"}
                         for s, y, e, m, n in rows])


@pytest.mark.parametrize("chunk", [2_000_000, 3], ids=["one-pass", "3-row-chunks"])
def test_establishment_flows_hand_computed(chunk, monkeypatch):
    """(Same counts when the national states are walked in chunks that cut a unit's years.)
    Window 2022 -> 2025 (t1 = 2025, 3 years), commune C:
    u1 active employer all years -> in S, no flow;
    u2 active employer 2022, closed at end 2023 -> in S, 1 closure;
    u3 absent 2022, created 2024 as employer -> 1 creation;
    u4 active employer 2022 with band 12 (20-49), no longer employer in 2025 -> in S, large, lost;
    u5 active NON-employer 2022, employer 2023 -> not in S, not a creation (it existed);
    u6 active employer 2022 but activity 47.11A (not industry) at that date -> not in S.
    S = 3, C = 1, K = 1, large_t0 = 1, large_lost = 1."""
    ind = pd.DataFrame({"siret": ["u1", "u2", "u3", "u4", "u5", "u6"], "codgeo": ["C"] * 6,
                        "tranche": ["01", "NN", "02", "12", "01", "03"]})
    st = _states(
        [("u1", y, "A", "O", "25.62B") for y in range(2022, 2026)]
        + [("u2", 2022, "A", "O", "25.62B"), ("u2", 2023, "F", "N", "25.62B"), ("u2", 2024, "F", "N", "25.62B"),
           ("u2", 2025, "F", "N", "25.62B")]
        + [("u3", 2024, "A", "O", "10.71C"), ("u3", 2025, "A", "O", "10.71C")]
        + [("u4", 2022, "A", "O", "28.11Z"), ("u4", 2023, "A", "O", "28.11Z"), ("u4", 2024, "A", "O", "28.11Z"),
           ("u4", 2025, "A", "N", "28.11Z")]
        + [("u5", 2022, "A", "N", "25.62B")] + [("u5", y, "A", "O", "25.62B") for y in range(2023, 2026)]
        + [("u6", 2022, "A", "O", "47.11A")] + [("u6", y, "A", "O", "25.62B") for y in range(2023, 2026)]
        + [("u1", 2021, "A", "O", "25.62B")]  # outside the window: ignored
    )
    monkeypatch.setattr(domains, "FLOW_CHUNK_ROWS", chunk)
    f = domains.establishment_flows(ind, st, t1=2025, years=3).loc["C"]
    assert f["flow_stock_t0"] == 3
    assert f["flow_closures"] == 1
    assert f["flow_creations"] == 1
    assert (f["large_t0"], f["large_lost"]) == (1, 1)
    df = _complete(pd.DataFrame({k: [v] for k, v in f.items()}, index=["C"]).assign(
        jobs_ind_t1=0.0, jobs_ind_t0=0.0, ss_local=0.0, ss_mix=0.0, ss_mix_sq=0.0, estab_ind_employer=0,
        n_etab_ind_t1=0.0))
    out = domains.compute_indicators(df, pd.Series({"jobs_ind_t1": 1.0, "jobs_total_t1": 1.0}))
    assert out.loc["C", "b1_net_closure_rate"] == pytest.approx(100 * (1 - 1) / 3)
    assert out.loc["C", "b2_large_estab_loss"] == pytest.approx(100.0)
    assert not out.loc["C", "reliable__b1_net_closure_rate"]  # S < 10


def test_band_counts_and_concentration():
    """Three active employer units with bands 01 (1-2), 12 (20-49), 21 (50-99): estimated
    headcounts sqrt(2), sqrt(980), sqrt(4950); a closed one and a non-employer are ignored.
    H = Σ ê² / max(Σ ê, E)²: with E (URSSAF) = 60 < Σ ê the bands set the scale; with E = 500 the
    rest of the jobs is taken as dispersed and H falls."""
    ind = pd.DataFrame({"siret": list("abcde"), "codgeo": ["C"] * 5, "etat": ["A", "A", "A", "F", "A"],
                        "employer": ["O", "O", "O", "O", "N"], "tranche": ["01", "12", "21", "32", "NN"]})
    b = domains.band_counts(ind).loc["C"]
    e = [math.sqrt(2), math.sqrt(980), math.sqrt(4950)]
    assert b["band_n"] == 3
    assert b["band_sum"] == pytest.approx(sum(e))
    assert b["band_sumsq"] == pytest.approx(2 + 980 + 4950)
    assert b["band_max"] == pytest.approx(math.sqrt(4950))
    h60 = domains.concentration(b["band_sumsq"], b["band_sum"], 60.0)
    h500 = domains.concentration(b["band_sumsq"], b["band_sum"], 500.0)
    assert float(h60.iloc[0]) == pytest.approx(5932 / sum(e) ** 2)
    assert float(h500.iloc[0]) == pytest.approx(5932 / 500**2)


def test_unemployment_counts_require_all_four_quarters():
    communes = pd.DataFrame({"codgeo": ["a", "b"], "ze2020": ["Z1", "Z2"]})
    census = pd.DataFrame({"codgeo": ["a", "b"], "rp1_act1564": [100.0, 300.0], "rp1_chom1564": [10.0, 30.0]})
    q = ["2025-T3", "2025-T4", "2026-T1", "2026-T2"]
    qp = ["2023-T3", "2023-T4", "2024-T1", "2024-T2"]
    chom = pd.DataFrame({"ze2020": ["Z1"] * 8 + ["Z2"] * 3, "quarter": q + qp + q[:3],
                         "rate": [8, 8, 8, 8, 6, 6, 6, 6, 7, 7, 7]})
    u = domains.unemployment_counts(communes, census, chom, q, qp)
    assert u.loc["a", "unemployed_est"] == pytest.approx(8.0)  # 100 actives x 8 %
    assert u.loc["b", "active_rated"] == 0  # Z2 has 3 of 4 quarters: not rated
    assert u.loc["a", "unemployed_change"] == pytest.approx(100 * 0.02)  # 8 % - 6 %
