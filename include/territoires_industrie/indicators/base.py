"""Counts per commune, summed to every territorial level.

Aggregates are always built by summing counts (establishments, jobs, active population,
estimated unemployed, shift-share components, sums of estimated headcounts...) over member
communes, then dividing — never by averaging rates. The only non-additive counts are the
largest estimated establishment of a territory (``band_max*``), aggregated by ``max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import domains
from .definitions import INDICATOR_IDS, INDICATORS  # noqa: F401 (re-exported)

LEVELS = ("commune", "epci", "ze", "departement", "region", "ti")

COUNT_COLUMNS = [
    # SIRENE stock
    "estab_ind_active", "estab_ind_employer",
    # URSSAF
    "jobs_total_t1", "n_etab_total_t1", "jobs_ind_t1", "jobs_ind_t0", "jobs_ind_delta", "n_etab_ind_t1",
    "n_etab_ind_t0", "ss_national", "ss_mix", "ss_mix_sq", "ss_local",
    "jobs_ind_t0_b", "n_etab_ind_t0_b", "ss_national_b", "ss_mix_b", "ss_mix_sq_b", "ss_local_b",
    # SIRENE history flows and size bands
    "flow_stock_t0", "flow_closures", "flow_creations", "large_t0", "large_lost",
    "band_n", "band_sum", "band_sumsq", "band_n_all", "band_sum_all",
    # census and unemployment
    "population", "population_t0", "emplt_t1", "emplt_t0", "pop_2554", "nonemp_2554",
    "active_1564", "active_rated", "unemployed_est", "chom_rp_rated", "unemployed_rp_ze",
    "active_rated_prev", "unemployed_change",
]
MAX_COLUMNS = ["band_max", "band_max_all"]


@dataclass(frozen=True)
class Periods:
    """Reference periods of one release (years as ints, quarters as ``YYYY-Tq``)."""

    t1: int  # URSSAF last year (31/12)
    quarters: tuple[str, ...]
    quarters_prev: tuple[str, ...] = ()
    years_back: int = 5
    alt_t0: int | None = None  # alternative base year of the A domain (uncertainty analysis)
    flow_t1: int | None = None  # last 31/12 before the SIRENE stock date
    flow_years: int = 3
    stock: str = ""  # SIRENE stock vintage
    rp_t1: str = "2021"
    rp_t0: str = "2015"

    @property
    def t0(self) -> int:
        return self.t1 - self.years_back

    def label(self, key: str) -> str:
        q = f"{self.quarters[0]}..{self.quarters[-1]}" if self.quarters else ""
        qp = f"{self.quarters_prev[0]}..{self.quarters_prev[-1]}" if self.quarters_prev else ""
        return {
            "t1": str(self.t1), "a": f"{self.t0}-{self.t1}",
            "flows": f"{self.flow_t1 - self.flow_years}-{self.flow_t1}" if self.flow_t1 else "",
            "stock": self.stock, "lfs": q, "lfs_change": f"{qp} -> {q}" if qp else "",
            "rp": self.rp_t1, "rp_change": f"{self.rp_t0}-{self.rp_t1}",
        }[key]

    def as_dict(self) -> dict:
        return {"t1": self.t1, "t0": self.t0, "alt_t0": self.alt_t0, "quarters": list(self.quarters),
                "quarters_prev": list(self.quarters_prev), "flow_t1": self.flow_t1, "flow_years": self.flow_years,
                "stock": self.stock, "rp_t1": self.rp_t1, "rp_t0": self.rp_t0}


def commune_base(
    communes: pd.DataFrame,
    sirene: pd.DataFrame,
    urssaf: pd.DataFrame,
    chomage: pd.DataFrame,
    census: pd.DataFrame,
    t1: int,
    quarters: list[str],
    years_back: int = 5,
    *,
    quarters_prev: list[str] | None = None,
    alt_t0: int | None = None,
    industrial: pd.DataFrame | None = None,
    states: pd.DataFrame | None = None,
    flow_t1: int | None = None,
    flow_years: int = 3,
) -> tuple[pd.DataFrame, dict]:
    """One row per commune covered by the data (present in the census): every count the
    indicators are built from, plus the national growth rates of the shift-share.

    ``industrial`` (siret, codgeo, etat, employer, tranche) and ``states`` (SIRENE history at
    year ends) are optional: without them the B-domain counts are 0 / NaN.
    """
    t0 = t1 - years_back
    ind = sirene[sirene["is_industrial"].astype(bool) & (sirene["etat"] == "A")]
    est = ind.groupby("codgeo")["n_etab"].sum().rename("estab_ind_active").to_frame()
    est["estab_ind_employer"] = ind[ind["employer"] == "O"].groupby("codgeo")["n_etab"].sum()

    tot = urssaf[urssaf["year"] == t1].groupby("codgeo")[["jobs", "n_etab"]].sum()
    tot.columns = ["jobs_total_t1", "n_etab_total_t1"]
    ss, national = domains.shift_share_counts(urssaf, t0, t1)
    parts = [est, tot, ss]
    if alt_t0 is not None:
        ssb, nat_b = domains.shift_share_counts(urssaf, alt_t0, t1, suffix="_b")
        parts.append(ssb.drop(columns=["jobs_ind_t1", "n_etab_ind_t1"]))
        national["alt"] = nat_b
    if industrial is not None:
        parts.append(domains.band_counts(industrial))
        if states is not None and flow_t1 is not None:
            parts.append(domains.establishment_flows(industrial, states, flow_t1, flow_years))
    parts.append(domains.band_counts_all(sirene))

    cen = census.set_index("codgeo")
    base = communes[["codgeo", "ze2020"]].set_index("codgeo")
    for p in parts:
        base = base.join(p, how="left")
    base["population"] = cen["rp1_pop"]
    base["population_t0"] = cen.get("rp0_pop")
    base["emplt_t1"] = cen.get("rp1_emplt")
    base["emplt_t0"] = cen.get("rp0_emplt")
    base["pop_2554"] = cen.get("rp1_pop2554")
    base["nonemp_2554"] = cen.get("rp1_pop2554") - cen.get("rp1_actocc2554") if "rp1_actocc2554" in cen else np.nan
    base = base.join(domains.unemployment_counts(communes, census, chomage, quarters, quarters_prev), how="left")
    base = base[base["population"].notna()].copy()  # coverage = communes present in the census
    for c in COUNT_COLUMNS + MAX_COLUMNS:
        if c not in base.columns:
            base[c] = 0.0
        if c not in ("population", "population_t0", "emplt_t1", "emplt_t0", "pop_2554", "nonemp_2554"):
            base[c] = base[c].fillna(0.0)
    base["jobs_ind_delta"] = base["jobs_ind_t1"] - base["jobs_ind_t0"]
    return base.reset_index(), national


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
    return m.drop_duplicates().astype({"level": "str", "territory_id": "str", "codgeo": "str"}).reset_index(drop=True)


def aggregate_levels(base: pd.DataFrame, members: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum commune counts to each territory. Territories only partly covered by the data
    (some member communes without data) are excluded and returned separately."""
    size = members.groupby(["level", "territory_id"]).size().rename("n_communes")
    cols = [c for c in COUNT_COLUMNS if c in base.columns]
    mx = [c for c in MAX_COLUMNS if c in base.columns]
    m = members.merge(base[["codgeo", *cols, *mx]], on="codgeo", how="inner")
    g = m.groupby(["level", "territory_id"])
    agg = g[cols].sum(min_count=1)
    if mx:
        agg = agg.join(g[mx].max())
    agg["n_communes_with_data"] = g.size()
    agg = agg.join(size, how="left")
    complete = agg["n_communes_with_data"] == agg["n_communes"]
    return agg[complete].reset_index(), agg[~complete].reset_index()[["level", "territory_id", "n_communes", "n_communes_with_data"]]


def national_totals(base: pd.DataFrame) -> pd.Series:
    cols = [c for c in COUNT_COLUMNS if c in base.columns]
    return base[cols].sum()


def derive(agg: pd.DataFrame, national: pd.Series) -> pd.DataFrame:
    """Counts + raw indicator values (+ variances, units, reliability) from summed counts."""
    ind = domains.compute_indicators(agg, national)
    out = pd.concat([agg, ind.drop(columns=[c for c in ind.columns if c in agg.columns])], axis=1)
    out["estab_ind_active"] = out["estab_ind_active"].astype("int64")
    out["estab_ind_employer"] = out["estab_ind_employer"].astype("int64")
    return out
