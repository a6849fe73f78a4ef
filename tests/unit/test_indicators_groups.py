"""Indicators of a user-given group of EPCI (candidacy): sums of counts, secrecy, percentiles."""

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.indicators import groups, release
from territoires_industrie.indicators.uncertainty import MCConfig

from .indicators_world import PERIODS, make_world


@pytest.fixture(scope="module")
def inputs():
    w = make_world()
    res = release.compute_release(w["communes"], w["ti"], w["sirene"], w["urssaf"], w["chomage"], w["census"], PERIODS,
                                  industrial=w["industrial"], states=w["states"],
                                  config=release.ReleaseConfig(mc=MCConfig(draws=100, seed=3)))
    terr = res.territories.assign(label=None)
    comp = res.composite
    return groups.GroupInputs(counts=res.counts, territories=terr, models=res.models, national=res.national,
                              periods=PERIODS.as_dict(), epci_composite=comp[comp["reference_set"] == "epci"],
                              release_id="2026-11"), res


def _value(result, ind):
    return result.indicators.set_index("indicator_id").loc[ind, "value"]


def test_group_sums_counts_of_its_epci(inputs):
    gi, res = inputs
    c = gi.counts[gi.counts["level"] == "epci"].set_index("territory_id")
    a, b = "200000010", "200000011"
    out = groups.compute_group([a, "200000011 "], gi, label="Candidature X")  # codes are normalised
    assert out.members == [a, b] and out.unknown_codes == []
    j1 = c.loc[[a, b], "jobs_ind_t1"].sum()
    j0 = c.loc[[a, b], "jobs_ind_t0"].sum()
    assert _value(out, "a1_ind_jobs_decline") == pytest.approx(-100 * (j1 - j0) / j0)
    assert _value(out, "jobs_ind") == j1
    s = c.loc[[a, b], "flow_stock_t0"].sum()
    net = (c.loc[[a, b], "flow_closures"] - c.loc[[a, b], "flow_creations"]).sum()
    assert _value(out, "b1_net_closure_rate") == pytest.approx(100 * net / s)
    pop = c.loc[[a, b], "pop_2554"].sum()
    non = c.loc[[a, b], "nonemp_2554"].sum()
    assert _value(out, "c2_non_employment_25_54") == pytest.approx(100 * non / pop)
    # the group is the sum: not the mean of the two EPCI rates
    rates = res.long[(res.long["level"] == "epci") & (res.long["indicator_id"] == "c2_non_employment_25_54")]
    mean_rate = rates.set_index("territory_id").loc[[a, b], "value_raw"].mean()
    assert _value(out, "c2_non_employment_25_54") != pytest.approx(mean_rate, abs=1e-9)
    assert out.summary["n_members"] == 2 and out.summary["label"] == "Candidature X"


def test_group_is_placed_in_reference_sets(inputs):
    gi, res = inputs
    out = groups.compute_group(["200000012", "200000013", "200000014"], gi)
    comp = out.composite.set_index("reference_set")
    assert set(comp.index) == {"ti_2023_2027", "ze", "epci"}
    assert comp["score"].between(0, 100).all()
    assert comp["percentile_national"].between(0, 100).all()
    assert comp.loc["epci", "n_reference"] == 8
    pct = out.indicators.set_index("indicator_id")["pct_epci"]
    assert pct.dropna().between(0, 100).all()
    assert np.isnan(pct["b3_concentration_class"])  # class only, no percentile of the raw index


def test_single_reliable_epci_group_equals_its_own_composite(inputs):
    gi, res = inputs
    long = res.long[res.long["level"] == "epci"]
    weights = long.groupby("territory_id")["shrink_weight"].min()
    epci = weights.index[weights == 1.0][0]  # nothing shrunk: published = raw values
    out = groups.compute_group([epci], gi)
    own = res.composite[(res.composite["reference_set"] == "epci") & (res.composite["territory_id"] == epci)].iloc[0]
    placed = out.composite.set_index("reference_set").loc["epci"]
    assert placed["score"] == pytest.approx(own["score"])
    assert placed["percentile_national"] == pytest.approx(own["percentile_national"])


def test_group_cell_masked_when_exactly_one_member_is_masked(inputs):
    gi, _ = inputs
    counts = gi.counts.copy()
    a, b = "200000015", "200000016"
    sel = (counts["level"] == "epci") & counts["territory_id"].isin([a, b])
    counts.loc[sel, "secret__ind1"] = np.where(counts.loc[sel, "territory_id"] == a, "B", "V")
    out = groups.compute_group([a, b], groups.GroupInputs(**{**gi.__dict__, "counts": counts}))
    ind = out.indicators.set_index("indicator_id")
    assert ind.loc["jobs_ind", "secret_status"] == "D"
    assert np.isnan(ind.loc["jobs_ind", "value"]) and np.isnan(ind.loc["a1_ind_jobs_decline", "value"])
    assert ind.loc["c1_unemployment_rate", "secret_status"] == "V"  # persons: not subject to business secrecy


def test_unknown_codes_reported_and_empty_group_refused(inputs):
    gi, _ = inputs
    out = groups.compute_group(["200000010", "999999999"], gi)
    assert out.unknown_codes == ["999999999"]
    with pytest.raises(ValueError, match="none of the EPCI codes"):
        groups.compute_group(["999999999"], gi)
    d = out.to_dict()
    assert d["members"] == ["200000010"] and isinstance(d["indicators"], list)
    assert pd.Series([r["value"] for r in d["indicators"]]).map(lambda v: v is None or np.isfinite(v)).all()
