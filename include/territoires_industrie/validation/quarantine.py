"""Quarantine: the rows that failed a row-level check, with the reason, for inspection.

Written to ``validation/<dataset>/<vintage>/quarantine.parquet`` and ``quarantine.csv``
(UTF-8, ``,``), one line per (row, failed check):

| column | meaning |
|---|---|
| ``row_index`` | position of the row in the validated batch (0-based), or the data row number in the source file for SIRENE stream checks (1-based; file line = row + 1) |
| ``scope`` | ``batch`` (the typed table the pipeline uses) or ``stream`` (SIRENE file-level checks) |
| ``severity`` | ``hard`` (blocks the run) / ``soft`` |
| ``expectation``, ``column``, ``condition`` | the failed GX expectation |
| ``reason`` | a sentence: what the rule is and which value broke it |
| then the batch's own columns | every value as text |

The quarantine never *removes* rows from the pipeline: a hard failure stops the batch as
a whole; soft row-level findings are only reported. The file is capped (default 100,000
lines, ``TI_VALIDATION_QUARANTINE_CAP``); the cap is recorded in ``result.json``. A rerun
without failures deletes the quarantine of an earlier run of the same vintage.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import storage

log = logging.getLogger(__name__)
LEAD = ["row_index", "scope", "severity", "expectation", "column", "condition", "reason"]


def _reason(c: dict) -> str:
    s = c.get("description") or c.get("expectation")
    where = f" (where {c['condition']})" if c.get("condition") else ""
    return f"{s} [{c.get('expectation')} on {c.get('column')}{where}]"


def build(prepared: pd.DataFrame, checks: list[dict], stream_rows: list[dict] | None = None,
          cap: int = 100_000) -> tuple[pd.DataFrame, int]:
    """The quarantine table and the number of offending (row, check) pairs before the cap."""
    parts, total = [], 0
    room = cap
    for c in checks:
        idx = c.get("_index")
        if c["success"] or not idx:
            continue
        total += len(idx)
        if room <= 0:
            continue
        take = list(idx[:room])
        room -= len(take)
        rows = prepared.loc[take].astype("string")
        lead = pd.DataFrame({
            "row_index": pd.array(take, dtype="Int64"), "scope": "batch", "severity": c["severity"],
            "expectation": c["expectation"], "column": c.get("column") or "", "condition": c.get("condition") or "",
            "reason": _reason(c),
        }, index=rows.index)
        parts.append(pd.concat([lead, rows], axis=1))
    for r in stream_rows or []:
        total += 1
        if room <= 0:
            continue
        room -= 1
        parts.append(pd.DataFrame([{
            "row_index": r.get("row"), "scope": "stream", "severity": r.get("severity", "hard"),
            "expectation": r.get("expectation"), "column": r.get("column"), "condition": r.get("condition") or "",
            "reason": r.get("reason"), "siret": r.get("siret"), "value": r.get("value"),
        }]))
    if not parts:
        return pd.DataFrame(columns=LEAD), 0
    out = pd.concat(parts, ignore_index=True)
    out["row_index"] = pd.array(out["row_index"], dtype="Int64")
    for c in out.columns:
        if c != "row_index":
            out[c] = out[c].astype("string")
    return out.reset_index(drop=True), total


def write(folder: Path, prepared: pd.DataFrame, checks: list[dict], stream_rows: list[dict] | None = None,
          cap: int = 100_000) -> dict:
    folder = Path(folder)
    pq, csv = folder / "quarantine.parquet", folder / "quarantine.csv"
    table, total = build(prepared, checks, stream_rows, cap)
    if table.empty:
        for p in (pq, csv):
            if p.exists():
                p.unlink()
        return {"rows": 0, "offending": 0, "capped": False, "parquet": None, "csv": None}
    storage.write_parquet(table, pq)
    with storage.atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    log.info("quarantine: %d line(s) written to %s%s", len(table), pq,
             f" (capped, {total:,} offending rows in all)" if total > len(table) else "")
    return {"rows": int(len(table)), "offending": int(total), "capped": total > len(table), "parquet": str(pq),
            "csv": str(csv), "by_check": _by_check(table)}


def _by_check(table: pd.DataFrame) -> list[dict]:
    g = table.groupby(["expectation", "column", "reason"], dropna=False).size().reset_index(name="rows")
    return [{k: (str(v) if k != "rows" else int(v)) for k, v in r.items()} for r in g.to_dict("records")]
