"""Empirical-Bayes shrinkage: scales, the weight formula, who gets shrunk."""

import math

import numpy as np
import pytest
from territoires_industrie.indicators import shrinkage


def test_logit_and_logratio_scales_by_hand():
    z, s2 = shrinkage.logit_scale([3], [10])
    assert z[0] == pytest.approx(math.log(3.5 / 7.5))
    assert s2[0] == pytest.approx(1 / 3.5 + 1 / 7.5)
    y, v = shrinkage.logratio_scale([90], [100])
    assert y[0] == pytest.approx(math.log(90.5 / 100.5))
    assert v[0] == pytest.approx(1 / 90.5 + 1 / 100.5)
    z, _ = shrinkage.logit_scale([0], [0])  # empty denominator: no value
    assert np.isnan(z[0])


def test_weight_formula_with_moment_estimate_of_tau2():
    """Six territories around a parent value 0, sampling variance 0.01 each (equal variances:
    the weighted moment estimate (Σ d²/s² - k) / (k/s²) is mean(d²) - s²):
    tau² = mean(d²) - s² = (2 x (0.01 + 0.04 + 0.09)) / 6 - 0.01 = 0.0366667,
    w = tau² / (tau² + s²) = 0.0366667 / 0.0466667 = 0.785714; x* = w x + (1 - w) x_P."""
    x = np.array([0.1, -0.1, 0.2, -0.2, 0.3, -0.3])
    s2 = np.full(6, 0.01)
    parent = np.zeros(6)
    pid = np.array(["P"] * 6, dtype=object)
    apply = np.array([True, False, False, False, False, False])
    xs, w, tau2 = shrinkage.shrink(x, s2, parent, pid, apply)
    assert tau2[0] == pytest.approx(0.28 / 6 - 0.01)
    assert w[0] == pytest.approx((0.28 / 6 - 0.01) / (0.28 / 6))
    assert xs[0] == pytest.approx(w[0] * 0.1)
    # reliable territories keep their value with weight 1
    np.testing.assert_array_equal(w[1:], 1.0)
    np.testing.assert_array_equal(xs[1:], x[1:])


def test_small_territory_is_pulled_harder_than_a_large_one():
    """Same observed value 0.5, sampling variance 1 (tiny counts) vs 0.001 (large counts).
    v = 1/s² = (1, 1000, 100 x 5), Σv = 1501, Q = Σ v d² = 0.25 + 250 + 100 x 0.025 = 252.75,
    tau² = (Q - 7) / Σv = 0.163724; w = tau² / (tau² + s²) = 0.14069 and 0.99393."""
    x = np.array([0.5, 0.5, 0.0, 0.1, -0.1, 0.05, -0.05])
    s2 = np.array([1.0, 0.001, 0.01, 0.01, 0.01, 0.01, 0.01])
    xs, w, tau2 = shrinkage.shrink(x, s2, np.zeros(7), np.array(["P"] * 7, dtype=object), np.ones(7, bool))
    assert tau2[0] == pytest.approx((252.75 - 7) / 1501)
    assert w[0] == pytest.approx(0.163724 / 1.163724, abs=1e-5)
    assert w[1] == pytest.approx(0.163724 / 0.164724, abs=1e-5)
    assert xs[0] == pytest.approx(w[0] * 0.5) and abs(xs[0]) < abs(xs[1])


def test_tau2_pooled_when_parent_has_few_children_and_floored():
    # parent Q has 2 children (< 5): uses the pooled estimate of the level
    x = np.array([0.1, -0.1, 0.2, -0.2, 0.3, -0.3, 1.0, -1.0])
    s2 = np.full(8, 0.01)
    pid = np.array(["P"] * 6 + ["Q"] * 2, dtype=object)
    tau2 = shrinkage.estimate_tau2(x, s2, np.zeros(8), pid)
    pooled = (0.28 + 2.0) / 8 - 0.01
    assert tau2[6] == pytest.approx(pooled)
    assert tau2[0] == pytest.approx(0.28 / 6 - 0.01)
    # all deviations smaller than the noise: tau² floored at 1 % of the median sampling variance
    tiny = shrinkage.estimate_tau2(np.full(6, 0.001), np.full(6, 0.04), np.zeros(6), np.array(["P"] * 6, dtype=object))
    np.testing.assert_allclose(tiny, 0.0004)


def test_logit_back_removes_the_half_correction():
    """Issue 20 item 6: 0 events out of 3, shrunk toward a parent with 0 events, is published as
    0 %, not 12.5 % (the ½ correction was left in the back-transform)."""
    import numpy as np
    from territoires_industrie.indicators import shrinkage

    z, _ = shrinkage.logit_scale([0, 1, 3, 2], [3, 4, 3, 10])
    back = shrinkage.logit_back(z, [3, 4, 3, 10])
    assert np.allclose(back, [0.0, 25.0, 100.0, 20.0])  # exact inverse on the territory's own scale
    parent_z, _ = shrinkage.logit_scale([0], [400])
    xs, w, _ = shrinkage.shrink(z[:1], [1.0], parent_z, ["ze"], [True])
    assert 0 < w[0] < 1 and shrinkage.logit_back(xs, [3])[0] == 0.0
    assert np.isnan(shrinkage.logit_back([0.0], [0])[0])
