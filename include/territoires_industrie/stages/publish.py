"""Stage 5: publication (warehouse release + exports)."""

from __future__ import annotations

import json
import logging

import pandas as pd

from .. import storage
from ..config import Settings, get_settings
from .common import (
    redact_url,
)

log = logging.getLogger(__name__)

MAIN_CSV_COLUMNS = ["level", "territory_id", "label", "n_communes", "population", "estab_ind_active", "estab_ind_employer",
                    "jobs_ind", "jobs_total", "ind_share", "ind_lq", "jobs_ind_t0", "jobs_ind_change_5y",
                    "active_1564", "unemployed_est", "unemployment_rate"]


def run_publish(settings: Settings | None = None) -> dict:
    from .. import warehouse

    settings = settings or get_settings()
    release_id, folder = storage.current(settings.staging_dir, "indicators")
    meta = json.loads((folder / "release_meta.json").read_text())
    tables = {n: pd.read_parquet(folder / f"{n}.parquet") for n in warehouse.RELEASE_TABLES}
    engine = warehouse.get_engine(settings.warehouse_url)
    result = warehouse.publish_release(engine, release_id, tables, meta)
    engine.dispose()

    wide = pd.read_parquet(folder / "wide.parquet")
    csv = wide[MAIN_CSV_COLUMNS].copy()
    csv = csv[csv["level"] != "commune"].sort_values(["level", "territory_id"])
    for col in ("ind_share", "ind_lq", "jobs_ind_change_5y", "unemployment_rate", "population", "active_1564", "unemployed_est"):
        csv[col] = csv[col].round(3)
    suffix = "_SYNTHETIC" if meta.get("synthetic") else ""
    dest = settings.exports_dir / release_id / f"indicateurs_territoires_{release_id}{suffix}.csv"
    csv.insert(0, "data_status", "SYNTHETIC" if meta.get("synthetic") else "official")
    with storage.atomic_path(dest) as tmp:
        csv.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    result.update({"csv": str(dest), "warehouse": redact_url(settings.warehouse_url), "synthetic": meta.get("synthetic")})
    return result
