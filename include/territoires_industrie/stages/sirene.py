"""Stage 2: SIRENE establishments stock."""

from __future__ import annotations

import logging

from .. import storage
from ..config import Settings, get_settings
from ..fetch import acquire
from ..validation import gate
from .common import load_geography

log = logging.getLogger(__name__)

def run_sirene(settings: Settings | None = None) -> dict:
    from ..sources import sirene

    settings = settings or get_settings()
    geo = load_geography(settings)
    got = acquire("sirene_stock", settings, geo)
    raw, vintage = got.path, got.vintage
    folder = storage.staging_partition(settings.staging_dir, "sirene_stock", vintage)
    agg, report = sirene.aggregate_stock(raw, geo.commune_codes(),
                                         industrial_extract=folder / "industrial_establishments.parquet")
    gate("sirene_stock", agg, settings=settings, vintage=vintage, context={"report": report.as_dict()})
    storage.write_parquet(agg, folder / "establishments_agg.parquet")
    storage.write_json(folder / "parse_report.json", report.as_dict())
    storage.update_manifest(raw.parent, raw.name, {**storage.read_manifest(raw.parent)["files"][raw.name],
                                                    "rows": report.rows, "as_of_from_data": report.as_of})
    storage.set_current(settings.staging_dir, "sirene_stock", vintage)
    return {"vintage": vintage, "as_of_from_data": report.as_of, "rows": report.rows,
            "aggregate_rows": len(agg), "path": str(folder)}
