"""Review of candidacies against one published release — the one library function behind the
``ti-indicators review`` command and the ``ti_review`` DAG.

* :func:`review_candidacy` — one candidacy -> a review document (JSON-ready dict) and, when
  ``out_root`` is given, its outputs ``review.html`` / ``review.json`` / ``review.csv`` /
  ``review.xlsx`` in ``<out_root>/<release>/<slug>/`` (built in a temporary folder, then
  swapped in: a re-review of the same candidacy on the same release replaces its folder; any
  other candidacy has another folder).
* :func:`review_batch` — many candidacies: each reviewed as above (a failing one is reported,
  the others go on), plus a summary table ranking them.
* :func:`run_review` — the entry point of the CLI and the DAG: validates every input, then
  opens the warehouse and reads the release (no SQL is ever built from user strings).

Nothing is written to the warehouse: a review never changes a published release.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__, storage
from ..errors import DataError
from ..indicators.uncertainty import MC_SEED
from ..storage import jsonable
from . import perimeter as perim
from . import scoring
from .candidacy import Candidacy, CandidacyFileError, Problem, from_args, read_batch, slugify
from .inputs import ReviewContext, check_release_id, load_review_context
from .vocabulary import DOMAIN_LABELS_FR, SECRET_FR  # noqa: F401 - part of this module's vocabulary

log = logging.getLogger(__name__)

SCHEMA = "ti-candidacy-review/1"
REFERENCE_SETS = ("ti_2023_2027", "ze", "epci")
SET_LABELS_FR = {"ti_2023_2027": "Territoires d'industrie 2023-2027", "ze": "zones d'emploi", "epci": "EPCI"}
SET_SHORT_FR = {"ti_2023_2027": "TI", "ze": "ZE", "epci": "EPCI"}
METHOD_FR = (
    "Indicateurs recalculés sur la somme des comptes des EPCI membres (jamais la moyenne de leurs taux), secret "
    "statistique appliqué au groupe (un chiffre du groupe n'est publié que si aucun EPCI membre n'est masqué pour ce "
    "chiffre : aucune combinaison de candidatures ne peut alors révéler une cellule masquée), aucun lissage. Le groupe "
    "est placé dans les ensembles de référence de la release sans les modifier. Intervalle d'incertitude : Monte "
    "Carlo sur les poids des domaines (Dirichlet α = 20, poids égaux 1 fois sur 10) et le bruit des petits comptes "
    "du groupe ; la méthode d'agrégation, le lissage et l'année de base ne varient pas pour un groupe (intervalle "
    "plus étroit que celui d'un territoire publié). Un groupe de plusieurs EPCI tend vers le milieu d'un classement "
    "d'EPCI seuls : comparez-le d'abord aux Territoires d'industrie et aux zones d'emploi.")


class CandidacyRejected(DataError, ValueError):
    """The candidacy cannot be reviewed; ``problems`` says why (each problem named)."""

    def __init__(self, candidacy: Candidacy, problems: list[Problem]):
        self.candidacy = candidacy
        self.problems = problems
        order = {"fatal": 0, "excluded": 1, "warning": 2}
        lines = [p.message for p in sorted(problems, key=lambda p: order.get(p.level, 3))]
        super().__init__(f"candidature « {candidacy.name or '?'} » non examinée :\n" + "\n".join(f"  - {m}" for m in lines))


@dataclass
class ReviewResult:
    document: dict
    paths: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.document["candidacy"]["name"]


# --- helpers ---------------------------------------------------------------------------------

_f = jsonable  # JSON-ready number: NaN/None -> None, numpy -> Python


def _periods(meta: dict):
    from ..indicators.base import Periods

    p = dict(meta.get("periods") or {})
    p.pop("t0", None)
    try:
        return Periods(**{**p, "quarters": tuple(p.get("quarters") or ()),
                          "quarters_prev": tuple(p.get("quarters_prev") or ())})
    except TypeError:
        return None


def _period_label(periods, key: str) -> str | None:
    if periods is None:
        return None
    try:
        return periods.label(key) or None
    except (KeyError, IndexError, TypeError):
        return None


def _epci_facts(ctx: ReviewContext) -> dict[str, dict]:
    """Published facts of every EPCI of the release (built once per release)."""
    cached = getattr(ctx, "_epci_facts", None)
    if cached is not None:
        return cached
    comp = ctx.composite[ctx.composite["reference_set"] == "epci"].set_index("territory_id")
    iv = ctx.epci_values
    w = pd.to_numeric(iv["shrink_weight"], errors="coerce")
    shrunk = (w < 1.0).groupby(iv["territory_id"]).any()
    unreliable = (iv["reliable"].astype("boolean") == False).groupby(iv["territory_id"]).sum()  # noqa: E712
    pick = iv.set_index(["territory_id", "indicator_id"])
    terr = ctx.by_level.get("epci", pd.DataFrame(columns=["label", "population", "region"]))
    top = 100.0 * (1 - scoring.THRESHOLDS["extent_top_share"])
    facts = {}
    for e in terr.index:
        c = comp.loc[e] if e in comp.index else None

        def val(ind, col="value", e=e):
            return _f(pick.at[(e, ind), col]) if (e, ind) in pick.index else None

        communes = ctx.communes_of_epci.get(e, [])
        zes = pd.Series([ctx.commune_ze.get(x) for x in communes], dtype="object").value_counts()
        pct = _f(c["percentile_national"]) if c is not None else None
        facts[e] = {
            "epci": e, "label": ctx.label("epci", e), "population": _f(ctx.population("epci", e)),
            "region": _f(terr.at[e, "region"]), "main_ze": zes.index[0] if len(zes) else None,
            "score": _f(c["score"]) if c is not None else None,
            "rank_national": _f(c["rank_national"]) if c is not None else None,
            "n_reference": _f(c["n_reference"]) if c is not None else None,
            "percentile_national": pct, "p_top20": _f(c["p_top20"]) if c is not None else None,
            "in_top20": bool(pct is not None and pct > top),
            "jobs_ind": val("jobs_ind"), "jobs_ind_status": val("jobs_ind", "secret_status"),
            "unemployment_rate": val("c1_unemployment_rate"),
            "shrunk": bool(shrunk.get(e, False)), "n_unreliable": int(unreliable.get(e, 0)),
        }
    ctx._epci_facts = facts
    return facts


def _member_rows(members: list[str], ctx: ReviewContext) -> list[dict]:
    facts = _epci_facts(ctx)
    return [dict(facts[e]) if e in facts else {"epci": e, "label": None} for e in members]


RESTRICTED_FR = ("DIFFUSION RESTREINTE : ce document contient des chiffres couverts par le secret statistique "
                 "(valeurs exactes du groupe). Réservé aux relecteurs habilités ; ne pas diffuser, ne pas publier, "
                 "ne pas joindre à un dossier public.")


def _quality_notes(group, ind_rows: list[dict], members: list[dict], ctx: ReviewContext,
                   restricted: bool = False) -> list[str]:
    notes = [RESTRICTED_FR] if restricted else []
    secret = [r for r in ind_rows if r["secret_status"] != "V"]
    for st in sorted({r["secret_status"] for r in secret}):  # one line per reason (a page, not a list)
        labels = " ; ".join(f"« {r['label_fr']} »" for r in secret if r["secret_status"] == st)
        if restricted:
            notes.append(f"{labels} du groupe : {SECRET_FR.get(st, st)} — valeur(s) exacte(s) affichée(s) en "
                         "diffusion restreinte (et prise(s) en compte dans le composite de ce document).")
        else:
            notes.append(f"{labels} du groupe : {SECRET_FR.get(st, st)} — valeur(s) non affichée(s) et non utilisée(s) "
                         "par le composite, calculé sur les seules valeurs publiées du groupe.")
    masked = [m for m in members if m["jobs_ind_status"] not in (None, "V")]
    if masked:
        notes.append(f"{len(masked)} EPCI membre(s) sur {len(members)} ont leurs emplois industriels couverts par le "
                     "secret statistique (leur part n'est pas affichée : elle le révélerait).")
    unreliable = [r for r in ind_rows if r["scored"] and r["value"] is not None and not r["reliable"]]
    if unreliable:
        notes.append("Sous les seuils de fiabilité (petits effectifs) : "
                     + ", ".join(f"« {r['label_fr']} »" for r in unreliable) + ".")
    missing = [r for r in ind_rows if r["scored"] and r["value"] is None and r["secret_status"] == "V"]
    if missing:
        notes.append("Non calculables pour ce groupe : " + ", ".join(f"« {r['label_fr']} »" for r in missing) + ".")
    shrunk = [m for m in members if m["shrunk"]]
    if shrunk:
        notes.append(f"{len(shrunk)} EPCI membre(s) ont des valeurs publiées lissées (bayésien empirique, petits "
                     "effectifs) ; les valeurs du groupe, calculées sur la somme des comptes, ne sont pas lissées.")
    if ctx.synthetic:
        notes.append("DONNÉES SYNTHÉTIQUES : release construite sur l'échantillon généré ; aucun chiffre ne décrit un "
                     "territoire réel.")
    return notes


def _reference_domains(ctx: ReviewContext, reference_set: str) -> np.ndarray:
    """Published domain scores X_A..X_D of the territories of a reference set (cached)."""
    cache = ctx.__dict__.setdefault("_ref_domains", {})
    if reference_set not in cache:
        ref = ctx.composite[ctx.composite["reference_set"] == reference_set]
        ref = ref[["domain_a", "domain_b", "domain_c", "domain_d"]].to_numpy(dtype="float64")
        cache[reference_set] = ref[np.isfinite(ref).all(axis=1)]
    return cache[reference_set]


def _reference_domains_regions(ctx: ReviewContext, reference_set: str) -> tuple[np.ndarray, np.ndarray]:
    """The same territories as :func:`_reference_domains`, with their région."""
    cache = ctx.__dict__.setdefault("_ref_domains_regions", {})
    if reference_set not in cache:
        ref = ctx.composite[ctx.composite["reference_set"] == reference_set]
        dom = ref[["domain_a", "domain_b", "domain_c", "domain_d"]].to_numpy(dtype="float64")
        ok = np.isfinite(dom).all(axis=1)
        reg = ref["region"].astype(str).to_numpy() if "region" in ref.columns else np.array([""] * len(ref))
        cache[reference_set] = (dom[ok], reg[ok])
    return cache[reference_set]


# --- one candidacy ---------------------------------------------------------------------------

def assess(cand: Candidacy, ctx: ReviewContext, field_name: str | None = None, *,
           per: perim.Perimeter | None = None, ind: pd.Series | None = None, group=None,
           restricted: bool = False) -> dict:
    """The review document of one candidacy (no file written). Raises :class:`CandidacyRejected`.
    ``per`` / ``ind`` / ``group``: the resolved perimeter, the group's indicator row and its
    :class:`GroupResult` when already computed (batch, :mod:`.groups_batch`). ``restricted``:
    the group's exact figures, secret ones included, in a document marked "diffusion restreinte"
    (``doc["diffusion"]``); never the default."""
    from ..indicators.groups import compute_group

    if cand.fatal:
        raise CandidacyRejected(cand, cand.problems)
    per = per or perim.resolve(cand, ctx, field_name or cand.codes_field)
    problems = [*cand.problems, *per.problems]
    if not per.members:
        problems.append(Problem("fatal", "no_member", f"aucun EPCI de la candidature « {cand.name} » n'est dans la "
                                f"release {ctx.release_id} (voir les codes ignorés)"))
        raise CandidacyRejected(cand, problems)
    members = per.members
    if group is None:
        group = compute_group(members, ctx.inputs, label=cand.name, reference_sets=REFERENCE_SETS,
                              restricted=restricted)
    ind = scoring.group_indicator_frame(members, ctx.inputs) if ind is None else ind
    checks = perim.checks(members, ctx)
    periods = _periods(ctx.meta)

    draws = int(ctx.meta.get("mc_draws") or 1000)
    seed = int(ctx.meta.get("mc_seed") or MC_SEED)
    comp_doc = _composite_rows(cand, ctx, ind, group, draws, seed)
    comp_by_set = {row["reference_set"]: row for row in comp_doc}

    lq, jobs = _f(ind.get("ind_lq")), _f(ind.get("jobs_ind_t1"))
    gate = bool((lq or 0.0) >= scoring.THRESHOLDS["gate_lq"] and (jobs or 0.0) >= scoring.THRESHOLDS["gate_jobs_ind"])
    flags = scoring.decision_flags(comp_by_set, gate, checks)
    ind_rows = _indicator_rows(group, periods)
    published = {r["indicator_id"]: r["value"] for r in ind_rows}
    flags["gate_industrial"]["observed"] = {"ind_lq": published.get("ind_lq"), "jobs_ind": published.get("jobs_ind")}

    member_rows = _member_rows(members, ctx)
    summary = group.summary
    within = _within(member_rows, summary)
    published_ti = _published_ti(cand, ctx, checks)

    rel = ctx.release
    doc = {
        "schema": SCHEMA,
        "diffusion": {"mode": "restreinte", "label": "DIFFUSION RESTREINTE", "text": RESTRICTED_FR} if restricted
        else {"mode": "publique", "label": "diffusion publique (secret statistique appliqué)", "text": None},
        "candidacy": {**cand.as_dict(), "key": cand.key(), "slug": cand.slug()},
        "release": {"release_id": ctx.release_id, "pipeline_version": rel.get("pipeline_version"),
                    "review_version": __version__, "source_vintages": rel.get("source_vintages") or {},
                    "synthetic": ctx.synthetic, "data_status": "SYNTHETIC" if ctx.synthetic else "officiel",
                    "validation_status": rel.get("validation_status"), "geography_vintage": ctx.geography_vintage,
                    "periods": ctx.meta.get("periods") or {}, "weights": ctx.inputs.models[comp_doc[0]["reference_set"]].weights
                    if comp_doc else None, "mc_draws": draws, "mc_seed": seed},
        "perimeter": {"members": member_rows, "checks": checks, "partial_epci": per.partial,
                      "region": group.region, "region_label": ctx.label("region", group.region) if group.region else None},
        "summary": {"population": _f(summary.get("population")), "n_members": len(members),
                    "jobs_ind": _f(summary.get("jobs_ind")), "ind_lq": next(
                        (r["value"] for r in ind_rows if r["indicator_id"] == "ind_lq"), None)},
        "indicators": ind_rows,
        "composite": comp_doc,
        "published_ti": published_ti,
        "within": within,
        "flags": flags,
        "thresholds": scoring.THRESHOLDS,
        "data_quality": _quality_notes(group, ind_rows, member_rows, ctx, restricted),
        "problems": [p.as_dict() for p in problems],
        "method": METHOD_FR,
    }
    return doc



def _composite_rows(cand: Candidacy, ctx: ReviewContext, ind: pd.Series, group, draws: int, seed: int) -> list[dict]:
    """The group's composite in each reference set, with its Monte Carlo interval."""
    sd = scoring.noise_sd(ind)
    rows = []
    for rec in group.composite.to_dict("records"):
        s = rec["reference_set"]
        model = ctx.inputs.models[s]
        values = scoring.scored_values(group.indicators, model)
        mc = scoring.group_monte_carlo(values, sd, model, _reference_domains(ctx, s), draws=draws, seed=seed,
                                       key=cand.key())
        dpct = scoring.domain_percentiles(values, model)
        ref_dom, ref_reg = _reference_domains_regions(ctx, s)
        robust = scoring.weight_robustness({d: rec.get(f"domain_{d.lower()}") for d in "ABCD"}, dpct, ref_dom, ref_reg,
                                           group.region, model.weights, draws=draws, seed=seed, key=cand.key())
        rows.append({"reference_set": s, "label": SET_LABELS_FR.get(s, s), "short": SET_SHORT_FR.get(s, s),
                     "score": _f(rec.get("score")),
                     **{f"domain_{d.lower()}": _f(rec.get(f"domain_{d.lower()}")) for d in "ABCD"},
                     "domain_pct": dpct, "weight_robustness": robust,
                     "percentile_national": _f(rec.get("percentile_national")),
                     "percentile_regional": _f(rec.get("percentile_regional")), "region": group.region,
                     "rank_equivalent": _f(rec.get("rank_equivalent")), "n_reference": _f(rec.get("n_reference")),
                     "n_indicators_missing": _f(rec.get("n_indicators_missing")), "mc": mc})
    return rows


def _indicator_rows(group, periods) -> list[dict]:
    """Every indicator of the group, in the dictionary's order."""
    from ..indicators.definitions import BY_ID, INDICATORS

    rows = []
    for r in group.indicators.to_dict("records"):
        d = BY_ID[r["indicator_id"]]
        rows.append({
            "indicator_id": d.id, "label_fr": d.label_fr, "domain": d.domain, "unit": d.unit, "scored": d.scored,
            "period": _period_label(periods, d.period_key), "value": _f(r["value"]),
            "numerator": _f(r["numerator"]), "denominator": _f(r["denominator"]),
            "secret_status": r["secret_status"], "reliable": bool(r["reliable"]),
            **{f"pct_{s}": _f(r.get(f"pct_{s}")) for s in REFERENCE_SETS},
        })
    order = {d.id: i for i, d in enumerate(INDICATORS)}
    rows.sort(key=lambda r: order[r["indicator_id"]])
    return rows


def _within(member_rows: list[dict], summary: dict) -> dict:
    """Inside the candidacy: extent, most and least difficult member, dispersion, carve-in."""
    scored_members = [m for m in member_rows if m["score"] is not None]
    most = max(scored_members, key=lambda m: m["score"]) if scored_members else None
    least = min(scored_members, key=lambda m: m["score"]) if scored_members else None
    return {
        "extent_top20_population_share": _f(summary.get("extent_top20_population_share")),
        "most_difficult_member": most and {k: most[k] for k in ("epci", "label", "score", "percentile_national")},
        "least_difficult_member": least and {k: least[k] for k in ("epci", "label", "score", "percentile_national")},
        "local_concentration_max_epci_score": _f(summary.get("local_concentration_max_epci_score")),
        "dispersion_epci_score": _f(summary.get("dispersion_epci_score")),
        "carve_in_suspected": bool(most and len(scored_members) > 1
                                   and most["percentile_national"] is not None and most["percentile_national"] > 80
                                   and (summary.get("extent_top20_population_share") or 0) < 0.5),
    }


def _published_ti(cand: Candidacy, ctx: ReviewContext, checks: dict) -> list[dict]:
    """The published Territoires d'industrie whose perimeter is the candidacy's (or that it names)."""
    out = []
    for o in checks["overlaps"]:
        if o["identical"] or (cand.kind == "ti" and o["ti_id"] in cand.codes):
            rows = ctx.composite[(ctx.composite["level"] == "ti") & (ctx.composite["territory_id"] == o["ti_id"])]
            for r in rows.to_dict("records"):
                out.append({k: _f(r.get(k)) for k in (
                    "territory_id", "reference_set", "score", "rank_national", "n_reference", "percentile_national",
                    "percentile_regional", "mc_rank_p05", "mc_rank_p95", "p_top20", "uncertain")}
                    | {"label": o["label"], "identical_perimeter": o["identical"]})
    return out

_swap_in = storage.swap_dir_into_place


def write_review(doc: dict, out_root: Path, xlsx: bool = True, candidacy_map: dict | None = None,
                 whatif: dict | None = None) -> dict:
    """Write the outputs of one review into ``<out_root>/<release>/<slug>/`` (atomic swap)."""
    from . import render

    release_dir = Path(out_root) / check_release_id(doc["release"]["release_id"])
    release_dir.mkdir(parents=True, exist_ok=True)
    slug = doc["candidacy"]["slug"]
    dest = release_dir / slug
    tmp = Path(tempfile.mkdtemp(prefix=f".{slug}.tmp-", dir=release_dir))
    try:
        names = render.write_outputs(doc, tmp, xlsx=xlsx, candidacy_map=candidacy_map, whatif=whatif)
        os.chmod(tmp, 0o700 if render.restricted(doc) else 0o755)
        _swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k: str(dest / v) for k, v in names.items()} | {"folder": str(dest)}


def review_candidacy(cand: Candidacy, ctx: ReviewContext, *, out_root: Path | None = None,
                     field_name: str | None = None, xlsx: bool = True,
                     _precomputed: dict | None = None, restricted: bool = False) -> ReviewResult:
    """Review one candidacy against the release of ``ctx``; outputs written under ``out_root``
    when given. Raises :class:`CandidacyRejected` (with every problem named) when it cannot be
    reviewed. ``restricted``: exact figures, "diffusion restreinte" (see :func:`assess`)."""
    doc = assess(cand, ctx, field_name, restricted=restricted, **(_precomputed or {}))
    paths = {}
    if out_root is not None:
        from . import render

        try:
            cmap = render.candidacy_map(doc, ctx.composite)
        except (OSError, ValueError, KeyError) as exc:  # the map is optional; the verdict is not
            log.warning("candidacy map unavailable: %s", exc)
            cmap = None
        paths = write_review(doc, out_root, xlsx=xlsx, candidacy_map=cmap, whatif=render.whatif_data(doc, ctx.composite))
    return ReviewResult(document=doc, paths=paths)


# --- batch -----------------------------------------------------------------------------------

def review_batch(candidacies: list[Candidacy], ctx: ReviewContext, *, out_root: Path | None = None,
                 batch_name: str = "lot", file_problems: list[Problem] | None = None) -> dict:
    """Review every candidacy (one failure never stops the others) and rank them.

    Returns ``{"results", "rejected", "summary" (DataFrame, ranked), "paths"}``; with
    ``out_root`` each candidacy gets its HTML / JSON / CSV in its own folder (as a single
    review) and the summary goes to ``<out_root>/<release>/batch-<name>/`` — whose workbook
    holds the XLSX row of every candidacy (sheet "Candidatures (détail)")."""
    from . import render

    t0 = time.perf_counter()
    results: list[ReviewResult] = []
    rejected: list[dict] = []
    # perimeters first, then the indicators of every group in one vectorised pass
    pre: dict[int, dict] = {}
    for i, cand in enumerate(candidacies):
        if not cand.fatal:
            try:
                per = perim.resolve(cand, ctx, cand.codes_field)
            except Exception:  # noqa: BLE001 - reported below by the candidacy's own review
                continue
            if per.members:
                pre[i] = {"per": per}
    if pre:
        from .groups_batch import compute_groups

        keys = list(pre)
        try:
            grs, frames = compute_groups([pre[i]["per"].members for i in keys], ctx.inputs,
                                         labels=[candidacies[i].name for i in keys], reference_sets=REFERENCE_SETS)
        except Exception:  # noqa: BLE001 - fall back to one compute_group per candidacy
            log.exception("vectorised group computation failed: candidacies computed one by one")
        else:
            for k, i in enumerate(keys):
                pre[i]["ind"] = frames.iloc[k]
                pre[i]["group"] = grs[k]
    for i, cand in enumerate(candidacies, 1):
        try:
            results.append(review_candidacy(cand, ctx, out_root=out_root, xlsx=False, _precomputed=pre.get(i - 1)))
        except CandidacyRejected as exc:
            rejected.append({"candidacy": cand.as_dict(), "problems": [p.as_dict() for p in exc.problems]})
        except Exception as exc:  # noqa: BLE001 - one candidacy must not stop the batch
            log.exception("review of candidacy %r failed", cand.name)
            rejected.append({"candidacy": cand.as_dict(), "problems": [Problem(
                "fatal", "internal_error", f"erreur interne pendant l'examen ({type(exc).__name__}: {exc}) ; "
                "signalez-la à l'équipe données").as_dict()]})
        if i % 50 == 0 or i == len(candidacies):
            dt = time.perf_counter() - t0
            log.info("batch %s: %d/%d candidacies (%d reviewed, %d rejected) in %.1f s (%.1f /s)", batch_name, i,
                     len(candidacies), len(results), len(rejected), dt, i / dt if dt else 0.0)
    summary = render.batch_table(results, rejected)
    out = {"results": results, "rejected": rejected, "summary": summary, "file_problems": file_problems or [],
           "paths": {}, "seconds": round(time.perf_counter() - t0, 3)}
    if out_root is not None:
        release_dir = Path(out_root) / check_release_id(ctx.release_id)
        dest = release_dir / f"batch-{slugify(batch_name)[:60] or 'lot'}"
        release_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=release_dir))
        try:
            detail = pd.DataFrame([render.csv_row(r.document) for r in results])
            names = render.write_batch(summary, rejected, file_problems or [], ctx, tmp, batch_name, detail)
            os.chmod(tmp, 0o755)
            _swap_in(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        out["paths"] = {k: str(dest / v) for k, v in names.items()} | {"folder": str(dest)}
    return out


# --- entry point (CLI, DAG) ------------------------------------------------------------------

def _flag_text(doc: dict) -> str:
    f = doc["flags"]

    def yn(v):
        return "?" if v is None else ("oui" if v else "non")

    return (f"porte industrielle {yn(f['gate_industrial']['value'])} | en difficulté {yn(f['in_difficulty']['value'])} | "
            f"robustement {yn(f['robustly_in_difficulty']['value'])} | plus loin de l'emploi "
            f"{yn(f['far_from_employment']['value'])} | cohérence ZE {yn(f['ze_coherence']['value'])}")


def short_text(doc: dict) -> str:
    """A few lines for a terminal or a task log."""
    c = doc["candidacy"]
    lines = [f"{c['name']} — release {doc['release']['release_id']}"
             f"{' [DONNÉES SYNTHÉTIQUES]' if doc['release']['synthetic'] else ''}",
             f"  {doc['summary']['n_members']} EPCI ({', '.join(m['epci'] for m in doc['perimeter']['members'])}), "
             f"{format(doc['summary']['population'] or 0, ',.0f').replace(',', ' ')} habitants"]
    for comp in doc["composite"]:
        mc = comp.get("mc") or {}
        pct = comp["percentile_national"]
        lines.append(f"  vs {comp['label']:<34} score {comp['score']:5.1f}  percentile national "
                     f"{pct:5.1f}  rang ~{comp['rank_equivalent']:.0f}/{comp['n_reference']:.0f}"
                     + (f"  (90 % : {mc['rank_p05']:.0f}-{mc['rank_p95']:.0f}, P(top 20 %) {mc['p_top20']:.2f})"
                        if mc else ""))
    lines.append("  " + _flag_text(doc))
    n_pb = len(doc["problems"])
    if n_pb:
        lines.append(f"  {n_pb} remarque(s) sur la saisie :")
        lines += [f"    - {p['message']}" for p in doc["problems"]]
    return "\n".join(lines)


def run_review(settings=None, *, name: str | None = None, epci=None, communes=None, ti=None,
               csv_path: str | Path | None = None, release: str | None = None, engine=None,
               restricted: bool = False) -> dict:
    """Validate the request, read the release, review, write the outputs under
    ``<TI_DATA_DIR>/reviews/``. Returns a small JSON-serialisable summary (paths, flags,
    problems) — what the DAG task pushes to XCom and the CLI prints.

    ``restricted`` ("diffusion restreinte", one candidacy only): the group's exact figures,
    secret ones included, written under ``<TI_DATA_DIR>/reviews-restreintes/`` (owner-only
    permissions), every output marked DIFFUSION RESTREINTE. Never the default; the Airflow DAG
    does not offer it.

    Raises :class:`CandidacyRejected` (single candidacy that cannot be reviewed),
    :class:`CandidacyFileError` (batch file unusable) or :class:`ReviewInputsError` (release
    unknown or without review inputs) with a readable message."""
    from .. import warehouse
    from ..config import get_settings

    settings = settings or get_settings()
    # 1. everything the user gave is validated before the warehouse is touched
    if release not in (None, ""):
        release = check_release_id(release)
    else:
        release = None
    has_codes = any(v not in (None, "", []) for v in (epci, communes, ti))
    if csv_path not in (None, "") and has_codes:
        raise CandidacyFileError("donnez soit un fichier de candidatures (--csv), soit une candidature "
                                 "(--name et --epci/--communes/--ti), pas les deux")
    if restricted and csv_path not in (None, ""):
        raise CandidacyFileError("la diffusion restreinte s'applique à une candidature à la fois (--name et "
                                 "--epci/--communes/--ti), pas à un lot (--csv)")
    if csv_path not in (None, ""):
        candidacies, file_problems = read_batch(Path(csv_path))
        if not candidacies:
            raise CandidacyFileError(f"{Path(csv_path).name} : aucune candidature lisible ("
                                     + "; ".join(p.message for p in file_problems[:5]) + ")")
        single = None
    else:
        single = from_args(name, epci=epci, communes=communes, ti=ti)
        if single.fatal:
            raise CandidacyRejected(single, single.problems)
    # 2. the release, read once
    own = engine is None
    engine = engine or warehouse.get_engine(settings.warehouse_url)
    try:
        ctx = load_review_context(engine, release)
    finally:
        if own:
            engine.dispose()
    out_root = Path(settings.data_dir) / ("reviews-restreintes" if restricted else "reviews")
    if single is not None:
        res = review_candidacy(single, ctx, out_root=out_root, restricted=restricted)
        doc = res.document
        log.info("review of %r on release %s%s: %s", doc["candidacy"]["name"], ctx.release_id,
                 " (DIFFUSION RESTREINTE)" if restricted else "", res.paths.get("html"))
        text = short_text(doc)
        return {"mode": "single", "release_id": ctx.release_id, "synthetic": ctx.synthetic,
                "diffusion": doc["diffusion"]["mode"], "name": doc["candidacy"]["name"], "paths": res.paths,
                "text": f"[DIFFUSION RESTREINTE] {text}" if restricted else text,
                "flags": {k: v["value"] for k, v in doc["flags"].items() if isinstance(v, dict) and "value" in v},
                "problems": [p["message"] for p in doc["problems"]]}
    digest = hashlib.sha256(Path(csv_path).read_bytes()).hexdigest()[:10]
    batch = review_batch(candidacies, ctx, out_root=out_root, batch_name=f"{Path(csv_path).stem}-{digest}",
                         file_problems=file_problems)
    top = batch["summary"].head(10)
    text = [f"Lot {Path(csv_path).name} — release {ctx.release_id}{' [DONNÉES SYNTHÉTIQUES]' if ctx.synthetic else ''}: "
            f"{len(batch['results'])} candidature(s) examinée(s), {len(batch['rejected'])} rejetée(s), "
            f"{len(file_problems)} ligne(s) du fichier ignorée(s) ({batch['seconds']} s)"]
    for r in top.to_dict("records"):
        text.append(f"  {'' if pd.isna(r['rang']) else int(r['rang']):>3}  {r['candidature'][:50]:<50} {r['statut']}")
    return {"mode": "batch", "release_id": ctx.release_id, "synthetic": ctx.synthetic, "paths": batch["paths"],
            "reviewed": len(batch["results"]), "rejected": len(batch["rejected"]),
            "file_problems": [p.message for p in file_problems],
            "rejections": [{"name": r["candidacy"]["name"], "problems": [p["message"] for p in r["problems"]]}
                           for r in batch["rejected"]],
            "seconds": batch["seconds"], "text": "\n".join(text)}
