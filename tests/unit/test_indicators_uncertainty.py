"""Monte Carlo uncertainty of the composite ranks: reproducibility and invariants."""

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import composite, uncertainty
from territoires_industrie.indicators.definitions import DOMAIN_OF, SCORED


@pytest.fixture(scope="module")
def variants():
    rng = np.random.default_rng(11)
    idx = [f"t{i:03d}" for i in range(120)]
    raw = pd.DataFrame(rng.normal(size=(120, len(SCORED))), columns=list(SCORED), index=idx)
    raw.loc["t000"] = 8.0  # far worse than everybody on every indicator
    raw.loc["t001"] = -8.0  # far better
    sd = pd.DataFrame(0.3, columns=list(SCORED), index=idx)
    shrunk = raw * 0.9
    alt = raw.copy()
    alt["a1_ind_jobs_decline"] = alt["a1_ind_jobs_decline"] + rng.normal(0, 0.5, 120)
    v = {(False, False): (raw, sd), (True, False): (shrunk, sd * 0.9), (False, True): (alt, sd),
         (True, True): (alt * 0.9, sd * 0.9)}
    _, ref = composite.fit_reference("s", "epci", shrunk, DOMAIN_OF)
    return v, ref["rank_national"].to_numpy()


def test_fixed_seed_reproduces_exactly(variants):
    v, ref = variants
    cfg = uncertainty.MCConfig(draws=300, seed=42, chunk=64)
    a, sa = uncertainty.monte_carlo(v, DOMAIN_OF, ref, config=cfg, name="epci")
    b, sb = uncertainty.monte_carlo(v, DOMAIN_OF, ref, config=cfg, name="epci")
    pd.testing.assert_frame_equal(a, b)
    assert sa["avg_rank_shift"] == sb["avg_rank_shift"]
    c, _ = uncertainty.monte_carlo(v, DOMAIN_OF, ref, config=uncertainty.MCConfig(draws=300, seed=43), name="epci")
    assert not a["mc_rank_median"].equals(c["mc_rank_median"]) or not a["p_top20"].equals(c["p_top20"])
    # the chunk size (memory bound) does not change the result
    d, _ = uncertainty.monte_carlo(v, DOMAIN_OF, ref, config=uncertainty.MCConfig(draws=300, seed=42, chunk=300),
                                   name="epci")
    pd.testing.assert_frame_equal(a, d)


def test_rank_distribution_invariants(variants):
    v, ref = variants
    out, summary = uncertainty.monte_carlo(v, DOMAIN_OF, ref, config=uncertainty.MCConfig(draws=1000, seed=1))
    assert summary["draws"] == 1000 and summary["units"] == 120
    assert out["p_top10"].between(0, 1).all() and out["p_top20"].between(0, 1).all()
    assert (out["p_top20"] >= out["p_top10"]).all()
    assert (out["mc_rank_p05"] <= out["mc_rank_median"]).all() and (out["mc_rank_median"] <= out["mc_rank_p95"]).all()
    assert out[["mc_rank_p05", "mc_rank_p95"]].stack().between(1, 120).all()
    # the clear extremes are certain: always first / never in the top 20 %
    assert out.loc["t000", "mc_rank_median"] == 1 and out.loc["t000", "p_top10"] == 1.0
    assert not out.loc["t000", "uncertain"]
    assert out.loc["t001", "p_top20"] == 0.0 and not out.loc["t001", "uncertain"]
    # uncertain = the 90 % interval straddles the top-10 % (rank 12) or top-20 % (rank 24) threshold
    k10, k20 = summary["top10_threshold_rank"], summary["top20_threshold_rank"]
    assert (k10, k20) == (12, 24)
    straddle = ((out["mc_rank_p05"] <= k10) & (out["mc_rank_p95"] > k10)) | (
        (out["mc_rank_p05"] <= k20) & (out["mc_rank_p95"] > k20))
    pd.testing.assert_series_equal(out["uncertain"], straddle, check_names=False)
    assert summary["avg_rank_shift"] > 0
    assert sum(summary["draws_by_method"].values()) == 1000


def test_no_uncertainty_means_no_rank_change():
    """One variant, no noise, weights fixed (alpha huge), reference method only: every draw
    reproduces the reference ranking."""
    rng = np.random.default_rng(3)
    vals = pd.DataFrame(rng.normal(size=(40, len(SCORED))), columns=list(SCORED))
    _, ref = composite.fit_reference("s", "epci", vals, DOMAIN_OF)
    cfg = uncertainty.MCConfig(draws=50, seed=5, alpha=1e9, p_equal_weights=0.0, method_probs=(1.0, 0.0, 0.0),
                               count_noise=False)
    out, summary = uncertainty.monte_carlo({(False, False): (vals, None)}, DOMAIN_OF, ref["rank_national"].to_numpy(),
                                           config=cfg)
    np.testing.assert_array_equal(out["mc_rank_median"].to_numpy(), ref["rank_national"].to_numpy())
    assert summary["avg_rank_shift"] == pytest.approx(0.0)
