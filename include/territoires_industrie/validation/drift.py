"""Soft gates: drift against the previous vintage of the same dataset.

Every gate stores summary metrics of its batch in
``validation/<dataset>/<vintage>/metrics.json`` (row count, and e.g. active industrial
establishments per département). The next vintage is compared with the most recent
*earlier* vintage whose gate did not fail; each metric key becomes one row of a small
"drift" table (metric, key, previous, current, change_pct) validated by GX with
``warning`` severity: a département whose count moves by more than the threshold
(default 10 %, ``TI_VALIDATION_DRIFT_PCT``) or a row count outside the tolerance
(default 10 %, ``TI_VALIDATION_ROWCOUNT_PCT``) is reported, the run goes on.

Keys whose previous and current values are both below the metric's minimum base are not
compared (a département going from 3 to 4 establishments is noise, not drift). A key that
appears or disappears counts as +100 % / -100 %.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
ROW_COUNT = "row_count"


def previous_metrics(validation_dir: Path, dataset: str, vintage: str) -> dict | None:
    """metrics.json of the latest vintage before ``vintage`` whose gate did not fail."""
    root = Path(validation_dir) / dataset
    if not root.exists():
        return None
    best = None
    for p in root.glob("*/metrics.json"):
        v = p.parent.name
        if v >= vintage:
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            log.warning("unreadable %s ignored for the drift comparison", p)
            continue
        if data.get("status") == "failed":
            continue
        if best is None or v > best["vintage"]:
            best = {**data, "vintage": v}
    return best


def compare(current: dict, previous: dict | None, min_base: dict | None = None) -> pd.DataFrame:
    """One row per metric key present in either vintage (skipping the non-numeric ones)."""
    cols = ["metric", "key", "previous", "current", "change_pct"]
    if not previous:
        return pd.DataFrame(columns=cols)
    min_base = min_base or {}
    rows = []
    for metric in sorted(set(current) | set(previous)):
        cur, prev = current.get(metric) or {}, previous.get(metric) or {}
        for key in sorted(set(cur) | set(prev)):
            c, p = cur.get(key), prev.get(key)
            if not all(isinstance(x, (int, float)) or x is None for x in (c, p)):
                continue
            if c is None and p is None:
                continue
            c0, p0 = float(c or 0.0), float(p or 0.0)
            if max(abs(c0), abs(p0)) < float(min_base.get(metric, 0)):
                continue
            if p0 == 0.0:
                change = 0.0 if c0 == 0.0 else 100.0
            else:
                change = 100.0 * (c0 - p0) / abs(p0)
            rows.append({"metric": metric, "key": str(key), "previous": p, "current": c, "change_pct": round(change, 3)})
    out = pd.DataFrame(rows, columns=cols)
    out["change_pct"] = out["change_pct"].astype("float64")
    out["previous"] = pd.to_numeric(out["previous"]).astype("float64")
    out["current"] = pd.to_numeric(out["current"]).astype("float64")
    out["metric"] = out["metric"].astype("str")
    out["key"] = out["key"].astype("str")
    return out.replace([np.inf, -np.inf], np.nan)


def drift_suite(dataset: str, threshold_pct: float, rowcount_pct: float, previous_vintage: str):
    """Soft (``warning``) expectations on the drift table."""
    from .suites import SOFT, _suite, col, expectation

    return _suite(f"{dataset}_drift", [
        expectation("ExpectColumnValuesToBeBetween", severity=SOFT, kind="drift", column="change_pct",
                    min_value=-rowcount_pct, max_value=rowcount_pct, row_condition=col("metric") == ROW_COUNT,
                    description=f"row count within ±{rowcount_pct:g} % of the previous vintage ({previous_vintage})"),
        expectation("ExpectColumnValuesToBeBetween", severity=SOFT, kind="drift", column="change_pct",
                    min_value=-threshold_pct, max_value=threshold_pct, row_condition=col("metric") != ROW_COUNT,
                    description=f"no key (département, ZE...) moves by more than ±{threshold_pct:g} % against the "
                                f"previous vintage ({previous_vintage})"),
    ])
