"""Everything the indicators stage publishes, computed from typed tables (no I/O).

:func:`compute_release` chains: commune counts -> sums per level -> raw indicators ->
empirical-Bayes shrinkage of small areas -> concentration classes -> statistical secrecy
(primary + secondary) -> long table -> composite per reference set -> Monte Carlo.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import base, composite, secrecy, shrinkage, suppression, uncertainty
from .definitions import BY_ID, CLASS_ONLY, DOMAIN_OF, INDICATORS, SCORED

log = logging.getLogger(__name__)

#: Reference sets of the composite: name -> (level, TI phase or None).
REFERENCE_SETS = {
    "epci": ("epci", None), "ze": ("ze", None), "departement": ("departement", None), "region": ("region", None),
    "ti_2018_2022": ("ti", "2018-2022"), "ti_2023_2027": ("ti", "2023-2027"),
}
#: indicator -> shrinkage model (see shrinkage.py); only on small-area levels.
SHRINK_MODELS = {d.id: d.shrink for d in INDICATORS if d.shrink}
A_IDS = ("a1_ind_jobs_decline", "a2_local_effect", "a3_industry_mix")
NOISY = ("a1_ind_jobs_decline", "a2_local_effect", "a3_industry_mix", "b1_net_closure_rate", "b2_large_estab_loss",
         "c2_non_employment_25_54")
GATE_LQ, GATE_JOBS = 1.0, 500.0
B3_CLASSES = 5


@dataclass(frozen=True)
class ReleaseConfig:
    weights: dict | None = None
    mc: uncertainty.MCConfig = field(default_factory=uncertainty.MCConfig)
    shrink_levels: tuple[str, ...] = ("commune", "epci")
    composite_sets: tuple[str, ...] = tuple(REFERENCE_SETS)
    min_siblings: int = 5


@dataclass
class ReleaseResult:
    wide: pd.DataFrame  # published wide table (masked where secret)
    long: pd.DataFrame  # indicator_values
    composite: pd.DataFrame
    territories: pd.DataFrame  # level, territory_id, departement, region, n_communes, population, ti_phase
    dictionary: pd.DataFrame
    counts: pd.DataFrame  # INTERNAL, unmasked counts and values (never published)
    models: dict  # reference set -> ReferenceModel
    mc_summary: dict
    excluded: pd.DataFrame
    national: dict
    timings: dict


# ----------------------------------------------------------------------------------------


def _main_parent(members: pd.DataFrame, weights: pd.Series, child_level: str, parent_level: str) -> pd.Series:
    """Parent territory holding most of the child's weight (active population)."""
    c = members[members["level"] == child_level][["territory_id", "codgeo"]]
    p = members[members["level"] == parent_level][["territory_id", "codgeo"]].rename(columns={"territory_id": "parent"})
    j = c.merge(p, on="codgeo")
    j["w"] = j["codgeo"].map(weights).fillna(0.0) + 1e-9
    j = j.groupby(["territory_id", "parent"])["w"].sum().reset_index().sort_values(["territory_id", "w", "parent"],
                                                                                  ascending=[True, False, True])
    return j.drop_duplicates("territory_id").set_index("territory_id")["parent"]


def _model_scale(k: str, frame: pd.DataFrame, sfx: str = ""):
    """(x, s², back-transform) of indicator ``k`` on its shrinkage scale."""
    model = SHRINK_MODELS[k]
    if model == "logratio":
        x, s2 = shrinkage.logratio_scale(frame["jobs_ind_t1"], frame["jobs_ind_t0" + sfx])
        return x, s2, lambda y: -100.0 * (np.exp(y) - 1.0)
    if model == "logit":
        r, n = {"b2_large_estab_loss": ("large_lost", "large_t0"),
                "c2_non_employment_25_54": ("nonemp_2554", "pop_2554")}[k]
        x, s2 = shrinkage.logit_scale(frame[r], frame[n])
        return x, s2, lambda z, n=frame[n].to_numpy(dtype="float64"): shrinkage.logit_back(z, n)
    return frame[k].to_numpy(dtype="float64"), frame[f"var__{k}"].to_numpy(dtype="float64"), lambda v: v


def apply_shrinkage(wide: pd.DataFrame, parents: dict[str, pd.Series], levels, ids, sfx: str = "",
                    min_siblings: int = 5) -> pd.DataFrame:
    """Columns ``<id>__pub`` (published value) and ``<id>__w`` (weight) for every level.

    On ``levels`` the unreliable territories are shrunk toward their parent (ZE else
    département); elsewhere, and for reliable territories, the raw value is kept (w = 1).
    """
    out = pd.DataFrame(index=wide.index)
    for k in ids:
        out[f"{k}__pub"] = wide[k].astype("float64")
        out[f"{k}__w"] = 1.0
    keyed = wide.set_index(["level", "territory_id"])
    for lv in levels:
        rows = wide.index[wide["level"] == lv]
        if len(rows) == 0 or lv not in parents:
            continue
        sub = wide.loc[rows]
        pk = sub["territory_id"].map(parents[lv])
        for k in ids:
            x, s2, back = _model_scale(k, sub, sfx)
            px = np.full(len(sub), np.nan)
            has = pk.notna().to_numpy()
            if has.any():
                pl = [tuple(v.split("|", 1)) for v in pk[has]]
                prow = keyed.reindex(pl)
                ppx, _, _ = _model_scale(k, prow, sfx)
                px[has] = ppx
            apply = ~sub[f"reliable__{k}"].fillna(False).to_numpy(bool) & np.isfinite(np.asarray(x, float))
            xs, w, _ = shrinkage.shrink(x, s2, px, pk.to_numpy(dtype=object), apply, min_siblings)
            applied = w < 1.0
            pub = sub[k].to_numpy(dtype="float64").copy()
            pub[applied] = back(xs)[applied]
            out.loc[rows, f"{k}__pub"] = pub
            out.loc[rows, f"{k}__w"] = w
    return out


def concentration_classes(wide: pd.DataFrame) -> tuple[pd.Series, dict]:
    """Quintile class (1 = least, 5 = most concentrated) of the Herfindahl index, per level.
    The class boundaries are the quintiles of the cells *published* for this indicator only, so
    that a suppressed cell's index moves no published class (issue 20)."""
    cls = pd.Series(np.nan, index=wide.index)
    breaks = {}
    published = pd.Series(indicator_status(wide, "b3_concentration_class") == secrecy.PUBLISHED, index=wide.index)
    for lv, sub in wide.groupby("level"):
        h = sub["b3_concentration"].where(sub["band_n"] > 0)
        v = h[published.loc[sub.index]].dropna()
        if v.empty:
            continue
        b = np.unique(np.quantile(v, [0.2, 0.4, 0.6, 0.8]))
        breaks[lv] = b.tolist()
        cls.loc[sub.index] = np.where(h.notna(), 1 + np.searchsorted(b, h.fillna(0).to_numpy(), side="right"), np.nan)
    return cls, breaks


def secrecy_status(wide: pd.DataFrame, members: pd.DataFrame, report: suppression.Report | None = None) -> pd.DataFrame:
    """Status of every secrecy family (magnitude cell) of every territory: primary rules, then
    secondary suppression by linear programming over every level at once (suppression.py).

    The counts published for each family: industrial jobs t1 (``ind1``), t0 (``ind0``, also
    hidden wherever ``ind1`` is), all private jobs (``tot``, never below industrial jobs),
    the industrial stock of the flows (``flow``), large establishments at t0 (``large``). The
    concentration family (``band``) publishes no count, only a class: primary rule only."""
    key = pd.Index((wide["level"] + "|" + wide["territory_id"]).to_numpy())
    prim = {
        "ind1": secrecy.primary_status(wide["n_etab_ind_t1"], secrecy.estimated_max_share(
            wide["band_max"], wide["band_sum"], wide["jobs_ind_t1"])),
        "ind0": secrecy.primary_status(wide["n_etab_ind_t0"], secrecy.estimated_max_share(
            wide["band_max"], wide["band_sum"], wide["jobs_ind_t0"])),
        "tot": secrecy.primary_status(wide["n_etab_total_t1"], secrecy.estimated_max_share(
            wide["band_max_all"], wide["band_sum_all"], wide["jobs_total_t1"])),
        "flow": secrecy.primary_status(wide["flow_stock_t0"]),
        "large": secrecy.primary_status(wide["large_t0"]),
        "band": secrecy.primary_status(wide["band_n"]),
    }
    dm = members[members["level"] == "departement"]
    st = suppression.Structure(key, members, pd.Series(dm["territory_id"].to_numpy(), index=dm["codgeo"].to_numpy()))
    rep = report if report is not None else suppression.Report()

    def q(name, fam, col, hidden_by=()):
        return suppression.Quantity(name, fam, wide[col].to_numpy(dtype="float64"), hidden_by)

    out = dict(prim)
    out.update(suppression.suppress(
        st, [q("jobs_ind_t1", "ind1", "jobs_ind_t1"), q("jobs_ind_t0", "ind0", "jobs_ind_t0", ("ind1",)),
             q("jobs_total_t1", "tot", "jobs_total_t1")],
        {f: prim[f] for f in ("ind1", "ind0", "tot")}, pairs=[(0, 2)], report=rep))
    out.update(suppression.suppress(st, [q("flow_stock_t0", "flow", "flow_stock_t0")], {"flow": prim["flow"]}, report=rep))
    out.update(suppression.suppress(st, [q("large_t0", "large", "large_t0")], {"large": prim["large"]}, report=rep))
    log.info("secondary suppression: %d linear programmes in %.1f s (%d widened, %d unprotectable)",
             rep.lps, rep.seconds, rep.widened, len(rep.unprotectable))
    if rep.unprotectable:
        raise RuntimeError(f"secondary suppression: {len(rep.unprotectable)} primary cells cannot be protected, "
                           f"first {rep.unprotectable[:3]}")
    return pd.DataFrame({f"secret__{f}": out[f] for f in prim}, index=wide.index)


def indicator_status(wide: pd.DataFrame, ind_id: str) -> np.ndarray:
    fams = BY_ID[ind_id].secrecy
    if not fams:
        return np.full(len(wide), secrecy.PUBLISHED, dtype=object)
    return secrecy.combine_status(*[wide[f"secret__{f}"].to_numpy() for f in fams])


def to_long(wide: pd.DataFrame, periods: base.Periods) -> pd.DataFrame:
    """indicator_values: one row per level x territory x indicator (published values only)."""
    rows = []
    for d in INDICATORS:
        status = indicator_status(wide, d.id)
        ok = status == secrecy.PUBLISHED
        if d.id in CLASS_ONLY:
            value = wide["b3_class"].to_numpy(dtype="float64")
            raw = np.full(len(wide), np.nan)
        else:
            raw = wide[d.id].to_numpy(dtype="float64")
            value = wide[f"{d.id}__pub"].to_numpy(dtype="float64") if f"{d.id}__pub" in wide else raw
        num = wide[d.numerator].to_numpy(dtype="float64") if d.numerator else np.full(len(wide), np.nan)
        den = wide[d.denominator].to_numpy(dtype="float64") if d.denominator else np.full(len(wide), np.nan)
        if f"n_units__{d.id}" in wide:
            n_units = wide[f"n_units__{d.id}"].to_numpy(dtype="float64")
        elif "ind1" in d.secrecy:
            n_units = wide["n_etab_ind_t1"].to_numpy(dtype="float64")
        elif "tot" in d.secrecy:
            n_units = wide["n_etab_total_t1"].to_numpy(dtype="float64")
        elif d.domain == "X" and d.unit == "établissements":
            n_units = wide[d.numerator].to_numpy(dtype="float64")
        else:
            n_units = np.full(len(wide), np.nan)
        reliable = (wide[f"reliable__{d.id}"].fillna(False).to_numpy(bool) if f"reliable__{d.id}" in wide
                    else np.isfinite(raw if d.id not in CLASS_ONLY else value))
        rows.append(pd.DataFrame({
            "level": wide["level"].to_numpy(), "territory_id": wide["territory_id"].to_numpy(), "indicator_id": d.id,
            "period": periods.label(d.period_key),
            "value": np.where(ok, value, np.nan), "value_raw": np.where(ok, raw, np.nan),
            # nothing derivable about a suppressed cell (issue 20): its shrinkage weight with a
            # published neighbour gave back its numerator and denominator, its unit count too
            "shrink_weight": np.where(ok, wide[f"{d.id}__w"].to_numpy(dtype="float64")
                                      if f"{d.id}__w" in wide else 1.0, np.nan),
            "reliable": reliable, "secret_status": status.astype(str), "n_units": np.where(ok, n_units, np.nan),
            "numerator": np.where(ok, num, np.nan), "denominator": np.where(ok, den, np.nan),
            "unit": d.unit, "domain": d.domain, "direction": d.direction,
        }))
    out = pd.concat(rows, ignore_index=True)
    for c in ("value", "value_raw"):
        out[c] = out[c].round(6)
    out = out.astype({"level": "str", "territory_id": "str", "indicator_id": "str", "period": "str",
                      "secret_status": "str", "unit": "str", "domain": "str", "direction": "int64", "reliable": "bool"})
    return out.sort_values(["level", "territory_id", "indicator_id"]).reset_index(drop=True)


def dictionary(periods: base.Periods) -> pd.DataFrame:
    return pd.DataFrame([{
        "indicator_id": d.id, "label_fr": d.label_fr, "domain": d.domain, "direction": d.direction, "unit": d.unit,
        "formula": d.formula, "source": d.source, "period": periods.label(d.period_key),
        "reliability_min": d.reliability_min,
    } for d in INDICATORS])


def composite_values(wide: pd.DataFrame, variant: str = "pub") -> pd.DataFrame:
    """Scored indicator matrix built from **what is published only** (issue 20): the published
    (shrunk) or raw value where the cell is published, missing (NaN) where it is secret, and the
    concentration index as its published class. The composite, its domain scores, ranks and
    Monte Carlo intervals are then functions of published cells: no column of the composite can
    be solved back into a suppressed value (tested by changing the secret values and comparing)."""
    out = pd.DataFrame(index=wide.index)
    for k in SCORED:
        if k == "b3_concentration_class":
            v = wide["b3_class"]
        elif variant == "pub" and f"{k}__pub" in wide:
            v = wide[f"{k}__pub"]
        else:
            v = wide[k]
        out[k] = v.astype("float64").where(indicator_status(wide, k) == secrecy.PUBLISHED)
    return out


def noise_sd(wide: pd.DataFrame, variant: str = "raw", sfx: str = "") -> pd.DataFrame:
    out = pd.DataFrame(index=wide.index)
    for k in NOISY:
        sd = np.sqrt(wide[f"var__{k}{sfx}"].astype("float64"))
        if variant == "pub" and f"{k}{sfx}__w" in wide:
            sd = sd * wide[f"{k}{sfx}__w"]
        out[k] = sd
    return out


def territories_frame(wide: pd.DataFrame, members: pd.DataFrame, communes: pd.DataFrame, ti: pd.DataFrame) -> pd.DataFrame:
    mm = members.merge(communes[["codgeo", "dep", "reg"]], on="codgeo")
    main = None
    for col, name in (("dep", "departement"), ("reg", "region")):  # the one holding most member communes
        n = mm.groupby(["level", "territory_id", col]).size().rename("n").reset_index()
        n = n.sort_values(["level", "territory_id", "n", col], ascending=[True, True, False, True])
        n = n.drop_duplicates(["level", "territory_id"])[["level", "territory_id", col]].rename(columns={col: name})
        main = n if main is None else main.merge(n, on=["level", "territory_id"])
    terr = wide[["level", "territory_id", "n_communes", "population"]].merge(main, on=["level", "territory_id"], how="left")
    phase = ti.drop_duplicates("ti_id").set_index("ti_id")["ti_phase"] if "ti_phase" in ti else pd.Series(dtype="str")
    terr["ti_phase"] = np.where(terr["level"] == "ti", terr["territory_id"].map(phase), None)
    return terr


# ----------------------------------------------------------------------------------------


def compute_release(
    communes: pd.DataFrame, ti: pd.DataFrame, sirene: pd.DataFrame, urssaf: pd.DataFrame, chomage: pd.DataFrame,
    census: pd.DataFrame, periods: base.Periods, *, industrial: pd.DataFrame | None = None,
    states: pd.DataFrame | None = None, config: ReleaseConfig = ReleaseConfig(),
) -> ReleaseResult:
    timings = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        timings[name] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()

    cb, nat_rates = base.commune_base(
        communes, sirene, urssaf, chomage, census, t1=periods.t1, quarters=list(periods.quarters),
        years_back=periods.years_back, quarters_prev=list(periods.quarters_prev) or None, alt_t0=periods.alt_t0,
        industrial=industrial, states=states, flow_t1=periods.flow_t1, flow_years=periods.flow_years)
    members = base.memberships(communes, ti)
    agg, excluded = base.aggregate_levels(cb, members)
    national = base.national_totals(cb)
    lap("counts")

    wide = base.derive(agg, national)
    has_alt = periods.alt_t0 is not None
    if has_alt:
        wide = _with_alt_indicators(wide, agg, national)
    lap("indicators")

    wide = _shrink(wide, members, cb.set_index("codgeo")["active_1564"], config, has_alt)
    lap("shrinkage")

    wide = wide.copy()  # defragment after the column-wise construction
    wide = pd.concat([wide, secrecy_status(wide, members)], axis=1)
    wide["b3_class"], b3_breaks = concentration_classes(wide)
    lap("secrecy")
    long = to_long(wide, periods)
    lap("long_table")

    terr = territories_frame(wide, members, communes, ti)
    region_of = terr.set_index(["level", "territory_id"])["region"]
    wide = wide.copy()
    phase_map = ti.drop_duplicates("ti_id").set_index("ti_id")["ti_phase"] if "ti_phase" in ti else pd.Series(dtype="str")
    wide["ti_phase"] = wide["territory_id"].map(phase_map).where(wide["level"] == "ti")
    ind_lq = wide["ind_lq"].to_numpy(dtype="float64")
    gate = (np.nan_to_num(ind_lq, nan=0.0) >= GATE_LQ) & (wide["jobs_ind_t1"].to_numpy(dtype="float64") >= GATE_JOBS)
    wide["gate_industrial"] = gate

    weights = {d: round(v, 6) for d, v in composite.normalise_weights(config.weights).items()}
    comps, models, mc_summary = [], {}, {"draws": config.mc.draws, "seed": config.mc.seed, "weights": weights,
                                         "config": config.mc.as_dict(), "sets": {}}
    for name in config.composite_sets:
        got = _composite_set(name, wide, region_of, b3_breaks, config, has_alt)
        if got is None:
            continue
        models[name], res, mc_summary["sets"][name] = got
        comps.append(res)
    lap("composite_mc")

    comp = pd.concat(comps, ignore_index=True) if comps else pd.DataFrame()
    if not comp.empty:
        comp = comp[COMPOSITE_COLUMNS]
    published = published_wide(wide)
    internal_cols = ["level", "territory_id", "n_communes", *base.COUNT_COLUMNS, *base.MAX_COLUMNS,
                     *[c for c in wide.columns if c.startswith("secret__")]]
    counts = wide[[c for c in internal_cols if c in wide.columns]].copy()
    mc_summary["avg_rank_shift"] = {k: v["avg_rank_shift"] for k, v in mc_summary["sets"].items()}
    nat = {"jobs_ind_t1": float(national["jobs_ind_t1"]), "jobs_total_t1": float(national["jobs_total_t1"]),
           "g_N": nat_rates["g_N"], "g_Ns": nat_rates["g_Ns"], "alt": nat_rates.get("alt", {}),
           "periods": periods.as_dict()}
    log.info("indicators: %d territories (%s), %d long rows, timings %s", len(wide),
             wide.groupby("level").size().to_dict(), len(long), timings)
    return ReleaseResult(wide=published, long=long, composite=comp, territories=terr, dictionary=dictionary(periods),
                         counts=counts, models=models, mc_summary=mc_summary, excluded=excluded, national=nat,
                         timings=timings)



def _with_alt_indicators(wide: pd.DataFrame, agg: pd.DataFrame, national) -> pd.DataFrame:
    """Domain A computed on the alternative base year too (a Monte Carlo choice)."""
    from .domains import compute_indicators

    alt = compute_indicators(agg, national, base="alt")
    extra = {}
    for k in A_IDS:
        extra[f"{k}__alt"] = alt[k]
        extra[f"var__{k}__alt"] = alt[f"var__{k}"]
        extra[f"reliable__{k}__alt"] = alt[f"reliable__{k}"]
    return pd.concat([wide, pd.DataFrame(extra, index=wide.index)], axis=1)


def _shrink(wide: pd.DataFrame, members: pd.DataFrame, weights_act: pd.Series, config: ReleaseConfig,
            has_alt: bool) -> pd.DataFrame:
    """Small-area shrinkage towards each territory's main zone d'emploi (else département)."""
    ze_ok = set(wide.loc[wide["level"] == "ze", "territory_id"])
    dep_ok = set(wide.loc[wide["level"] == "departement", "territory_id"])
    parents = {}
    for lv in config.shrink_levels:
        ze = _main_parent(members, weights_act, lv, "ze")
        dep = _main_parent(members, weights_act, lv, "departement")
        p = ("ze|" + ze[ze.isin(ze_ok)]).reindex(ze.index.union(dep.index))
        p = p.fillna("departement|" + dep[dep.isin(dep_ok)].reindex(p.index))
        parents[lv] = p
    shr = apply_shrinkage(wide, parents, config.shrink_levels, list(SHRINK_MODELS), min_siblings=config.min_siblings)
    wide = pd.concat([wide, shr], axis=1)
    if has_alt:
        alt_frame = wide.copy()
        for k in A_IDS:
            alt_frame[k] = wide[f"{k}__alt"]
            alt_frame[f"var__{k}"] = wide[f"var__{k}__alt"]
            alt_frame[f"reliable__{k}"] = wide[f"reliable__{k}__alt"]
        shr_alt = apply_shrinkage(alt_frame, parents, config.shrink_levels, A_IDS, sfx="_b",
                                  min_siblings=config.min_siblings)
        shr_alt.columns = [c.replace("__pub", "__alt__pub").replace("__w", "__alt__w") for c in shr_alt.columns]
        wide = pd.concat([wide, shr_alt], axis=1)
    return wide


def _composite_set(name: str, wide: pd.DataFrame, region_of: pd.Series, b3_breaks: dict, config: ReleaseConfig,
                   has_alt: bool):
    """Composite, ranks and Monte Carlo intervals of one reference set: (model, rows, summary),
    None when the set is empty."""
    lv, phase = REFERENCE_SETS[name]
    sel = wide["level"] == lv
    if phase is not None:
        sel &= wide["ti_phase"] == phase
    sub = wide[sel]
    if len(sub) == 0:
        return None
    ids = sub["territory_id"].to_numpy()
    vals = composite_values(sub, "pub").set_axis(ids)
    regions = pd.Series([region_of.get((lv, i)) for i in ids], index=ids)
    model, res = composite.fit_reference(name, lv, vals, DOMAIN_OF, regions, config.weights)
    model.b3_breaks = b3_breaks.get(lv, [])
    variants = {(False, False): (composite_values(sub, "raw").set_axis(ids), noise_sd(sub, "raw").set_axis(ids)),
                (True, False): (vals, noise_sd(sub, "pub").set_axis(ids))}
    if has_alt:
        for shrunk in (False, True):
            v = variants[(shrunk, False)][0].copy()
            s = variants[(shrunk, False)][1].copy()
            for k in A_IDS:
                alt = (sub[f"{k}__alt__pub"] if shrunk else sub[f"{k}__alt"]).astype("float64")
                v[k] = alt.where(indicator_status(sub, k) == secrecy.PUBLISHED).to_numpy()
                sd = np.sqrt(sub[f"var__{k}__alt"].astype("float64"))
                s[k] = (sd * sub[f"{k}__alt__w"] if shrunk else sd).to_numpy()
            variants[(shrunk, True)] = (v, s)
    mc, summary = uncertainty.monte_carlo(variants, DOMAIN_OF, res["rank_national"].to_numpy(), config.weights,
                                          config.mc, name=name)
    res = res.join(mc)
    res.insert(0, "territory_id", ids)
    res.insert(0, "level", lv)
    res.insert(2, "reference_set", name)
    res["gate_industrial"] = sub["gate_industrial"].to_numpy()
    return model, res.reset_index(drop=True), summary

COMPOSITE_COLUMNS = [
    "level", "territory_id", "reference_set", "score", "domain_a", "domain_b", "domain_c", "domain_d",
    "rank_national", "rank_regional", "percentile_national", "percentile_regional", "decile",
    "mc_rank_median", "mc_rank_p05", "mc_rank_p95", "p_top10", "p_top20", "uncertain", "gate_industrial",
    "n_reference", "region", "n_indicators_missing", "mc_mean_rank_shift",
]

#: Columns of the published wide table and the secrecy families that mask them.
WIDE_MASKS = {
    "jobs_ind": ("ind1",), "jobs_ind_t1": ("ind1",), "jobs_ind_t0": ("ind0",), "jobs_ind_delta": ("ind1", "ind0"),
    "jobs_total": ("tot",), "jobs_total_t1": ("tot",), "ind_share": ("ind1", "tot"), "ind_lq": ("ind1", "tot"),
    "jobs_ind_change_5y": ("ind1", "ind0"), "a1_ind_jobs_decline": ("ind1", "ind0"),
    "a2_local_effect": ("ind1", "ind0"), "a3_industry_mix": ("ind1", "ind0"),
    "b1_net_closure_rate": ("flow",), "flow_stock_t0": ("flow",), "b2_large_estab_loss": ("large",),
}
WIDE_COLUMNS = [
    "level", "territory_id", "n_communes", "population", "population_t0", "estab_ind_active", "estab_ind_employer",
    "jobs_ind", "jobs_total", "ind_share", "ind_lq", "jobs_ind_t0", "jobs_ind_change_5y", "active_1564",
    "unemployed_est", "unemployment_rate", "pop_2554", "flow_stock_t0",
    *[k for k in SCORED if k != "b3_concentration_class"], "b3_class", "gate_industrial",
]


def published_wide(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per territory: counts + raw indicator values, masked (NaN) where secret, with
    the status of the industrial-jobs and total-jobs cells."""
    out = wide[[c for c in WIDE_COLUMNS if c in wide.columns]].copy()
    for col, fams in WIDE_MASKS.items():
        if col in out:
            st = secrecy.combine_status(*[wide[f"secret__{f}"].to_numpy() for f in fams])
            out[col] = out[col].where(st == secrecy.PUBLISHED)
    out["secret_status_jobs_ind"] = secrecy.combine_status(wide["secret__ind1"].to_numpy(), wide["secret__ind0"].to_numpy()).astype(str)
    out["secret_status_jobs_total"] = wide["secret__tot"].astype(str).to_numpy()
    return out
