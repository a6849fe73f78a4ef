"""Formulas of the four difficulty domains and the context gates.

Everything here works on **additive counts**: commune-level counts are built once
(:func:`shift_share_counts`, :func:`establishment_flows`, :func:`band_counts`,
:func:`unemployment_counts`), summed to any territory or group of territories, and only then
turned into rates by :func:`compute_indicators`. Even the shift-share components and the
concentration index are carried as sums (``Σ_s E_is,t0 (g_Ns − g_N)``, ``Σ_j ê_j²``), so a
group of EPCI gets exactly the value it would get from its own establishments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .secrecy import BAND_MIDPOINT, LARGE_BANDS

INDUSTRIAL_DIVISIONS = tuple(f"{d:02d}" for d in range(5, 40))
RATIO_CAP = (0.5, 2.0)  # census adjustment of the localised unemployment rate


# ----------------------------------------------------------------------------------------
# A. shift-share (analyse structurelle-résiduelle)
# ----------------------------------------------------------------------------------------


def national_growth(e0: pd.DataFrame, e1: pd.DataFrame) -> tuple[float, pd.Series]:
    """``g_N`` (all industrial divisions) and ``g_Ns`` per division, from summed jobs."""
    s0, s1 = e0.sum(axis=0), e1.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_s = (s1 / s0.where(s0 > 0)) - 1.0
    tot0 = float(s0.sum())
    g = float(s1.sum()) / tot0 - 1.0 if tot0 > 0 else np.nan
    return g, g_s


def shift_share_counts(jobs: pd.DataFrame, t0: int, t1: int, divisions=INDUSTRIAL_DIVISIONS,
                       suffix: str = "") -> tuple[pd.DataFrame, dict]:
    """Per territory (``codgeo`` of ``jobs``): industrial jobs and establishments at t0/t1 and the
    three additive shift-share components, with ``ΔE = national + mix + local`` exactly:

    * national effect ``E_i,t0 · g_N``
    * industry-mix (structural) effect ``Σ_s E_is,t0 (g_Ns − g_N)`` (``ss_mix``)
    * local (competitive, residual) effect ``Σ_s E_is,t0 (g_is − g_Ns) = ΔE − national − mix``

    ``jobs``: long (codgeo, division, year, jobs, n_etab); missing jobs count as 0.
    ``ss_mix_sq`` = ``Σ_s E_is,t0 (g_Ns − g_N)²`` (sampling variance of the mix effect).
    """
    j = jobs[jobs["division"].isin(divisions) & jobs["year"].isin([t0, t1])]
    e = j.pivot_table(index="codgeo", columns=["year", "division"], values="jobs", aggfunc="sum", fill_value=0.0)
    n = j.pivot_table(index="codgeo", columns="year", values="n_etab", aggfunc="sum", fill_value=0.0)
    idx = e.index
    e0 = e[t0] if t0 in e.columns.get_level_values(0) else pd.DataFrame(index=idx)
    e1 = e[t1] if t1 in e.columns.get_level_values(0) else pd.DataFrame(index=idx)
    cols = sorted(set(e0.columns) | set(e1.columns))
    e0 = e0.reindex(columns=cols, fill_value=0.0).astype("float64")
    e1 = e1.reindex(columns=cols, fill_value=0.0).astype("float64")
    g, g_s = national_growth(e0, e1)
    dev = (g_s - g).fillna(0.0)  # a division absent at t0 nationally has no t0 jobs anywhere
    out = pd.DataFrame(index=idx)
    out["jobs_ind_t0" + suffix] = e0.sum(axis=1)
    out["jobs_ind_t1"] = e1.sum(axis=1)
    out["n_etab_ind_t0" + suffix] = n.get(t0, pd.Series(0.0, index=n.index)).reindex(idx).fillna(0.0)
    out["n_etab_ind_t1"] = n.get(t1, pd.Series(0.0, index=n.index)).reindex(idx).fillna(0.0)
    out["ss_national" + suffix] = out["jobs_ind_t0" + suffix] * g
    out["ss_mix" + suffix] = e0.mul(dev, axis=1).sum(axis=1)
    out["ss_mix_sq" + suffix] = e0.mul(dev**2, axis=1).sum(axis=1)
    delta = out["jobs_ind_t1"] - out["jobs_ind_t0" + suffix]
    out["ss_local" + suffix] = delta - out["ss_national" + suffix] - out["ss_mix" + suffix]
    national = {"t0": int(t0), "t1": int(t1), "g_N": g, "g_Ns": {k: float(v) for k, v in g_s.dropna().items()}}
    return out, national


# ----------------------------------------------------------------------------------------
# B. establishments: flows from the SIRENE history, size bands
# ----------------------------------------------------------------------------------------


def _industrial_naf(naf: pd.Series) -> np.ndarray:
    """NAF code in divisions 05-39; computed once per category when ``naf`` is categorical
    (the staged history states: millions of rows, a few hundred codes)."""
    if isinstance(naf.dtype, pd.CategoricalDtype):
        ok = pd.Series(naf.cat.categories.astype(str)).str[:2].isin(INDUSTRIAL_DIVISIONS).to_numpy(dtype=bool)
        codes = naf.cat.codes.to_numpy()
        return np.where(codes >= 0, ok[np.maximum(codes, 0)], False)
    return naf.fillna("").astype(str).str[:2].isin(INDUSTRIAL_DIVISIONS).to_numpy(dtype=bool)


def _employer_active(states: pd.DataFrame) -> np.ndarray:
    rev2 = (states["nomenclature"] == "NAFRev2").to_numpy(dtype=bool)  # NaN -> False
    still_industrial = ~(rev2 & ~_industrial_naf(states["naf"]))
    return ((states["etat"] == "A").to_numpy(dtype=bool) & (states["employer"] == "O").to_numpy(dtype=bool)
            & still_industrial)


def _int_keys(*series: pd.Series) -> list[np.ndarray]:
    """SIRETs as int64 keys (vectorised cast); codes of a common factorisation if one is not
    purely numeric."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def as_int(s: pd.Series) -> np.ndarray:
        if pd.api.types.is_integer_dtype(s.dtype):  # read as int64 by the stage (memory)
            return s.to_numpy(dtype=np.int64)
        return pc.cast(pc.fill_null(pa.array(s, type=pa.string()), "-1"), pa.int64()).to_numpy(zero_copy_only=False)

    def as_text(s: pd.Series) -> pd.Series:
        return s.map("{:014d}".format).astype("str") if pd.api.types.is_integer_dtype(s.dtype) else s.astype("str")

    try:
        return [as_int(s) for s in series]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        codes, _ = pd.factorize(pd.concat([as_text(s) for s in series], ignore_index=True))
        out, start = [], 0
        for s in series:
            out.append(codes[start:start + len(s)].astype(np.int64))
            start += len(s)
        return out


FLOW_CHUNK_ROWS = 2_000_000


def establishment_flows(industrial: pd.DataFrame, states: pd.DataFrame, t1: int, years: int = 3) -> pd.DataFrame:
    """Pooled flows of employer industrial establishments over ``t1 − years .. t1`` per commune.

    ``industrial``: one row per SIRET (siret, codgeo, tranche) — the industrial units of the
    stock with their commune; ``states``: (siret, year, etat, employer, naf, nomenclature) =
    state at 31/12 of ``year`` (no row: the unit did not exist yet).

    * ``flow_stock_t0`` S: active employer units at 31/12/t0;
    * ``flow_closures`` C: Σ_y units active employer at 31/12/(y−1) and closed (F) at 31/12/y;
    * ``flow_creations`` K: Σ_y units absent at 31/12/(y−1) and active employer at 31/12/y;
    * ``large_t0``: units of S whose size band is ≥ 20 employees (last known band: SIRENE does
      not historise it); ``large_lost``: those closed or no longer employer at 31/12/t1.

    Vectorised on integer SIRET keys: a national history (millions of states) takes seconds.
    """
    t0 = t1 - years
    cols = ["flow_stock_t0", "flow_closures", "flow_creations", "large_t0", "large_lost"]
    ind = industrial.drop_duplicates("siret").reset_index(drop=True)
    ik, sk = _int_keys(ind["siret"], states["siret"])
    order = np.argsort(ik, kind="stable")
    sorted_ik = ik[order]
    shape = (len(ind), years + 1)
    ae = np.zeros(shape, bool)
    ex = np.zeros(shape, bool)
    cl = np.zeros(shape, bool)
    emp = np.zeros(shape, bool)
    found = False
    for start in range(0, len(states), FLOW_CHUNK_ROWS):  # bounded temporaries: 11M states nationally
        s = states.iloc[start:start + FLOW_CHUNK_ROWS]
        k = sk[start:start + FLOW_CHUNK_ROWS]
        year = s["year"].to_numpy(dtype=np.int64)
        pos = np.clip(np.searchsorted(sorted_ik, k), 0, max(len(ik) - 1, 0))
        keep = (year >= t0) & (year <= t1)
        if len(ik):
            keep &= sorted_ik[pos] == k
        else:
            keep[:] = False
        if not keep.any():
            continue
        found = True
        unit, yi = order[pos[keep]], year[keep] - t0
        ae[unit, yi] = _employer_active(s)[keep]
        ex[unit, yi] = True
        cl[unit, yi] = (s["etat"] == "F").to_numpy(dtype=bool)[keep]
        emp[unit, yi] = (s["employer"] == "O").to_numpy(dtype=bool)[keep]
    if not found:
        return pd.DataFrame(columns=cols, dtype="int64").rename_axis("codgeo")
    large = ind["tranche"].isin(LARGE_BANDS).to_numpy(dtype=bool) & ae[:, 0]
    per = {
        "flow_stock_t0": ae[:, 0], "flow_closures": (ae[:, :-1] & cl[:, 1:]).sum(axis=1),
        "flow_creations": (~ex[:, :-1] & ae[:, 1:]).sum(axis=1), "large_t0": large,
        "large_lost": large & (cl[:, -1] | ~emp[:, -1]),
    }
    com, com_uniq = pd.factorize(ind["codgeo"])
    ok = com >= 0
    out = pd.DataFrame({k: np.bincount(com[ok], weights=np.asarray(v, dtype=np.float64)[ok], minlength=len(com_uniq))
                        for k, v in per.items()}, index=pd.Index(com_uniq, name="codgeo"))
    return out.astype("int64")


def band_counts(industrial: pd.DataFrame) -> pd.DataFrame:
    """Estimated headcounts of active employer industrial establishments (size-band midpoints):
    ``band_n`` units with a band, ``band_sum`` Σ ê, ``band_sumsq`` Σ ê², ``band_max`` max ê."""
    e = industrial[(industrial["etat"] == "A") & (industrial["employer"] == "O")]
    mid = e["tranche"].astype("string").map(BAND_MIDPOINT).astype("float64")
    e = pd.DataFrame({"codgeo": e["codgeo"], "m": mid})
    e = e[e["m"] > 0]
    e["m2"] = e["m"] ** 2
    g = e.groupby("codgeo")
    return pd.DataFrame({"band_n": g.size(), "band_sum": g["m"].sum(), "band_sumsq": g["m2"].sum(),
                         "band_max": g["m"].max()}).astype("float64")


def band_counts_all(sirene_agg: pd.DataFrame) -> pd.DataFrame:
    """Same for all active employer establishments of every sector, from the stock aggregate
    (commune x activity x band counts): ``band_n_all``, ``band_sum_all``, ``band_max_all``."""
    a = sirene_agg[(sirene_agg["etat"] == "A") & (sirene_agg["employer"] == "O")]
    mid = a["tranche"].astype("string").map(BAND_MIDPOINT).astype("float64")
    a = pd.DataFrame({"codgeo": a["codgeo"], "m": mid, "n": a["n_etab"].astype("float64")})
    a = a[(a["m"] > 0) & (a["n"] > 0)]
    a["mn"] = a["m"] * a["n"]
    g = a.groupby("codgeo")
    return pd.DataFrame({"band_n_all": g["n"].sum(), "band_sum_all": g["mn"].sum(), "band_max_all": g["m"].max()})


# ----------------------------------------------------------------------------------------
# C. unemployment
# ----------------------------------------------------------------------------------------


def _mean_rate(chomage: pd.DataFrame, quarters: list[str]) -> pd.Series:
    r = chomage[chomage["quarter"].isin(quarters)].groupby("ze2020")["rate"].agg(["mean", "count"])
    return r.loc[r["count"] == len(quarters), "mean"]


def unemployment_counts(communes: pd.DataFrame, census: pd.DataFrame, chomage: pd.DataFrame,
                        quarters: list[str], quarters_prev: list[str] | None = None) -> pd.DataFrame:
    """Additive counts behind C1/C3, per commune.

    The ZE rate (mean of ``quarters``, all required) is carried by the commune's active
    population: ``unemployed_est = act × u_ZE``. The census adjustment needs, over the same
    communes, the census unemployed (``chom_rp_rated``) and ``unemployed_rp_ze = act × u_RP,ZE``
    (census rate of the commune's whole zone d'emploi, communes present in ``census``).
    """
    c = communes[["codgeo", "ze2020"]].merge(census[["codgeo", "rp1_act1564", "rp1_chom1564"]], on="codgeo")
    c = c.set_index("codgeo")
    act = c["rp1_act1564"].fillna(0.0)
    chom = c["rp1_chom1564"].fillna(0.0)
    u_now = c["ze2020"].map(_mean_rate(chomage, quarters)) / 100.0
    rated = u_now.notna()
    g = pd.DataFrame({"act": act.where(rated, 0.0), "chom": chom.where(rated, 0.0), "ze": c["ze2020"]}).groupby("ze")
    with np.errstate(divide="ignore", invalid="ignore"):
        u_rp_ze = g["chom"].sum() / g["act"].sum().where(g["act"].sum() > 0)
    out = pd.DataFrame(index=c.index)
    out["active_1564"] = act
    out["active_rated"] = act.where(rated, 0.0)
    out["unemployed_est"] = (act * u_now).where(rated, 0.0)
    out["chom_rp_rated"] = chom.where(rated, 0.0)
    out["unemployed_rp_ze"] = (act * c["ze2020"].map(u_rp_ze)).where(rated, 0.0).fillna(0.0)
    if quarters_prev:
        u_prev = c["ze2020"].map(_mean_rate(chomage, quarters_prev)) / 100.0
        both = rated & u_prev.notna()
        out["active_rated_prev"] = act.where(both, 0.0)
        out["unemployed_change"] = (act * (u_now - u_prev)).where(both, 0.0)
    else:
        out["active_rated_prev"] = 0.0
        out["unemployed_change"] = 0.0
    return out


# ----------------------------------------------------------------------------------------
# Indicators from (summed) counts
# ----------------------------------------------------------------------------------------


def _ratio(num, den, scale: float = 100.0) -> pd.Series:
    num = pd.Series(num, dtype="float64")
    den = pd.Series(den, dtype="float64")
    return scale * num / den.where(den > 0)


def concentration(band_sumsq, band_sum, jobs) -> pd.Series:
    """Herfindahl index of estimated establishment headcounts, calibrated to the URSSAF total."""
    den = np.fmax(pd.Series(band_sum, dtype="float64"), pd.Series(jobs, dtype="float64").fillna(0.0))
    return pd.Series(band_sumsq, dtype="float64") / (den**2).where(den > 0)


def compute_indicators(df: pd.DataFrame, national: pd.Series | dict, base: str = "main") -> pd.DataFrame:
    """Raw indicator values (oriented: higher = more difficulty), their sampling variances
    (``var__<id>``, in the indicator's unit, Poisson/binomial counts, delta method), units
    (``n_units__<id>``) and reliability flags (``reliable__<id>``).

    ``base="alt"`` computes the A domain with the alternative base year (``*_b`` counts).
    """
    out = pd.DataFrame(index=df.index)
    _domain_a(df, out, "_b" if base == "alt" else "")
    if base == "alt":
        return out
    _domain_b(df, out)
    u_map = _domain_c(df, out)
    _domain_d(df, out)
    _context(df, out, national, u_map)
    return out


def _domain_a(df: pd.DataFrame, out: pd.DataFrame, sfx: str) -> None:
    """A. industrial-employment decline (shift-share), on the base year of ``sfx``."""
    j1 = df["jobs_ind_t1"].astype("float64")
    j0 = df["jobs_ind_t0" + sfx].astype("float64")
    delta = j1 - j0
    out["jobs_ind_delta"] = delta
    out["ss_local"] = df["ss_local" + sfx]
    out["ss_mix"] = df["ss_mix" + sfx]
    out["a1_ind_jobs_decline"] = -_ratio(delta, j0)
    out["a2_local_effect"] = -_ratio(df["ss_local" + sfx], j0)
    out["a3_industry_mix"] = -_ratio(df["ss_mix" + sfx], j0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = ((j1 + 0.5) / (j0 + 0.5)) ** 2 * (1.0 / (j1 + 0.5) + 1.0 / (j0 + 0.5))
        var_a = 1e4 * rel.where(j0 > 0)
        var_a3 = 1e4 * (df["ss_mix_sq" + sfx] / (j0**2)).where(j0 > 0)
    out["var__a1_ind_jobs_decline"] = var_a
    out["var__a2_local_effect"] = var_a
    out["var__a3_industry_mix"] = var_a3
    rel_a = (j0 >= 200) & (df["estab_ind_employer"] >= 10)
    n_ind = df["n_etab_ind_t1"]
    for k in ("a1_ind_jobs_decline", "a2_local_effect", "a3_industry_mix"):
        out[f"reliable__{k}"] = rel_a & out[k].notna()
        out[f"n_units__{k}"] = n_ind


def _domain_b(df: pd.DataFrame, out: pd.DataFrame) -> None:
    """B. erosion of the industrial fabric: net closures, large-establishment loss, concentration."""
    s = df["flow_stock_t0"].astype("float64")
    out["flow_net_closures"] = df["flow_closures"] - df["flow_creations"]
    out["b1_net_closure_rate"] = _ratio(out["flow_net_closures"], s)
    out["var__b1_net_closure_rate"] = 1e4 * ((df["flow_closures"] + df["flow_creations"] + 1.0) / s**2).where(s > 0)
    out["reliable__b1_net_closure_rate"] = (s >= 10) & out["b1_net_closure_rate"].notna()
    out["n_units__b1_net_closure_rate"] = s
    n2 = df["large_t0"].astype("float64")
    out["b2_large_estab_loss"] = _ratio(df["large_lost"], n2)
    p2 = (df["large_lost"] + 0.5) / (n2 + 1.0)
    out["var__b2_large_estab_loss"] = (1e4 * p2 * (1 - p2) / n2).where(n2 > 0)
    out["reliable__b2_large_estab_loss"] = (n2 >= 5) & out["b2_large_estab_loss"].notna()
    out["n_units__b2_large_estab_loss"] = n2
    out["b3_concentration"] = concentration(df["band_sumsq"], df["band_sum"], df["jobs_ind_t1"])
    out["b3_max_share"] = (df["band_max"] / np.fmax(df["band_sum"], df["jobs_ind_t1"].fillna(0.0))).where(df["band_n"] > 0)
    out["var__b3_concentration_class"] = 0.0
    out["reliable__b3_concentration_class"] = (df["band_n"] >= 10) & out["b3_concentration"].notna()
    out["n_units__b3_concentration_class"] = df["band_n"]


def _domain_c(df: pd.DataFrame, out: pd.DataFrame) -> pd.Series:
    """C. distance from employment; returns the mapped unemployment rate (a share)."""
    ar = df["active_rated"].astype("float64")
    u_map = df["unemployed_est"] / ar.where(ar > 0)
    u_rp = df["chom_rp_rated"] / ar.where(ar > 0)
    u_rp_mix = df["unemployed_rp_ze"] / ar.where(ar > 0)
    ratio = (u_rp / u_rp_mix.where(u_rp_mix > 0)).clip(*RATIO_CAP).fillna(1.0)
    out["c1_unemployment_rate"] = 100.0 * u_map * ratio
    out["c1_unemployment_rate_unadjusted"] = 100.0 * u_map
    out["unemployed_adj"] = ar * u_map * ratio
    out["c2_non_employment_25_54"] = _ratio(df["nonemp_2554"], df["pop_2554"])
    p = (df["nonemp_2554"] / df["pop_2554"].where(df["pop_2554"] > 0)).clip(0, 1)
    out["var__c2_non_employment_25_54"] = 1e4 * p * (1 - p) / df["pop_2554"].where(df["pop_2554"] > 0)
    out["reliable__c2_non_employment_25_54"] = (df["pop_2554"] >= 500) & out["c2_non_employment_25_54"].notna()
    out["c3_unemployment_change_2y"] = _ratio(df["unemployed_change"], df["active_rated_prev"])
    return u_map


def _domain_d(df: pd.DataFrame, out: pd.DataFrame) -> None:
    """D. territorial decline, and the (count-free) variances of C1, C3, D1, D2."""
    out["population_delta"] = df["population"] - df["population_t0"]
    out["emplt_delta"] = df["emplt_t1"] - df["emplt_t0"]
    out["d1_population_decline"] = -_ratio(out["population_delta"], df["population_t0"])
    out["d2_employment_decline"] = -_ratio(out["emplt_delta"], df["emplt_t0"])
    for k in ("c1_unemployment_rate", "c3_unemployment_change_2y", "d1_population_decline", "d2_employment_decline"):
        out[f"var__{k}"] = 0.0
        out[f"reliable__{k}"] = out[k].notna()


def _context(df: pd.DataFrame, out: pd.DataFrame, national, u_map: pd.Series) -> None:
    """Context gates and counts (not scored)."""
    j0 = df["jobs_ind_t0"].astype("float64")
    nat = national if isinstance(national, pd.Series) else pd.Series(national)
    nat_share = float(nat["jobs_ind_t1"]) / float(nat["jobs_total_t1"]) if float(nat["jobs_total_t1"]) > 0 else np.nan
    out["ind_share"] = _ratio(df["jobs_ind_t1"], df["jobs_total_t1"])
    out["ind_lq"] = out["ind_share"] / 100.0 / nat_share
    out["jobs_ind"] = df["jobs_ind_t1"]
    out["jobs_total"] = df["jobs_total_t1"]
    out["jobs_ind_change_5y"] = _ratio(out["jobs_ind_delta"], j0)
    out["unemployment_rate"] = 100.0 * u_map
