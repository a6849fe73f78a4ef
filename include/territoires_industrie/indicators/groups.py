"""Indicators, composite and percentiles for any user-given group of EPCI (a candidacy).

The group's counts are the sums of its member EPCI's counts (never an average of their
rates), so every indicator is exactly what the group's own establishments, jobs and
inhabitants give. The group is then placed in fitted reference sets (the 2023-2027
Territoires d'industrie, the zones d'emploi, the EPCI — nationally and within the group's
main région) without changing them. Secrecy is applied to the group's cells: primary rules
on its own counts, then **query restriction**: a group's cell is published only when none of its
members' cells of that family is masked in the release. Proof that any set of reviews then reveals
nothing more than the release: every published group count is the sum of its members' counts, all
of them published; so whatever groups an attacker reviews and subtracts, each number she gets is a
linear combination of published cells, and the feasible interval of every suppressed cell is the
one the release's own protection guarantees. (The complement rule used before, "mask when exactly
one member is masked", let G and G minus one EPCI recover every suppressed EPCI cell when G held
two masked members, and never protected a one-member group.) Exact figures for groups with masked
members exist only in the review's restricted mode ("diffusion restreinte").

No shrinkage is applied: a group is an aggregate (the recommended decision unit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import secrecy
from .base import COUNT_COLUMNS, MAX_COLUMNS
from .composite import ReferenceModel
from .definitions import BY_ID, CLASS_ONLY, INDICATORS
from .domains import compute_indicators

DEFAULT_REFERENCE_SETS = ("ti_2023_2027", "ze", "epci")
_FAMILIES = {
    "ind1": ("n_etab_ind_t1", ("band_max", "band_sum", "jobs_ind_t1")),
    "ind0": ("n_etab_ind_t0", ("band_max", "band_sum", "jobs_ind_t0")),
    "tot": ("n_etab_total_t1", ("band_max_all", "band_sum_all", "jobs_total_t1")),
    "flow": ("flow_stock_t0", None), "large": ("large_t0", None), "band": ("band_n", None),
}


@dataclass
class GroupInputs:
    """What :func:`compute_group` needs, all from one release (see
    ``stages.indicators.load_group_inputs``)."""

    counts: pd.DataFrame  # internal counts of every territory (level, territory_id, counts, secret__<family>)
    territories: pd.DataFrame  # level, territory_id, label, region, population
    models: dict[str, ReferenceModel]
    national: dict  # jobs_ind_t1, jobs_total_t1 of the reference universe
    periods: dict = field(default_factory=dict)
    epci_composite: pd.DataFrame | None = None  # composite rows of the EPCI set
    release_id: str = ""


@dataclass
class GroupResult:
    members: list[str]
    unknown_codes: list[str]
    region: str | None
    indicators: pd.DataFrame  # one row per indicator (+ pct_<reference set>)
    composite: pd.DataFrame  # one row per reference set
    summary: dict

    def to_dict(self) -> dict:
        def clean(df):
            return df.astype(object).where(df.notna(), None).to_dict("records")

        return {"members": self.members, "unknown_codes": self.unknown_codes, "region": self.region,
                "indicators": clean(self.indicators), "composite": clean(self.composite), "summary": self.summary}


def _norm_epci(code) -> str:
    s = str(code).strip()
    return s.zfill(9) if s.isdigit() and len(s) < 9 else s


def b3_breaks_for(inputs: GroupInputs, reference_sets, n_members: int) -> list:
    """Class breaks of the concentration index for a group: a one-EPCI group is an EPCI, classed
    with the release's EPCI breaks (its class then equals the published one); a larger group
    with the breaks of the first reference set that has them (the TI 2023-2027 by default)."""
    epci = inputs.models.get("epci")
    if n_members == 1 and epci is not None and epci.b3_breaks:
        return list(epci.b3_breaks)
    return next((inputs.models[s].b3_breaks for s in reference_sets if s in inputs.models and inputs.models[s].b3_breaks),
                [])


def indicator_record(d, st: str, vals: dict, b3_class: float, models: dict, reference_sets,
                     restricted: bool = False) -> dict:
    """One indicator of a group: value (NaN when secret), counts behind it and its percentile
    in each reference set. Shared by :func:`compute_group` and the review's batch path.
    ``restricted`` ("diffusion restreinte", for entitled reviewers only): secret values are shown
    too, and ``secret_status`` still says which ones are secret."""
    ok = st == secrecy.PUBLISHED or restricted
    raw = b3_class if d.id in CLASS_ONLY else vals.get(d.id, np.nan)
    rec = {"indicator_id": d.id, "label_fr": d.label_fr, "domain": d.domain, "direction": d.direction,
           "unit": d.unit, "value": raw if ok else np.nan,
           "reliable": bool(vals.get(f"reliable__{d.id}", np.isfinite(raw))), "secret_status": st,
           "numerator": vals.get(d.numerator, np.nan) if ok and d.numerator else np.nan,
           "denominator": vals.get(d.denominator, np.nan) if ok and d.denominator else np.nan}
    for s in reference_sets:
        model = models.get(s)
        pct = np.nan
        if model is not None and ok and d.scored and d.id not in CLASS_ONLY:
            pct = model.indicator_percentile(d.id, raw)
        rec[f"pct_{s}"] = pct
    return rec


def published_scored(indicators: pd.DataFrame) -> pd.Series:
    """The scored values a group's composite is computed from: its published values only
    (NaN where the group's cell is secret, the concentration index as its class), exactly as the
    release's own composite (issue 20)."""
    pub = indicators.set_index("indicator_id")["value"].astype("float64")
    return pd.Series({k: float(pub.get(k, np.nan)) for k in (i.id for i in INDICATORS if i.scored)})


def compute_group(epci_codes: list[str], inputs: GroupInputs, label: str | None = None,
                  reference_sets: tuple[str, ...] = DEFAULT_REFERENCE_SETS, *, restricted: bool = False) -> GroupResult:
    """Indicators of the union of ``epci_codes`` (EPCI SIREN codes) and its place in the
    reference sets. Unknown codes are returned in ``unknown_codes`` (and ignored); an empty
    group raises ValueError naming the codes. ``restricted``: exact figures, secret ones included
    ("diffusion restreinte"; never the default, see :func:`indicator_record`)."""
    codes = list(dict.fromkeys(_norm_epci(c) for c in epci_codes))
    epci = inputs.counts[inputs.counts["level"] == "epci"].set_index("territory_id")
    members = [c for c in codes if c in epci.index]
    unknown = [c for c in codes if c not in epci.index]
    if not members:
        raise ValueError(f"none of the EPCI codes {codes} is in release {inputs.release_id or '?'} "
                         "(unknown SIREN, or EPCI only partly covered by the data)")
    m = epci.loc[members]
    cols = [c for c in COUNT_COLUMNS if c in m.columns]
    row = m[cols].sum().to_frame().T
    for c in MAX_COLUMNS:
        if c in m.columns:
            row[c] = m[c].max()
    row.index = ["group"]
    ind = compute_indicators(row, pd.Series(inputs.national)).iloc[0]
    vals = {**row.iloc[0].to_dict(), **ind.to_dict()}

    # secrecy of the group's cells
    status = {}
    for fam, (n_col, dom) in _FAMILIES.items():
        share = secrecy.estimated_max_share(vals[dom[0]], vals[dom[1]], vals[dom[2]]) if dom else None
        st = secrecy.primary_status([vals[n_col]], None if share is None else [share])[0]
        masked_members = int((m.get(f"secret__{fam}", pd.Series(secrecy.PUBLISHED, index=m.index)) != secrecy.PUBLISHED).sum())
        if st == secrecy.PUBLISHED and masked_members >= 1:  # query restriction (see the module doc)
            st = secrecy.SECONDARY
        status[fam] = st

    terr = inputs.territories
    tep = terr[terr["level"] == "epci"].set_index("territory_id").reindex(members)
    pop = tep["population"].fillna(0.0)
    region = tep.groupby("region")["population"].sum().idxmax() if tep["region"].notna().any() else None

    breaks = b3_breaks_for(inputs, reference_sets, len(members))
    h = vals.get("b3_concentration", np.nan)
    b3_class = float(1 + np.searchsorted(np.asarray(breaks), h, side="right")) if np.isfinite(h) and breaks else np.nan

    rows = []
    for d in INDICATORS:
        fams = BY_ID[d.id].secrecy
        st = secrecy.combine_status(*[[status[f]] for f in fams])[0] if fams else secrecy.PUBLISHED
        rows.append(indicator_record(d, st, vals, b3_class, inputs.models, reference_sets, restricted))
    indicators = pd.DataFrame(rows)

    comp_rows = []
    values = published_scored(indicators).to_frame().T.set_axis(["group"])
    for s in reference_sets:
        model = inputs.models.get(s)
        if model is None:
            continue
        placed = model.place(values, pd.Series([region], index=["group"])).iloc[0].to_dict()
        comp_rows.append({"reference_set": s, **placed})
    comp = pd.DataFrame(comp_rows)

    summary = {"label": label, "n_members": len(members), "population": float(pop.sum()),
               "jobs_ind": float(vals["jobs_ind_t1"]) if status["ind1"] == secrecy.PUBLISHED or restricted else None,
               "gate_industrial": None, "release_id": inputs.release_id}
    if restricted or (status["ind1"] == secrecy.PUBLISHED and status["tot"] == secrecy.PUBLISHED):
        summary["gate_industrial"] = bool(np.nan_to_num(vals.get("ind_lq", np.nan)) >= 1.0 and vals["jobs_ind_t1"] >= 500)
    ec = inputs.epci_composite
    if ec is not None and not ec.empty:
        e = ec.set_index("territory_id").reindex(members)
        top20 = e["percentile_national"] > 80.0
        summary["extent_top20_population_share"] = float(pop[top20.to_numpy()].sum() / pop.sum()) if pop.sum() > 0 else None
        summary["local_concentration_max_epci_score"] = float(e["score"].max()) if e["score"].notna().any() else None
        summary["dispersion_epci_score"] = float(e["score"].max() - e["score"].min()) if e["score"].notna().any() else None
    return GroupResult(members=members, unknown_codes=unknown, region=region, indicators=indicators, composite=comp,
                       summary=summary)
