"""Monte Carlo uncertainty analysis of the composite ranks (vectorised numpy).

Each draw samples jointly (OECD/JRC Handbook, Saisana-Saltelli-Tarantola 2005):

* **weights** ``w ~ Dirichlet(α · w0)`` around the default weights (α = 20: about ±10 points),
  or equal weights with probability ``p_equal_weights``;
* **normalisation / aggregation**: rank + exponential transform + weighted sum (reference),
  z-score + weighted arithmetic mean, or min-max + weighted geometric mean;
* **shrinkage** on or off (shrunk or raw small-area values);
* **base year** of the A domain: t1 − 5 or the alternative year;
* **count noise**: every indicator built on small counts gets a parametric Poisson/binomial
  bootstrap draw ``x + s·ε`` (normal approximation; ``s`` = sampling standard deviation of
  the counts, scaled by the shrinkage weight when the shrunk value is used).

Per territory: median rank, 5th-95th percentile rank interval, P(top 10 %), P(top 20 %) and
the mean absolute rank shift; a territory is **uncertain** when its 90 % interval straddles
the top-10 % or top-20 % threshold. Per set: the average rank shift
``R̄_S = mean_draws mean_units |rank_ref − rank_draw|``.

Draws are processed in chunks (``chunk`` draws x units x indicators float64 arrays) so the
memory stays bounded; the rank matrix (draws x units, int32) is the only full-size array.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..config import declared
from .composite import DOMAINS, exp_transform, fit_params, normalise_weights

METHODS = ("rank_exp", "z_arith", "minmax_geo")


#: the Monte Carlo seed: declared once, as the default of ``TI_MC_SEED`` (config.VARIABLES)
MC_SEED = int(declared("TI_MC_SEED").default)


@dataclass(frozen=True)
class MCConfig:
    draws: int = 1000
    seed: int = MC_SEED
    alpha: float = 20.0
    p_equal_weights: float = 0.1
    method_probs: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    p_shrink: float = 0.5
    p_alt_base: float = 0.5
    count_noise: bool = True
    chunk: int = 200

    def as_dict(self) -> dict:
        return asdict(self)


def _prepare(x: pd.DataFrame, sd: pd.DataFrame | None, cols: list[str]):
    """z-scores of one variant with its own robust parameters, noise in z units, bounds, mask."""
    u = len(x)
    k = len(cols)
    z = np.zeros((u, k))
    sz = np.zeros((u, k))
    lo = np.full(k, -np.inf)
    hi = np.full(k, np.inf)
    mask = np.zeros((u, k), bool)
    for j, c in enumerate(cols):
        v = x[c].to_numpy(dtype="float64")
        p = fit_params(x[c])
        ok = np.isfinite(v)
        mask[:, j] = ok
        if p["scale"] > 0:
            z[:, j] = np.where(ok, (np.clip(v, p["lo"], p["hi"]) - p["median"]) / p["scale"], 0.0)
            lo[j] = (p["lo"] - p["median"]) / p["scale"]
            hi[j] = (p["hi"] - p["median"]) / p["scale"]
            if sd is not None and c in sd:
                sz[:, j] = np.nan_to_num(sd[c].to_numpy(dtype="float64"), nan=0.0) / p["scale"]
        else:
            lo[j] = hi[j] = 0.0
    return z, sz, lo, hi, mask


def _ranks_desc(s: np.ndarray) -> np.ndarray:
    """Rank 1 = highest value, along axis 1 (ties broken by position)."""
    order = np.argsort(-s, axis=1, kind="stable")
    r = np.empty_like(order)
    rows = np.arange(s.shape[0])[:, None]
    r[rows, order] = np.arange(1, s.shape[1] + 1)[None, :]
    return r


def _scaled_ranks(d: np.ndarray) -> np.ndarray:
    """R = rank / N along axis 1 (1 = highest), for every domain: (m, U, D) -> (m, U, D)."""
    n = d.shape[1]
    order = np.argsort(d, axis=1, kind="stable")
    r = np.empty(d.shape, dtype="float64")
    np.put_along_axis(r, order, np.arange(1, n + 1, dtype="float64")[None, :, None] / n, axis=1)
    return r



def _domain_draws(prepared: dict, variants: list, dom_idx: list, u: int, n_cols: int, config: MCConfig,
                  rng) -> np.ndarray:
    """Domain scores (draws, territories, 4) of one chunk: each draw's variant of the values,
    with count noise, averaged within each domain over the indicators present."""
    m = len(variants)
    z = np.empty((m, u, n_cols))
    mask = np.empty((m, u, n_cols), bool)
    for i, key in enumerate(variants):
        zz, sz, lo, hi, mk = prepared[key]
        if config.count_noise:
            zz = np.clip(zz + sz * rng.standard_normal(zz.shape), lo, hi)
        z[i], mask[i] = zz, mk
    z = np.where(mask, z, 0.0)
    return np.stack([z[:, :, ix].sum(axis=2) / np.maximum(mask[:, :, ix].sum(axis=2), 1) if len(ix) else
                     np.zeros((m, u)) for ix in dom_idx], axis=2)


def _scores(d: np.ndarray, ww: np.ndarray, meth: np.ndarray) -> np.ndarray:
    """Composite of each draw with its normalisation method (0 ranks + exponential, 1 z-scores,
    2 min-max + geometric mean) and its weights."""
    s = np.empty(d.shape[:2])
    if (meth == 0).any():
        sel = meth == 0
        s[sel] = (exp_transform(_scaled_ranks(d[sel])) * ww[sel]).sum(axis=2)
    if (meth == 1).any():
        sel = meth == 1
        dd = d[sel]
        sd = dd.std(axis=1, keepdims=True)
        s[sel] = (((dd - dd.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)) * ww[sel]).sum(axis=2)
    if (meth == 2).any():
        sel = meth == 2
        dd = d[sel]
        mn, mx = dd.min(axis=1, keepdims=True), dd.max(axis=1, keepdims=True)
        mm = 0.01 + 0.99 * (dd - mn) / np.where(mx > mn, mx - mn, 1.0)
        s[sel] = (np.log(mm) * ww[sel]).sum(axis=2)
    return s

def monte_carlo(
    variants: dict[tuple[bool, bool], tuple[pd.DataFrame, pd.DataFrame | None]],
    domain_of: dict[str, str],
    ref_rank,
    weights: dict | None = None,
    config: MCConfig = MCConfig(),
    name: str = "",
) -> tuple[pd.DataFrame, dict]:
    """Rank distribution of every territory of one reference set.

    ``variants[(shrunk, alt_base)] = (values, noise_sd)``: indicator values (rows = the set's
    territories, same order in every variant) and sampling standard deviations. ``ref_rank``:
    the published rank of each territory (1 = most difficult), for the rank shift.
    """
    t_start = time.perf_counter()
    keys = list(variants)
    first = variants[keys[0]][0]
    units = first.index
    u = len(units)
    cols = [c for c in first.columns if c in domain_of]
    dom_idx = [np.array([j for j, c in enumerate(cols) if domain_of[c] == d], dtype=int) for d in DOMAINS]
    w0 = normalise_weights(weights)
    w0v = np.array([w0[d] for d in DOMAINS])
    prepared = {key: _prepare(v[0].reindex(units), v[1].reindex(units) if v[1] is not None else None, cols)
                for key, v in variants.items()}

    rng = np.random.default_rng(np.random.SeedSequence([config.seed, zlib.crc32(name.encode())]))
    m_total = int(config.draws)
    shrunk = rng.random(m_total) < config.p_shrink
    alt = rng.random(m_total) < config.p_alt_base
    variant_of = [(bool(s), bool(a)) if (bool(s), bool(a)) in prepared else (bool(s), False) for s, a in zip(shrunk, alt)]
    variant_of = [v if v in prepared else keys[0] for v in variant_of]
    method = rng.choice(len(METHODS), size=m_total, p=np.asarray(config.method_probs) / sum(config.method_probs))
    w = rng.dirichlet(config.alpha * w0v, size=m_total)
    equal = rng.random(m_total) < config.p_equal_weights
    w[equal] = 1.0 / len(DOMAINS)

    ranks = np.empty((m_total, u), dtype=np.int32)
    for start in range(0, m_total, config.chunk):
        stop = min(start + config.chunk, m_total)
        d = _domain_draws(prepared, variant_of[start:stop], dom_idx, u, len(cols), config, rng)
        ranks[start:stop] = _ranks_desc(_scores(d, w[start:stop][:, None, :], method[start:stop]))

    ref = np.asarray(ref_rank, dtype="float64")
    k10, k20 = int(np.ceil(0.10 * u)), int(np.ceil(0.20 * u))
    p05, med, p95 = np.percentile(ranks, [5, 50, 95], axis=0)
    shift = np.abs(ranks - ref[None, :])
    out = pd.DataFrame({
        "mc_rank_median": med, "mc_rank_p05": p05, "mc_rank_p95": p95,
        "p_top10": (ranks <= k10).mean(axis=0), "p_top20": (ranks <= k20).mean(axis=0),
        "mc_mean_rank_shift": shift.mean(axis=0),
    }, index=units)
    out["uncertain"] = ((p05 <= k10) & (p95 > k10)) | ((p05 <= k20) & (p95 > k20))
    summary = {
        "units": u, "draws": m_total, "seed": config.seed, "avg_rank_shift": float(shift.mean()) if u else 0.0,
        "share_uncertain": float(out["uncertain"].mean()) if u else 0.0,
        "median_interval_width": float(np.median(p95 - p05)) if u else 0.0,
        "draws_by_method": {METHODS[i]: int((method == i).sum()) for i in range(len(METHODS))},
        "draws_shrunk": int(sum(v[0] for v in variant_of)), "draws_alt_base": int(sum(v[1] for v in variant_of)),
        "draws_equal_weights": int(equal.sum()), "top10_threshold_rank": k10, "top20_threshold_rank": k20,
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    return out, summary
