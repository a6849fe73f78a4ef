"""Uncertainty of a candidacy's composite, its domain percentiles and the decision flags of
the review protocol (methodology §3.4.5). Thresholds are policy choices: they are constants
here, written into every output.

**Monte Carlo of a group.** The reference sets are those of the release and are not refitted.
Each draw changes, at once: the domain weights (Dirichlet around the release's weights, α = 20,
about ±10 points; equal weights in 10 % of draws — as in the release's own analysis) and the
group's count-based indicators (normal approximation of Poisson/binomial noise, from the
group's own counts). The reference territories are re-scored with the drawn weights from
their published domain scores, and the group's rank among them is recorded. Aggregation
method, shrinkage and base-year alternatives are NOT varied for a group (the release does
not keep the reference territories' alternative values): a group's interval is therefore
narrower than a published territory's. Seeds are fixed: the same candidacy on the same
release gives the same interval.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from ..indicators.composite import DOMAINS, exp_transform, standardise
from ..indicators.groups import published_scored
from ..indicators.release import GATE_JOBS, GATE_LQ, NOISY
from ..indicators.uncertainty import MC_SEED

FLAG_SETS = ("ti_2023_2027", "ze")  # sets of comparable size (the EPCI set is shown, not used for flags)
THRESHOLDS = {
    "gate_lq": GATE_LQ,
    "gate_jobs_ind": GATE_JOBS,
    "difficulty_percentile": 80.0,
    "difficulty_min_domains": 2,
    "robust_p_top20": 0.8,
    "far_from_employment_domain_c_percentile": 80.0,
    "extent_top_share": 0.20,
    "ze_coherence_min_share": 0.5,
    "max_epci": 4,
}
RULES_FR = {
    "gate_industrial": "Territoire industriel : quotient de localisation de l'emploi industriel ≥ {gate_lq:g} et "
                       "emplois salariés industriels ≥ {gate_jobs_ind:g} (sinon « pas un territoire industriel » : "
                       "le score de difficulté n'a pas de sens)",
    "in_difficulty": "En difficulté : indice composite ≥ P{difficulty_percentile:g} national ou régional (parmi les "
                     "Territoires d'industrie 2023-2027 ou les zones d'emploi) ET ≥ P{difficulty_percentile:g} dans au "
                     "moins {difficulty_min_domains} des 4 domaines, dans le même ensemble",
    "robustly_in_difficulty": "Robustement en difficulté : probabilité d'être dans les 20 % les plus en difficulté "
                              "≥ {robust_p_top20:g} (Monte Carlo), dans l'un des mêmes ensembles ; « incertain » "
                              "quand l'intervalle de rang à 90 % chevauche le seuil des 20 %",
    "far_from_employment": "Plus loin de l'emploi : domaine C (éloignement de l'emploi) ≥ "
                           "P{far_from_employment_domain_c_percentile:g} national, dans l'un des mêmes ensembles",
    "ze_coherence": "Cohérence de bassin d'emploi : au moins {ze_coherence_min_share:.0%} de la population dans la "
                    "zone d'emploi principale",
    "epci_cap": "Au plus {max_epci} EPCI (plafond rapporté de l'appel 2023, à confirmer dans le guide ; un EPCI seul "
                "doit justifier de sa taille critique)",
    "extent": "Étendue : part de la population dans des EPCI du top {extent_top_share:.0%} national des EPCI",
}


SHORT_RULES_FR = {
    "gate_industrial": "LQ ≥ {gate_lq:g} et ≥ {gate_jobs_ind:g} emplois industriels",
    "in_difficulty": "composite ≥ P{difficulty_percentile:g} national ou régional et ≥ {difficulty_min_domains} domaines "
                     "≥ P{difficulty_percentile:g} (TI 2023-2027 ou ZE)",
    "robustly_in_difficulty": "P(top 20 %) ≥ {robust_p_top20:g} au Monte Carlo (TI 2023-2027 ou ZE)",
    "far_from_employment": "domaine C ≥ P{far_from_employment_domain_c_percentile:g} national (TI 2023-2027 ou ZE)",
    "ze_coherence": "≥ {ze_coherence_min_share:.0%} de la population dans la zone d'emploi principale",
    "epci_cap": "≤ {max_epci} EPCI",
    "contiguity": "EPCI d'un seul tenant",
}


def short_rules_fr() -> dict:
    return {k: v.format(**THRESHOLDS) for k, v in SHORT_RULES_FR.items()}


def rules_fr() -> dict:
    return {k: v.format(**THRESHOLDS) for k, v in RULES_FR.items()}


def group_counts(members: list[str], inputs) -> pd.Series:
    """Summed counts of the member EPCI (maxima for the size-band maxima), unmasked."""
    from ..indicators.base import COUNT_COLUMNS, MAX_COLUMNS

    c = inputs.counts
    m = c[(c["level"] == "epci") & c["territory_id"].isin(members)]
    row = m[[k for k in COUNT_COLUMNS if k in m.columns]].sum()
    for k in MAX_COLUMNS:
        if k in m.columns:
            row[k] = m[k].max()
    return row


def group_indicator_frames(groups: list[list[str]], inputs) -> pd.DataFrame:
    """Raw indicators of several groups at once (one row per group, in order) with their
    sampling variances (``var__<id>``), unmasked: one vectorised computation for a batch."""
    from ..indicators.domains import compute_indicators

    rows = pd.DataFrame([group_counts(m, inputs) for m in groups]).reset_index(drop=True)
    ind = compute_indicators(rows, pd.Series(inputs.national))
    return pd.concat([rows, ind[[k for k in ind.columns if k not in rows.columns]]], axis=1)


def group_indicator_frame(members: list[str], inputs) -> pd.Series:
    """Raw indicators of one group with their sampling variances (``var__<id>``), unmasked."""
    return group_indicator_frames([members], inputs).iloc[0]


def scored_values(indicators: pd.DataFrame, model) -> dict:
    """Values the reference model scores: the group's published values only (NaN where its cell
    is secret, the concentration index as its class), as the release's composite (issue 20)."""
    pub = published_scored(indicators)
    return {k: float(pub.get(k, np.nan)) for k in model.params}


def noise_sd(ind: pd.Series) -> dict:
    return {k: float(np.sqrt(ind[f"var__{k}"])) if f"var__{k}" in ind and np.isfinite(ind[f"var__{k}"]) else 0.0
            for k in NOISY}


def _domain_matrix(x: np.ndarray, model) -> np.ndarray:
    """Domain scores (rows x 4) of indicator values ``x`` (rows x indicators, in the order of
    ``model.params``), exactly as :func:`composite.domain_scores` (mean of the available robust
    z-scores of the domain, 0 when none) — in numpy, for the Monte Carlo draws."""
    cols = list(model.params)
    z = np.column_stack([standardise(x[:, j], model.params[c]) for j, c in enumerate(cols)])
    out = np.zeros((x.shape[0], len(DOMAINS)))
    for k, d in enumerate(DOMAINS):
        idx = [j for j, c in enumerate(cols) if model.domain_of.get(c) == d]
        if not idx:
            continue
        zz = z[:, idx]
        ok = np.isfinite(zz)
        n = ok.sum(axis=1)
        out[:, k] = np.where(n > 0, np.where(ok, zz, 0.0).sum(axis=1) / np.maximum(n, 1), 0.0)
    return out


def domain_percentiles(values: dict, model) -> dict:
    """Percentile (share of the set with a lower or equal domain score, in %) of each domain."""
    dom = _domain_matrix(np.array([[values.get(k, np.nan) for k in model.params]], dtype="float64"), model)[0]
    out = {}
    for k, d in enumerate(DOMAINS):
        ref = np.asarray(model.domain_sorted[d], dtype="float64")
        out[d] = float(100.0 * np.searchsorted(ref, dom[k], side="right") / len(ref)) if len(ref) else None
    return out


def group_monte_carlo(values: dict, sd: dict, model, ref_domains: np.ndarray, *, draws: int = 1000, seed: int = MC_SEED,
                      key: str = "", alpha: float = 20.0, p_equal: float = 0.1) -> dict:
    """Rank distribution of a group placed in a fixed reference set (see the module docstring).
    ``ref_domains``: (n, 4) published domain scores X_A..X_D of the set's territories."""
    n = int(ref_domains.shape[0])
    if n == 0 or draws <= 0:
        return {}
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(model.name.encode()),
                                                        zlib.crc32(key.encode())]))
    cols = list(model.params)
    x = np.array([values.get(c, np.nan) for c in cols], dtype="float64")
    s = np.array([sd.get(c, 0.0) for c in cols], dtype="float64")
    noisy = x[None, :] + s[None, :] * rng.standard_normal((draws, len(cols)))
    dom = _domain_matrix(noisy, model)
    xg = np.column_stack([
        exp_transform(np.clip(np.searchsorted(np.asarray(model.domain_sorted[d], dtype="float64"), dom[:, k],
                                              side="right") / max(len(model.domain_sorted[d]), 1), 0.0, 1.0))
        for k, d in enumerate(DOMAINS)])
    w0 = np.array([model.weights[d] for d in DOMAINS], dtype="float64")
    w = rng.dirichlet(alpha * w0, size=draws)
    w[rng.random(draws) < p_equal] = 1.0 / len(DOMAINS)
    sg = (xg * w).sum(axis=1)
    sref = ref_domains @ w.T  # (n, draws)
    ranks = 1 + (sref > sg[None, :]).sum(axis=0)
    k10, k20 = math.ceil(0.10 * n), math.ceil(0.20 * n)
    p05, med, p95 = np.percentile(ranks, [5, 50, 95])
    return {"draws": int(draws), "n_reference": n, "rank_median": float(med), "rank_p05": float(p05),
            "rank_p95": float(p95), "p_top10": float((ranks <= k10).mean()), "p_top20": float((ranks <= k20).mean()),
            "top10_rank": k10, "top20_rank": k20,
            "uncertain": bool((p05 <= k10 < p95) or (p05 <= k20 < p95)),
            "score_p05": float(np.percentile(sg, 5)), "score_p95": float(np.percentile(sg, 95))}


def _ge(v, t) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v >= t


def decision_flags(comp: dict, gate: bool | None, perimeter: dict, flag_sets: tuple[str, ...] = FLAG_SETS) -> dict:
    """The protocol's flags from the group's composite per reference set (``comp[set]``: score,
    percentiles, ``domain_pct`` and ``mc``), its industrial gate and its perimeter checks."""
    t = THRESHOLDS
    rules = rules_fr()
    short = short_rules_fr()
    sets = [s for s in flag_sets if s in comp]
    diff, robust, far = {}, {}, {}
    for s in sets:
        c = comp[s]
        dp = c.get("domain_pct") or {}
        n_dom = sum(1 for d in DOMAINS if _ge(dp.get(d), t["difficulty_percentile"]))
        nat = _ge(c.get("percentile_national"), t["difficulty_percentile"])
        reg = _ge(c.get("percentile_regional"), t["difficulty_percentile"])
        diff[s] = {"composite_national_ok": nat, "composite_regional_ok": reg, "domains_ge_threshold": n_dom,
                   "met": bool((nat or reg) and n_dom >= t["difficulty_min_domains"])}
        mc = c.get("mc") or {}
        robust[s] = {"p_top20": mc.get("p_top20"), "rank_p05": mc.get("rank_p05"), "rank_p95": mc.get("rank_p95"),
                     "top20_rank": mc.get("top20_rank"), "uncertain": mc.get("uncertain"),
                     "met": bool(diff[s]["met"] and _ge(mc.get("p_top20"), t["robust_p_top20"]))}
        far[s] = {"domain_c_pct": dp.get("C"),
                  "met": _ge(dp.get("C"), t["far_from_employment_domain_c_percentile"])}
    in_diff = any(v["met"] for v in diff.values()) if sets else None
    rob = any(v["met"] for v in robust.values()) if sets else None
    uncertain = any(bool(v["uncertain"]) for v in robust.values())
    out = {
        "gate_industrial": {"value": gate, "rule": rules["gate_industrial"]},
        "in_difficulty": {"value": in_diff, "rule": rules["in_difficulty"], "by_set": diff},
        "robustly_in_difficulty": {"value": rob, "uncertain": uncertain, "rule": rules["robustly_in_difficulty"],
                                   "by_set": robust},
        "far_from_employment": {"value": any(v["met"] for v in far.values()) if sets else None,
                                "rule": rules["far_from_employment"], "by_set": far},
        "ze_coherence": {"value": perimeter["ze_coherent"], "main_ze_share": perimeter["main_ze_share"],
                         "rule": rules["ze_coherence"]},
        "epci_cap": {"value": perimeter["epci_cap_ok"], "n_epci": perimeter["n_epci"], "rule": rules["epci_cap"]},
        "contiguity": {"value": perimeter["contiguity"]["contiguous"], "checked": perimeter["contiguity"]["checked"],
                       "rule": "EPCI d'un seul tenant (au moins un point de limite commun, géométrie de la release)"},
    }
    for k, v in out.items():
        v["threshold"] = short[k]
    out["sets_used"] = sets
    return out


def primary_set(doc: dict) -> str | None:
    """The reference set a review's verdict is read against (the first flag set it has)."""
    have = [c["reference_set"] for c in doc["composite"]]
    return next((s for s in FLAG_SETS if s in have), have[0] if have else None)


def weight_robustness(group_domains: dict, domain_pct: dict, ref_domains: np.ndarray, ref_regions: np.ndarray,
                      region, weights: dict, *, draws: int = 1000, seed: int = MC_SEED, key: str = "",
                      alpha: float = 20.0, p_equal: float = 0.1) -> dict:
    """How much the verdicts hang on the weights: the share of weight draws (the Monte Carlo's
    Dirichlet around the official weights, equal weights with probability ``p_equal``) under which
    the group is *en difficulté* (composite ≥ P national or regional and ≥ k domains ≥ P) and *plus
    loin de l'emploi* (domain C ≥ P_C: its domain percentile does not depend on the weights).
    ``group_domains``: the group's transformed domain scores X_A..X_D (no noise: only the weights
    move); ``ref_domains`` / ``ref_regions``: the reference set's published domain scores and régions."""
    t = THRESHOLDS
    x = np.array([group_domains.get(d) if group_domains.get(d) is not None else np.nan for d in DOMAINS],
                 dtype="float64")
    if ref_domains.shape[0] == 0 or not np.isfinite(x).all() or draws <= 0:
        return {}
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(b"weights"), zlib.crc32(key.encode())]))
    w0 = np.array([weights[d] for d in DOMAINS], dtype="float64")
    w = rng.dirichlet(alpha * w0, size=draws)
    w[rng.random(draws) < p_equal] = 1.0 / len(DOMAINS)
    sg = w @ x
    sref = ref_domains @ w.T  # (n, draws)
    n = ref_domains.shape[0]
    pct_nat = 100.0 * (sref <= sg[None, :]).sum(axis=0) / n
    in_reg = ref_regions == region
    n_reg = int(in_reg.sum())
    pct_reg = 100.0 * (sref[in_reg] <= sg[None, :]).sum(axis=0) / n_reg if n_reg else np.zeros(draws)
    p = t["difficulty_percentile"]
    n_dom = sum(1 for d in DOMAINS if _ge(domain_pct.get(d), p))
    diff = ((pct_nat >= p) | (pct_reg >= p)) & (n_dom >= t["difficulty_min_domains"])
    far = _ge(domain_pct.get("C"), t["far_from_employment_domain_c_percentile"])
    return {"draws": int(draws), "share_in_difficulty": float(diff.mean()), "share_far_from_employment": float(far),
            "far_depends_on_weights": False, "domains_ge_threshold": n_dom,
            "share_top20": float((pct_nat > 80.0).mean())}
