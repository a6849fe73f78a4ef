"""Empirical-Bayes shrinkage of small-area values toward a parent area.

The observed value of a small territory ``x_j`` (on a scale where it is roughly normal, with
sampling variance ``s_j²``) is pulled toward the value of its parent ``x_P`` (zone d'emploi,
else département, computed from the parent's own summed counts):

    x*_j = w_j · x_j + (1 − w_j) · x_P        w_j = τ² / (τ² + s_j²)

``τ²`` is the between-territory variance around the parent, estimated by the weighted method
of moments (DerSimonian-Laird with a known centre): with ``v_j = 1/s_j²`` and
``Q = Σ v_j (x_j − x_P)²``, ``E[Q] = k + τ² Σ v_j``, so ``τ² = (Q − k) / Σ v_j`` — precise
territories dominate the estimate, a very noisy one barely moves it (with equal variances this
is ``mean((x_j − x_P)²) − s²``). It is computed within each parent that has at least
``min_siblings`` territories with data, else pooled over the whole level, and floored at 1 %
of the median sampling variance so that it never collapses to zero. A large territory has a
small ``s²`` and a weight close to 1; shrinkage is strongest for small territories in
homogeneous parents (Scottish Index of Deprivation 2003, appendix 1).

Scales (``model``):

* ``logit`` — proportions ``r / n``: ``z = ln((r+½)/(n−r+½))``, ``s² = 1/(r+½) + 1/(n−r+½)``;
  back to a rate with the territory's own ``n``, the ½ correction removed (:func:`logit_back`);
* ``logratio`` — growth of a count ``E0 -> E1``: ``y = ln((E1+½)/(E0+½))``, ``s² = 1/(E1+½) + 1/(E0+½)``;
* ``normal`` — any value with a delta-method sampling variance given by the caller.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TAU2_FLOOR_SHARE = 0.01


def logit_scale(r, n) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(r, dtype="float64")
    n = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log((r + 0.5) / (n - r + 0.5))
        s2 = 1.0 / (r + 0.5) + 1.0 / (n - r + 0.5)
    bad = ~(n > 0) | ~np.isfinite(z)
    return np.where(bad, np.nan, z), np.where(bad, np.nan, s2)


def logit_back(z, n) -> np.ndarray:
    """Rate in % from a (shrunk) value ``z`` on the logit scale of a territory with ``n`` units,
    inverting the ½ correction of :func:`logit_scale`: ``expit(z) = (r+½)/(n+1)``, so
    ``r = expit(z)·(n+1) − ½`` and the rate is ``r / n``, clipped to [0, 100] %.

    Without the inversion (``100·expit(z)``) a territory with 0 events and a parent with 0
    events was published above 0 (``½/(n+1)``: 12.5 % for n = 3)."""
    z = np.asarray(z, dtype="float64")
    n = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = (n + 1.0) / (1.0 + np.exp(-z)) - 0.5
        rate = np.where(n > 0, 100.0 * r / n, np.nan)
    return np.clip(rate, 0.0, 100.0)


def logratio_scale(e1, e0) -> tuple[np.ndarray, np.ndarray]:
    e1 = np.asarray(e1, dtype="float64")
    e0 = np.asarray(e0, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log((e1 + 0.5) / (e0 + 0.5))
        s2 = 1.0 / (e1 + 0.5) + 1.0 / (e0 + 0.5)
    bad = ~(e0 > 0) | (e1 < 0)
    return np.where(bad, np.nan, y), np.where(bad, np.nan, s2)


def estimate_tau2(x, s2, parent_x, parent_id, min_siblings: int = 5) -> np.ndarray:
    """Between-territory variance around the parent, per territory (its parent's estimate)."""
    s2 = np.asarray(s2, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = 1.0 / s2
    df = pd.DataFrame({"q": v * (np.asarray(x, float) - np.asarray(parent_x, float)) ** 2, "v": v, "s2": s2,
                       "p": np.asarray(parent_id, dtype=object)})
    ok = np.isfinite(df["q"]) & np.isfinite(df["v"]) & (df["s2"] > 0) & df["p"].notna()
    floor = TAU2_FLOOR_SHARE * float(np.nanmedian(df.loc[ok, "s2"])) if ok.any() else 0.0
    d = df[ok]
    pooled = max(float((d["q"].sum() - len(d)) / d["v"].sum()), floor) if len(d) else np.nan
    g = d.groupby("p").agg(n=("q", "size"), q=("q", "sum"), v=("v", "sum"))
    per_parent = ((g["q"] - g["n"]) / g["v"]).clip(lower=floor).where(g["n"] >= min_siblings)
    tau2 = df["p"].map(per_parent).astype("float64").fillna(pooled)
    return tau2.to_numpy()


def shrink(x, s2, parent_x, parent_id, apply, min_siblings: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_star, w, tau2). Territories where ``apply`` is False, or without a parent
    value, keep their value with w = 1."""
    x = np.asarray(x, dtype="float64")
    s2 = np.asarray(s2, dtype="float64")
    px = np.asarray(parent_x, dtype="float64")
    tau2 = estimate_tau2(x, s2, px, parent_id, min_siblings)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = tau2 / (tau2 + s2)
    usable = np.asarray(apply, bool) & np.isfinite(x) & np.isfinite(px) & np.isfinite(w)
    w = np.where(usable, w, 1.0)
    x_star = np.where(usable, w * x + (1.0 - w) * px, x)
    return x_star, w, tau2
