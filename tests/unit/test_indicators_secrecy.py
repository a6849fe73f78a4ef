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


def _interval(keys, members, value, status, cell, upper=None):
    """What an attacker learns about ``cell``: min and max of its value given every published
    cell, every total = sum of its communes, counts >= 0 (and <= ``upper`` cell by cell).
    Written here with scipy's ``linprog`` on the cell values, independently of the library."""
    from scipy.optimize import linprog

    keys = list(keys)
    hidden = [k for k in keys if status[k] != "V"]
    col = {k: j for j, k in enumerate(hidden)}
    rows, rhs = [], []
    for parent in {f"{lv}|{t}" for lv, t, _ in members.itertuples(index=False) if lv != "commune"} & set(keys):
        lv, t = parent.split("|")
        parts = [f"commune|{c}" for c in members[(members.level == lv) & (members.territory_id == t)].codgeo]
        row, b = np.zeros(len(hidden)), 0.0
        for k, sgn in [(parent, 1.0)] + [(c, -1.0) for c in parts]:
            if k in col:
                row[col[k]] += sgn
            else:
                b -= sgn * value[k]
        if row.any():
            rows.append(row)
            rhs.append(b)
    bounds = [(0, None if upper is None else upper.get(k)) for k in hidden]
    out = []
    for sign in (1, -1):
        c = np.zeros(len(hidden))
        c[col[cell]] = sign
        r = linprog(c, A_eq=np.array(rows) if rows else None, b_eq=rhs or None, bounds=bounds, method="highs")
        out.append(sign * r.fun if r.status == 0 else (np.inf if sign < 0 else -np.inf))
    return out[0], out[1]


def _suppress(keys, members, value, status, upper_value=None):
    from territoires_industrie.indicators import suppression

    keys = pd.Index(keys)
    dm = members[members["level"] == "departement"]
    dep = pd.Series(dm["territory_id"].to_numpy(), index=dm["codgeo"].to_numpy())
    st = suppression.Structure(keys, members, dep)
    qs = [suppression.Quantity("x", "f", pd.Series(value).reindex(keys).to_numpy(float))]
    stat = {"f": pd.Series(status).reindex(keys).to_numpy(object)}
    pairs = []
    if upper_value is not None:
        qs.append(suppression.Quantity("tot", "g", pd.Series(upper_value).reindex(keys).to_numpy(float)))
        stat["g"] = np.full(len(keys), "V", dtype=object)
        pairs = [(0, 1)]
    rep = suppression.Report()
    out = suppression.suppress(st, qs, stat, pairs, rep)
    assert not rep.unprotectable
    return {f: dict(zip(keys, out[f], strict=True)) for f in out}


def _assert_protected(keys, members, value, out, upper=None):
    from territoires_industrie.indicators.suppression import protection

    for k in keys:
        if out[k] in ("A", "B"):
            lo, hi = _interval(keys, members, value, out, k, upper)
            v = value[k]
            p = float(protection(v))
            assert lo <= max(v - p, 0) + 1e-6 and hi >= v + p - 1e-6, (k, v, lo, hi)


def _epci(communes, name="E", dep=None):
    rows = [("commune", c, c) for c in communes] + [("epci", name, c) for c in communes]
    if dep:
        rows += [("departement", dep, c) for c in communes]
    return rows


def test_two_unit_cell_is_protected_by_the_cheapest_other_cell():
    """EPCI E = communes c1..c4. c1 has 2 establishments (frequency -> A, 30 jobs). Publishing
    E and c2..c4 would give c1 = E - c2 - c3 - c4: one more cell must go. The cheapest that
    can carry ±4.5 jobs is c3 (20 jobs, the smallest non-empty commune); c4 (0 jobs) cannot
    go down, E costs more (an EPCI)."""
    members = _members(_epci(["c1", "c2", "c3", "c4"]))
    keys = ["commune|c1", "commune|c2", "commune|c3", "commune|c4", "epci|E"]
    n = pd.Series([2, 10, 5, 0, 17], index=keys)
    jobs = dict(zip(keys, [30.0, 50.0, 20.0, 0.0, 100.0], strict=True))
    st = dict(zip(keys, secrecy.primary_status(n.to_numpy()), strict=True))
    assert st["commune|c1"] == "A"
    out = _suppress(keys, members, jobs, st)["f"]
    assert out == {"commune|c1": "A", "commune|c2": "V", "commune|c3": "D", "commune|c4": "V", "epci|E": "V"}
    _assert_protected(keys, members, jobs, out)


def test_protection_reaches_across_levels():
    """Département D = EPCI E (c1, c2) + EPCI F (c3, c4). E is dominated (B) and both its
    communes are masked: D - F would still give E exactly, so the LP masks F and, to keep F
    itself from being F = c3 + c4, one of c3 / c4 (the smaller). The département stays."""
    communes = ["c1", "c2", "c3", "c4"]
    members = _members([("commune", c, c) for c in communes]
                       + [("epci", "E", "c1"), ("epci", "E", "c2"), ("epci", "F", "c3"), ("epci", "F", "c4")]
                       + [("departement", "D", c) for c in communes])
    keys = ["commune|c1", "commune|c2", "commune|c3", "commune|c4", "epci|E", "epci|F", "departement|D"]
    st = dict(zip(keys, ["B", "A", "V", "V", "B", "V", "V"], strict=True))
    jobs = dict(zip(keys, [900.0, 10.0, 300.0, 200.0, 910.0, 500.0, 1410.0], strict=True))
    out = _suppress(keys, members, jobs, st)["f"]
    assert out["epci|F"] == "D" and out["commune|c4"] == "D" and out["commune|c3"] == "V"
    assert out["departement|D"] == "V"
    _assert_protected(keys, members, jobs, out)


def test_a_primary_cell_cannot_be_narrowed_by_the_total_of_another_table():
    """c1 (A, 45 industrial jobs) has 47 private jobs in all, published. Hidden only with a
    sibling, its upper bound would be 47 < 45 + 6.75: the LP must also hide c1's total-jobs
    cell (or give up the sibling route), since industrial jobs never exceed all jobs."""
    members = _members(_epci(["c1", "c2", "c3"]))
    keys = ["commune|c1", "commune|c2", "commune|c3", "epci|E"]
    ind = dict(zip(keys, [45.0, 30.0, 60.0, 135.0], strict=True))
    tot = dict(zip(keys, [47.0, 300.0, 400.0, 747.0], strict=True))
    st = dict(zip(keys, ["A", "V", "V", "V"], strict=True))
    out = _suppress(keys, members, ind, st, upper_value=tot)
    assert out["g"]["commune|c1"] == "D"  # the total-jobs cell of c1 is hidden too
    upper = {k: (tot[k] if out["g"][k] == "V" else None) for k in keys}
    _assert_protected(keys, members, ind, out["f"], upper)


def test_an_empty_parent_of_a_lone_primary_is_hidden():
    members = _members(_epci(["c1", "c2"]))
    keys = ["commune|c1", "commune|c2", "epci|E"]
    jobs = dict(zip(keys, [40.0, 0.0, 40.0], strict=True))
    out = _suppress(keys, members, jobs, {"commune|c1": "A", "commune|c2": "V", "epci|E": "V"})["f"]
    assert out["epci|E"] == "D"  # c2 = 0 cannot move down: the total has to carry the upward move
    _assert_protected(keys, members, jobs, out)
