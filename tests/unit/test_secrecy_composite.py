"""An attacker who knows every published figure learns nothing about a suppressed cell from the
composite (issue 20).

The composite used to be computed from the exact values, secret cells included: a territory's
published domain score X_d is its rank, and with the other indicators of the domain published,
that rank brackets the suppressed indicator between the values of its neighbours in the ranking.
The guarantee now is *non-interference*: every published column of the composite (scores,
domain scores, ranks, percentiles, deciles, Monte Carlo intervals and probabilities, missing
counts) and of the long table is the same whatever the suppressed values are. The test changes
them, from outside the rule that masks them, and compares.
"""

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import release, secrecy
from territoires_industrie.indicators.definitions import SCORED
from territoires_industrie.indicators.uncertainty import MCConfig

from .indicators_world import PERIODS, make_world

CONFIG = release.ReleaseConfig(mc=MCConfig(draws=120, seed=9))


def _columns_of(wide: pd.DataFrame, k: str) -> list[str]:
    """Every internal column that carries indicator ``k``'s value or its noise."""
    names = {k, f"{k}__pub", f"{k}__alt", f"{k}__alt__pub", f"{k}__w", f"{k}__alt__w", f"var__{k}", f"var__{k}__alt"}
    if k == "b3_concentration_class":
        names |= {"b3_concentration"}
    return [c for c in wide.columns if c in names]


def _run(world, monkeypatch, garble: bool):
    """The release; with ``garble``, every value of a suppressed scored cell is replaced by noise
    right after the secrecy statuses are decided (statuses themselves unchanged)."""
    original = release.secrecy_status
    touched = {"cells": 0}

    def spy(wide, members, report=None):
        st = original(wide, members, report)
        if garble:
            rng = np.random.default_rng(20)
            both = pd.concat([wide, st], axis=1)
            for k in SCORED:
                secret = release.indicator_status(both, k) != secrecy.PUBLISHED
                touched["cells"] += int(secret.sum())
                for c in _columns_of(wide, k):
                    noise = rng.normal(0.0, 50.0, size=int(secret.sum()))
                    wide.loc[secret, c] = np.abs(wide.loc[secret, c].fillna(1.0).to_numpy() * 7.0 + noise)
        return st

    monkeypatch.setattr(release, "secrecy_status", spy)
    w = world
    res = release.compute_release(w["communes"], w["ti"], w["sirene"], w["urssaf"], w["chomage"], w["census"],
                                  PERIODS, industrial=w["industrial"], states=w["states"], config=CONFIG)
    return res, touched["cells"]


@pytest.fixture(scope="module")
def world():
    return make_world()


def test_published_composite_does_not_move_when_the_suppressed_values_change(world, monkeypatch):
    clean, _ = _run(world, monkeypatch, garble=False)
    forged, n_secret = _run(world, monkeypatch, garble=True)
    assert n_secret > 20, "the world must hold suppressed scored cells for the test to mean anything"
    pd.testing.assert_frame_equal(clean.composite, forged.composite, check_exact=True)
    pd.testing.assert_frame_equal(clean.long, forged.long, check_exact=True)


def test_the_composite_counts_a_secret_indicator_as_missing(world, monkeypatch):
    res, _ = _run(world, monkeypatch, garble=False)
    long, comp = res.long, res.composite
    scored = long[long["indicator_id"].isin(SCORED)]
    missing = (scored["value"].isna()).groupby([scored["level"], scored["territory_id"]]).sum()
    secret = (scored["secret_status"] != "V").groupby([scored["level"], scored["territory_id"]]).sum()
    got = comp.set_index(["level", "territory_id"])["n_indicators_missing"]
    got = got[~got.index.duplicated()]
    assert (secret.reindex(got.index) > 0).any()
    assert (got >= secret.reindex(got.index)).all()
    assert (got == missing.reindex(got.index)).all()
