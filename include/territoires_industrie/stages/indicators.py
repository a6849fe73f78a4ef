"""Stage 4: indicators for every level."""

from __future__ import annotations

import logging

import pandas as pd

from .. import storage
from ..config import Settings, get_settings
from ..validation import gate
from .common import (
    load_geography,
    read_current,
    source_vintages,
)

log = logging.getLogger(__name__)

def run_indicators(settings: Settings | None = None) -> dict:
    from ..indicators import base
    from ..labels import DEPARTEMENTS, REGIONS
    from ..sources.chomage import last_quarters

    settings = settings or get_settings()
    geo = load_geography(settings)
    sv, sirene = read_current(settings, "sirene_stock", "establishments_agg.parquet")
    uv, urssaf = read_current(settings, "urssaf", "jobs_commune_division.parquet")
    cv, chom = read_current(settings, "chomage_ze", "rates.parquet")
    rv, census = read_current(settings, "census", "communes.parquet")
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
    gate("indicator_values", long, settings=settings, vintage=release_id, context={"territories": terr})
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
