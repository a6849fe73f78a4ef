"""Issue 20 item 5: an attacker with only the published release recovers no suppressed cell.

The attacker (``secrecy_attacker.py``) reads the long export and the public compositions and
computes, by linear programming, the interval of values of every suppressed cell consistent
with every published number, every total = sum of its communes at every level (commune, EPCI,
zone d'emploi, département, région, Territoires d'industrie of both phases), ``Δ = t1 − t0``,
industrial jobs ≤ all jobs and losses ≤ stock. The judge compares with the true counts."""

from __future__ import annotations

import pandas as pd
import pytest

from . import secrecy_attacker as attacker
from .reliability_world import published_template


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = published_template(tmp_path_factory)
    folder = data / "staging" / "indicators" / (data / "staging" / "indicators" / "CURRENT").read_text().strip()
    membership = pd.read_parquet(folder / "membership_internal.parquet")  # the official compositions
    truth = pd.read_parquet(folder / "counts_internal.parquet")  # for the judge only
    truth.index = truth["level"] + "|" + truth["territory_id"]
    return data, membership, truth


def test_the_lp_attacker_recovers_no_suppressed_cell(world):
    data, membership, truth = world
    pub = attacker.read_published(data, membership)
    res = attacker.audit(pub)
    assert res.inconsistent_rows == 0, "published totals are the sums of their published communes"
    bad = attacker.judge(pub, res, truth)
    primaries = sum(int(truth[f"secret__{f}"].isin(["A", "B"]).sum()) for f in attacker.FAMILY_TARGET)
    print(f"\naudited {len(res.intervals)} hidden cells ({primaries} primary) with {res.n_lp} LPs "
          f"in {res.seconds:.1f} s: {len(bad)} recovered")
    assert primaries > 200 and len(res.intervals) > primaries
    assert bad.empty, bad.to_string()


def test_the_attacker_has_teeth(world):
    """Negative control: the same attacker against the release with its secondary cells (D)
    published finds primary cells inside their protection interval. A test that cannot fail
    proves nothing."""
    data, membership, truth = world
    truth = truth.copy()
    pub = attacker.read_published(data, membership)
    for fam, (q, _) in attacker.FAMILY_TARGET.items():
        d = truth.index[truth[f"secret__{fam}"] == "D"]
        assert len(d), fam
        col = attacker.TRUE_COLUMN[q]
        pub.known[q] = pd.concat([pub.known[q], truth.loc[d, col]])
        pub.known[q] = pub.known[q][~pub.known[q].index.duplicated()]
    res = attacker.audit(pub)
    for fam in attacker.FAMILY_TARGET:
        truth[f"secret__{fam}"] = truth[f"secret__{fam}"].replace("D", "V")
    bad = attacker.judge(pub, res, truth)
    assert len(bad) >= 10, "publishing the secondary cells must expose primary ones"
    assert set(bad["why"]) == {"interval narrower than protection"}
