"""Composite index: exponential transform, robust z, domain ranks, weights, monotonicity."""

import math

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import composite
from territoires_industrie.indicators.definitions import DOMAIN_OF, SCORED

ONE_PER_DOMAIN = {"a": "A", "b": "B", "c": "C", "d": "D"}


def x_of(r: float) -> float:
    return -23.0 * math.log(1.0 - r * (1.0 - math.exp(-100.0 / 23.0)))


def test_exponential_transform_bounds_and_tail_share():
    assert composite.exp_transform(0.0) == pytest.approx(0.0)
    assert composite.exp_transform(1.0) == pytest.approx(100.0)
    n = 100_000
    x = composite.exp_transform(np.arange(1, n + 1) / n)
    assert np.all(np.diff(x) > 0)  # strictly increasing
    # X > 50  <=>  R > (1 - e^(-50/23)) / (1 - e^(-100/23)) = 0.89792  ->  10.2 % of a uniform grid
    assert (x > 50).mean() == pytest.approx(0.102, abs=0.0006)


def test_robust_z_parameters_by_hand():
    x = pd.Series([1.0, 2.0, 3.0, 4.0, 100.0])
    p = composite.fit_params(x)
    # P1 / P99 of the 5 values (linear interpolation): 1.04 and 96.16
    assert p["lo"] == pytest.approx(1.04) and p["hi"] == pytest.approx(96.16)
    # winsorised values 1.04, 2, 3, 4, 96.16 -> median 3, MAD median(1.96, 1, 0, 1, 93.16) = 1
    assert p["median"] == pytest.approx(3.0)
    assert p["scale"] == pytest.approx(1.4826)
    assert composite.standardise([5.0], p)[0] == pytest.approx(2 / 1.4826)
    # no spread at all: z = 0, missing stays missing
    flat = composite.fit_params(pd.Series([2.0, 2.0, 2.0]))
    np.testing.assert_array_equal(composite.standardise([2.0, np.nan], flat), [0.0, np.nan])


def test_composite_of_four_territories_by_hand():
    v = pd.DataFrame({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1], "c": [2, 4, 1, 3], "d": [1, 2, 4, 3]},
                     index=["u1", "u2", "u3", "u4"], dtype=float)
    regions = pd.Series(["R1", "R1", "R2", "R2"], index=v.index)
    model, out = composite.fit_reference("set", "epci", v, ONE_PER_DOMAIN, regions)
    # domain ranks / 4 (1 = most difficult = highest value); u1: A .25, B 1, C .5, D .25
    expected = {
        "u1": 0.35 * x_of(.25) + 0.25 * x_of(1.0) + 0.30 * x_of(.5) + 0.10 * x_of(.25),
        "u2": 0.35 * x_of(.5) + 0.25 * x_of(.75) + 0.30 * x_of(1.0) + 0.10 * x_of(.5),
        "u3": 0.35 * x_of(.75) + 0.25 * x_of(.5) + 0.30 * x_of(.25) + 0.10 * x_of(1.0),
        "u4": 0.35 * x_of(1.0) + 0.25 * x_of(.25) + 0.30 * x_of(.75) + 0.10 * x_of(.75),
    }
    for u, s in expected.items():
        assert out.loc[u, "score"] == pytest.approx(s)
    assert out.loc["u1", "domain_b"] == pytest.approx(100.0)
    order = sorted(expected, key=expected.get, reverse=True)  # u4 (~57.4), u2, u1, u3
    assert out.loc[order, "rank_national"].tolist() == [1, 2, 3, 4]
    assert out.loc[order[0], "decile"] == 10 and out.loc[order[-1], "decile"] == 3  # percentile 25 -> decile 3
    assert out.loc[order[0], "percentile_national"] == pytest.approx(100.0)
    # regional ranks: within R1 (u1, u2) and R2 (u3, u4)
    assert out.loc["u4", "rank_regional"] == 1 and out.loc["u3", "rank_regional"] == 2
    # a member placed again in its own set gets the same score and percentile
    placed = model.place(v.loc[["u2"]], regions.loc[["u2"]])
    assert placed.loc["u2", "score"] == pytest.approx(out.loc["u2", "score"])
    assert placed.loc["u2", "percentile_national"] == pytest.approx(out.loc["u2", "percentile_national"])
    assert placed.loc["u2", "rank_equivalent"] == out.loc["u2", "rank_national"]
    # serialisable
    again = composite.ReferenceModel.from_dict(model.to_dict())
    assert again.place(v.loc[["u3"]]).loc["u3", "score"] == pytest.approx(out.loc["u3", "score"])


def test_weights_are_configurable_and_validated():
    v = pd.DataFrame({"a": [1, 2, 3], "b": [3, 2, 1], "c": [1, 1, 2], "d": [2, 1, 3]}, index=list("xyz"), dtype=float)
    _, only_a = composite.fit_reference("s", "epci", v, ONE_PER_DOMAIN, weights={"A": 1, "B": 0, "C": 0, "D": 0})
    np.testing.assert_allclose(only_a["score"], only_a["domain_a"])
    assert composite.normalise_weights({"A": 35, "B": 25, "C": 30, "D": 10}) == pytest.approx(
        {"A": .35, "B": .25, "C": .30, "D": .10})
    with pytest.raises(ValueError, match="missing domain"):
        composite.normalise_weights({"A": 1, "B": 1})


@pytest.mark.parametrize("domain", ["A", "B", "C", "D"])
def test_composite_is_monotone_in_each_domain(domain):
    rng = np.random.default_rng(7)
    v = pd.DataFrame(rng.normal(size=(60, len(SCORED))), columns=list(SCORED), index=[f"t{i}" for i in range(60)])
    _, before = composite.fit_reference("s", "epci", v, DOMAIN_OF)
    ind = next(k for k in SCORED if DOMAIN_OF[k] == domain)
    for unit in ("t3", "t17", "t42"):
        worse = v.copy()
        worse.loc[unit, ind] = v[ind].max() + 1.0  # more difficulty on one indicator of the domain
        _, after = composite.fit_reference("s", "epci", worse, DOMAIN_OF)
        assert after.loc[unit, f"domain_{domain.lower()}"] >= before.loc[unit, f"domain_{domain.lower()}"]
        assert after.loc[unit, "score"] >= before.loc[unit, "score"] - 1e-9
        assert after.loc[unit, "rank_national"] <= before.loc[unit, "rank_national"]


def test_missing_indicators_count_as_median_and_are_reported():
    v = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [1.0, 2.0, 3.0], "c": [1.0, 2.0, 3.0], "d": [1.0, 2.0, 3.0]},
                     index=list("xyz"))
    _, out = composite.fit_reference("s", "epci", v, ONE_PER_DOMAIN)
    assert out.loc["z", "n_indicators_missing"] == 1
    assert out["score"].between(0, 100).all()


def test_generated_data_dictionary_is_up_to_date():
    """docs/data-dictionary.md is generated from the indicator definitions."""
    from pathlib import Path

    from territoires_industrie.indicators.definitions import INDICATOR_IDS
    from territoires_industrie.indicators.dictionary import render_markdown

    text = render_markdown()
    for k in INDICATOR_IDS:
        assert f"`{k}`" in text
    doc = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
    assert doc.read_text(encoding="utf-8") == text, (
        "docs/data-dictionary.md is stale: run `.venv/bin/python -m territoires_industrie.indicators.dictionary "
        "> docs/data-dictionary.md`")
