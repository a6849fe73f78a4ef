"""Stage 1: geography of one COG vintage."""

from __future__ import annotations

import logging
import time

from .. import storage
from ..config import Settings, get_settings
from ..geography import build_geography

log = logging.getLogger(__name__)


def run_geography(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    t = time.perf_counter()
    geo = build_geography()
    folder = storage.staging_partition(settings.staging_dir, "geography", geo.vintage)
    geo.save(folder)
    storage.set_current(settings.staging_dir, "geography", geo.vintage)
    return {
        "vintage": geo.vintage, "communes": len(geo.communes), "epci": len(geo.epci), "ze": len(geo.ze),
        "ti": int(geo.ti["ti_id"].nunique()), "ti_unmapped_communes": len(geo.ti_unmapped),
        "seconds": round(time.perf_counter() - t, 2), "path": str(folder),
    }
