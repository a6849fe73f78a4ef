"""Stage 3: URSSAF jobs, localised unemployment, census.

Inputs come from :func:`territoires_industrie.fetch.acquire` (sample files, or the official
endpoints in live mode). A dataset whose upstream file is unchanged and whose current partition
was built from the same bytes is skipped (``{"skipped": True}`` in the summary). Old commune codes
are translated through the passage table of the geography (live mode). Live mode also stages the
BDM unemployment rates by département and région (``chomage_bdm``).
"""

from __future__ import annotations

import logging

from .. import storage
from ..config import Settings, get_settings
from ..fetch import acquire
from ..staged import load_passage
from ..validation import gate
from .common import (
    load_geography,
)
from .geography import already_staged, newer_than_reference, passage_codes, provenance, remap_counts

log = logging.getLogger(__name__)

def stage_table(settings: Settings, dataset: str, df, report: dict, vintage: str, file: str) -> dict:
    """Gate a parsed batch, write it as the ``vintage`` partition and make it current."""
    gate(dataset, df, settings=settings, vintage=vintage, context={"report": report})
    folder = storage.staging_partition(settings.staging_dir, dataset, vintage)
    storage.write_parquet(df, folder / file)
    storage.write_json(folder / "parse_report.json", report)
    storage.set_current(settings.staging_dir, dataset, vintage)
    return {"vintage": vintage, "rows": int(len(df)), "path": str(folder / file)}


def urssaf_years(env: dict | None = None) -> int | None:
    """``TI_URSSAF_YEARS`` (default 11: t1-10..t1, plus 2019): URSSAF years staged; 0 = all."""
    from ..config import env as setting

    n = int(setting("TI_URSSAF_YEARS", env))
    return n if n > 0 else None


def run_employment(settings: Settings | None = None) -> dict:
    from ..sources import census, chomage, urssaf

    settings = settings or get_settings()
    geo = load_geography(settings)
    known = geo.commune_codes()
    passage = load_passage(settings)
    known_or_old = known | passage_codes(passage)
    out = {}

    got = acquire("urssaf", settings, geo)
    out["urssaf"] = already_staged(settings, "urssaf", got, ["jobs_commune_division.parquet"])
    if out["urssaf"] is None:
        df, rep = urssaf.parse_urssaf(got.path, known_or_old, last_years=urssaf_years())
        df, rep["passage"] = remap_counts(df, passage, known, ["codgeo", "division", "year"], ["n_etab", "jobs"],
                                          newer_source=newer_than_reference(settings, got.vintage, geo))
        if passage is not None:
            df["is_industrial"] = df["division"].isin(urssaf.INDUSTRIAL_DIVISIONS)
        rep.update(provenance(got))
        out["urssaf"] = stage_table(settings, "urssaf", df, rep, str(rep["as_of_year"]), "jobs_commune_division.parquet")

    got = acquire("chomage_ze", settings, geo)
    out["chomage_ze"] = already_staged(settings, "chomage_ze", got, ["rates.parquet"])
    if out["chomage_ze"] is None:
        df, rep = chomage.parse_chomage_ze(got.path)
        rep.update(provenance(got))
        out["chomage_ze"] = stage_table(settings, "chomage_ze", df, rep, rep["latest_quarter"], "rates.parquet")

    got = acquire("census", settings, geo)
    out["census"] = already_staged(settings, "census", got, ["communes.parquet"])
    if out["census"] is None:
        df, rep = census.parse_census(got.path, known_or_old)
        num = [c for c in df.columns if c != "codgeo"]
        df, rep["passage"] = remap_counts(df, passage, known, ["codgeo"], num)
        rep.update(provenance(got))
        out["census"] = stage_table(settings, "census", df, rep, got.vintage, "communes.parquet")

    if settings.source_mode == "live":
        out["chomage_bdm"] = run_chomage_bdm(settings)
    return out


def run_chomage_bdm(settings: Settings) -> dict:
    """Live only: BDM localised unemployment by département / région (dataflow TAUX-CHOMAGE),
    staged as ``chomage_bdm/<YYYY-Tq>/rates.parquet`` (idbank, ref_area, niveau, code_insee,
    time_period, quarter, rate, obs_status, obs_qual, last_update)."""
    from ..sources import bdm

    got = acquire("chomage_bdm", settings)
    skipped = already_staged(settings, "chomage_bdm", got, ["rates.parquet"])
    if skipped is not None:
        return skipped
    paths = sorted(got.path.parent.glob("taux_chomage_bdm_part*.xml"))
    df, rep = bdm.parse_sdmx(paths, bdm.load_idbanks())
    bad = df[(df["rate"] <= 0) | (df["rate"] >= 100)]
    if len(bad):  # no GX suite for this dataset yet: the range check is done here
        r = bad.iloc[0]
        raise ValueError(f"{paths[0].name}: unemployment rate out of (0, 100): {r['rate']} for {r['ref_area']} "
                         f"{r['time_period']} ({len(bad)} such value(s))")
    vintage = df.loc[df["time_period"] == rep["latest_time_period"], "quarter"].iloc[0]
    rep.update(provenance(got))
    gate("chomage_bdm", df, settings=settings, vintage=vintage, context={"report": rep})
    folder = storage.staging_partition(settings.staging_dir, "chomage_bdm", vintage)
    storage.write_parquet(df, folder / "rates.parquet")
    storage.write_json(folder / "parse_report.json", rep)
    storage.set_current(settings.staging_dir, "chomage_bdm", vintage)
    return {"vintage": vintage, "rows": int(len(df)), "series": rep["series"],
            "missing_idbanks": len(rep.get("missing_idbanks", [])), "path": str(folder / "rates.parquet")}
