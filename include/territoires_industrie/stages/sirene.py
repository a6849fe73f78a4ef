"""Stage 2: SIRENE establishments stock (+ the API Sirene updates since the stock, live mode).

The stock comes from ``acquire("sirene_stock")``: the bundled sample, or in live mode the newest
``StockEtablissement`` resource of the data.gouv dataset (zip or its Parquet twin). When the
upstream file is unchanged and the partition of its vintage was built from the same bytes, the
stage does nothing and says so. Old commune codes are translated through the passage table
staged with the geography (live mode); codes that cannot be mapped are reported.
"""

from __future__ import annotations

import logging

from .. import storage
from ..config import Settings, get_settings
from ..fetch import acquire
from ..staged import load_passage
from ..validation import SireneStreamChecker, gate
from .common import load_geography
from .geography import already_staged, newer_than_reference, passage_codes, provenance, remap_counts

log = logging.getLogger(__name__)
AGG_KEYS = ["codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche"]

def run_sirene(settings: Settings | None = None) -> dict:
    from ..sources import sirene

    settings = settings or get_settings()
    geo = load_geography(settings)
    got = acquire("sirene_stock", settings, geo)
    raw, vintage = got.path, got.vintage
    skipped = already_staged(settings, "sirene_stock", got, ["establishments_agg.parquet"])
    if skipped is not None:
        return skipped
    passage = load_passage(settings)
    known = geo.commune_codes()
    folder = storage.staging_partition(settings.staging_dir, "sirene_stock", vintage)
    checker = SireneStreamChecker()  # file-level checks on every raw batch (SIRET format/uniqueness, codes)
    agg, report = sirene.aggregate_stock(raw, known | passage_codes(passage),
                                         industrial_extract=folder / "industrial_establishments.parquet",
                                         on_batch=checker.update)
    agg, passage_report = remap_counts(agg, passage, known, AGG_KEYS, ["n_etab"],
                                       newer_source=newer_than_reference(settings, vintage, geo))
    rep = {**report.as_dict(), "passage": passage_report, **provenance(got)}
    gate("sirene_stock", agg, settings=settings, vintage=vintage,
         context={"report": rep, "stream": checker.result(), "geography": geo})
    storage.write_parquet(agg, folder / "establishments_agg.parquet")
    storage.write_json(folder / "parse_report.json", rep)
    storage.update_manifest(raw.parent, raw.name, {**storage.read_manifest(raw.parent)["files"][raw.name],
                                                    "rows": report.rows, "as_of_from_data": report.as_of})
    storage.set_current(settings.staging_dir, "sirene_stock", vintage)
    return {"vintage": vintage, "as_of_from_data": report.as_of, "rows": report.rows,
            "aggregate_rows": len(agg), "path": str(folder)}


def run_sirene_updates(settings: Settings | None = None) -> dict:
    """Live mode: pull the API Sirene updates since the watermark (stock as-of or the last landed
    batch) and stage every establishment treated after the stock's as-of, one row per SIRET
    (latest treatment wins): ``staging/sirene_updates/<stock as-of>_<latest treatment>/updates.parquet``.
    Sample mode has no API: the stage says so and does nothing."""
    import json

    import pandas as pd

    from ..sources import sirene_api

    settings = settings or get_settings()
    if settings.source_mode != "live":
        log.info("sirene_updates: sample mode: the SYNTHETIC daily feed derived from the sample stock stands in for "
                 "API Sirene (same pages, flattening and landing)")
    try:
        stock_vintage, stock_folder = storage.current(settings.staging_dir, "sirene_stock")
    except FileNotFoundError:  # a fresh install: the daily DAG waits for the first monthly stock
        log.info("sirene_updates: no SIRENE stock staged yet: the updates start from the first stock (ti_sirene)")
        return {"skipped": True, "reason": "no SIRENE stock staged yet: run ti_sirene first"}
    rep_path = stock_folder / "parse_report.json"
    stock_as_of = (json.loads(rep_path.read_text()).get("as_of") if rep_path.exists() else None) or stock_vintage
    got = acquire("sirene_updates", settings, load_geography(settings) if settings.source_mode != "live" else None,
                  stock_as_of=stock_as_of)
    batches = [w for w in sirene_api.landed_windows(settings) if w["window_to"][:10] >= stock_as_of[:10]]
    if not got.changed:
        try:
            cur, cur_folder = storage.current(settings.staging_dir, "sirene_updates")
            if cur.startswith(stock_as_of[:10] + "_"):
                return {"vintage": cur, "skipped": True, "reason": "no update since the watermark",
                        "watermark": got.vintage, "path": str(cur_folder)}
        except FileNotFoundError:
            pass
        if not batches:
            return {"skipped": True, "reason": "no update since the stock", "stock_as_of": stock_as_of}
    frames = [sirene_api.read_flat(settings.raw_dir / w["path"]) for w in batches]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=sirene_api._COLS)
    ddt = df["dateDernierTraitementEtablissement"].astype(str)
    df = df[ddt.str[:10] >= stock_as_of[:10]]
    df = df.sort_values(["siret", "dateDernierTraitementEtablissement"]).drop_duplicates("siret", keep="last")
    df = df.reset_index(drop=True)
    latest = df["dateDernierTraitementEtablissement"].max() if len(df) else stock_as_of
    vintage = f"{stock_as_of[:10]}_{sirene_api._safe(latest)}"
    gate("sirene_updates", df, settings=settings, vintage=vintage)
    folder = storage.staging_partition(settings.staging_dir, "sirene_updates", vintage)
    storage.write_parquet(df, folder / "updates.parquet")
    report = {"stock_vintage": stock_vintage, "stock_as_of": stock_as_of, "latest_treatment": latest,
              "establishments": int(len(df)), "batches": [w["path"] for w in batches],
              "closed": int((df["etatAdministratifEtablissement"] == "F").sum()), **provenance(got)}
    storage.write_json(folder / "parse_report.json", report)
    storage.set_current(settings.staging_dir, "sirene_updates", vintage)
    log.info("sirene_updates %s: %d establishment(s) treated since the stock as-of %s, from %d batch(es)",
             vintage, len(df), stock_as_of, len(batches))
    return {"vintage": vintage, **{k: report[k] for k in ("stock_as_of", "latest_treatment", "establishments")},
            "batches": len(batches), "path": str(folder)}
