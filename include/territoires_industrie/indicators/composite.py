"""Composite difficulty index (IMD-style), for one reference set of territories at a time.

1. Every scored indicator (already oriented: higher = more difficulty) is winsorised at its
   1st and 99th percentile within the reference set and turned into a **robust z-score**
   ``z = (x − median) / (1.4826 · MAD)`` (if the MAD is 0: 1.2533 × mean absolute deviation;
   if that is 0 too the indicator carries no information and z = 0).
2. **Domain score** = mean of the z-scores of the domain's available indicators (a territory
   with none of them gets the median, 0, and the count of missing indicators is reported).
3. Domain scores are **ranked** within the set, ``R = rank / N`` (R = 1 for the most
   difficult; ties share the highest rank), and put through the **exponential transform**
   ``X = −23 · ln(1 − R · (1 − e^(−100/23)))`` (0..100, about 10 % of territories above 50):
   a very bad domain cannot be fully offset by a good one.
4. **Score** ``S = Σ_d w_d X_d`` with weights 35/25/30/10 by default (0..100).
5. Ranks (1 = most difficult), percentiles (share of the set with a score ≤ S, in %),
   deciles (10 = the 10 % most difficult), nationally and within the région.

A fitted :class:`ReferenceModel` keeps everything needed to place a new territory (a group of
EPCI in a candidacy) in the same reference set without changing the set itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DOMAINS = ("A", "B", "C", "D")
DEFAULT_WEIGHTS = {"A": 0.35, "B": 0.25, "C": 0.30, "D": 0.10}
EXP_CONSTANT = 23.0
MAD_TO_SD = 1.4826
MEANAD_TO_SD = 1.2533


def exp_transform(r) -> np.ndarray:
    """IMD exponential transform of a scaled rank R in [0, 1] (1 = most difficult) -> [0, 100]."""
    r = np.asarray(r, dtype="float64")
    return -EXP_CONSTANT * np.log(1.0 - r * (1.0 - np.exp(-100.0 / EXP_CONSTANT)))


def normalise_weights(weights: dict | None) -> dict:
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    missing = set(DOMAINS) - set(w)
    if missing:
        raise ValueError(f"weights: missing domain(s) {sorted(missing)} (expected {DOMAINS})")
    if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {w}")
    total = sum(w[d] for d in DOMAINS)
    return {d: w[d] / total for d in DOMAINS}


def fit_params(x: pd.Series) -> dict:
    """Winsorisation bounds and robust location / scale of one indicator within a set."""
    v = pd.to_numeric(x, errors="coerce").astype("float64").dropna().to_numpy()
    if len(v) == 0:
        return {"lo": np.nan, "hi": np.nan, "median": np.nan, "scale": np.nan}
    lo, hi = np.percentile(v, [1, 99])
    v = np.clip(v, lo, hi)
    med = float(np.median(v))
    scale = MAD_TO_SD * float(np.median(np.abs(v - med)))
    if not scale > 0:
        scale = MEANAD_TO_SD * float(np.mean(np.abs(v - med)))
    return {"lo": float(lo), "hi": float(hi), "median": med, "scale": float(scale) if scale > 0 else 0.0}


def standardise(x, p: dict) -> np.ndarray:
    """Robust z-score with the set's parameters; 0 when the indicator has no spread."""
    x = np.asarray(x, dtype="float64")
    if not p["scale"] > 0:
        return np.where(np.isnan(x), np.nan, 0.0)
    return (np.clip(x, p["lo"], p["hi"]) - p["median"]) / p["scale"]


def domain_scores(z: pd.DataFrame, domain_of: dict[str, str]) -> tuple[pd.DataFrame, pd.Series]:
    """Mean z per domain (NaN-skipping); all-missing -> 0 (median). Also the missing count."""
    out = {}
    for d in DOMAINS:
        cols = [c for c in z.columns if domain_of.get(c) == d]
        out[d] = z[cols].mean(axis=1, skipna=True).fillna(0.0) if cols else pd.Series(0.0, index=z.index)
    return pd.DataFrame(out, index=z.index), z.isna().sum(axis=1)


def _count_le(sorted_ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_ref, x, side="right")


@dataclass
class ReferenceModel:
    """A fitted reference set: parameters to score any territory against it."""

    name: str
    level: str
    weights: dict
    domain_of: dict
    params: dict  # indicator -> fit_params
    domain_sorted: dict  # domain -> sorted domain scores of the set
    score_sorted: list
    score_by_region: dict  # région -> sorted scores
    values_sorted: dict  # indicator -> sorted raw values (percentiles of single indicators)
    b3_breaks: list = field(default_factory=list)  # quintile breaks of the concentration index
    n: int = 0

    def place(self, values: pd.DataFrame, regions: pd.Series | None = None) -> pd.DataFrame:
        """Score territories (rows of indicator values) against the set, without refitting."""
        z = pd.DataFrame({k: standardise(values[k] if k in values else np.nan, p) for k, p in self.params.items()},
                         index=values.index)
        dom, missing = domain_scores(z, self.domain_of)
        out = pd.DataFrame(index=values.index)
        score = np.zeros(len(values))
        for d in DOMAINS:
            ref = np.asarray(self.domain_sorted[d], dtype="float64")
            r = _count_le(ref, dom[d].to_numpy()) / max(len(ref), 1)
            x = exp_transform(np.clip(r, 0.0, 1.0))
            out[f"domain_{d.lower()}"] = x
            score += self.weights[d] * x
        out["score"] = score
        ref = np.asarray(self.score_sorted, dtype="float64")
        n = len(ref)
        out["percentile_national"] = 100.0 * _count_le(ref, score) / n
        out["rank_equivalent"] = 1 + n - _count_le(ref, score)  # rank it would take among the set
        out["n_reference"] = n
        if regions is not None:
            reg = regions.reindex(values.index)
            pr = []
            for s, rg in zip(score, reg):
                arr = np.asarray(self.score_by_region.get(rg, []), dtype="float64")
                pr.append(100.0 * _count_le(arr, np.array([s]))[0] / len(arr) if len(arr) else np.nan)
            out["percentile_regional"] = pr
        out["n_indicators_missing"] = missing
        return out

    def indicator_percentile(self, indicator: str, value: float) -> float:
        ref = np.asarray(self.values_sorted.get(indicator, []), dtype="float64")
        if not len(ref) or value is None or not np.isfinite(value):
            return np.nan
        return float(100.0 * _count_le(ref, np.array([value]))[0] / len(ref))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "level", "weights", "domain_of", "params", "domain_sorted",
                                               "score_sorted", "score_by_region", "values_sorted", "b3_breaks", "n")}

    @classmethod
    def from_dict(cls, d: dict) -> "ReferenceModel":
        return cls(**d)


def _sorted_list(x) -> list:
    v = np.asarray(x, dtype="float64")
    return np.sort(v[np.isfinite(v)]).tolist()


def fit_reference(name: str, level: str, values: pd.DataFrame, domain_of: dict[str, str],
                  regions: pd.Series | None = None, weights: dict | None = None) -> tuple[ReferenceModel, pd.DataFrame]:
    """Fit the set on ``values`` (one row per territory, one column per scored indicator) and
    return the model with the composite of every member territory."""
    w = normalise_weights(weights)
    params = {k: fit_params(values[k]) for k in values.columns if k in domain_of}
    z = pd.DataFrame({k: standardise(values[k], p) for k, p in params.items()}, index=values.index)
    dom, missing = domain_scores(z, domain_of)
    n = len(values)
    out = pd.DataFrame(index=values.index)
    score = np.zeros(n)
    for d in DOMAINS:
        r = dom[d].rank(method="max").to_numpy() / max(n, 1)
        x = exp_transform(r)
        out[f"domain_{d.lower()}"] = x
        score += w[d] * x
    out["score"] = score
    s = pd.Series(score, index=values.index)
    out["rank_national"] = s.rank(ascending=False, method="min").astype("int64")
    out["percentile_national"] = 100.0 * s.rank(method="max") / n
    out["decile"] = np.ceil(out["percentile_national"] / 10.0).clip(1, 10).astype("int64")
    out["n_reference"] = n
    out["n_indicators_missing"] = missing
    by_region = {}
    if regions is not None:
        reg = regions.reindex(values.index)
        out["region"] = reg
        grp = s.groupby(reg)
        out["rank_regional"] = grp.rank(ascending=False, method="min")
        out["percentile_regional"] = 100.0 * grp.rank(method="max") / reg.map(reg.value_counts())
        by_region = {str(k): _sorted_list(v) for k, v in grp}
    model = ReferenceModel(
        name=name, level=level, weights=w, domain_of={k: domain_of[k] for k in params}, params=params,
        domain_sorted={d: _sorted_list(dom[d]) for d in DOMAINS}, score_sorted=_sorted_list(score),
        score_by_region=by_region, values_sorted={k: _sorted_list(values[k]) for k in params}, n=n,
    )
    return model, out
