"""Reading what the stages staged: the current geography, passage table, Territoires d'industrie
perimeters and tables. Below the stages (which write them) and above the acquisition (the TI
2023-2027 list may have to be acquired): validation, indicators and review read through here,
never through :mod:`.stages`."""

from __future__ import annotations

import logging

import pandas as pd

from . import storage
from .config import Settings
from .geography import Geography

log = logging.getLogger(__name__)
PASSAGE_FILE = "passage.parquet"


def load_geography(settings: Settings) -> Geography:
    _, folder = storage.current(settings.staging_dir, "geography")
    return Geography.load(folder)


def read_current(settings: Settings, dataset: str, file: str) -> tuple[str, pd.DataFrame]:
    vintage, folder = storage.current(settings.staging_dir, dataset)
    return vintage, pd.read_parquet(folder / file)


def source_vintages(settings: Settings) -> dict:
    return {d: storage.current(settings.staging_dir, d)[0]
            for d in ("geography", "sirene_stock", "urssaf", "chomage_ze", "census")}


def load_passage(settings: Settings) -> pd.DataFrame | None:
    """The passage table staged with the current geography (live mode), or None (sample mode)."""
    try:
        _, folder = storage.current(settings.staging_dir, "geography")
    except FileNotFoundError:
        return None
    p = folder / PASSAGE_FILE
    return pd.read_parquet(p) if p.exists() else None


def with_ti_2023(settings: Settings, geo) -> tuple[pd.DataFrame, dict]:
    """``geo.ti`` plus the 2023-2027 perimeters when the geography stage did not include them."""
    from . import codes
    from .fetch import acquire
    from .geography import read_ti_2023

    ti = geo.ti
    if "ti_phase" in ti and (ti["ti_phase"] == "2023-2027").any():
        return ti, {"source": "geography"}
    try:
        got = acquire("ti_2023", settings, geo)
    except (NotImplementedError, KeyError, FileNotFoundError) as exc:
        log.warning("Territoires d'industrie 2023-2027 list unavailable (%s): only phase 1 is ranked", exc)
        return ti, {"source": None, "error": str(exc)}
    t2 = read_ti_2023(got.path)
    t2["codgeo"] = codes.arm_to_commune(t2["codgeo"])
    known = geo.commune_codes()
    unmapped = sorted(set(t2.loc[~t2["codgeo"].isin(known), "codgeo"]))
    if unmapped:
        log.warning("TI 2023-2027: %d commune code(s) not in COG %s (kept out of the perimeters): %s",
                    len(unmapped), geo.vintage, unmapped[:20])
    t2 = t2[t2["codgeo"].isin(known)].drop_duplicates(["ti_id", "codgeo"])
    info = {"source": str(got.path.name), "vintage": got.vintage, "ti": int(t2["ti_id"].nunique()),
            "communes": int(len(t2)), "unmapped_communes": len(unmapped), "unmapped_sample": unmapped[:20]}
    return pd.concat([ti, t2], ignore_index=True), info
