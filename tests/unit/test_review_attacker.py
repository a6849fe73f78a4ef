"""Issue 20 item 3: the candidacy review resists differencing.

An attacker who knows only the published release (EPCI cells and their secret status) and what
the review answers reviews every group of 1 to 3 EPCI of the review world, plus all of them, and
solves the linear system of every published group count (a count of a group is the sum of its
members' counts) for the EPCI cells that the release keeps secret. A secret EPCI cell is
*recovered* when the system determines it (its unit vector lies in the row space of the answers).
Before the fix (a group was masked only when exactly one member was), groups holding two masked
members were published and differencing them gave the masked cells back; a one-member group was
never protected."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from territoires_industrie import warehouse
from territoires_industrie.indicators.base import COUNT_COLUMNS
from territoires_industrie.indicators.definitions import INDICATORS
from territoires_industrie.review import load_review_context
from territoires_industrie.review.groups_batch import compute_groups

from .review_world import EPCI, publish_world, write_geometry

ADDITIVE = [d for d in INDICATORS if d.numerator in COUNT_COLUMNS]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review_attack")
    eng = warehouse.get_engine(f"sqlite:///{tmp}/warehouse.db")
    res = publish_world(eng, write_geometry(tmp / "geo"))
    iv = warehouse.read_latest(eng)  # what anyone reads: the published EPCI cells
    published = iv[iv["level"] == "epci"].drop_duplicates(["territory_id", "indicator_id"], keep="last")
    yield load_review_context(eng), res, published.set_index(["territory_id", "indicator_id"])
    eng.dispose()


def _answers(ctx):
    codes = sorted(EPCI)
    groups = [list(g) for k in (1, 2, 3) for g in itertools.combinations(codes, k)] + [codes]
    results, _ = compute_groups(groups, ctx.inputs)
    return groups, results


def test_no_secret_epci_cell_is_recovered_by_any_set_of_reviews(ctx):
    context, res, pub = ctx
    groups, results = _answers(context)
    truth = res.counts[res.counts["level"] == "epci"].set_index("territory_id")
    attacked = recovered = 0
    for d in ADDITIVE:
        secret = [e for e in sorted(EPCI) if pub.at[(e, d.id), "secret_status"] != "V"]
        if not secret:
            continue
        known = {e: pub.at[(e, d.id), "numerator"] for e in EPCI if pub.at[(e, d.id), "secret_status"] == "V"}
        rows, rhs = [], []
        for g, r in zip(groups, results):
            rec = r.indicators.set_index("indicator_id").loc[d.id]
            if rec["secret_status"] != "V" or pd.isna(rec["numerator"]):
                continue
            rows.append([1.0 if e in g else 0.0 for e in secret])
            rhs.append(float(rec["numerator"]) - sum(known[e] for e in g if e in known))
        attacked += len(secret)
        if not rows:
            continue
        a = np.asarray(rows)
        rank = np.linalg.matrix_rank(a)
        for k, e in enumerate(secret):
            unit = np.zeros(len(secret))
            unit[k] = 1.0
            if np.linalg.matrix_rank(np.vstack([a, unit])) == rank:  # determined by the answers
                sol = np.linalg.lstsq(a, np.asarray(rhs), rcond=None)[0]
                recovered += 1
                pytest.fail(f"{d.id}: secret cell of EPCI {e} recovered from {len(rows)} reviews: "
                            f"{sol[k]:.1f} (true {truth.at[e, d.numerator]:.1f})")
    assert attacked > 0, "the review world holds secret EPCI cells to attack"
    assert recovered == 0


def test_a_group_with_a_masked_member_publishes_no_count_of_that_family(ctx):
    context, _, pub = ctx
    groups, results = _answers(context)
    checked = 0
    for g, r in zip(groups, results):
        recs = r.indicators.set_index("indicator_id")
        for d in ADDITIVE:
            if any(pub.at[(e, d.id), "secret_status"] != "V" for e in g):
                assert recs.at[d.id, "secret_status"] != "V" and pd.isna(recs.at[d.id, "numerator"]), (g, d.id)
                checked += 1
    assert checked > 0


def test_repeating_a_review_gives_the_same_answer(ctx):
    context, _, _ = ctx
    _, a = _answers(context)
    _, b = _answers(context)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x.indicators, y.indicators)


def test_one_epci_review_gives_the_published_concentration_class(ctx):
    """Issue 20 item 6: a one-EPCI review classed b3 against the TI class boundaries, so the
    review of an EPCI could contradict the release's published class for that same EPCI."""
    context, _, pub = ctx
    codes = sorted(EPCI)
    results, _ = compute_groups([[c] for c in codes], context.inputs)
    checked = 0
    for code, r in zip(codes, results):
        got = r.indicators.set_index("indicator_id").loc["b3_concentration_class"]
        want = pub.loc[(code, "b3_concentration_class")]
        if want["secret_status"] == "V" and got["secret_status"] == "V" and pd.notna(want["value"]):
            assert got["value"] == want["value"], (code, got["value"], want["value"])
            checked += 1
    assert checked > 0


def test_a_groups_composite_does_not_move_when_its_secret_values_change(ctx, monkeypatch):
    """The review's composite (score, domain scores, percentiles) of a group is built from the
    group's published values only: garbling the values of its secret indicators (statuses are
    decided on counts, which stay) changes none of it. Before, a group's composite used its exact
    values, so a group's published domain score bracketed its suppressed indicators."""
    from territoires_industrie.review import groups_batch

    context, _, _ = ctx
    groups, clean = _answers(context)
    secret_ids = [{r["indicator_id"] for r in g.indicators.to_dict("records") if r["secret_status"] != "V"}
                  for g in clean]
    assert sum(len(s) for s in secret_ids) > 10, "the world must hold groups with secret indicators"
    real = groups_batch.compute_indicators

    def garbled(frame, national, **kw):
        out = real(frame, national, **kw).copy()
        for g, ids in enumerate(secret_ids):
            for k in ids & set(out.columns):
                out.iloc[g, out.columns.get_loc(k)] = 1000.0 + 37.0 * g
        if "b3_concentration" in out.columns:
            for g, ids in enumerate(secret_ids):
                if "b3_concentration_class" in ids:
                    out.iloc[g, out.columns.get_loc("b3_concentration")] = 0.99
        return out

    monkeypatch.setattr(groups_batch, "compute_indicators", garbled)
    forged, _ = compute_groups(groups, context.inputs)
    for a, b in zip(clean, forged):
        pd.testing.assert_frame_equal(a.composite, b.composite, check_exact=True)
        pd.testing.assert_frame_equal(a.indicators, b.indicators, check_exact=True)
