"""What-if: the composite, ranks, deciles and flags of a reference set recomputed from the
*published* domain scores under other weights and thresholds (issue 16).

This is the reference implementation of what the report's "Vos choix" panel computes in the
browser (``report/static/whatif.js``): same inputs, same formulas, same order of floating-point
operations, so the page and this module agree to the last bit (tested in headless Chromium).

- score = Σ_d w_d × X_d over A, B, C, D in that order, ``w`` normalised to sum 1 (``A+B+C+D``
  summed in that order), ``X_d`` = the published transformed domain score (0-100);
- rank = 1 + number of territories of the set with a higher score (ties share the best rank);
  percentile = 100 × (number with a score ≤ own) / N; decile = ceil(percentile / 10) in 1..10
  (N = every territory of the set; a territory without score has none of them);
- regional percentile: the same within the région;
- domain percentile: 100 × (number with X_d ≤ own) / N;
- flags: *industriel* = LQ ≥ seuil and industrial jobs ≥ seuil (the official gate when a value
  is secret and the thresholds are the official ones, unknown otherwise); *en difficulté* =
  (national or regional percentile ≥ P) and at least k domains with a percentile ≥ P; *plus loin
  de l'emploi* = domain C percentile ≥ P_C; *top 10 %* = decile 10, *top 20 %* = decile ≥ 9.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .composite import DEFAULT_WEIGHTS, DOMAINS
from .release import GATE_JOBS, GATE_LQ

OFFICIAL = {"weights": {d: round(100 * DEFAULT_WEIGHTS[d]) for d in DOMAINS}, "difficulty_percentile": 80.0,
            "difficulty_min_domains": 2, "gate_lq": float(GATE_LQ), "gate_jobs_ind": float(GATE_JOBS),
            "far_percentile": 80.0}
INPUT_COLUMNS = ("territory_id", "label", "region", "domain_a", "domain_b", "domain_c", "domain_d", "ind_lq",
                 "jobs_ind", "gate_official")


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v) else float(v)


def _weights(w: dict) -> list[float]:
    vals = [float(w[d]) for d in DOMAINS]
    if any(v < 0 for v in vals):
        raise ValueError(f"weights must be >= 0, got {w}")
    total = 0.0
    for v in vals:
        total += v
    if total <= 0:
        raise ValueError(f"weights must have a positive sum, got {w}")
    return [v / total for v in vals]


def _count_le(values: list, v: float) -> int:
    return sum(1 for x in values if x is not None and x <= v)


def _count_gt(values: list, v: float) -> int:
    return sum(1 for x in values if x is not None and x > v)


def recompute(rows: pd.DataFrame | list[dict], settings: dict | None = None) -> list[dict]:
    """One dict per territory (input order) with the simulated score, rank, percentiles, decile,
    domain percentiles and flags; ``settings`` default to :data:`OFFICIAL`."""
    s = {**OFFICIAL, **(settings or {})}
    recs = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    w = _weights(s["weights"])
    n = len(recs)
    doms = {d: [_num(r.get(f"domain_{d.lower()}")) for r in recs] for d in DOMAINS}
    scores: list[float | None] = []
    for i in range(n):
        xs = [doms[d][i] for d in DOMAINS]
        if any(x is None for x in xs):
            scores.append(None)
            continue
        acc = 0.0
        for wd, x in zip(w, xs):
            acc += wd * x
        scores.append(acc)
    regions = [r.get("region") for r in recs]
    reg_n: dict = {}
    for g in regions:
        reg_n[g] = reg_n.get(g, 0) + 1
    official_gate = s["gate_lq"] == OFFICIAL["gate_lq"] and s["gate_jobs_ind"] == OFFICIAL["gate_jobs_ind"]
    out = []
    for i, r in enumerate(recs):
        sc = scores[i]
        res = {"territory_id": r["territory_id"], "score": sc, "rank": None, "percentile": None,
               "percentile_regional": None, "decile": None}
        if sc is not None:
            res["rank"] = 1 + _count_gt(scores, sc)
            res["percentile"] = 100.0 * _count_le(scores, sc) / n
            same = [scores[j] for j in range(n) if regions[j] == regions[i]]
            res["percentile_regional"] = 100.0 * _count_le(same, sc) / reg_n[regions[i]]
            res["decile"] = min(10, max(1, math.ceil(res["percentile"] / 10.0)))
        dpct = {d: (None if doms[d][i] is None else 100.0 * _count_le(doms[d], doms[d][i]) / n) for d in DOMAINS}
        res["domain_pct"] = dpct
        lq, jobs = _num(r.get("ind_lq")), _num(r.get("jobs_ind"))
        if lq is not None and jobs is not None:
            res["gate"] = bool(lq >= s["gate_lq"] and jobs >= s["gate_jobs_ind"])
        else:
            og = r.get("gate_official")
            res["gate"] = bool(og) if official_gate and og is not None and not pd.isna(og) else None
        p = float(s["difficulty_percentile"])
        n_dom = sum(1 for d in DOMAINS if dpct[d] is not None and dpct[d] >= p)
        comp_ok = (res["percentile"] is not None and res["percentile"] >= p) or \
            (res["percentile_regional"] is not None and res["percentile_regional"] >= p)
        res["in_difficulty"] = None if sc is None else bool(comp_ok and n_dom >= int(s["difficulty_min_domains"]))
        res["far"] = None if dpct["C"] is None else bool(dpct["C"] >= float(s["far_percentile"]))
        res["top10"] = None if res["decile"] is None else res["decile"] == 10
        res["top20"] = None if res["decile"] is None else res["decile"] >= 9
        out.append(res)
    return out


def inputs(composite: pd.DataFrame, values: pd.DataFrame, reference_set: str) -> pd.DataFrame:
    """The inputs of one reference set as the page gets them: the published composite (domain
    scores, région, official gate) and the published gate indicators (NaN when secret)."""
    c = composite[composite["reference_set"] == reference_set]
    cols = ["territory_id", "level", "region", "domain_a", "domain_b", "domain_c", "domain_d", "gate_industrial",
            "label"]
    c = c[[k for k in cols if k in c.columns]].rename(columns={"gate_industrial": "gate_official"})
    if len(values):
        v = values[values["indicator_id"].isin(["ind_lq", "jobs_ind"])]
        v = v.pivot_table(index=["level", "territory_id"], columns="indicator_id", values="value", aggfunc="first")
        c = c.merge(v.reset_index(), on=["level", "territory_id"], how="left")
    for k in ("ind_lq", "jobs_ind"):
        if k not in c.columns:
            c[k] = np.nan
    return c.sort_values("territory_id").reset_index(drop=True)


def place_group(group: dict, reference: list[dict], settings: dict | None = None) -> dict:
    """A candidacy placed in a fixed reference set under other settings (the review's panel):
    its score, national and regional percentile, rank equivalent, and flags. ``group``: its
    published transformed domain scores ``domain_a..d``, ``region``, ``domain_pct`` {A..D} (its
    domain percentiles in the set, which the weights do not move), ``ind_lq``, ``jobs_ind`` and
    ``gate_official``; ``reference``: the set's rows as in :func:`recompute`."""
    s = {**OFFICIAL, **(settings or {})}
    w = _weights(s["weights"])
    ref = []
    for r in reference:
        xs = [_num(r.get(f"domain_{d.lower()}")) for d in DOMAINS]
        if any(x is None for x in xs):
            continue
        acc = 0.0
        for wd, x in zip(w, xs):
            acc += wd * x
        ref.append((acc, r.get("region")))
    xs = [_num(group.get(f"domain_{d.lower()}")) for d in DOMAINS]
    out = {"score": None, "percentile": None, "percentile_regional": None, "rank": None}
    if not any(x is None for x in xs) and ref:
        acc = 0.0
        for wd, x in zip(w, xs):
            acc += wd * x
        scores = [v for v, _ in ref]
        same = [v for v, g in ref if g == group.get("region")]
        out.update(score=acc, percentile=100.0 * _count_le(scores, acc) / len(scores),
                   rank=1 + _count_gt(scores, acc),
                   percentile_regional=(100.0 * _count_le(same, acc) / len(same)) if same else None)
    dpct = {d: _num((group.get("domain_pct") or {}).get(d)) for d in DOMAINS}
    p = float(s["difficulty_percentile"])
    n_dom = sum(1 for d in DOMAINS if dpct[d] is not None and dpct[d] >= p)
    ok = (out["percentile"] is not None and out["percentile"] >= p) or \
        (out["percentile_regional"] is not None and out["percentile_regional"] >= p)
    out["in_difficulty"] = None if out["score"] is None else bool(ok and n_dom >= int(s["difficulty_min_domains"]))
    out["far"] = None if dpct["C"] is None else bool(dpct["C"] >= float(s["far_percentile"]))
    lq, jobs = _num(group.get("ind_lq")), _num(group.get("jobs_ind"))
    official_gate = s["gate_lq"] == OFFICIAL["gate_lq"] and s["gate_jobs_ind"] == OFFICIAL["gate_jobs_ind"]
    og = group.get("gate_official")
    out["gate"] = bool(lq >= s["gate_lq"] and jobs >= s["gate_jobs_ind"]) if lq is not None and jobs is not None \
        else (bool(og) if official_gate and og is not None else None)
    return out
