"""Stage 5: publication — warehouse release, exports, HTML report.

1. the current indicator release (staging) is published to the warehouse in one
   transaction (readers see the previous release or the new one, never a mix);
2. the exports (XLSX, CSV ``,`` and ``;``, Parquet) are built **from the warehouse** into
   ``exports/<release>/`` (each file written atomically, same bytes for the same release);
3. the static report is built from the warehouse into ``reports/<release>/`` (temporary
   folder renamed into place) and ``reports/latest/`` redirects to it.

Steps 2-3 alone are :func:`build_outputs` (``ti-indicators report``): they never re-run the
pipeline and read nothing but the warehouse (plus the optional map geometry and the
validation status files).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from .. import storage
from ..config import Settings, get_settings
from .common import redact_url

log = logging.getLogger(__name__)


def _validation_overall(settings: Settings) -> str | None:
    """``passed`` / ``warnings`` from the latest gate results (None when unavailable)."""
    try:
        from ..validation import latest_status, overall_status
    except (ImportError, AttributeError):
        return None
    try:
        status = overall_status(latest_status(settings))
    except Exception as exc:  # a missing or unreadable status must not block publication
        log.warning("validation status unavailable (%s)", exc)
        return None
    return None if status == "none" else status


def build_outputs(settings: Settings | None = None, release_id: str | None = None, *, engine=None,
                  exports: bool = True, geometry_dir: Path | None = None) -> dict:
    """Exports and report of ``release_id`` (the warehouse's current release by default),
    built from the warehouse alone."""
    from .. import warehouse
    from ..publish import build_exports, load_release
    from ..report import build_report

    settings = settings or get_settings()
    own = engine is None
    engine = engine or warehouse.get_engine(settings.warehouse_url)
    try:
        rd = load_release(engine, release_id)
        out: dict = {"release_id": rd.release_id, "synthetic": rd.synthetic}
        export_dir = settings.exports_dir / rd.release_id
        if exports:
            out["exports"] = build_exports(rd, export_dir)
        report = build_report(engine, settings.reports_dir, rd.release_id, settings=settings,
                              geometry_dir=geometry_dir, exports_dir=export_dir)
        out["report"] = report["index"]
        out["report_latest"] = report["latest"]
        out["report_pages"] = report["pages"]
        out["report_seconds"] = report["seconds"]
        out["previous_release"] = report["previous_release"]
    finally:
        if own:
            engine.dispose()
    return out


def run_publish(settings: Settings | None = None, release: str | None = None) -> dict:
    """Publish the current indicators partition, or ``release`` (a past period whose
    ``staging/indicators/<release>/`` is still there: re-run / backfill)."""
    from .. import warehouse

    settings = settings or get_settings()
    if release:
        release_id, folder = release, settings.staging_dir / "indicators" / release
        if not (folder / "release_meta.json").exists():
            have = sorted(p.parent.name for p in (settings.staging_dir / "indicators").glob("*/release_meta.json"))
            raise FileNotFoundError(f"no staged indicators for release {release!r} ({folder}); "
                                    f"staged releases: {', '.join(have) or 'none'}")
    else:
        release_id, folder = storage.current(settings.staging_dir, "indicators")
    meta = json.loads((folder / "release_meta.json").read_text())
    if meta.get("validation_status") is None:
        meta["validation_status"] = _validation_overall(settings)
    tables = {n: pd.read_parquet(folder / f"{n}.parquet") for n in warehouse.RELEASE_TABLES
              if (folder / f"{n}.parquet").exists()}
    if (folder / "counts_internal.parquet").exists():  # restricted inputs of the candidacy review (never exported)
        from ..review.inputs import review_inputs_from_staging

        tables["review_inputs"] = review_inputs_from_staging(settings, folder)
    engine = warehouse.get_engine(settings.warehouse_url)
    try:
        result = warehouse.publish_release(engine, release_id, tables, meta)
        outputs = build_outputs(settings, release_id, engine=engine)
    finally:
        engine.dispose()
    exports = outputs.get("exports", {})
    result.update({"csv": exports.get("csv"), "xlsx": exports.get("xlsx"), "exports": str(settings.exports_dir / release_id),
                   "report": outputs["report"], "report_pages": outputs["report_pages"],
                   "warehouse": redact_url(settings.warehouse_url), "synthetic": meta.get("synthetic"),
                   "validation_status": meta.get("validation_status")})
    log.info("release %s published; report: %s", release_id, outputs["report"])
    return result
