"""The latest validation status of every dataset, for the CLI, the index page and the
published report.

``validation/<dataset>/LATEST`` holds the vintage of the most recent gate run of that
dataset (whatever its outcome: a failed gate on a new vintage *is* the latest news, even
though staging and the warehouse still serve the previous one).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .. import storage

log = logging.getLogger(__name__)

#: display order (the pipeline's order); other datasets follow alphabetically
ORDER = ("geography", "sirene_stock", "sirene_history", "sirene_updates", "urssaf", "chomage_ze", "chomage_bdm", "census", "indicator_values", "composite")
_RANK = {"passed": 0, "warnings": 1, "failed": 2}


def set_latest(validation_dir: Path, dataset: str, vintage: str) -> None:
    storage.atomic_write_text(Path(validation_dir) / dataset / "LATEST", f"{vintage}\n")


def latest_status(settings) -> dict:
    """dataset -> {vintage, status, rows, checks, hard_failures, soft_failures,
    quarantine_rows, validated_at, failures (one line each), paths{result, html,
    quarantine, quarantine_csv}}. Empty dict when no gate has run yet."""
    root = Path(settings.validation_dir)
    out = {}
    if not root.exists():
        return out
    names = sorted((p.parent.name for p in root.glob("*/LATEST")), key=lambda n: (ORDER.index(n) if n in ORDER
                                                                                  else len(ORDER), n))
    from .failures import describe_failure

    for name in names:
        vintage = (root / name / "LATEST").read_text().strip()
        path = root / name / vintage / "result.json"
        if not path.exists():
            continue
        try:
            r = json.loads(path.read_text())
        except ValueError:
            log.warning("unreadable validation result %s", path)
            continue
        failed = [c for c in r.get("checks", []) if not c.get("success")]
        q = r.get("quarantine") or {}
        out[name] = {
            "dataset": name, "title": r.get("title"), "vintage": vintage, "status": r.get("status"),
            "rows": r.get("rows"), "checks": r.get("evaluated"), "hard_failures": r.get("hard_failures", 0),
            "soft_failures": r.get("soft_failures", 0), "quarantine_rows": q.get("rows", 0),
            "validated_at": r.get("validated_at"), "previous_vintage": (r.get("drift") or {}).get("previous_vintage"),
            "failures": [{"severity": c.get("severity"), "text": describe_failure(c)}
                         for c in sorted(failed, key=lambda c: c.get("severity") != "hard")],
            "paths": {"result": str(path), "html": str(path.parent / "report.html"),
                      "quarantine": q.get("parquet"), "quarantine_csv": q.get("csv"),
                      "index": str(root / "index.html")},
        }
    return out


def overall_status(status: dict) -> str:
    """``failed`` if any dataset's latest gate failed, else ``warnings`` / ``passed``;
    ``none`` when nothing was validated yet."""
    if not status:
        return "none"
    worst = max((_RANK.get(s.get("status"), 2) for s in status.values()), default=0)
    return {0: "passed", 1: "warnings", 2: "failed"}[worst]


def format_summary(status: dict, max_failures: int = 5) -> str:
    """A plain-text table for the terminal (``ti-indicators validation`` / ``summary``)."""
    lines = ["Validation (Great Expectations gates) — latest run per dataset"]
    if not status:
        lines.append("  no validation has run yet (the stages gate every batch: run the pipeline)")
        return "\n".join(lines)
    header = f"  {'dataset':<17} {'vintage':<11} {'status':<9} {'checks':>6} {'hard':>5} {'soft':>5} {'quarantined':>11}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for name, s in status.items():
        lines.append(f"  {name:<17} {str(s['vintage']):<11} {str(s['status']).upper():<9} {s.get('checks') or 0:>6} "
                     f"{s['hard_failures']:>5} {s['soft_failures']:>5} {s['quarantine_rows']:>11}")
    for name, s in status.items():
        if s["failures"]:
            lines.append(f"  {name} {s['vintage']} ({s['status']}): {s['paths']['html']}")
            for f in s["failures"][:max_failures]:
                lines.append(f"    [{f['severity']}] {f['text']}")
            if len(s["failures"]) > max_failures:
                lines.append(f"    ... {len(s['failures']) - max_failures} more in the report")
            if s["paths"].get("quarantine_csv"):
                lines.append(f"    quarantined rows: {s['paths']['quarantine_csv']}")
    first = next(iter(status.values()))
    lines.append(f"Overall: {overall_status(status).upper()} — index: {first['paths']['index']}")
    return "\n".join(lines)
