"""Many candidacies at once: :func:`compute_groups` gives, for a list of groups of EPCI, exactly
what :func:`territoires_industrie.indicators.groups.compute_group` gives for each of them, with
one vectorised pass (compute_group costs ~30-50 ms a group, mostly pandas overhead on a
one-row frame; a batch of 200 candidacies would spend most of its time there).

The single-candidacy path keeps calling ``compute_group`` itself; the unit tests check that
both give identical results (indicators, secrecy, composite, summary) on groups with masked
members, so a change of ``compute_group`` that is not mirrored here fails the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..indicators import secrecy
from ..indicators.base import COUNT_COLUMNS, MAX_COLUMNS
from ..indicators.definitions import BY_ID, INDICATORS
from ..indicators.domains import compute_indicators
from ..indicators.groups import (
    _FAMILIES,
    DEFAULT_REFERENCE_SETS,
    GroupInputs,
    GroupResult,
    _norm_epci,
    b3_breaks_for,
    indicator_record,
    published_scored,
)


def compute_groups(groups: list[list[str]], inputs: GroupInputs, labels: list[str | None] | None = None,
                   reference_sets: tuple[str, ...] = DEFAULT_REFERENCE_SETS) -> tuple[list[GroupResult], pd.DataFrame]:
    """(results, vals): one :class:`GroupResult` per group (as ``compute_group``) and the
    frame of summed counts + raw indicators with their variances (one row per group)."""
    labels = labels or [None] * len(groups)
    epci = inputs.counts[inputs.counts["level"] == "epci"].set_index("territory_id")
    pos = {c: i for i, c in enumerate(epci.index)}
    codes = [list(dict.fromkeys(_norm_epci(c) for c in g)) for g in groups]
    members = [[c for c in cs if c in pos] for cs in codes]
    unknown = [[c for c in cs if c not in pos] for cs in codes]
    for cs, m in zip(codes, members):
        if not m:
            raise ValueError(f"none of the EPCI codes {cs} is in release {inputs.release_id or '?'} "
                             "(unknown SIREN, or EPCI only partly covered by the data)")
    vals = _summed_indicators(epci, pos, members, inputs)
    n = len(groups)
    status = _group_status(vals, epci, pos, members)
    pops, regions = _populations_and_regions(inputs, members)
    h = vals["b3_concentration"].to_numpy(dtype="float64") if "b3_concentration" in vals else np.full(n, np.nan)
    b3_class = _b3_classes(h, inputs, reference_sets, members)

    records = vals.to_dict("records")
    rows = []
    for g in range(n):
        out_rows = []
        for d in INDICATORS:
            fams = BY_ID[d.id].secrecy
            st = secrecy.combine_status(*[[status[f][g]] for f in fams])[0] if fams else secrecy.PUBLISHED
            out_rows.append(indicator_record(d, st, records[g], b3_class[g], inputs.models, reference_sets))
        rows.append(pd.DataFrame(out_rows))
    values = pd.DataFrame([published_scored(r) for r in rows], index=range(n))  # published values only (issue 20)
    placed = {}
    for s in reference_sets:
        model = inputs.models.get(s)
        if model is not None:
            placed[s] = model.place(values, pd.Series(regions, index=range(n)))

    ec = inputs.epci_composite
    ecx = ec.set_index("territory_id") if ec is not None and not ec.empty else None
    results = []
    for g in range(n):
        v = records[g]
        comp = pd.DataFrame([{"reference_set": s, **p.iloc[g].to_dict()} for s, p in placed.items()])
        summary = _summary(labels[g], members[g], pops[g], v, status["ind1"][g], status["tot"][g], ecx,
                           inputs.release_id)
        results.append(GroupResult(members=members[g], unknown_codes=unknown[g], region=regions[g],
                                   indicators=rows[g], composite=comp, summary=summary))
    return results, vals


def _summed_indicators(epci: pd.DataFrame, pos: dict, members: list[list[str]], inputs: GroupInputs) -> pd.DataFrame:
    """Counts summed over each group's members (maxima for the dominance columns), then every
    indicator computed on the sums."""
    cols = [c for c in COUNT_COLUMNS if c in epci.columns]
    arr = epci[cols].to_numpy(dtype="float64")
    rows = pd.DataFrame([np.nansum(arr[[pos[c] for c in m]], axis=0) for m in members], columns=cols)
    for c in MAX_COLUMNS:
        if c in epci.columns:
            v = epci[c].to_numpy(dtype="float64")
            rows[c] = [np.nanmax(v[[pos[x] for x in m]]) if np.isfinite(v[[pos[x] for x in m]]).any() else np.nan
                       for m in members]
    ind = compute_indicators(rows, pd.Series(inputs.national))
    vals = rows.copy()
    for c in ind.columns:
        vals[c] = ind[c].to_numpy()
    return vals


def _group_status(vals: pd.DataFrame, epci: pd.DataFrame, pos: dict, members: list[list[str]]) -> dict:
    """Secrecy of each family for each group: primary rules on the group's own counts, and query
    restriction (hidden as soon as one member's cell is hidden in the release)."""
    n = len(members)
    status = {}
    for fam, (n_col, dom) in _FAMILIES.items():
        share = secrecy.estimated_max_share(vals[dom[0]], vals[dom[1]], vals[dom[2]]) if dom else None
        st = secrecy.primary_status(vals[n_col].to_numpy(dtype="float64"), share)
        col = f"secret__{fam}"
        if col in epci.columns:
            masked = (epci[col] != secrecy.PUBLISHED).to_numpy()
            n_masked = np.array([int(masked[[pos[x] for x in m]].sum()) for m in members])
        else:
            n_masked = np.zeros(n, dtype=int)
        st = np.where((st == secrecy.PUBLISHED) & (n_masked >= 1), secrecy.SECONDARY, st)  # query restriction
        status[fam] = st
    return status


def _populations_and_regions(inputs: GroupInputs, members: list[list[str]]) -> tuple[list, list]:
    """Members' populations, and each group's région (the one holding most of its population)."""
    terr = inputs.territories
    tep = terr[terr["level"] == "epci"].set_index("territory_id")
    pops, regions = [], []
    for m in members:
        t = tep.reindex(m)
        pops.append(t["population"].fillna(0.0))
        if t["region"].notna().any():
            regions.append(t.groupby("region")["population"].sum().idxmax())
        else:
            regions.append(None)
    return pops, regions


def _b3_classes(h: np.ndarray, inputs: GroupInputs, reference_sets, members: list[list[str]]) -> np.ndarray:
    """Concentration class of each group against the class boundaries of its reference set."""
    out = np.full(len(members), np.nan)
    for g, m in enumerate(members):
        breaks = b3_breaks_for(inputs, reference_sets, len(m))
        if breaks and np.isfinite(h[g]):
            out[g] = 1 + np.searchsorted(np.asarray(breaks), h[g], side="right")
    return out


def _summary(label, members: list[str], pop: pd.Series, v: dict, st1: str, sttot: str, ecx, release_id) -> dict:
    """Population, industrial jobs and gate (when published), and the within-group measures."""
    summary = {"label": label, "n_members": len(members), "population": float(pop.sum()),
               "jobs_ind": float(v["jobs_ind_t1"]) if st1 == secrecy.PUBLISHED else None,
               "gate_industrial": None, "release_id": release_id}
    if st1 == secrecy.PUBLISHED and sttot == secrecy.PUBLISHED:
        summary["gate_industrial"] = bool(np.nan_to_num(v.get("ind_lq", np.nan)) >= 1.0 and v["jobs_ind_t1"] >= 500)
    if ecx is not None:
        e = ecx.reindex(members)
        top20 = e["percentile_national"] > 80.0
        summary["extent_top20_population_share"] = (float(pop[top20.to_numpy()].sum() / pop.sum())
                                                    if pop.sum() > 0 else None)
        has = e["score"].notna().any()
        summary["local_concentration_max_epci_score"] = float(e["score"].max()) if has else None
        summary["dispersion_epci_score"] = float(e["score"].max() - e["score"].min()) if has else None
    return summary
