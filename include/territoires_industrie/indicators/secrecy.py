"""Statistical secrecy (secret statistique) on published cells.

Rules (INSEE, *Guide du secret statistique* / ``manuel-protection-tableaux``; URSSAF applies
the two primary rules set by the Cocoes on 7 July 1960):

* **frequency** (status ``A``): a magnitude cell built from strictly fewer than 3 units
  (``0 < n < 3``) is not published;
* **dominance** (status ``B``): a cell where one unit contributes strictly more than 85 % of
  the value is not published. Establishment headcounts are not public, so the largest
  contribution is *estimated* from SIRENE size bands: each employer establishment counts
  for the geometric mean of its band bounds (``01`` 1-2 -> 1.41, ``12`` 20-49 -> 31.3 ...),
  and the share of the largest one is ``max_j ê_j / max(Σ_j ê_j, E)`` where ``E`` is the
  URSSAF total of the cell (calibration: if the bands over-count, all ê_j are scaled down to
  E, which leaves the share unchanged; if they under-count, the rest of E is taken as spread
  over units without a band, which lowers the share);
* **secondary suppression** (status ``D``): wherever published cells are parts of a published
  total (communes of an EPCI, EPCI of a Territoire d'industrie, départements of a région...),
  a masked cell must not be recomputable by subtraction. The rule applied is the *complement
  rule*: in every exact relation ``total = Σ parts`` the number of masked cells must never be
  exactly one; when it is, the smallest non-zero published part is masked too (or the total,
  when no such part exists), and this is repeated over all relations until nothing changes.

Status codes: ``V`` published, ``A`` frequency, ``B`` dominance, ``D`` secondary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PUBLISHED, FREQUENCY, DOMINANCE, SECONDARY = "V", "A", "B", "D"
FREQUENCY_THRESHOLD = 3
DOMINANCE_SHARE = 0.85
_PRIORITY = {FREQUENCY: 3, DOMINANCE: 2, SECONDARY: 1, PUBLISHED: 0}
_BY_PRIORITY = {v: k for k, v in _PRIORITY.items()}

#: INSEE establishment size bands (tranches d'effectifs salariés) -> (min, max) employees.
BAND_BOUNDS = {
    "00": (0, 0), "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49),
    "21": (50, 99), "22": (100, 199), "31": (200, 249), "32": (250, 499), "41": (500, 999),
    "42": (1000, 1999), "51": (2000, 4999), "52": (5000, 9999), "53": (10000, 20000),
}
#: Geometric mean of the band bounds (0 for band 00: no employee at 31/12).
BAND_MIDPOINT = {k: float(np.sqrt(lo * hi)) for k, (lo, hi) in BAND_BOUNDS.items()}
#: Bands of 20 employees or more.
LARGE_BANDS = tuple(k for k, (lo, _) in BAND_BOUNDS.items() if lo >= 20)


def band_midpoint(tranche: pd.Series) -> pd.Series:
    """Estimated headcount of each establishment from its size band (NaN when unknown: NN, '')."""
    return tranche.astype("string").map(BAND_MIDPOINT).astype("float64")


def estimated_max_share(max_contribution, sum_contributions, total) -> np.ndarray:
    """Share of the largest unit in a cell: ``max / max(sum, total)`` (NaN when empty)."""
    mx = np.asarray(max_contribution, dtype="float64")
    denom = np.fmax(np.asarray(sum_contributions, dtype="float64"), np.asarray(total, dtype="float64"))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, mx / denom, np.nan)


def primary_status(n_units, max_share=None, *, threshold: int = FREQUENCY_THRESHOLD,
                   dominance: float = DOMINANCE_SHARE) -> np.ndarray:
    """Frequency then dominance rule, cell by cell. ``n_units`` NaN = not testable (published)."""
    n = np.asarray(n_units, dtype="float64")
    freq = (n > 0) & (n < threshold)
    dom = np.zeros(n.shape, bool)
    if max_share is not None:
        share = np.asarray(max_share, dtype="float64")
        dom = np.nan_to_num(share, nan=0.0) > dominance
    return np.where(freq, FREQUENCY, np.where(dom, DOMINANCE, PUBLISHED)).astype(object)


def combine_status(*statuses) -> np.ndarray:
    """Cell-wise most restrictive status (A > B > D > V)."""
    arrs = [np.asarray(s, dtype=object) for s in statuses]
    prio = np.max(np.stack([np.vectorize(_PRIORITY.get, otypes=[int])(a) for a in arrs]), axis=0)
    return np.vectorize(_BY_PRIORITY.get, otypes=[object])(prio)


def exact_relations(members: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Additive relations ``parent = Σ children`` implied by commune memberships.

    ``members``: (level, territory_id, codgeo). For each (child_level, parent_level) pair, a
    child belongs to a parent when all its communes are in the parent; the relation is kept
    only when those children cover the parent exactly (same commune count: children of one
    level are disjoint). Returns (parent, child) keys ``"level|territory_id"``.
    """
    m = members[["level", "territory_id", "codgeo"]].drop_duplicates()
    size = m.groupby(["level", "territory_id"]).size()
    out = []
    for child_level, parent_level in pairs:
        c = m[m["level"] == child_level][["territory_id", "codgeo"]].rename(columns={"territory_id": "child"})
        p = m[m["level"] == parent_level][["territory_id", "codgeo"]].rename(columns={"territory_id": "parent"})
        if c.empty or p.empty:
            continue
        j = c.merge(p, on="codgeo")
        k = j.groupby(["parent", "child"]).size().rename("n_in").reset_index()
        k["n_child"] = k["child"].map(size.loc[child_level])
        k = k[k["n_in"] == k["n_child"]]  # child wholly inside the parent
        cover = k.groupby("parent")["n_in"].sum()
        psize = size.loc[parent_level].reindex(cover.index)
        exact = cover.index[(cover == psize).to_numpy()]
        k = k[k["parent"].isin(exact)]
        out.append(pd.DataFrame({"parent": parent_level + "|" + k["parent"].astype(str),
                                 "child": child_level + "|" + k["child"].astype(str)}))
    if not out:
        return pd.DataFrame({"parent": pd.Series(dtype="str"), "child": pd.Series(dtype="str")})
    return pd.concat(out, ignore_index=True).drop_duplicates().reset_index(drop=True)


class RelationIndex:
    """Integer form of the additive relations over a fixed set of cells, built once and
    reused for every family of cells (jobs t1, jobs t0, establishments...)."""

    def __init__(self, keys: pd.Index, relations: pd.DataFrame):
        self.keys = pd.Index(keys)
        rel = relations[relations["parent"].isin(self.keys) & relations["child"].isin(self.keys)]
        self.pi = self.keys.get_indexer(rel["parent"])
        self.ci = self.keys.get_indexer(rel["child"])
        level = pd.factorize(pd.Series(self.keys).str.split("|", n=1).str[0])[0]
        rid, _ = pd.factorize(self.pi.astype(np.int64) * 64 + level[self.ci])  # (parent, level of the children)
        self.rid = rid
        self.n_rel = int(rid.max()) + 1 if len(rid) else 0
        self.parent_of = np.zeros(self.n_rel, dtype=np.int64)
        self.parent_of[rid] = self.pi

    def suppress(self, status: np.ndarray, value: np.ndarray, max_iter: int = 50) -> np.ndarray:
        st = np.asarray(status, dtype=object).copy()
        if self.n_rel == 0:
            return st
        val = np.nan_to_num(np.asarray(value, dtype="float64"), nan=0.0)
        cval = val[self.ci]
        for _ in range(max_iter):
            masked = st != PUBLISHED
            cm = masked[self.ci]
            n = np.bincount(self.rid, weights=cm.astype(float), minlength=self.n_rel) + masked[self.parent_of]
            bad = n == 1
            if not bad.any():
                return st
            cand = np.flatnonzero(bad[self.rid] & ~cm & (cval > 0))
            # smallest value per relation (ties: key order), one pick per relation
            order = cand[np.lexsort((self.ci[cand], cval[cand], self.rid[cand]))]
            first = order[np.r_[True, self.rid[order][1:] != self.rid[order][:-1]]] if len(order) else order
            picked = self.ci[first]
            no_part = np.setdiff1d(np.flatnonzero(bad), self.rid[first])
            parents = self.parent_of[no_part]  # only zero/empty parts left: the total itself must go
            targets = np.concatenate([picked, parents])
            targets = targets[st[targets] == PUBLISHED]
            if len(targets) == 0:
                return st
            st[targets] = SECONDARY
        raise RuntimeError(f"secondary suppression did not converge in {max_iter} iterations")


def secondary_suppression(status: pd.Series, value: pd.Series, relations: pd.DataFrame,
                          max_iter: int = 50, index: RelationIndex | None = None) -> pd.Series:
    """Complement rule over every ``parent = Σ children`` relation, iterated to a fixed point.

    ``status`` and ``value`` are indexed by cell key (``"level|id"``); ``relations`` has
    columns parent, child (one relation = a parent and its children of one level). A cell with
    value 0 or NaN is never chosen as complement (its value is known or empty, masking it would
    protect nothing). Returns the updated status. ``index``: a prebuilt :class:`RelationIndex`
    over the same keys (faster when several families share the relations).
    """
    idx = index if index is not None else RelationIndex(status.index, relations)
    out = idx.suppress(status.reindex(idx.keys).to_numpy(), value.reindex(idx.keys).to_numpy(), max_iter)
    return pd.Series(out, index=idx.keys).reindex(status.index)
