"""Stage functions called by the DAG tasks (and by the CLI). Each returns a small,
JSON-serialisable summary (paths and counts, never data and never secrets) for XCom.

    geography -> sirene -> employment -> indicators -> publish

Every stage reads the previous stage's *current* staging partition and writes its own
partition keyed by the vintage read from the data, then moves its ``CURRENT`` pointer.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from . import storage
from .config import Settings, get_settings
from .geography import Geography, build_geography

log = logging.getLogger(__name__)
SYNTHETIC_BANNER = "SYNTHETIC SAMPLE DATA — generated figures, not official statistics"


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_sample(settings: Settings, geo: Geography) -> dict:
    """Generate the deterministic SYNTHETIC sample once (idempotent, safe under concurrency)."""
    from .sample import generate_sample

    manifest_path = settings.sample_dir / "SAMPLE_MANIFEST.json"
    with _lock(settings.data_dir / ".sample.lock"):
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if list(manifest.get("departements", [])) == list(settings.sample_departements) and float(
                manifest.get("scale", 1.0)
            ) == settings.sample_scale:
                return manifest
        log.info("generating SYNTHETIC sample data for départements %s", ",".join(settings.sample_departements))
        generate_sample(settings.sample_dir, geo, departements=settings.sample_departements, scale=settings.sample_scale)
        return json.loads(manifest_path.read_text())


def _sample_file(settings: Settings, manifest: dict, key: str) -> Path:
    return settings.sample_dir / manifest["files"][key]["path"]


def load_geography(settings: Settings) -> Geography:
    _, folder = storage.current(settings.staging_dir, "geography")
    return Geography.load(folder)


# ---------------------------------------------------------------- geography
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


# ---------------------------------------------------------------- SIRENE
def run_sirene(settings: Settings | None = None) -> dict:
    from .sources import sirene

    settings = settings or get_settings()
    geo = load_geography(settings)
    if settings.source_mode != "sample":
        raise NotImplementedError("live SIRENE fetch: see sources.sirene (issue: real data sources)")
    manifest = ensure_sample(settings, geo)
    src = _sample_file(settings, manifest, "sirene_stock")
    vintage = manifest["as_of"]["sirene_stock"]
    raw = storage.land_file(src, settings.raw_dir, "sirene_stock", vintage, {"origin": "sample (SYNTHETIC)"})
    agg, report = sirene.aggregate_stock(raw, geo.commune_codes())
    folder = storage.staging_partition(settings.staging_dir, "sirene_stock", vintage)
    storage.write_parquet(agg, folder / "establishments_agg.parquet")
    storage.write_json(folder / "parse_report.json", report.as_dict())
    storage.update_manifest(raw.parent, raw.name, {**storage.read_manifest(raw.parent)["files"][raw.name],
                                                    "rows": report.rows, "as_of_from_data": report.as_of})
    storage.set_current(settings.staging_dir, "sirene_stock", vintage)
    return {"vintage": vintage, "as_of_from_data": report.as_of, "rows": report.rows,
            "aggregate_rows": len(agg), "path": str(folder)}


# ---------------------------------------------------------------- employment
def run_employment(settings: Settings | None = None) -> dict:
    from .sources import census, chomage, urssaf

    settings = settings or get_settings()
    geo = load_geography(settings)
    if settings.source_mode != "sample":
        raise NotImplementedError("live employment fetch: see sources (issue: real data sources)")
    manifest = ensure_sample(settings, geo)
    known = geo.commune_codes()
    out = {}

    src = _sample_file(settings, manifest, "urssaf")
    raw = storage.land_file(src, settings.raw_dir, "urssaf", manifest["as_of"]["urssaf"], {"origin": "sample (SYNTHETIC)"})
    df, rep = urssaf.parse_urssaf(raw, known)
    vintage = str(rep["as_of_year"])
    folder = storage.staging_partition(settings.staging_dir, "urssaf", vintage)
    storage.write_parquet(df, folder / "jobs_commune_division.parquet")
    storage.write_json(folder / "parse_report.json", rep)
    storage.set_current(settings.staging_dir, "urssaf", vintage)
    out["urssaf"] = {"vintage": vintage, "rows": rep["rows"]}

    src = _sample_file(settings, manifest, "chomage_ze")
    raw = storage.land_file(src, settings.raw_dir, "chomage_ze", manifest["as_of"]["chomage_ze"], {"origin": "sample (SYNTHETIC)"})
    df, rep = chomage.parse_chomage_ze(raw)
    vintage = rep["latest_quarter"]
    folder = storage.staging_partition(settings.staging_dir, "chomage_ze", vintage)
    storage.write_parquet(df, folder / "rates.parquet")
    storage.write_json(folder / "parse_report.json", rep)
    storage.set_current(settings.staging_dir, "chomage_ze", vintage)
    out["chomage_ze"] = {"vintage": vintage, "ze": rep["ze"]}

    src = _sample_file(settings, manifest, "census")
    vintage = manifest["as_of"]["census"]
    raw = storage.land_file(src, settings.raw_dir, "census", vintage, {"origin": "sample (SYNTHETIC)"})
    df, rep = census.parse_census(raw, known)
    folder = storage.staging_partition(settings.staging_dir, "census", vintage)
    storage.write_parquet(df, folder / "communes.parquet")
    storage.write_json(folder / "parse_report.json", rep)
    storage.set_current(settings.staging_dir, "census", vintage)
    out["census"] = {"vintage": vintage, "communes": rep["rows"]}
    return out


# ---------------------------------------------------------------- indicators
def _read_current(settings: Settings, dataset: str, file: str) -> tuple[str, pd.DataFrame]:
    vintage, folder = storage.current(settings.staging_dir, dataset)
    return vintage, pd.read_parquet(folder / file)


def source_vintages(settings: Settings) -> dict:
    return {d: storage.current(settings.staging_dir, d)[0]
            for d in ("geography", "sirene_stock", "urssaf", "chomage_ze", "census")}


def run_indicators(settings: Settings | None = None) -> dict:
    from .indicators import base
    from .labels import DEPARTEMENTS, REGIONS
    from .sources.chomage import last_quarters

    settings = settings or get_settings()
    geo = load_geography(settings)
    sv, sirene = _read_current(settings, "sirene_stock", "establishments_agg.parquet")
    uv, urssaf = _read_current(settings, "urssaf", "jobs_commune_division.parquet")
    cv, chom = _read_current(settings, "chomage_ze", "rates.parquet")
    rv, census = _read_current(settings, "census", "communes.parquet")
    t1 = int(uv)
    quarters = last_quarters(cv, 4)
    cb = base.commune_base(geo.communes, sirene, urssaf, chom, census, t1=t1, quarters=quarters)
    members = base.memberships(geo.communes, geo.ti)
    agg, excluded = base.aggregate_levels(cb, members)
    national = cb[base.COUNT_COLUMNS].sum()
    wide = base.derive(agg, national)
    periods = {
        "estab_ind_active": sv, "estab_ind_employer": sv, "jobs_ind": str(t1), "jobs_total": str(t1),
        "ind_share": str(t1), "ind_lq": str(t1), "jobs_ind_change_5y": f"{t1 - 5}-{t1}",
        "unemployment_rate": f"{quarters[0]}..{quarters[-1]}",
    }
    long = base.to_long(wide, periods)

    # territory labels and main département / région
    c = geo.communes
    lab = {
        "commune": c.set_index("codgeo")["libgeo"], "epci": geo.epci.set_index("epci")["libepci"],
        "ze": geo.ze.set_index("ze2020")["libze2020"], "departement": pd.Series(DEPARTEMENTS),
        "region": pd.Series(REGIONS), "ti": geo.ti.drop_duplicates("ti_id").set_index("ti_id")["ti_label"],
    }
    mm = members.merge(c[["codgeo", "dep", "reg"]], on="codgeo")
    main = mm.groupby(["level", "territory_id"]).agg(
        departement=("dep", lambda s: s.value_counts().index[0]), region=("reg", lambda s: s.value_counts().index[0])
    ).reset_index()
    terr = wide[["level", "territory_id", "n_communes", "population"]].merge(main, on=["level", "territory_id"], how="left")
    terr["label"] = [lab[lv].get(t) for lv, t in zip(terr["level"], terr["territory_id"])]
    terr = terr[["level", "territory_id", "label", "departement", "region", "n_communes", "population"]]
    terr = terr.sort_values(["level", "territory_id"]).reset_index(drop=True)
    dictionary = pd.DataFrame(
        [{"indicator_id": d.id, "label_fr": d.label_fr, "unit": d.unit, "formula": d.formula, "source": d.source,
          "period": periods[d.id]} for d in base.INDICATORS]
    )
    release_id = sv[:7]
    folder = storage.staging_partition(settings.staging_dir, "indicators", release_id)
    storage.write_parquet(wide.merge(terr[["level", "territory_id", "label"]], on=["level", "territory_id"]),
                          folder / "wide.parquet")
    storage.write_parquet(long, folder / "indicator_values.parquet")
    storage.write_parquet(terr, folder / "territories.parquet")
    storage.write_parquet(dictionary, folder / "indicator_dictionary.parquet")
    storage.write_parquet(excluded, folder / "excluded_partial_territories.parquet")
    meta = {"release_id": release_id, "source_vintages": source_vintages(settings), "synthetic": settings.is_synthetic,
            "t1": t1, "quarters": quarters}
    storage.write_json(folder / "release_meta.json", meta)
    storage.set_current(settings.staging_dir, "indicators", release_id)
    counts = terr.groupby("level").size().to_dict()
    log.info("indicators %s: territories per level %s; %d partly covered territories excluded",
             release_id, counts, len(excluded))
    return {"release_id": release_id, "territories": counts, "indicator_values": len(long),
            "excluded_partial_territories": len(excluded), "path": str(folder)}


# ---------------------------------------------------------------- publish
MAIN_CSV_COLUMNS = ["level", "territory_id", "label", "n_communes", "population", "estab_ind_active", "estab_ind_employer",
                    "jobs_ind", "jobs_total", "ind_share", "ind_lq", "jobs_ind_t0", "jobs_ind_change_5y",
                    "active_1564", "unemployed_est", "unemployment_rate"]


def run_publish(settings: Settings | None = None) -> dict:
    from . import warehouse

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
    result.update({"csv": str(dest), "warehouse": _redact_url(settings.warehouse_url), "synthetic": meta.get("synthetic")})
    return result


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
