"""Perimeter of a candidacy against one release: which EPCI it is made of, and the checks of
the review protocol (methodology §3.4.1): every code valid in the release's geography,
number of EPCI, share of the population in the main zone d'emploi (bassin d'emploi
coherence), contiguity when the release carries the EPCI geometry, overlap with the
existing Territoires d'industrie."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codes import luhn_ok
from .candidacy import Candidacy, Problem, classify
from .inputs import ReviewContext

MAX_EPCI = 4  # cap reported for the 2023 call (press; to confirm in the official guide)
ZE_COHERENCE_MIN_SHARE = 0.5


@dataclass
class Perimeter:
    members: list[str]
    problems: list[Problem] = field(default_factory=list)
    partial: list[dict] = field(default_factory=list)  # EPCI only partly covered by the communes / TI given


def _row(item) -> int | None:
    return next((r for r in item.rows if r is not None), None)


def _named(ctx: ReviewContext, level: str, code: str) -> str:
    lab = ctx.label(level, code)
    return f"{code} ({lab})" if lab else code


def _unknown_epci(ctx: ReviewContext, code: str, row, fld) -> Problem:
    msg = f"« {code} » n'est pas un EPCI du COG {ctx.geography_vintage} (release {ctx.release_id})"
    if not luhn_ok(code):
        msg += " et n'est pas un SIREN valide (clé de contrôle fausse : faute de frappe ?)"
    else:
        msg += " : SIREN d'un autre organisme, ou EPCI créé ou fusionné après ce millésime du COG ?"
    return Problem("excluded", "unknown_epci", _prefix(row, fld) + msg + " ; code ignoré", row=row, field=fld,
                   value=code)


def _prefix(row, fld) -> str:
    if row is None:
        return ""
    return f"ligne {row}, champ {fld} : " if fld else f"ligne {row} : "


def _commune_hint(ctx: ReviewContext, code: str) -> tuple[str | None, str]:
    """(current code, text) for an old commune code found in the release's passage table."""
    targets = [t for t in ctx.passage.get(code, []) if t in ctx.commune_epci]
    if len(targets) == 1:
        t = targets[0]
        return t, (f"ancien code commune : code actuel {_named(ctx, 'commune', t)}, EPCI "
                   f"{_named(ctx, 'epci', ctx.commune_epci[t])}")
    if len(targets) > 1:
        return None, f"ancienne commune scindée en {', '.join(targets)}"
    return None, ""


def resolve(cand: Candidacy, ctx: ReviewContext, field_name: str | None = None) -> Perimeter:
    """EPCI of the candidacy in the release, every code that is not used being reported."""
    acc = _Resolution(ctx, field_name)
    resolve_item = {"epci": acc.as_epci, "commune": acc.as_commune}.get(cand.kind, acc.as_ti)
    for item in cand.items:
        resolve_item(item.code, _row(item), classify(item.code))
    return acc.perimeter()


class _Resolution:
    """EPCI found so far (in order), the communes given for each, and the problems."""

    def __init__(self, ctx: ReviewContext, fld: str | None):
        self.ctx, self.fld = ctx, fld
        self.problems: list[Problem] = []
        self.epci_order: list[str] = []
        self.communes_given: dict[str, set[str]] = {}
        self.partial_source = None

    def add_epci(self, e: str, communes: set[str] | None = None) -> None:
        if e not in self.epci_order:
            self.epci_order.append(e)
        if communes is not None:
            self.communes_given.setdefault(e, set()).update(communes)

    def excluded(self, kind: str, text: str, row, code: str, suggestion=None) -> None:
        self.problems.append(Problem("excluded", kind, text, row=row, field=self.fld, value=code,
                                     suggestion=suggestion))

    def as_epci(self, code: str, row, cls: str) -> None:
        ctx, pre = self.ctx, _prefix(row, self.fld)
        if cls == "epci":
            if code in ctx.communes_of_epci or code in ctx.counted_epci:
                self.add_epci(code)
            else:
                self.problems.append(_unknown_epci(ctx, code, row, self.fld))
        elif cls == "commune" and code in ctx.commune_epci:
            e = ctx.commune_epci[code]
            self.excluded(
                "commune_as_epci",
                f"{pre}« {code} » est un code commune ({ctx.label('commune', code) or 'commune'}), "
                f"pas un SIREN d'EPCI : son EPCI est {_named(ctx, 'epci', e)} ; utilisez ce SIREN (ou --communes "
                "pour une liste de communes) ; code ignoré", row, code, e)
        elif cls == "commune":
            cur, hint = _commune_hint(ctx, code)
            self.excluded(
                "commune_as_epci",
                f"{pre}« {code} » a la forme d'un code commune, pas d'un SIREN d'EPCI, et n'est pas "
                f"une commune du COG {ctx.geography_vintage}{' (' + hint + ')' if hint else ''} ; code ignoré",
                row, code, ctx.commune_epci.get(cur) if cur else None)
        elif cls == "ti":
            self.excluded(
                "ti_as_epci",
                f"{pre}« {code} » est un identifiant de Territoire d'industrie, pas un SIREN "
                "d'EPCI : donnez-le avec --ti ; code ignoré", row, code)

    def as_commune(self, code: str, row, cls: str) -> None:
        ctx, pre = self.ctx, _prefix(row, self.fld)
        if cls == "commune" and code in ctx.commune_epci:
            self.add_epci(ctx.commune_epci[code], {code})
        elif cls == "commune":
            cur, hint = _commune_hint(ctx, code)
            self.excluded(
                "unknown_commune",
                f"{pre}« {code} » n'est pas une commune du COG {ctx.geography_vintage} "
                f"(release {ctx.release_id}){' : ' + hint if hint else ''} ; code ignoré", row, code, cur)
        elif cls == "epci":
            known = code in ctx.communes_of_epci
            self.excluded(
                "epci_as_commune",
                f"{pre}« {code} » est un SIREN{' d’EPCI (' + (ctx.label('epci', code) or '') + ')' if known else ''}"
                ", pas un code commune : donnez les EPCI avec --epci ; code ignoré", row, code,
                code if known else None)
        else:
            self.excluded("ti_as_commune", f"{pre}« {code} » est un identifiant de Territoire d'industrie, "
                          "pas un code commune : donnez-le avec --ti ; code ignoré", row, code)

    def as_ti(self, code: str, row, cls: str) -> None:
        ctx, pre = self.ctx, _prefix(row, self.fld)
        if cls == "ti" and code in ctx.communes_of_ti:
            self.partial_source = "ti"
            for c in sorted(ctx.communes_of_ti[code]):
                if c in ctx.commune_epci:
                    self.add_epci(ctx.commune_epci[c], {c})
        elif cls == "ti":
            n = len(ctx.communes_of_ti)
            self.excluded(
                "unknown_ti",
                f"{pre}« {code} » n'est pas un Territoire d'industrie de la release {ctx.release_id} "
                f"({n} territoires connus, ex. {', '.join(sorted(ctx.communes_of_ti)[:3])}) ; code ignoré", row, code)
        else:
            self.excluded(
                "not_a_ti", f"{pre}« {code} » n'est pas un identifiant de Territoire "
                "d'industrie (ti-NNNN) : donnez les EPCI avec --epci ou les communes avec --communes ; code ignoré",
                row, code)

    def perimeter(self) -> Perimeter:
        """Members counted in the release; EPCI given in part are counted whole (warned)."""
        ctx, problems = self.ctx, self.problems
        members, partial = [], []
        for e in self.epci_order:
            if e not in ctx.counted_epci:
                problems.append(Problem(
                    "excluded", "epci_not_in_release",
                    f"EPCI {_named(ctx, 'epci', e)} : du COG {ctx.geography_vintage} mais absent de la release "
                    f"{ctx.release_id} (données manquantes pour au moins une de ses communes) ; EPCI ignoré", value=e))
                continue
            members.append(e)
            if e in self.communes_given:
                n_all = len(ctx.communes_of_epci.get(e, []))
                k = len(self.communes_given[e])
                if k < n_all:
                    what = "du Territoire d'industrie" if self.partial_source == "ti" else "données"
                    partial.append({"epci": e, "label": ctx.label("epci", e), "communes_given": k,
                                    "communes_epci": n_all})
                    problems.append(Problem(
                        "warning", "partial_epci",
                        f"EPCI {_named(ctx, 'epci', e)} : {k} commune(s) {what} sur {n_all} ; les comptes étant tenus "
                        "par EPCI entiers, l'EPCI entier est compté", value=e))
        return Perimeter(members=members, problems=problems, partial=partial)


def _components(members: list[str], pairs: set) -> list[list[str]]:
    left, comps = set(members), []
    for m in members:
        if m not in left:
            continue
        stack, comp = [m], []
        left.discard(m)
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in list(left):
                if frozenset((x, y)) in pairs:
                    left.discard(y)
                    stack.append(y)
        comps.append(sorted(comp))
    return comps


def _commune_facts(ctx: ReviewContext) -> tuple[dict, dict, bool]:
    """(population, région) of every commune of the release as dicts, built once per release."""
    cached = getattr(ctx, "_commune_facts", None)
    if cached is None:
        com = ctx.by_level.get("commune")
        if com is not None and len(com) and com["population"].notna().any():
            pop = com["population"].astype("float64").fillna(0.0).to_dict()
            reg = {k: (None if v is None or str(v) in ("None", "nan", "<NA>") else str(v))
                   for k, v in com["region"].to_dict().items()}
            cached = (pop, reg, True)
        else:  # no commune level in the release: communes weighted equally
            cached = ({}, {}, False)
        ctx._commune_facts = cached
    return cached


def checks(members: list[str], ctx: ReviewContext) -> dict:
    """Perimeter checks of a resolved candidacy (population-weighted where it matters)."""
    communes = [c for e in members for c in sorted(ctx.communes_of_epci.get(e, []))]
    cpop, creg, weighted = _commune_facts(ctx)
    pop = {c: (cpop.get(c, 0.0) if weighted else 1.0) for c in communes}
    weight_note = None if weighted else ("population des communes absente de la release : parts calculées en nombre "
                                         "de communes")
    total = float(sum(pop.values()))

    def shares(key_of) -> list[tuple[str, float]]:
        acc: dict = {}
        for c in communes:
            k = key_of(c)
            acc[k] = acc.get(k, 0.0) + pop[c]
        return sorted(acc.items(), key=lambda kv: (-kv[1], str(kv[0])))

    ze_rows = [{"ze": z, "label": ctx.label("ze", z), "population": p, "share": p / total if total else None}
               for z, p in shares(lambda c: ctx.commune_ze.get(c))]
    main = ze_rows[0] if ze_rows else None
    regions = [{"region": r, "label": ctx.label("region", r), "population": p, "share": p / total if total else None}
               for r, p in shares(lambda c: creg.get(c) or "?")]

    if ctx.adjacency is None:
        contiguity = {"checked": False, "contiguous": None, "components": [members],
                      "reason": "pas de géométrie des EPCI dans cette release (contiguïté non vérifiée)"}
    elif len(members) == 1:
        contiguity = {"checked": True, "contiguous": True, "components": [members], "source": ctx.adjacency_source}
    else:
        comps = _components(members, ctx.adjacency)
        contiguity = {"checked": True, "contiguous": len(comps) == 1, "components": comps,
                      "source": ctx.adjacency_source}

    cset = set(communes)
    overlaps = []
    ti_terr = ctx.by_level.get("ti")
    for ti_id in sorted({t for c in communes for t in ctx.ti_of_commune.get(c, [])}):
        tcom = set(ctx.communes_of_ti.get(ti_id, []))
        inter = sorted(tcom & cset)
        p_inter = float(sum(pop[c] for c in inter))
        p_ti = ctx.population("ti", ti_id) if weighted else float(len(tcom))
        if not p_ti == p_ti:  # TI not in the release (partly covered): sum of its communes
            p_ti = float(sum(cpop.get(c, 0.0) for c in tcom))
        phase = None
        if ti_terr is not None and ti_id in ti_terr.index:
            phase = ti_terr.at[ti_id, "ti_phase"]
            phase = None if phase is None or str(phase) in ("None", "nan", "<NA>") else str(phase)
        overlaps.append({"ti_id": ti_id, "label": ctx.label("ti", ti_id), "phase": phase,
                         "communes_in_common": len(inter), "communes_ti": len(tcom),
                         "share_of_candidacy": p_inter / total if total else None,
                         "share_of_ti": p_inter / p_ti if p_ti else None, "identical": tcom == cset})
    overlaps.sort(key=lambda o: (o["phase"] != "2023-2027", -(o["share_of_candidacy"] or 0.0), o["ti_id"]))
    return {
        "n_epci": len(members), "max_epci": MAX_EPCI, "epci_cap_ok": len(members) <= MAX_EPCI,
        "single_epci": len(members) == 1, "n_communes": len(communes), "population": total,
        "zones_emploi": ze_rows, "main_ze": main["ze"] if main else None,
        "main_ze_label": main["label"] if main else None, "main_ze_share": main["share"] if main else None,
        "ze_coherence_min_share": ZE_COHERENCE_MIN_SHARE,
        "ze_coherent": bool(main and main["share"] is not None and main["share"] >= ZE_COHERENCE_MIN_SHARE),
        "regions": regions, "contiguity": contiguity, "overlaps": overlaps, "weight_note": weight_note,
    }
