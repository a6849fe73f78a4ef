"""Stage 3: URSSAF jobs, localised unemployment, census."""

from __future__ import annotations

import logging

from .. import storage
from ..config import Settings, get_settings
from ..fetch import acquire
from ..validation import gate
from .common import (
    load_geography,
)

log = logging.getLogger(__name__)

def stage_table(settings: Settings, dataset: str, df, report: dict, vintage: str, file: str) -> dict:
    """Gate a parsed batch, write it as the ``vintage`` partition and make it current."""
    gate(dataset, df, settings=settings, vintage=vintage, context={"report": report})
    folder = storage.staging_partition(settings.staging_dir, dataset, vintage)
    storage.write_parquet(df, folder / file)
    storage.write_json(folder / "parse_report.json", report)
    storage.set_current(settings.staging_dir, dataset, vintage)
    return {"vintage": vintage, "rows": int(len(df)), "path": str(folder / file)}


def run_employment(settings: Settings | None = None) -> dict:
    from ..sources import census, chomage, urssaf

    settings = settings or get_settings()
    geo = load_geography(settings)
    known = geo.commune_codes()
    out = {}

    got = acquire("urssaf", settings, geo)
    df, rep = urssaf.parse_urssaf(got.path, known)
    out["urssaf"] = stage_table(settings, "urssaf", df, rep, str(rep["as_of_year"]), "jobs_commune_division.parquet")

    got = acquire("chomage_ze", settings, geo)
    df, rep = chomage.parse_chomage_ze(got.path)
    out["chomage_ze"] = stage_table(settings, "chomage_ze", df, rep, rep["latest_quarter"], "rates.parquet")

    got = acquire("census", settings, geo)
    df, rep = census.parse_census(got.path, known)
    out["census"] = stage_table(settings, "census", df, rep, got.vintage, "communes.parquet")
    return out
