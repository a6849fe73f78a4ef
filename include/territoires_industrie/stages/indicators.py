"""Stage 4: indicators for every level, composite index with uncertainty, secrecy.

Reads the current staging partitions (geography, SIRENE stock + history, URSSAF, localised
unemployment, census), computes everything with the pure :mod:`territoires_industrie.indicators`
package and writes ``staging/indicators/<release_id>/`` (release_id = SIRENE stock ``YYYY-MM``):

| file | content |
|---|---|
| ``indicator_values.parquet`` | long: one row per level x territory x indicator x period (published values, secrecy status) |
| ``composite.parquet`` | composite score, domains, ranks, percentiles, Monte Carlo rank intervals per reference set |
| ``wide.parquet`` | one row per territory: counts + raw indicators, masked where secret |
| ``territories.parquet``, ``indicator_dictionary.parquet`` | labels / main département, région; data dictionary |
| ``mc_summary.json``, ``release_meta.json`` | uncertainty settings and results, periods, vintages |
| ``counts_internal.parquet``, ``reference_models.json`` | **internal** (unmasked counts, fitted reference sets) for :func:`load_group_inputs` — never published |

Optional environment variables: ``TI_MC_DRAWS`` (default 1000), ``TI_MC_SEED`` (20231109),
``TI_WEIGHTS`` (e.g. ``A=35,B=25,C=30,D=10``).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from .. import storage
from ..codes import per_distinct
from ..config import Settings, get_settings
from ..config import env as setting
from ..staged import with_ti_2023
from ..validation import gate
from .common import (
    load_geography,
    source_vintages,
)

log = logging.getLogger(__name__)



def census_years_staged(vintage: str, folder) -> tuple[str, str]:
    """Census year and base year of the staged census: read from its parse report (the header of
    the file or the Melodi answer), for stagings written before that, the 2021/2015 layout."""
    rep = folder / "parse_report.json"
    years = json.loads(rep.read_text()).get("census_years") if rep.exists() else None
    if years:
        return str(years["t1"]), str(years["t0"])
    t1 = str(vintage)[:4]
    return t1, str(int(t1) - 6)

def _weights_from_env(raw: str | None) -> dict | None:
    if not raw:
        return None
    out = {}
    for part in raw.split(","):
        k, _, v = part.partition("=")
        if not v:
            raise ValueError(f"TI_WEIGHTS: expected 'A=35,B=25,C=30,D=10', got {raw!r}")
        out[k.strip().upper()] = float(v)
    return out


#: columns of the stock aggregate that ``base.commune_base`` reads (not the activity codes of the
#: 3.7M national rows)
SIRENE_AGG_COLUMNS = ["codgeo", "is_industrial", "etat", "employer", "tranche", "n_etab"]


def _industrial_units(geo, ext: pd.DataFrame) -> pd.DataFrame:
    codgeo = per_distinct(ext["codeCommuneEtablissement"].astype("str"), geo.map_commune, dtype="str")
    return pd.DataFrame({  # a few distinct states and bands over millions of units: categoricals
        "siret": ext["siret"], "codgeo": codgeo,
        "etat": ext["etatAdministratifEtablissement"].astype("category"),
        "employer": ext["caractereEmployeurEtablissement"].astype("category"),
        "tranche": ext["trancheEffectifsEtablissement"].astype("category"),
    })


def _read_siret_keyed(path, columns=None, filters=None) -> pd.DataFrame:
    """A staged table whose ``siret`` comes as int64 (8 bytes instead of ~22 as text: the
    national states are 11M rows): the flows only join on it. Kept as text when a SIRET is
    missing or not a number (the join then factorises the text, as before)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=columns, filters=filters)
    i = t.schema.get_field_index("siret")
    if i >= 0 and t["siret"].null_count == 0:
        try:
            t = t.set_column(i, "siret", pc.cast(t["siret"], pa.int64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return t.to_pandas(self_destruct=True, split_blocks=True)


def _history_states(settings: Settings, stock_vintage: str, years: list[int] | None = None) -> pd.DataFrame:
    from .sirene_history import run_sirene_history

    try:
        hv, folder = storage.current(settings.staging_dir, "sirene_history")
    except FileNotFoundError:
        hv, folder = None, None
    if hv != stock_vintage:
        log.info("sirene_history staging %s does not match the stock %s: building it now", hv, stock_vintage)
        run_sirene_history(settings)
        hv, folder = storage.current(settings.staging_dir, "sirene_history")
    # only the year ends the flows read (4 of the 6 staged): millions of rows nationally
    import pyarrow as pa

    path = folder / "states.parquet"
    try:
        return _compact_states(path, years)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:  # a non-numeric SIRET
        log.info("%s: states read as text (%s)", path, exc)
        return pd.read_parquet(path, filters=[("year", "in", years)] if years else None)


def _compact_states(path, years: list[int] | None) -> pd.DataFrame:
    """The staged states of ``years``, read batch by batch into a compact frame: SIRET as int64,
    year as int16, texts as categoricals with the smallest codes (about 15 bytes a row; the
    whole-file read with a filter held the file, the filtered copy and the frame at once:
    +650 MB nationally for a 382 MB frame)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pandas.api.types import union_categoricals

    cols = {"siret": [], "year": [], "etat": [], "employer": [], "naf": [], "nomenclature": []}
    wanted = pa.array(sorted(set(years or [])), pa.int64())
    for b in pq.ParquetFile(path).iter_batches(batch_size=1 << 20, columns=list(cols)):
        if years:
            b = b.filter(pc.is_in(b.column("year").cast(pa.int64()), value_set=wanted))
        if b.column("siret").null_count:
            raise ValueError("a missing SIRET")
        cols["siret"].append(pc.cast(b.column("siret"), pa.int64()).to_numpy())
        cols["year"].append(b.column("year").to_numpy().astype(np.int16))
        for k in ("etat", "employer", "naf", "nomenclature"):
            cols[k].append(pd.Categorical(b.column(k).to_pandas()))
    out = {"siret": np.concatenate(cols.pop("siret") or [np.empty(0, np.int64)]),
           "year": np.concatenate(cols.pop("year") or [np.empty(0, np.int16)])}
    for k, parts in cols.items():
        out[k] = union_categoricals(parts) if parts else pd.Categorical([])
    return pd.DataFrame(out)


def run_indicators(settings: Settings | None = None) -> dict:
    from ..indicators import release as rel
    from ..indicators.base import Periods
    from ..indicators.uncertainty import MCConfig
    from ..labels import DEPARTEMENTS, REGIONS
    from ..sources.chomage import last_quarters
    from .sirene_history import flow_end_year

    settings = settings or get_settings()
    geo = load_geography(settings)
    ti, ti_info = with_ti_2023(settings, geo)
    sv, sfolder = storage.current(settings.staging_dir, "sirene_stock")
    sirene = pd.read_parquet(sfolder / "establishments_agg.parquet", columns=SIRENE_AGG_COLUMNS)
    industrial = _industrial_units(geo, _read_siret_keyed(sfolder / "industrial_establishments.parquet", columns=[
        "siret", "codeCommuneEtablissement", "etatAdministratifEtablissement", "caractereEmployeurEtablissement",
        "trancheEffectifsEtablissement"]))
    uv, ufolder = storage.current(settings.staging_dir, "urssaf")
    cv, cfolder = storage.current(settings.staging_dir, "chomage_ze")
    rv, rfolder = storage.current(settings.staging_dir, "census")
    t1 = int(uv)
    alt_t0 = 2019 if t1 - 5 != 2019 else 2018
    urssaf = pd.read_parquet(ufolder / "jobs_commune_division.parquet", filters=[("year", "in", [t1 - 5, alt_t0, t1])])
    chom = pd.read_parquet(cfolder / "rates.parquet")
    census = pd.read_parquet(rfolder / "communes.parquet")
    rp_t1, rp_t0 = census_years_staged(rv, rfolder)
    periods = Periods(t1=t1, quarters=tuple(last_quarters(cv, 4)), quarters_prev=tuple(last_quarters(cv, 4, offset=8)),
                      alt_t0=alt_t0, flow_t1=flow_end_year(sv), stock=sv, rp_t1=rp_t1, rp_t0=rp_t0)
    states = _history_states(settings, sv, list(range(periods.flow_t1 - periods.flow_years, periods.flow_t1 + 1)))
    mc = MCConfig(draws=int(setting("TI_MC_DRAWS")), seed=int(setting("TI_MC_SEED")))
    config = rel.ReleaseConfig(weights=_weights_from_env(setting("TI_WEIGHTS")), mc=mc)
    res = rel.compute_release(geo.communes, ti, sirene, urssaf, chom, census, periods, industrial=industrial,
                              states=states, config=config)
    del sirene, industrial, urssaf, chom, census, states  # ~0.8 GB nationally, not needed for the outputs

    c = geo.communes
    lab = {
        "commune": c.set_index("codgeo")["libgeo"], "epci": geo.epci.set_index("epci")["libepci"],
        "ze": geo.ze.set_index("ze2020")["libze2020"], "departement": pd.Series(DEPARTEMENTS),
        "region": pd.Series(REGIONS), "ti": ti.drop_duplicates("ti_id").set_index("ti_id")["ti_label"],
    }
    terr = res.territories.copy()
    terr["label"] = [lab[lv].get(t) for lv, t in zip(terr["level"], terr["territory_id"])]
    terr = terr[["level", "territory_id", "label", "departement", "region", "n_communes", "population", "ti_phase"]]
    terr = terr.sort_values(["level", "territory_id"]).reset_index(drop=True)
    release_id = sv[:7]
    gate("indicator_values", res.long, settings=settings, vintage=release_id,
         context={"territories": terr, "geography": geo})
    gate("composite", res.composite, settings=settings, vintage=release_id, context={"territories": terr})

    folder = storage.staging_partition(settings.staging_dir, "indicators", release_id)
    wide = res.wide.merge(terr[["level", "territory_id", "label"]], on=["level", "territory_id"], how="left")
    storage.write_parquet(wide, folder / "wide.parquet")
    storage.write_parquet(res.long, folder / "indicator_values.parquet")
    storage.write_parquet(res.composite, folder / "composite.parquet")
    storage.write_parquet(terr, folder / "territories.parquet")
    storage.write_parquet(res.dictionary, folder / "indicator_dictionary.parquet")
    storage.write_parquet(res.excluded, folder / "excluded_partial_territories.parquet")
    storage.write_parquet(res.counts, folder / "counts_internal.parquet")
    from ..indicators.base import memberships  # perimeters of this release, for the candidacy review (restricted)

    storage.write_parquet(memberships(geo.communes, ti), folder / "membership_internal.parquet")
    storage.write_json(folder / "reference_models.json", {k: m.to_dict() for k, m in res.models.items()})
    mc_summary = {**res.mc_summary, "timings": res.timings}
    storage.write_json(folder / "mc_summary.json", mc_summary)
    meta = {"release_id": release_id, "source_vintages": {**source_vintages(settings), "sirene_history": sv},
            "synthetic": settings.is_synthetic, "t1": t1, "quarters": list(periods.quarters),
            "periods": periods.as_dict(), "national": res.national, "ti_2023": ti_info,
            "weights": mc_summary["weights"], "mc_draws": mc.draws, "mc_seed": mc.seed}
    storage.write_json(folder / "release_meta.json", meta)
    storage.set_current(settings.staging_dir, "indicators", release_id)

    counts = terr.groupby("level").size().to_dict()
    secret = res.long["secret_status"].value_counts().to_dict()
    log.info("indicators %s: territories per level %s; %d partly covered territories excluded; cells by status %s; "
             "composite rows %d; timings %s", release_id, counts, len(res.excluded), secret, len(res.composite),
             res.timings)
    return {"release_id": release_id, "territories": counts, "indicator_values": len(res.long),
            "composite": int(len(res.composite)), "secret_status": secret,
            "excluded_partial_territories": len(res.excluded), "avg_rank_shift": mc_summary["avg_rank_shift"],
            "timings": res.timings, "path": str(folder)}


def load_group_inputs(settings: Settings | None = None, release_id: str | None = None):
    """Inputs of :func:`territoires_industrie.indicators.groups.compute_group` for one release
    (the current one by default)."""
    from ..indicators.composite import ReferenceModel
    from ..indicators.groups import GroupInputs

    settings = settings or get_settings()
    if release_id is None:
        release_id, folder = storage.current(settings.staging_dir, "indicators")
    else:
        folder = settings.staging_dir / "indicators" / release_id
    meta = json.loads((folder / "release_meta.json").read_text())
    models = {k: ReferenceModel.from_dict(v) for k, v in json.loads((folder / "reference_models.json").read_text()).items()}
    comp = pd.read_parquet(folder / "composite.parquet")
    return GroupInputs(counts=pd.read_parquet(folder / "counts_internal.parquet"),
                       territories=pd.read_parquet(folder / "territories.parquet"), models=models,
                       national=meta["national"], periods=meta.get("periods", {}),
                       epci_composite=comp[comp["reference_set"] == "epci"], release_id=release_id)
