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
  a masked cell must not be recomputable, nor bounded closer than its protection interval, from
  the published cells. Solved by linear programming over every level at once:
  :mod:`.suppression` (the complement rule used before, one relation at a time, let an LP
  attacker recover cells by differencing across levels).

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
