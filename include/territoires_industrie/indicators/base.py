"""First indicator slice: counts per commune, summed to every territorial level.

Aggregates are always built by summing counts (establishments, jobs, active population,
estimated unemployed) over member communes, then dividing — never by averaging rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = ("commune", "epci", "ze", "departement", "region", "ti")


@dataclass(frozen=True)
class IndicatorDef:
    id: str
    label_fr: str
    unit: str
    formula: str
    source: str
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0


INDICATORS: tuple[IndicatorDef, ...] = (
    IndicatorDef("estab_ind_active", "Établissements industriels actifs (NAF 05-39)", "établissements",
                 "count of SIRENE establishments, état A, NAF rév. 2 divisions 05-39", "SIRENE stock", "estab_ind_active"),
    IndicatorDef("estab_ind_employer", "Établissements industriels employeurs", "établissements",
                 "same, caractereEmployeurEtablissement = O", "SIRENE stock", "estab_ind_employer"),
    IndicatorDef("jobs_ind", "Emplois salariés industriels (31/12)", "emplois",
                 "URSSAF salaried jobs, APE divisions 05-39, year t1", "URSSAF commune x APE", "jobs_ind_t1"),
    IndicatorDef("jobs_total", "Emplois salariés privés (31/12)", "emplois",
                 "URSSAF salaried jobs, all APE, year t1", "URSSAF commune x APE", "jobs_total_t1"),
    IndicatorDef("ind_share", "Part de l'industrie dans l'emploi salarié privé", "%",
                 "100 * jobs_ind_t1 / jobs_total_t1", "URSSAF commune x APE", "jobs_ind_t1", "jobs_total_t1", 100.0),
    IndicatorDef("ind_lq", "Indice de spécificité industrielle (quotient de localisation)", "ratio",
                 "(jobs_ind_t1 / jobs_total_t1) / (national jobs_ind_t1 / national jobs_total_t1)", "URSSAF commune x APE",
                 "jobs_ind_t1", "jobs_total_t1"),
    IndicatorDef("jobs_ind_change_5y", "Évolution de l'emploi salarié industriel sur 5 ans", "%",
                 "100 * (jobs_ind_t1 - jobs_ind_t0) / jobs_ind_t0, t0 = t1 - 5", "URSSAF commune x APE",
                 "jobs_ind_delta", "jobs_ind_t0", 100.0),
    IndicatorDef("unemployment_rate", "Taux de chômage localisé (moyenne des 4 derniers trimestres)", "%",
                 "100 * sum(active_c * rate_ZE(c)/100) / sum(active_c): ZE rate mapped by census active population",
                 "INSEE taux de chômage localisés + RP", "unemployed_est", "active_1564", 100.0),
)
INDICATOR_IDS = tuple(d.id for d in INDICATORS)


def commune_base(
    communes: pd.DataFrame,
    sirene: pd.DataFrame,
    urssaf: pd.DataFrame,
    chomage: pd.DataFrame,
    census: pd.DataFrame,
    t1: int,
    quarters: list[str],
    years_back: int = 5,
) -> pd.DataFrame:
    """One row per commune with data: the counts every indicator is built from."""
    t0 = t1 - years_back
    ind = sirene[sirene["is_industrial"].astype(bool) & (sirene["etat"] == "A")]
    est = ind.groupby("codgeo")["n_etab"].sum().rename("estab_ind_active").to_frame()
    est["estab_ind_employer"] = ind[ind["employer"] == "O"].groupby("codgeo")["n_etab"].sum()

    u = urssaf[urssaf["year"].isin([t0, t1])]
    jobs = u.pivot_table(index="codgeo", columns=["year"], values="jobs", aggfunc="sum", fill_value=0)
    jobs_ind = u[u["is_industrial"]].pivot_table(index="codgeo", columns="year", values="jobs", aggfunc="sum", fill_value=0)
    emp = pd.DataFrame(index=jobs.index)
    emp["jobs_total_t1"] = jobs.get(t1, 0)
    emp["jobs_ind_t1"] = jobs_ind.reindex(jobs.index).get(t1, 0)
    emp["jobs_ind_t0"] = jobs_ind.reindex(jobs.index).get(t0, 0)

    rates = chomage[chomage["quarter"].isin(quarters)].groupby("ze2020")["rate"].agg(["mean", "count"])
    rates = rates[rates["count"] == len(quarters)]["mean"].rename("ze_rate")

    base = communes[["codgeo", "ze2020"]].set_index("codgeo")
    base = base.join(est, how="left").join(emp, how="left")
    cen = census.set_index("codgeo")[["p21_act1564", "p21_pop"]].rename(columns={"p21_act1564": "active_1564", "p21_pop": "population"})
    base = base.join(cen, how="left")
    base = base.join(rates, on="ze2020")
    base["unemployed_est"] = base["active_1564"] * base["ze_rate"] / 100.0
    has_data = base["population"].notna() & base["jobs_total_t1"].notna()
    base = base[has_data].copy()
    for c in ("estab_ind_active", "estab_ind_employer", "jobs_total_t1", "jobs_ind_t1", "jobs_ind_t0"):
        base[c] = base[c].fillna(0)
    base["jobs_ind_delta"] = base["jobs_ind_t1"] - base["jobs_ind_t0"]
    return base.drop(columns=["ze_rate"]).reset_index()


def memberships(communes: pd.DataFrame, ti: pd.DataFrame) -> pd.DataFrame:
    """(level, territory_id, codgeo) for every level; a commune can be in two TI."""
    parts = [
        pd.DataFrame({"level": "commune", "territory_id": communes["codgeo"], "codgeo": communes["codgeo"]}),
        pd.DataFrame({"level": "epci", "territory_id": communes["epci"], "codgeo": communes["codgeo"]}),
        pd.DataFrame({"level": "ze", "territory_id": communes["ze2020"], "codgeo": communes["codgeo"]}),
        pd.DataFrame({"level": "departement", "territory_id": communes["dep"], "codgeo": communes["codgeo"]}),
        pd.DataFrame({"level": "region", "territory_id": communes["reg"], "codgeo": communes["codgeo"]}),
        pd.DataFrame({"level": "ti", "territory_id": ti["ti_id"], "codgeo": ti["codgeo"]}),
    ]
    m = pd.concat(parts, ignore_index=True).dropna()
    m = m[m["territory_id"] != "ZZZZZZZZZ"]  # communes without EPCI
    return m.drop_duplicates().astype({"level": "str", "territory_id": "str", "codgeo": "str"})


COUNT_COLUMNS = ["estab_ind_active", "estab_ind_employer", "jobs_total_t1", "jobs_ind_t1", "jobs_ind_t0",
                 "jobs_ind_delta", "active_1564", "unemployed_est", "population"]


def aggregate_levels(base: pd.DataFrame, members: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum commune counts to each territory. Territories only partly covered by the data
    (some member communes without data) are excluded and returned separately."""
    size = members.groupby(["level", "territory_id"]).size().rename("n_communes")
    m = members.merge(base[["codgeo", *COUNT_COLUMNS]], on="codgeo", how="inner")
    agg = m.groupby(["level", "territory_id"])[COUNT_COLUMNS].sum(min_count=1)
    agg["n_communes_with_data"] = m.groupby(["level", "territory_id"]).size()
    agg = agg.join(size, how="left")
    complete = agg["n_communes_with_data"] == agg["n_communes"]
    return agg[complete].reset_index(), agg[~complete].reset_index()[["level", "territory_id", "n_communes", "n_communes_with_data"]]


def derive(agg: pd.DataFrame, national: pd.Series) -> pd.DataFrame:
    """Ratios from summed counts. ``national``: the summed counts of the reference universe."""
    out = agg.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ind_share"] = 100.0 * out["jobs_ind_t1"] / out["jobs_total_t1"].where(out["jobs_total_t1"] > 0)
        nat_share = national["jobs_ind_t1"] / national["jobs_total_t1"]
        out["ind_lq"] = (out["ind_share"] / 100.0) / nat_share
        out["jobs_ind_change_5y"] = 100.0 * out["jobs_ind_delta"] / out["jobs_ind_t0"].where(out["jobs_ind_t0"] > 0)
        out["unemployment_rate"] = 100.0 * out["unemployed_est"] / out["active_1564"].where(out["active_1564"] > 0)
    out["estab_ind_active"] = out["estab_ind_active"].astype("int64")
    out["estab_ind_employer"] = out["estab_ind_employer"].astype("int64")
    out["jobs_ind"] = out["jobs_ind_t1"]
    out["jobs_total"] = out["jobs_total_t1"]
    return out


def to_long(wide: pd.DataFrame, periods: dict[str, str]) -> pd.DataFrame:
    """One row per territory x indicator: value with the numerator/denominator behind it."""
    rows = []
    for d in INDICATORS:
        part = pd.DataFrame(
            {
                "level": wide["level"],
                "territory_id": wide["territory_id"],
                "indicator_id": d.id,
                "period": periods[d.id],
                "value": wide[d.id].astype("float64"),
                "numerator": wide[d.numerator].astype("float64") if d.numerator else np.nan,
                "denominator": wide[d.denominator].astype("float64") if d.denominator else np.nan,
                "unit": d.unit,
            }
        )
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    out["value"] = out["value"].round(6)
    return out.sort_values(["level", "territory_id", "indicator_id"]).reset_index(drop=True)
