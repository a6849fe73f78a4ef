"""Stage 1: geography of one COG vintage.

- ``sample`` mode (default): the bundled real INSEE COG 2023 EPCI / ZE compositions and the
  phase-1 TI list, mapped to COG 2023 through the bundled real table of merged communes (COG 2026),
  which is staged (``passage.parquet``) as the passage table of the other stages.
- ``live`` mode: the EPCI, ZE2020, appartenance, passage and COG files of ``TI_COG_YEAR`` from
  insee.fr and the 2023-2027 TI lists from data.gouv, landed in the raw zone. Old commune codes
  of the TI lists are mapped through the passage table (INSEE's, plus the bundled merges table
  for the communes nouvelles newer than the reference year), which is staged (``passage.parquet``) for
  the other stages; the appartenance table and the COG list are cross-checked against the
  compositions. Nothing is rebuilt when every input is unchanged and the partition exists.
  The official geometries (IGN ADMIN EXPRESS COG CARTO) are landed too and written as
  ``geometry/epci.geojson`` and ``geometry/ze.geojson`` for the report map; they are optional:
  a failed download or a bad archive is logged and recorded (``geometry.status``
  ``"unavailable"`` in the parse report and the summary), never a failure of the stage, and a
  geometry folder built earlier for the same vintage is kept. ``TI_FETCH_GEOMETRY=0`` skips them.

Helpers shared with the other stages: :func:`load_passage`, :func:`remap_counts`,
:func:`already_staged`.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import storage
from ..config import Settings, cog_year, get_settings
from ..geography import (
    MERGES_COG_YEAR,
    REAL_DIR,
    TI_PHASE1_CSV,
    Geography,
    build_geography,
    map_to_vintage,
    read_merges,
)
from ..staged import PASSAGE_FILE
from ..validation import gate

log = logging.getLogger(__name__)

#: real commune boundaries bundled for the embedded default's maps (provenance in data/real/PROVENANCE.md)
COMMUNES_2018_DIR = REAL_DIR / "geo" / "communes_2018"
COMMUNES_2018_SOURCE = ("IGN ADMIN EXPRESS COG 2018 simplifié (gregoiredavid/france-geojson), Licence Ouverte ; "
                        "anciennes communes regroupées dans leur commune nouvelle")
GEO_FILES = ("geo_epci", "geo_ze", "geo_passage", "geo_appartenance", "geo_cog")


def run_geography(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    if settings.source_mode == "live":
        return _run_geography_live(settings)
    t = time.perf_counter()
    passage = read_merges()
    geo = build_geography(passage=passage)
    gate("geography", geo.communes, settings=settings, vintage=geo.vintage, context={"geography": geo})
    folder = storage.staging_partition(settings.staging_dir, "geography", geo.vintage)
    geo.save(folder)
    storage.write_parquet(passage, folder / PASSAGE_FILE)
    geometry = _sample_geometry(settings, folder, geo, passage)
    storage.set_current(settings.staging_dir, "geography", geo.vintage)
    return {
        "vintage": geo.vintage, "communes": len(geo.communes), "epci": len(geo.epci), "ze": len(geo.ze),
        "ti": int(geo.ti["ti_id"].nunique()), "ti_mapped_communes": len(geo.ti_mapped),
        "ti_unmapped_communes": len(geo.ti_unmapped), "passage": f"merged communes, COG {MERGES_COG_YEAR}",
        "geometry": geometry, "seconds": round(time.perf_counter() - t, 2), "path": str(folder),
    }


def _sample_geometry(settings: Settings, folder: Path, geo: Geography, passage: pd.DataFrame) -> dict:
    """The map layers of the embedded default from the bundled real commune boundaries (IGN ADMIN
    EXPRESS 2018, simplified; the sample's départements), dissolved into the COG 2023 communes and
    every level by the same code as live mode. Optional like in live mode: a failure is recorded."""
    from ..sources import admin_express

    if not admin_express.enabled():
        return {"status": "off", "reason": "TI_FETCH_GEOMETRY=0"}
    t = time.perf_counter()
    files = sorted(COMMUNES_2018_DIR.glob("communes-*.geojson"))
    meta = {"source": COMMUNES_2018_SOURCE, "cog": geo.vintage, "crs": "EPSG:4326 (longitude, latitude)"}
    try:
        from dataclasses import replace

        from ..staged import with_ti_2023

        ti, _ = with_ti_2023(settings, geo)  # the 2023-2027 perimeters come with the sample's TI list
        collections, check = admin_express.build_levels(admin_express.read_geojson_communes(files),
                                                        replace(geo, ti=ti), passage, meta=meta)
        sizes = admin_express.write_geometry_dir(folder / admin_express.GEOMETRY_DIR, collections)
    except Exception as exc:  # noqa: BLE001 - the map is optional; the indicators are not
        log.warning("geometry of the embedded default unavailable: %s", admin_express.describe_error(exc))
        return {"status": "unavailable", "reason": admin_express.describe_error(exc)}
    log.info("geometry of the embedded default: %d commune shapes -> %d communes of COG %s (%d dissolved), %s in "
             "%.1f s", check["shapes"], check["communes"], geo.vintage, check["dissolved_into_commune_nouvelle"],
             ", ".join(f"{k} {check[k]['features']}" for k in ("epci", "ze", "departement", "ti")),
             time.perf_counter() - t)
    return {"status": "ok", "source": COMMUNES_2018_SOURCE, "files": sizes, **check}


# --- shared helpers --------------------------------------------------------------------------
def already_staged(settings: Settings, dataset: str, got, files: list[str]) -> dict | None:
    """If the landed input is unchanged and the current partition of ``dataset`` was built from
    exactly these bytes, return that partition's parse report (the caller skips its work)."""
    if got.changed:
        return None
    try:
        vintage, folder = storage.current(settings.staging_dir, dataset)
    except FileNotFoundError:
        return None
    rep_path = folder / "parse_report.json"
    if not rep_path.exists() or not all((folder / f).exists() for f in files):
        return None
    rep = json.loads(rep_path.read_text())
    sha = (got.manifest or {}).get("sha256")
    if sha and rep.get("raw_sha256") == sha:
        log.info("%s: upstream unchanged (raw %s) and staging partition %s already built from it: skipped",
                 dataset, got.path.name, vintage)
        return {"vintage": vintage, "skipped": True, "reason": "upstream unchanged", "path": str(folder)}
    return None


def provenance(got) -> dict:
    """Keys added to a parse report so a later run can tell what it was built from."""
    return {"raw_path": str(got.path), "raw_vintage": got.vintage, "raw_sha256": (got.manifest or {}).get("sha256")}


def passage_codes(passage: pd.DataFrame | None) -> set[str]:
    """Every code the passage table can translate: former codes and newer commune-nouvelle codes."""
    return set(passage["codgeo_ini"]) | set(passage["codgeo"]) if passage is not None and len(passage) else set()


def newer_than_reference(settings: Settings, vintage: str, geo: Geography) -> bool:
    """A live source dated after the reference COG year is coded in a newer COG (SIRENE: the
    current one). The SYNTHETIC sample is generated in the reference COG."""
    year = str(vintage)[:4]
    return settings.source_mode == "live" and year.isdigit() and int(year) > int(geo.vintage)


def remap_counts(df: pd.DataFrame, passage: pd.DataFrame | None, known: set[str], keys: list[str],
                 values: list[str], newer_source: bool = False) -> tuple[pd.DataFrame, dict]:
    """Translate ``codgeo`` through the passage table, re-sum ``values`` by ``keys`` and drop the
    codes still outside the vintage (reported: count + list; see :func:`map_to_vintage`); the
    result is sorted by ``keys``.

    Nationally the frames are millions of rows (URSSAF 9M, the stock aggregate 4M), so: no deep
    copy; the codes translated once per distinct code; only the rows of a commune that received
    a translated code are re-summed (the others already have one row per key: checked, and the
    whole frame is re-summed as before if not); the order checked and sorted on integer codes."""
    if passage is None or df.empty:
        return df, {"mapped": {}, "newer": {}, "split": [], "absorbed_after_reference": {}, "unmappable_count": 0,
                    "unmappable": []}
    df = df.copy(deep=False)  # copy-on-write: the caller's frame is never changed
    mapped, rep = map_to_vintage(df["codgeo"], passage, known, newer_source=newer_source)
    df["codgeo"] = mapped.astype(str)
    del mapped
    inside = df["codgeo"].isin(known).to_numpy()
    if not inside.all():
        df = df[inside]
    if not (rep["mapped"] or rep["newer"]):
        return _sorted_by_keys(df, keys)[0], rep
    hit = df["codgeo"].isin(set(rep["mapped"].values()) | set(rep["newer"].values())).to_numpy()
    out, ties = _resum_hit(df, hit, keys, values)
    if ties:  # rows of one key outside the translated communes: re-sum everything, as before
        log.info("remap_counts: several rows per key outside the translated communes, whole frame re-summed")
        out = df.groupby(keys, as_index=False, dropna=False)[values].sum(min_count=1)
        out = out.sort_values(keys).reset_index(drop=True)
    return out, rep


def _resum_hit(df: pd.DataFrame, hit: np.ndarray, keys: list[str], values: list[str]) -> tuple[pd.DataFrame, bool]:
    """The rows outside ``hit`` as they are, those of ``hit`` re-summed by ``keys``, all sorted by
    ``keys`` (and whether two rows share their keys): built column by column in the final order,
    never as a concatenated copy of the whole frame sorted afterwards."""
    part = df[hit].groupby(keys, as_index=False, dropna=False)[values].sum(min_count=1)
    rest = np.flatnonzero(~hit)

    def column(c: str) -> pd.Series:
        return pd.concat([df[c].take(rest), part[c]], ignore_index=True)

    ranks = []
    for k in keys:
        r = _ranks(column(k))
        if r is None:  # a missing key: the plain way
            both = pd.concat([df.loc[~hit, keys + values], part], ignore_index=True)
            return _sorted_by_keys(both, keys)
        ranks.append(r)
    order = np.lexsort(ranks[::-1])
    ties = _ties([r[order] for r in ranks])
    del ranks
    return pd.DataFrame({c: column(c).take(order).reset_index(drop=True) for c in keys + values}), ties


def _ranks(col: pd.Series) -> np.ndarray | None:
    """Rank of each value among the column's distinct values (the order ``sort_values`` uses);
    None when a value is missing."""
    if pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy()
    r, _ = pd.factorize(col, sort=True)
    return None if (r < 0).any() else r.astype(np.int32)


def _ties(ranks: list[np.ndarray]) -> bool:
    tie = np.ones(len(ranks[0]) - 1, dtype=bool) if len(ranks[0]) else np.zeros(0, dtype=bool)
    for r in ranks:
        tie &= r[1:] == r[:-1]
    return bool(tie.any())


def _in_order(df: pd.DataFrame, keys: list[str]) -> bool | None:
    """Whether the rows are strictly increasing by ``keys`` (compared with Arrow, a few bytes a
    row, no ranks); None when a key is missing somewhere."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(df) - 1
    after, tie = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    for k in keys:
        a = pa.array(df[k].array) if hasattr(df[k].array, "__arrow_array__") else pa.array(df[k].to_numpy())
        if a.null_count:
            return None
        gt = pc.greater(a[1:], a[:-1]).to_numpy(zero_copy_only=False)
        eq = pc.equal(a[1:], a[:-1]).to_numpy(zero_copy_only=False)
        after |= tie & gt
        tie &= eq
    return bool(after.all())


def _sorted_by_keys(df: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, bool]:
    """``df.sort_values(keys).reset_index(drop=True)`` and whether two rows share their keys,
    without sorting strings: the order checked with Arrow comparisons (already sorted: nothing
    to do, the usual case), else each key as its rank among its distinct values and a stable
    ``lexsort`` (what ``sort_values`` does for several keys). Missing keys, or ties under one
    key (``sort_values`` then uses an unstable sort): ``sort_values`` itself."""
    if len(df) < 2:
        return df.reset_index(drop=True), False
    if _in_order(df, keys):
        return df.reset_index(drop=True), False
    ranks = [_ranks(df[k]) for k in keys]
    if any(r is None for r in ranks):
        return df.sort_values(keys).reset_index(drop=True), True
    order = np.lexsort(ranks[::-1])
    ties = _ties([r[order] for r in ranks])
    if ties and len(keys) == 1:
        return df.sort_values(keys).reset_index(drop=True), True
    return df.take(order).reset_index(drop=True), ties


# --- live ------------------------------------------------------------------------------------
def _run_geography_live(settings: Settings) -> dict:
    from ..fetch import acquire
    from ..http import client_from_env
    from ..sources import geo_live, ti_live

    t = time.perf_counter()
    client = client_from_env(settings)
    year = cog_year()
    got = {k: acquire(k, settings, client=client, year=year) for k in GEO_FILES}
    got["ti_2023"] = acquire("ti_2023", settings, client=client)
    got["ti_2023_grpt"] = acquire("ti_2023_grpt", settings, client=client)
    geom_got, geom_off = _acquire_geometry(settings, client, year)
    vintage = str(year)
    shas = {k: (g.manifest or {}).get("sha256") for k, g in got.items()}
    try:
        cur_v, cur_folder = storage.current(settings.staging_dir, "geography")
        rep_path = cur_folder / "parse_report.json"
        if not any(g.changed for g in got.values()) and cur_v == vintage and rep_path.exists():
            rep = json.loads(rep_path.read_text())
            if rep.get("raw_sha256") == shas:
                return _geometry_only(cur_folder, rep, geom_got, geom_off, vintage, t)
    except FileNotFoundError:
        pass

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        epci_x = geo_live.extract_xlsx(got["geo_epci"].path, tmp)
        ze_x = geo_live.extract_xlsx(got["geo_ze"].path, tmp)
        passage = _live_passage(got["geo_passage"].path, tmp, year)
        com, arm = geo_live.read_appartenance(geo_live.extract_xlsx(got["geo_appartenance"].path, tmp))
        geo = build_geography(epci_x, ze_x, ti_paths=[("2018-2022", TI_PHASE1_CSV), ("2023-2027", got["ti_2023"].path)],
                              vintage=vintage, passage=passage)
    cog = geo_live.read_cog_communes(got["geo_cog"].path)
    grpt = ti_live.read_grpt(got["ti_2023_grpt"].path)

    # cross-checks: appartenance table and COG list against the compositions
    known = geo.commune_codes()
    cmp = geo.communes[["codgeo", "epci", "ze2020"]].merge(com[["codgeo", "epci", "ze2020"]], on="codgeo", how="outer",
                                                           suffixes=("", "_app"), indicator=True)
    both = cmp[cmp["_merge"] == "both"]
    cog_com = set(cog.loc[cog["typecom"] == "COM", "com"])
    checks = {
        "appartenance_communes": int(len(com)),
        "appartenance_missing_in_compositions": sorted(cmp.loc[cmp["_merge"] == "right_only", "codgeo"])[:50],
        "compositions_missing_in_appartenance": sorted(cmp.loc[cmp["_merge"] == "left_only", "codgeo"])[:50],
        "epci_disagreements": int((both["epci"] != both["epci_app"]).sum()),
        "ze_disagreements": int((both["ze2020"] != both["ze2020_app"]).sum()),
        "arrondissements": int(len(arm)),
        "cog_communes": len(cog_com),
        "cog_missing_in_compositions": sorted(cog_com - known)[:50],
        "compositions_missing_in_cog": sorted(known - cog_com)[:50],
        "ti_grpt_rows": int(len(grpt)),
        "ti_grpt_epci_not_in_vintage": sorted(set(grpt.loc[grpt["nature_juridique"].isin(["CC", "CA", "CU", "METRO",
                                                                                          "MET69"]),
                                                           "siren_groupement"]) - set(geo.epci["epci"]))[:50],
    }
    for k in ("epci_disagreements", "ze_disagreements"):
        if checks[k]:
            log.warning("geography %s: %d commune(s) where the appartenance table disagrees with the compositions",
                        vintage, checks[k])

    gate("geography", geo.communes, settings=settings, vintage=vintage, context={"geography": geo, "report": checks})
    folder = storage.staging_partition(settings.staging_dir, "geography", vintage)
    geo.save(folder)
    storage.write_parquet(passage, folder / PASSAGE_FILE)
    storage.write_parquet(arm, folder / "arrondissements.parquet")
    storage.write_parquet(grpt, folder / "ti_groupements.parquet")
    geometry = _stage_geometry(folder, geo, geom_got, geom_off)
    summary = {
        "vintage": vintage, "communes": len(geo.communes), "epci": len(geo.epci), "ze": len(geo.ze),
        "ti": int(geo.ti["ti_id"].nunique()), "ti_unmapped_communes": len(geo.ti_unmapped),
        "ti_unmapped_sample": geo.ti_unmapped["codgeo"].astype(str).tolist()[:20],
        "passage_rows": len(passage), "checks": checks, "geometry": geometry,
    }
    storage.write_json(folder / "parse_report.json", {**summary, "raw_sha256": shas,
                                                      "raw": {k: str(g.path) for k, g in got.items()}})
    storage.set_current(settings.staging_dir, "geography", vintage)
    return {**summary, "seconds": round(time.perf_counter() - t, 2), "path": str(folder)}


def _live_passage(zip_path: Path, tmp: Path, year: int) -> pd.DataFrame:
    """INSEE's passage table towards ``year`` + the bundled merges table (COG 2026): the communes
    nouvelles created after the reference year."""
    from ..sources import geo_live

    passage = geo_live.read_passage_table(geo_live.extract_xlsx(zip_path, tmp, "passage_geo"), year)
    return pd.concat([passage, read_merges()], ignore_index=True).drop_duplicates() \
        .sort_values(["codgeo_ini", "codgeo"]).reset_index(drop=True)


# --- official geometries (report map) ----------------------------------------------------------
def _acquire_geometry(settings: Settings, client, year: int):
    """(landed archive, None), or (None, status) when switched off or not obtainable: the map is
    optional, so no error of this source ever fails the geography stage."""
    from ..fetch import acquire
    from ..sources import admin_express

    if not admin_express.enabled():
        log.info("geography: official geometries not fetched (TI_FETCH_GEOMETRY=0)")
        return None, {"status": "disabled", "reason": "TI_FETCH_GEOMETRY=0"}
    try:
        return acquire(admin_express.SOURCE, settings, client=client, year=year), None
    except Exception as exc:  # noqa: BLE001 - optional source: logged and reported, never fatal
        reason = admin_express.describe_error(exc)
        log.warning("geography: official geometries (IGN ADMIN EXPRESS COG CARTO) unavailable: %s; the indicators "
                    "are built without them and the report says the map is unavailable", reason)
        return None, {"status": "unavailable", "reason": reason}


def _stage_geometry(folder: Path, geo, got, off: dict | None) -> dict:
    """Build ``folder/geometry/`` from the landed archive; returns the ``geometry`` report entry."""
    from ..sources import admin_express

    dest = folder / admin_express.GEOMETRY_DIR
    if off is not None:
        return {**off, "previous_kept": dest.is_dir()}
    prov = {"raw_sha256": (got.manifest or {}).get("sha256"), "raw_path": str(got.path)}
    try:
        passage = pd.read_parquet(folder / PASSAGE_FILE) if (folder / PASSAGE_FILE).exists() else None
        rep = admin_express.build_geometry(got.path, geo, dest, edition=(got.manifest or {}).get("edition") or got.vintage,
                                           passage=passage)
    except Exception as exc:  # noqa: BLE001 - optional output: logged and reported, never fatal
        reason = admin_express.describe_error(exc)
        log.warning("geography %s: official geometries not built from %s: %s; the report map stays unavailable",
                    geo.vintage, got.path.name, reason)
        return {"status": "unavailable", "reason": reason, "file": got.path.name, "edition": got.vintage,
                "previous_kept": dest.is_dir(), **prov}
    return {**rep, **prov}


def _geometry_only(folder: Path, rep: dict, got, off: dict | None, vintage: str, t: float) -> dict:
    """Every geography input unchanged: skip, unless the geometry is new or was never built for
    this partition, in which case only the geometry is (re)built and recorded in the report."""
    from ..sources import admin_express

    skipped = {"vintage": vintage, "skipped": True, "reason": "upstream unchanged", "path": str(folder)}
    prev = rep.get("geometry") or {}
    gdir = folder / admin_express.GEOMETRY_DIR
    have = all((gdir / f).exists() for f in (admin_express.EPCI_FILE, admin_express.ZE_FILE))
    if off is not None:  # switched off, or not obtainable this time: the partition stays as built
        log.info("geography COG %s: every input unchanged and partition already built: skipped (geometry %s)",
                 vintage, off["status"])
        return {**skipped, "geometry": {**off, "previous_kept": gdir.is_dir()}}
    sha = (got.manifest or {}).get("sha256")
    if not got.changed and prev.get("status") == "ok" and prev.get("raw_sha256") == sha and have:
        log.info("geography COG %s: every input unchanged and partition already built: skipped", vintage)
        return {**skipped, "geometry": {"status": "ok", "edition": prev.get("edition"), "unchanged": True}}
    log.info("geography COG %s: inputs unchanged; official geometries (%s) %s", vintage, got.path.name,
             "changed upstream: rebuilt" if prev.get("status") == "ok" else "not built yet for this partition: built")
    geometry = _stage_geometry(folder, Geography.load(folder), got, None)
    storage.write_json(folder / "parse_report.json", {**rep, "geometry": geometry})
    return {"vintage": vintage, "skipped": False, "rebuilt": ["geometry"], "geometry": geometry,
            "seconds": round(time.perf_counter() - t, 2), "path": str(folder)}
