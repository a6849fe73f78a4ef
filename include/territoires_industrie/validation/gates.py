"""Gate runner. Interim implementation (schema-level checks only) until the Great
Expectations suites land: it already stops a batch whose required columns are missing or
that is empty, and persists a JSON result per dataset and vintage."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .. import storage

log = logging.getLogger(__name__)


class HardGateFailed(RuntimeError):
    def __init__(self, dataset: str, vintage: str, failures: list[dict], result_path: Path | None = None):
        self.dataset, self.vintage, self.failures, self.result_path = dataset, vintage, failures, result_path
        lines = "; ".join(f"{f['expectation']} on {f.get('column') or 'table'}: {f.get('detail', '')}" for f in failures[:10])
        super().__init__(f"hard gate failed for {dataset} {vintage}: {lines} (details: {result_path})")


@dataclass
class GateResult:
    dataset: str
    vintage: str
    status: str  # passed | warnings | failed
    hard_failures: list = field(default_factory=list)
    soft_failures: list = field(default_factory=list)
    result_path: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


REQUIRED = {
    "sirene_stock": ["codgeo", "naf", "etat", "employer", "tranche", "n_etab"],
    "urssaf": ["codgeo", "division", "year", "jobs", "n_etab"],
    "chomage_ze": ["ze2020", "quarter", "rate"],
    "census": ["codgeo", "p21_pop", "p21_act1564"],
}


def gate(dataset: str, df: pd.DataFrame, *, settings, vintage: str, context: dict | None = None) -> GateResult:
    failures = []
    if df.empty:
        failures.append({"expectation": "expect_table_row_count_to_be_between", "column": None, "detail": "0 rows"})
    for col in REQUIRED.get(dataset, []):
        if col not in df.columns:
            failures.append({"expectation": "expect_column_to_exist", "column": col, "detail": "missing"})
    result = GateResult(dataset, vintage, "failed" if failures else "passed", hard_failures=failures)
    path = settings.validation_dir / dataset / vintage / "result.json"
    storage.write_json(path, result.as_dict())
    result.result_path = str(path)
    if failures:
        raise HardGateFailed(dataset, vintage, failures, path)
    return result
