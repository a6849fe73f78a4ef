"""Statistical secrecy: frequency and dominance rules, secondary suppression."""

import math

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import secrecy


def test_frequency_and_dominance_rules():
    n = [0, 1, 2, 3, 10, 10]
    share = [np.nan, 0.1, 0.1, 0.9, 0.85, 0.851]
    st = secrecy.primary_status(n, share)
    # empty cell published; 1 or 2 units: frequency; > 85 % strictly: dominance
    assert st.tolist() == ["V", "A", "A", "B", "V", "B"]


def test_dominance_share_from_size_bands_calibrated_to_the_total():
    # largest establishment: band 32 (250-499) -> sqrt(250 x 499) = 353.2
    mx = secrecy.band_midpoint(pd.Series(["32"])).iloc[0]
    assert mx == pytest.approx(math.sqrt(250 * 499))
    assert secrecy.band_midpoint(pd.Series(["NN"])).isna().all()
    # bands sum to 400 > URSSAF total 380: all scaled down, share = 353.2 / 400
    assert secrecy.estimated_max_share(mx, 400.0, 380.0) == pytest.approx(mx / 400)
    # bands sum to 400 < URSSAF 1000: the rest is spread over unbanded units
    assert secrecy.estimated_max_share(mx, 400.0, 1000.0) == pytest.approx(mx / 1000)


def test_combine_status_keeps_the_most_restrictive():
    out = secrecy.combine_status(["V", "D", "V", "B"], ["V", "V", "A", "D"])
    assert out.tolist() == ["V", "D", "A", "B"]


def _members(rows):
    return pd.DataFrame(rows, columns=["level", "territory_id", "codgeo"])


def test_two_unit_cell_is_masked_and_its_complement_too():
    """EPCI E = communes c1..c4. c1 has 2 establishments (frequency -> A). Publishing E and
    c2, c3 would give c1 = E - c2 - c3 - c4: the smallest non-zero published part (c3, 20
    jobs) is masked as well (D). c4 (0 jobs) is never chosen: its value is known anyway."""
    members = _members([("commune", c, c) for c in ("c1", "c2", "c3", "c4")] + [("epci", "E", c) for c in ("c1", "c2", "c3", "c4")])
    rel = secrecy.exact_relations(members, [("commune", "epci")])
    assert len(rel) == 4
    keys = ["commune|c1", "commune|c2", "commune|c3", "commune|c4", "epci|E"]
    n = pd.Series([2, 10, 5, 0, 17], index=keys)
    jobs = pd.Series([30.0, 50.0, 20.0, 0.0, 100.0], index=keys)
    st = pd.Series(secrecy.primary_status(n.to_numpy()), index=keys)
    assert st["commune|c1"] == "A"
    out = secrecy.secondary_suppression(st, jobs, rel)
    assert out.to_dict() == {"commune|c1": "A", "commune|c2": "V", "commune|c3": "D", "commune|c4": "V", "epci|E": "V"}


def test_secondary_suppression_cascades_through_levels():
    """Département D = EPCI E (c1, c2) + EPCI F (c3, c4). E is dominated (B) while both of
    its communes are masked too; then D - F would reveal E, so F is masked (D), and then
    F = c3 + c4 with both published would reveal F: the smaller of c3, c4 is masked (D)."""
    communes = ["c1", "c2", "c3", "c4"]
    members = _members([("commune", c, c) for c in communes]
                       + [("epci", "E", "c1"), ("epci", "E", "c2"), ("epci", "F", "c3"), ("epci", "F", "c4")]
                       + [("departement", "D", c) for c in communes])
    rel = secrecy.exact_relations(members, [("commune", "epci"), ("commune", "departement"), ("epci", "departement")])
    keys = ["commune|c1", "commune|c2", "commune|c3", "commune|c4", "epci|E", "epci|F", "departement|D"]
    st = pd.Series(["B", "A", "V", "V", "B", "V", "V"], index=keys)
    jobs = pd.Series([900.0, 10.0, 300.0, 200.0, 910.0, 500.0, 1410.0], index=keys)
    out = secrecy.secondary_suppression(st, jobs, rel)
    assert out["epci|F"] == "D"
    assert out["commune|c4"] == "D" and out["commune|c3"] == "V"
    assert out["departement|D"] == "V"
    # no relation (a parent and its children of one level) left with exactly one masked cell
    frame = rel.assign(pm=rel["parent"].map(out) != "V", cm=rel["child"].map(out) != "V",
                       rid=rel["parent"] + "#" + rel["child"].str.split("|").str[0])
    per_relation = frame.groupby("rid")["cm"].sum() + frame.groupby("rid")["pm"].first().astype(int)
    assert len(per_relation) == 4  # D by communes, D by EPCI, E by communes, F by communes
    assert (per_relation != 1).all()


def test_total_is_masked_when_only_empty_parts_remain():
    members = _members([("commune", "c1", "c1"), ("commune", "c2", "c2"), ("epci", "E", "c1"), ("epci", "E", "c2")])
    rel = secrecy.exact_relations(members, [("commune", "epci")])
    st = pd.Series(["A", "V", "V"], index=["commune|c1", "commune|c2", "epci|E"])
    out = secrecy.secondary_suppression(st, pd.Series([40.0, 0.0, 40.0], index=st.index), rel)
    assert out["epci|E"] == "D" and out["commune|c2"] == "V"


def test_relations_only_where_children_cover_the_parent_exactly():
    # EPCI X spans départements 01 and 02: no EPCI -> département relation for either
    members = _members([("epci", "X", "a"), ("epci", "X", "b"), ("epci", "Y", "c"),
                        ("departement", "01", "a"), ("departement", "01", "c"), ("departement", "02", "b")])
    assert secrecy.exact_relations(members, [("epci", "departement")]).empty
    members = _members([("epci", "X", "a"), ("epci", "Y", "c"), ("departement", "01", "a"), ("departement", "01", "c")])
    rel = secrecy.exact_relations(members, [("epci", "departement")])
    assert sorted(rel["child"]) == ["epci|X", "epci|Y"]
