"""Static HTML report of one published release, readable offline.

:func:`build_report` reads the warehouse only (plus, optionally, a GeoJSON geometry and
the validation status files) and writes ``<reports_dir>/<release>/``:

| page | content |
|---|---|
| ``index.html`` | national overview: distribution of the composite, most difficult territories with their 90 % rank intervals, domain profiles, map |
| ``ti/<id>.html``, ``ze/<code>.html`` | one page per Territoire d'industrie and zone d'emploi: composite, domains, every indicator with its percentile, secrecy and reliability marks, trends |
| ``tableaux.html`` | sortable, filterable tables per level (région, département, phase) |
| ``evolutions.html`` | what changed since the previous release (rank, decile, flags, secrecy, reliability) |
| ``validation.html`` | validation status of the inputs |
| ``telechargements.html`` + ``downloads/`` | the exports of the release (XLSX, CSV, Parquet) |

Charts are drawn by Plotly and tables by Tabulator, both copied into ``static/`` (no CDN).
The site is built in a temporary folder and renamed into place; ``<reports_dir>/latest/``
redirects to the current release.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from .. import storage
from ..publish.tables import (
    COMPOSITE_COLUMNS,
    DOMAIN_LABELS_FR,
    DOMAIN_ORDER,
    LEVEL_LABELS_FR,
    LEVEL_SINGULAR_FR,
    REFERENCE_SET_LABELS_FR,
    SECRET_LABELS_FR,
    ReleaseData,
    composite_one_row,
    current_values,
    indicator_order,
    load_release,
    wide_table,
)
from ..sample.bootstrap import SYNTHETIC_BANNER
from . import alerts_page, charts
from .fmt import MISSING, fmt_int, fmt_number, fmt_pct01, fmt_rank, fmt_value, is_missing

log = logging.getLogger(__name__)

PAGE_LEVELS = ("ti", "ze")
TABLE_LEVELS = ("ti", "ze", "epci", "departement", "region")
TOP_SETS = ("ti_2023_2027", "ti_2018_2022", "ze", "epci")
TOP_N = 15
SYNTHETIC_TEXT = "DONNÉES SYNTHÉTIQUES : chiffres générés pour tester la chaîne, pas des statistiques officielles"
SYNTHETIC_TEXT_EN = SYNTHETIC_BANNER  # one banner: sample.bootstrap
STATIC_DIR = Path(__file__).parent / "static"
VENDORED_STATIC = ("tabulator.min.js", "tabulator_simple.min.css", "LICENSE-tabulator.txt", "report.css", "report.js",
                   "maps.js", "whatif.js")
NOT_AVAILABLE = "non disponible dans cette release"


def safe_name(code: str) -> str:
    """A territory code as a file name (codes are [0-9A-Z-] in practice; anything else -> _)."""
    return re.sub(r"[^0-9A-Za-z_-]", "_", str(code)) or "_"


def page_url(level: str, territory_id: str) -> str | None:
    return f"{level}/{safe_name(territory_id)}.html" if level in PAGE_LEVELS else None


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("territoires_industrie.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(value=fmt_value, num=fmt_number, int=fmt_int, pct01=fmt_pct01, rank=fmt_rank)
    env.globals.update(MISSING=MISSING, is_missing=is_missing)
    return env


def _records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-ready dicts (NA -> None, numpy -> Python)."""
    out = []
    for row in df.astype(object).where(df.notna(), None).to_dict("records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


# --- what the pages show ------------------------------------------------------------------------

class Names:
    """Names of départements and régions (from the release itself, else the COG 2023 list)."""

    def __init__(self, rd: ReleaseData):
        from ..labels import DEPARTEMENTS, REGIONS

        t = rd.territories
        self.dep = {**DEPARTEMENTS, **dict(zip(t.loc[t["level"] == "departement", "territory_id"],
                                               t.loc[t["level"] == "departement", "label"]))}
        self.reg = {**REGIONS, **dict(zip(t.loc[t["level"] == "region", "territory_id"],
                                          t.loc[t["level"] == "region", "label"]))}

    def dep_label(self, code) -> str | None:
        return None if is_missing(code) else f"{self.dep.get(code, '?')} ({code})"

    def reg_label(self, code) -> str | None:
        return None if is_missing(code) else f"{self.reg.get(code, '?')} ({code})"


def indicator_percentiles(rd: ReleaseData) -> pd.DataFrame:
    """Percentile (0-100) of each published value among the territories of the same level
    (and, for Territoires d'industrie, the same phase)."""
    cv = current_values(rd)
    cv = cv[cv["level"].isin(TABLE_LEVELS) & cv["value"].notna()]
    peers = rd.territories[["level", "territory_id", "ti_phase"]]
    cv = cv.merge(peers, on=["level", "territory_id"], how="left")
    cv["peer"] = cv["level"] + "|" + cv["ti_phase"].fillna("")
    cv["percentile"] = cv.groupby(["peer", "indicator_id"])["value"].rank(pct=True, method="average") * 100
    cv["n_peers"] = cv.groupby(["peer", "indicator_id"])["value"].transform("size")
    return cv[["level", "territory_id", "indicator_id", "percentile", "n_peers"]]


def compute_changes(rd: ReleaseData, prev: ReleaseData) -> pd.DataFrame:
    """Territories whose rank, decile or flags moved between ``prev`` and ``rd``.

    One row per level x territory x ranking set present in either release, with
    ``rank_delta = previous rank - current rank`` (positive: now ranked as more difficult),
    ``status`` (``both``, ``new``, ``removed``) and the indicators whose secrecy status or
    reliability flag changed."""
    keys = ["level", "territory_id", "reference_set"]
    cols = ["score", "rank_national", "n_reference", "decile", "uncertain", "gate_industrial"]
    cur = rd.composite.reindex(columns=keys + cols)
    old = prev.composite.reindex(columns=keys + cols)
    m = cur.merge(old, on=keys, how="outer", suffixes=("", "_prev"), indicator=True)
    m["status"] = m["_merge"].map({"both": "both", "left_only": "new", "right_only": "removed"}).astype("str")
    m = m.drop(columns="_merge")
    m["rank_delta"] = (m["rank_national_prev"].astype("Float64") - m["rank_national"].astype("Float64"))
    for c in ("decile", "uncertain", "gate_industrial"):
        a, b = m[c].astype(object), m[f"{c}_prev"].astype(object)
        m[f"{c}_changed"] = (m["status"] == "both") & ~((a == b) | (a.isna() & b.isna()))
    # secrecy / reliability changes per territory
    cv, pv = current_values(rd), current_values(prev)
    ck = ["level", "territory_id", "indicator_id"]
    flag_cols = [c for c in ("secret_status", "reliable") if c in cv.columns and c in pv.columns]
    if flag_cols:
        j = cv[ck + flag_cols].merge(pv[ck + flag_cols], on=ck, suffixes=("", "_prev"))
        lists = {}
        for c in flag_cols:
            a, b = j[c].astype(object), j[f"{c}_prev"].astype(object)
            ch = j[~((a == b) | (a.isna() & b.isna()))]
            text = ch["indicator_id"] + " (" + ch[f"{c}_prev"].astype(str) + " → " + ch[c].astype(str) + ")"
            lists[c] = text.groupby([ch["level"], ch["territory_id"]]).agg(", ".join)
        for c, name in (("secret_status", "secrecy_changes"), ("reliable", "reliability_changes")):
            s = lists.get(c)
            m[name] = ([s.get((lv, t)) for lv, t in zip(m["level"], m["territory_id"])] if s is not None
                       else None)
    else:
        m["secrecy_changes"] = None
        m["reliability_changes"] = None
    moved = ((m["status"] != "both") | m["rank_delta"].fillna(0).ne(0) | m["decile_changed"] | m["uncertain_changed"]
             | m["gate_industrial_changed"] | m["secrecy_changes"].notna() | m["reliability_changes"].notna())
    m["moved"] = moved.astype(bool)
    labels = pd.concat([prev.territories, rd.territories]).drop_duplicates(["level", "territory_id"], keep="last")
    m = m.merge(labels[["level", "territory_id", "label"]], on=["level", "territory_id"], how="left")
    m["abs_delta"] = m["rank_delta"].abs().fillna(0)
    return m.sort_values(["moved", "abs_delta", "level", "territory_id"], ascending=[False, False, True, True]) \
            .drop(columns="abs_delta").reset_index(drop=True)


def _validation(settings) -> dict | None:
    """``validation.latest_status`` when the validation package provides it."""
    if settings is None:
        return None
    try:
        from ..validation import latest_status
    except (ImportError, AttributeError):
        return None
    try:
        return latest_status(settings)
    except Exception as exc:  # a broken status file must not stop the report
        log.warning("validation status unreadable (%s): the report shows the release status only", exc)
        return None


SOURCE_STATE_FR = {"unchanged": "inchangée", "new vintage": "nouveau millésime", "contract drift": "rupture de contrat",
                   "unreachable": "injoignable", "not checked": "non contrôlée"}


def _sources(engine) -> list[dict]:
    """The latest daily source check (``source_status``; empty when none ran, e.g. sample mode)."""
    from ..source_status import latest_status

    try:
        return latest_status(engine)
    except Exception as exc:  # noqa: BLE001 - the report must not fail on an operational table
        log.warning("source status unreadable (%s): the report shows no Sources section", exc)
        return []


def _trend_points(hist_iv: pd.DataFrame, level: str, tid: str) -> list[dict]:
    """Levels at the start and end of each period, from the counts behind change indicators
    (numerator = t1 - t0, denominator = t0), over every release kept."""
    specs = (("jobs_ind_change_5y", "Emplois salariés industriels (URSSAF)", "emplois"),
             ("d1_population_decline", "Population (recensement)", "habitants"),
             ("d2_employment_decline", "Emploi total au lieu de travail (recensement)", "emplois"))
    h = hist_iv[(hist_iv["level"] == level) & (hist_iv["territory_id"] == tid)]
    out = []
    for ind, title, unit in specs:
        rows = h[(h["indicator_id"] == ind) & h["numerator"].notna() & h["denominator"].notna()]
        pts: dict[str, float] = {}
        for r in rows.sort_values("release_id").itertuples():
            years = re.findall(r"\d{4}", str(r.period))
            if len(years) != 2:
                continue
            pts[years[0]] = float(r.denominator)
            pts[years[1]] = float(r.denominator + r.numerator)
        if len(pts) >= 2:
            out.append({"title": title, "unit": unit, "points": sorted(pts.items())})
    return out


# --- build ---------------------------------------------------------------------------------------

def _site_meta(rd: ReleaseData, releases: pd.DataFrame, validation: dict | None) -> dict:
    overall = None
    if validation:
        try:
            from ..validation import overall_status

            overall = overall_status(validation)
        except (ImportError, AttributeError):
            overall = None
    m = rd.meta
    return {
        "release_id": rd.release_id, "synthetic": rd.synthetic, "synthetic_text": SYNTHETIC_TEXT,
        "synthetic_text_en": SYNTHETIC_TEXT_EN, "pipeline_version": m.get("pipeline_version"),
        "source_vintages": m.get("source_vintages") or {}, "validation_status": m.get("validation_status"),
        "validation_overall": overall, "releases": list(releases["release_id"]),
    }


def _write_static(site: Path) -> None:
    from plotly.offline import get_plotlyjs

    static = site / "static"
    static.mkdir(parents=True, exist_ok=True)
    for name in VENDORED_STATIC:
        shutil.copyfile(STATIC_DIR / name, static / name)
    (static / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
    lic = None
    try:
        from importlib.metadata import distribution

        dist = distribution("plotly")
        lic = next((f for f in (dist.files or []) if f.name.upper().startswith("LICENSE")), None)
        lic = dist.locate_file(lic) if lic else None
    except Exception:  # licence file missing from the installed metadata: say where it comes from
        lic = None
    text = Path(lic).read_text(encoding="utf-8") if lic and Path(lic).exists() else \
        "plotly.js — MIT License — Copyright (c) Plotly, Inc. (https://github.com/plotly/plotly.js)\n"
    (static / "LICENSE-plotly.txt").write_text(text, encoding="utf-8")


def _downloads(rd: ReleaseData, site: Path, exports_dir: Path | None) -> list[dict]:
    from ..publish.exports import build_exports, export_names, exports_complete, read_manifest

    dest = site / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    if exports_dir is not None and exports_complete(exports_dir, rd.release_id):
        manifest = read_manifest(exports_dir)
        for name in [*manifest["files"], "MANIFEST.json"]:
            shutil.copyfile(Path(exports_dir) / name, dest / name)
    else:
        build_exports(rd, dest)
        manifest = read_manifest(dest)
    names = export_names(rd.release_id, rd.synthetic)
    describe = {
        names["xlsx"]: "Classeur Excel : une feuille par niveau (communes incluses), « Lisez-moi » et « Dictionnaire ».",
        names["csv_fr"]: "CSV pour Excel en français : séparateur « ; », virgule décimale, en-têtes en français "
                         "(tous niveaux sauf communes).",
        names["csv"]: "CSV standard : séparateur « , », point décimal, noms de colonnes techniques (tous niveaux "
                      "sauf communes).",
        names["parquet"]: "Parquet : le même tableau, tous niveaux (communes incluses).",
        names["long_parquet"]: "Parquet long : une ligne par territoire x indicateur x période, avec statut de "
                               "secret, fiabilité, valeur brute et poids de lissage.",
    }
    files = []
    for name, entry in sorted(manifest["files"].items(), key=lambda kv: list(describe).index(kv[0])
                              if kv[0] in describe else 99):
        files.append({"name": name, "href": f"downloads/{name}", "bytes": entry["bytes"],
                      "size": fmt_number(entry["bytes"] / 1e6, 1) + "\u00a0Mo" if entry["bytes"] >= 1e5
                      else fmt_number(entry["bytes"] / 1e3, 0) + "\u00a0ko",
                      "sha256": entry["sha256"], "description": describe.get(name, "")})
    return files


def _table_spec(level: str, wide: pd.DataFrame, rd: ReleaseData, names: Names) -> dict:
    dic = rd.indicator_dictionary.set_index("indicator_id")
    w = wide[wide["level"] == level].copy()
    w["url"] = [page_url(level, t) for t in w["territory_id"]]
    w["departement"] = [names.dep_label(d) for d in w["departement"]]
    w["region"] = [names.reg_label(r) for r in w["region"]]
    for c in ("uncertain", "gate_industrial"):
        if c in w.columns:
            w[c] = w[c].map({True: "oui", False: "non"})
    link = level in PAGE_LEVELS
    cols = [
        {"field": "territory_id", "title": "Code", "type": "link" if link else "text", "url_field": "url",
         "frozen": True},
        {"field": "label", "title": "Territoire", "type": "link" if link else "text", "url_field": "url",
         "frozen": True},
        {"field": "departement", "title": "Département", "filter": "list"},
        {"field": "region", "title": "Région", "filter": "list"},
    ]
    if level == "ti":
        cols.append({"field": "ti_phase", "title": "Phase", "filter": "list"})
    cols.append({"field": "population", "title": "Population", "type": "number", "decimals": 0})
    if "score" in w.columns and w["score"].notna().any():
        cols += [
            {"field": "score", "title": "Indice composite", "type": "number", "decimals": 1,
             "tooltip": COMPOSITE_COLUMNS["score"][0]},
            {"field": "rank_national", "title": "Rang", "type": "number", "decimals": 0,
             "tooltip": COMPOSITE_COLUMNS["rank_national"][0]},
            {"field": "mc_rank_p05", "title": "Rang P5", "type": "number", "decimals": 0,
             "tooltip": COMPOSITE_COLUMNS["mc_rank_p05"][0]},
            {"field": "mc_rank_p95", "title": "Rang P95", "type": "number", "decimals": 0,
             "tooltip": COMPOSITE_COLUMNS["mc_rank_p95"][0]},
            {"field": "decile", "title": "Décile", "type": "number", "decimals": 0},
            {"field": "uncertain", "title": "Incertain", "filter": "list"},
            {"field": "gate_industrial", "title": "Industriel", "filter": "list"},
            *[{"field": f"domain_{d}", "title": f"Domaine {d.upper()}", "type": "number", "decimals": 0,
               "tooltip": COMPOSITE_COLUMNS[f"domain_{d}"][0]} for d in "abcd" if f"domain_{d}" in w.columns],
        ]
    for ind in indicator_order(rd):
        if ind not in w.columns or any(c["field"] == ind for c in cols):  # ``population``: already there
            continue
        unit = dic.at[ind, "unit"] if ind in dic.index else ""
        title = dic.at[ind, "label_fr"] if ind in dic.index else ind
        cols.append({"field": ind, "title": f"{title} ({unit})" if unit else title, "type": "number",
                     "decimals": {"%": 1, "% sur 3 ans": 1, "points": 1, "ratio": 2}.get(unit, 0),
                     "definition": f"methode.html#ind-{ind}"})
    if "secret_indicators" in w.columns:
        cols.append({"field": "secret_indicators", "title": "Sous secret"})
    fields = {c["field"] for c in cols} | {"url"}
    sort = [{"column": "rank_national", "dir": "asc"}] if "score" in w.columns and w["score"].notna().any() \
        else [{"column": "label", "dir": "asc"}]
    return {"level": level, "title": LEVEL_LABELS_FR.get(level, level), "n": len(w), "columns": cols,
            "data": _records(w[[c for c in w.columns if c in fields]]), "initialSort": sort}


def _territory_context(level: str, trow: dict, rd: ReleaseData, ctx: dict) -> dict:
    tid = trow["territory_id"]
    names: Names = ctx["names"]
    comp = ctx["comp_by_key"].get((level, tid))
    set_label = REFERENCE_SET_LABELS_FR.get(comp["reference_set"], comp["reference_set"]) if comp else None
    charts_ = {}
    if comp:
        med = ctx["set_medians"].get(comp["reference_set"], {})
        charts_["domains"] = charts.to_json(charts.territory_domains(comp, med, set_label))
    hist = ctx["hist_comp"]
    if comp is not None and not hist.empty:
        h = hist[(hist["level"] == level) & (hist["territory_id"] == tid) & (hist["reference_set"] == comp["reference_set"])]
        if len(h):
            charts_["history"] = charts.to_json(charts.score_history(h))
    trends = _trend_points(ctx["hist_iv"], level, tid)
    if trends:
        charts_["levels"] = charts.to_json(charts.level_trends(trends))
    # indicators grouped by domain
    cv = ctx["cv_by_territory"].get((level, tid), pd.DataFrame())
    pct = ctx["pct_by_key"]
    dic = ctx["dic"]
    groups = []
    has_domain = "domain" in dic.columns and dic["domain"].notna().any()
    for dom in (DOMAIN_ORDER if has_domain else ("",)):
        rows = []
        for ind in ctx["ind_order"]:
            if ind not in dic.index or (has_domain and dic.at[ind, "domain"] != dom):
                continue
            r = cv.get(ind)
            if r is None:
                continue
            unit = r.get("unit") or dic.at[ind, "unit"]
            status = r.get("secret_status")
            p = pct.get((level, tid, ind))
            weight = r.get("shrink_weight")
            shrunk = not is_missing(weight) and float(weight) < 0.999 and not is_missing(r.get("value_raw"))
            rows.append({
                "id": ind, "label": dic.at[ind, "label_fr"], "value": fmt_value(r.get("value"), unit),
                "period": r.get("period"), "percentile": None if p is None else fmt_number(p[0], 0),
                "n_peers": None if p is None else p[1],
                "raw": fmt_value(r.get("value_raw"), unit) if shrunk else None,
                "weight": fmt_number(weight, 2) if shrunk else None,
                "secret": None if is_missing(status) or status == "V" else status,
                "secret_label": SECRET_LABELS_FR.get(status, status) if not is_missing(status) else None,
                "unreliable": not is_missing(r.get("reliable")) and not bool(r.get("reliable")),
                "direction": r.get("direction"),
                "reliability_min": dic.at[ind, "reliability_min"] if "reliability_min" in dic.columns else None,
            })
        if rows:
            groups.append({"domain": dom, "label": DOMAIN_LABELS_FR.get(dom, "Indicateurs"), "rows": rows})
    badges = []
    if comp:
        if comp.get("uncertain"):
            badges.append(("uncertain", "classement incertain"))
        if comp.get("gate_industrial") is True:
            badges.append(("ok", "territoire industriel"))
        elif comp.get("gate_industrial") is False:
            badges.append(("info", "territoire peu industriel (porte non franchie)"))
    n_secret = sum(1 for g in groups for r in g["rows"] if r["secret"])
    n_unrel = sum(1 for g in groups for r in g["rows"] if r["unreliable"])
    return {
        "t": {**trow, "departement_label": names.dep_label(trow.get("departement")),
              "region_label": names.reg_label(trow.get("region")), "level_label": LEVEL_SINGULAR_FR.get(level, level)},
        "comp": comp, "set_label": set_label, "charts": charts_, "groups": groups, "badges": badges,
        "n_secret": n_secret, "n_unreliable": n_unrel, "peer_label": LEVEL_LABELS_FR.get(level, level).lower(),
        "has_flags": rd.has_columns("indicator_values", "secret_status"),
        "n_releases": len(ctx["site"]["releases"]),
        "local_map": _local_map(level, tid, ctx),
        "since_stock": ctx.get("since_stock", {}).get((level, tid)),
    }


METHOD_SOURCES = (("geography", "Géographie (COG de référence)"), ("sirene_stock", "Stock SIRENE des établissements"),
                  ("sirene_history", "Historique SIRENE des établissements"),
                  ("urssaf", "Emploi salarié privé URSSAF (dernière année)"),
                  ("chomage_ze", "Taux de chômage localisés par zone d'emploi (dernier trimestre)"),
                  ("census", "Recensement de la population (dernière année)"))
DOMAIN_INTRO_FR = {
    "A": "Le recul de l'emploi industriel et ce qui l'explique : la tendance nationale, la spécialisation sectorielle "
         "du territoire, ou le territoire lui-même.",
    "B": "L'érosion du tissu d'établissements industriels, souvent visible avant les pertes d'emplois.",
    "C": "« Plus loin de l'emploi » : le chômage, le non-emploi des 25-54 ans et leur dégradation récente.",
    "D": "Le déclin d'ensemble du territoire : population et emploi tous secteurs.",
    "G": "Les portes : elles disent si le territoire est industriel ; elles ne comptent pas dans l'indice.",
    "X": "Effectifs et repères publiés à côté des indicateurs, non comptés dans l'indice.",
}


def _method_context(rd: ReleaseData) -> dict:
    """The "Méthode" page: definitions from the release's data dictionary (the same rows as the
    exports), the French "why" of :data:`indicators.definitions.WHY_FR`, the release's weights."""
    from ..indicators.composite import DEFAULT_WEIGHTS
    from ..indicators.definitions import WHY_FR
    from ..indicators.secrecy import DOMINANCE_SHARE, FREQUENCY_THRESHOLD

    weights = rd.meta.get("weights") or DEFAULT_WEIGHTS
    dic = _records(rd.indicator_dictionary)
    domains = []
    for code in DOMAIN_ORDER:
        rows = [{**d, "why": WHY_FR.get(d["indicator_id"], "")} for d in dic if d.get("domain") == code]
        if rows:
            w = weights.get(code)
            domains.append({"code": code, "label": DOMAIN_LABELS_FR.get(code, code), "intro": DOMAIN_INTRO_FR.get(code),
                            "weight": None if w is None else 100 * float(w), "indicators": rows})
    return {"domains": domains, "weights": [(d, 100 * float(w)) for d, w in sorted(weights.items())],
            "mc_draws": rd.meta.get("mc_draws") or 1000, "frequency_threshold": FREQUENCY_THRESHOLD,
            "dominance_pct": round(100 * DOMINANCE_SHARE), "source_labels": METHOD_SOURCES}


WHATIF_SETS = ("ti_2023_2027", "ti_2018_2022", "ze", "epci", "departement")


def _whatif_context(rd: ReleaseData, terr: pd.DataFrame) -> dict | None:
    """The inputs of the "Vos choix" panel: per reference set, the published domain scores,
    région, official gate and gate indicators of every territory (``indicators.whatif.inputs``)."""
    import json

    from ..indicators import whatif

    if rd.composite.empty:
        return None
    cv = current_values(rd)
    labels = dict(zip(zip(terr["level"], terr["territory_id"]), terr["label"]))
    sets = {}
    for rs in WHATIF_SETS:
        inp = whatif.inputs(rd.composite, cv, rs)
        if inp.empty:
            continue
        inp["label"] = [labels.get((lv, t), t) for lv, t in zip(inp["level"], inp["territory_id"])]
        rows = inp[[c for c in whatif.INPUT_COLUMNS if c in inp.columns]]
        sets[rs] = {"label": REFERENCE_SET_LABELS_FR.get(rs, rs), "rows": json.loads(rows.to_json(orient="records"))}
    if not sets:
        return None
    default = "ti_2023_2027" if "ti_2023_2027" in sets else next(iter(sets))
    data = {"release": rd.release_id, "synthetic": bool(rd.synthetic), "official": whatif.OFFICIAL,
            "default_set": default, "sets": sets}
    return {"json": json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
            "sets_order": [(k, v["label"]) for k, v in sets.items()], "default_set": default,
            "official": whatif.OFFICIAL, "domains": [(d, DOMAIN_LABELS_FR.get(d, d)) for d in "ABCD"]}


def _local_map(level: str, tid: str, ctx: dict) -> dict | None:
    from . import maps

    if level not in ("ze", "ti") or not ctx.get("geos") or ctx.get("map_rows") is None or ctx["map_rows"].empty:
        return None
    return maps.local(ctx["geos"], level, tid, ctx["map_rows"])


def build_report(engine, reports_dir: Path, release_id: str | None = None, *, settings=None,
                 geometry_dir: Path | None = None, exports_dir: Path | None = None,
                 update_latest: bool | None = None, staged: ReleaseData | None = None,
                 dest: Path | None = None) -> dict:
    """Build the site of ``release_id`` (the current release by default) from the warehouse.

    ``exports_dir``: folder holding this release's exports (copied into ``downloads/`` when
    complete, else rebuilt from the warehouse). ``staged``: a release still being built
    (:func:`load_release` with ``staged_key``), shown as if it were published: its own rows
    replace any earlier publication of the same period in the history. ``dest``: write the
    finished site to this new folder instead of swapping it into ``<reports_dir>/<release>``
    (the publication switches it in later). Returns {release_id, path, index, pages, ...}."""
    from .. import warehouse

    t0 = time.perf_counter()
    rd = staged if staged is not None else load_release(engine, release_id)
    current = warehouse.current_release_id(engine)
    if update_latest is None:
        update_latest = rd.release_id == current and dest is None
    releases, hist_comp, hist_iv = _history(engine, rd, staged)
    prev_id = warehouse.previous_release_id(engine, rd.release_id)
    prev = load_release(engine, prev_id) if prev_id else None
    validation = _validation(settings)
    names = Names(rd)
    env = _env()
    site_meta = _site_meta(rd, releases, validation)
    wide = wide_table(rd, [lv for lv in TABLE_LEVELS if lv in rd.levels])
    terr, comp1, ctx = _page_context(rd, names, site_meta, hist_comp, hist_iv)
    has_composite = not comp1.empty

    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{safe_name(rd.release_id)}-", dir=reports_dir))
    try:
        _write_static(tmp)
        downloads = _downloads(rd, tmp, exports_dir)

        def render(name: str, template: str, root: str = "", **kw) -> None:
            html = env.get_template(template).render(site=site_meta, root=root, page=name, **kw)
            out = tmp / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(html, encoding="utf-8")

        geos, overview_map = _maps(terr, rd, settings, geometry_dir)
        ctx["geos"], ctx["map_rows"] = geos, map_rows(rd, terr)
        alert_signals = alerts_page.read_signals(engine)  # read once: the Alertes page and every territory page
        ctx["since_stock"] = alerts_page.since_stock_rows(alert_signals)
        n_pages, page_lists = _territory_pages(render, terr, rd, ctx)
        t_pages = time.perf_counter()

        # national overview
        index_charts, tops = _overview(comp1)
        whatif_ctx = _whatif_context(rd, terr)
        counts = terr.groupby("level").size().to_dict()
        render("index.html", "index.html", charts=index_charts, tops=tops, overview_map=overview_map, counts=counts,
               levels=[(lv, LEVEL_LABELS_FR.get(lv, lv), counts.get(lv, 0)) for lv in rd.levels],
               page_lists=page_lists, has_composite=has_composite, dictionary=_records(rd.indicator_dictionary),
               domain_labels=DOMAIN_LABELS_FR, geometry_missing=[lv for lv in ("epci", "ze") if lv not in geos],
               whatif=whatif_ctx)

        _other_pages(render, rd, prev, wide, names, releases, validation, engine, downloads, whatif_ctx, alert_signals)
        final = _put_in_place(tmp, reports_dir, rd.release_id, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if update_latest:
        write_latest(reports_dir, final.name)
    elapsed = time.perf_counter() - t0
    log.info("report %s: %d territory pages in %.1fs (%.0f pages/s), site built in %.1fs -> %s", rd.release_id,
             n_pages, t_pages - t0, n_pages / max(t_pages - t0, 1e-9), elapsed, final / "index.html")
    return {"release_id": rd.release_id, "path": str(final), "index": str(final / "index.html"), "pages": n_pages,
            "previous_release": prev_id, "maps": [m["set"] for m in (overview_map or {}).get("sets", [])], "seconds": round(elapsed, 2),
            "latest": str(reports_dir / "latest" / "index.html") if update_latest else None}


def _other_pages(render, rd: ReleaseData, prev, wide: pd.DataFrame, names, releases: pd.DataFrame,
                 validation: dict | None, engine, downloads: list[dict], whatif: dict | None = None,
                 alert_signals: pd.DataFrame | None = None) -> None:
    """Tables (with the "Vos choix" panel), changes since the previous release, validation and
    sources, downloads, method."""
    specs = [_table_spec(lv, wide, rd, names) for lv in TABLE_LEVELS if lv in rd.levels]
    render("tableaux.html", "tables.html", tables=[{**s, "json": charts.to_json(s)} for s in specs], whatif=whatif)
    changes = _changes(rd, prev) if prev is not None else None
    render("evolutions.html", "changes.html", changes=changes, has_composite=not rd.composite.empty)
    render("validation.html", "validation.html", releases=_release_rows(releases),
           datasets=list((validation or {}).values()), validation_available=validation is not None,
           sources=_sources(engine), state_labels=SOURCE_STATE_FR)
    render("telechargements.html", "downloads.html", files=downloads)
    render("methode.html", "methode.html", **_method_context(rd))
    known = set(zip(rd.territories["level"], rd.territories["territory_id"]))
    sig = alerts_page.read_signals(engine) if alert_signals is None else alert_signals
    render("alertes.html", "alertes.html", alerts_ctx=alerts_page.context(
        engine, sig, rd.composite, rd.territories, lambda lv, t: page_url(lv, t) if (lv, t) in known else None))


def _release_rows(releases: pd.DataFrame) -> list[dict]:
    """Releases listed on the validation page, newest first."""
    return _records(releases[["release_id", "pipeline_version", "synthetic", "validation_status",
                              "n_indicator_values"]].sort_values("release_id", ascending=False))


def _territory_pages(render, terr: pd.DataFrame, rd: ReleaseData, ctx: dict) -> tuple[int, dict]:
    """One page per territory of the page levels; returns (pages written, lists for the index)."""
    n_pages = 0
    page_lists = {}
    for level in PAGE_LEVELS:
        rows = terr[terr["level"] == level].sort_values("label")
        page_lists[level] = _records(rows[["territory_id", "label", "url", "ti_phase", "departement"]])
        for trow in _records(rows):
            render(trow["url"], "territory.html", root="../", **_territory_context(level, trow, rd, ctx))
            n_pages += 1
    return n_pages, page_lists


def _history(engine, rd: ReleaseData, staged: ReleaseData | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Releases listed, composite and change-indicator history up to this release (a staged
    release takes the place of any earlier publication of its period)."""
    from .. import warehouse

    releases = warehouse.list_releases(engine)
    releases = releases[releases["release_id"] < rd.release_id] if staged is not None else \
        releases[releases["release_id"] <= rd.release_id]
    hist_comp = warehouse.read_history(engine, "composite", levels=PAGE_LEVELS)
    hist_iv = warehouse.read_history(engine, "indicator_values", levels=PAGE_LEVELS,
                                     columns=("value", "numerator", "denominator"))
    if staged is not None:  # the release being built, in place of any earlier publication of its period
        releases = pd.concat([releases, warehouse.read_release_row(staged.meta)], ignore_index=True)
        hist_comp = pd.concat([hist_comp[hist_comp["release_id"] < rd.release_id],
                               rd.composite[rd.composite["level"].isin(PAGE_LEVELS)][list(hist_comp.columns)]],
                              ignore_index=True)
        hist_iv = pd.concat([hist_iv[hist_iv["release_id"] < rd.release_id],
                             rd.indicator_values[rd.indicator_values["level"].isin(PAGE_LEVELS)][list(hist_iv.columns)]],
                            ignore_index=True)
    hist_comp = hist_comp[hist_comp["release_id"] <= rd.release_id]
    hist_iv = hist_iv[(hist_iv["release_id"] <= rd.release_id)
                      & hist_iv["indicator_id"].isin(["jobs_ind_change_5y", "d1_population_decline",
                                                      "d2_employment_decline"])]
    return releases, hist_comp, hist_iv


def _page_context(rd: ReleaseData, names, site_meta: dict, hist_comp: pd.DataFrame,
                  hist_iv: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Territories with their page URL, the composite (one row per territory and set) and the
    lookups every territory page reads."""
    comp1 = composite_one_row(rd)
    has_composite = not comp1.empty
    terr = rd.territories.copy()
    terr["url"] = [page_url(lv, t) for lv, t in zip(terr["level"], terr["territory_id"])]
    if has_composite:
        comp1 = comp1.merge(terr[["level", "territory_id", "label", "url"]], on=["level", "territory_id"], how="left")
    comp_by_key = {(r["level"], r["territory_id"]): r for r in _records(comp1)} if has_composite else {}
    set_medians = ({rs: g[[f"domain_{d}" for d in "abcd"]].median().to_dict()
                    for rs, g in rd.composite.groupby("reference_set")} if has_composite else {})
    cv = current_values(rd)
    cv = cv[cv["level"].isin(PAGE_LEVELS)]
    cv_by_territory: dict = {}
    for (lv, tid), g in cv.groupby(["level", "territory_id"], sort=False):
        cv_by_territory[(lv, tid)] = {r["indicator_id"]: r for r in _records(g)}
    pct = indicator_percentiles(rd)
    pct_by_key = {(a, b, c): (p, n) for a, b, c, p, n in pct.itertuples(index=False, name=None)}
    ctx = {"names": names, "comp_by_key": comp_by_key, "set_medians": set_medians, "hist_comp": hist_comp,
           "hist_iv": hist_iv, "cv_by_territory": cv_by_territory, "pct_by_key": pct_by_key,
           "dic": rd.indicator_dictionary.set_index("indicator_id"), "ind_order": indicator_order(rd),
           "site": site_meta}
    return terr, comp1, ctx


def _overview(comp1: pd.DataFrame) -> tuple[dict, list]:
    """Charts of the national overview: distribution of the composite, top territories per set."""
    index_charts, tops = {}, []
    if comp1.empty:
        return index_charts, tops
    index_charts["distribution"] = charts.to_json(charts.composite_distribution(
        comp1.sort_values("reference_set", key=lambda s: s.map(
            {k: i for i, k in enumerate(REFERENCE_SET_LABELS_FR)}).fillna(99)), REFERENCE_SET_LABELS_FR))
    for rs in TOP_SETS:
        g = comp1[comp1["reference_set"] == rs]
        if g.empty:
            continue
        top = g.nsmallest(TOP_N, "rank_national")
        tops.append({"set": rs, "label": REFERENCE_SET_LABELS_FR.get(rs, rs), "n": int(len(g)),
                     "rows": _records(top), "chart": charts.to_json(charts.top_intervals(top)),
                     "heatmap": charts.to_json(charts.domain_heatmap(top))})
    return index_charts, tops


def _maps(terr: pd.DataFrame, rd: ReleaseData, settings, geometry_dir) -> tuple[dict, dict | None]:
    """The geometries found (EPCI, zones d'emploi, départements, TI) and the overview map."""
    from . import maps
    from .geometry import load_geometries

    geos = load_geometries({lv: set(terr.loc[terr["level"] == lv, "territory_id"]) for lv in maps.GEOMETRY_LEVELS},
                           settings=settings, geometry_dir=geometry_dir)
    comp = map_rows(rd, terr)
    return geos, (maps.overview(geos, comp) if geos else None)


def map_rows(rd: ReleaseData, terr: pd.DataFrame) -> pd.DataFrame:
    """The composite of every reference set with each territory's label and page URL."""
    if rd.composite.empty:
        return rd.composite
    return rd.composite.merge(terr[["level", "territory_id", "label", "url"]], on=["level", "territory_id"], how="left")


def _changes(rd: ReleaseData, prev: ReleaseData) -> dict:
    """The "Évolutions" page: territories whose rank, decile, flags, secrecy or reliability moved."""
    ch = compute_changes(rd, prev)
    moved = ch[ch["moved"]].copy()
    moved["url"] = [page_url(lv, t) for lv, t in zip(moved["level"], moved["territory_id"])]
    moved["set_label"] = moved["reference_set"].map(lambda s: REFERENCE_SET_LABELS_FR.get(s, s))
    spec = {"columns": [
        {"field": "label", "title": "Territoire", "type": "link", "url_field": "url", "frozen": True},
        {"field": "territory_id", "title": "Code"},
        {"field": "set_label", "title": "Ensemble", "filter": "list"},
        {"field": "status", "title": "Statut", "filter": "list"},
        {"field": "rank_national_prev", "title": f"Rang {prev.release_id}", "type": "number"},
        {"field": "rank_national", "title": f"Rang {rd.release_id}", "type": "number"},
        {"field": "rank_delta", "title": "Gain de rang (+ = plus en difficulté)", "type": "number"},
        {"field": "score_prev", "title": f"Indice {prev.release_id}", "type": "number", "decimals": 1},
        {"field": "score", "title": f"Indice {rd.release_id}", "type": "number", "decimals": 1},
        {"field": "decile_prev", "title": "Décile avant", "type": "number"},
        {"field": "decile", "title": "Décile", "type": "number"},
        {"field": "flags", "title": "Indicateurs changés"},
        {"field": "secrecy_changes", "title": "Secret (avant → après)"},
        {"field": "reliability_changes", "title": "Fiabilité (avant → après)"},
    ], "initialSort": [], "height": "520px"}
    flags = []
    for r in moved.itertuples():
        f = []
        if r.uncertain_changed:
            f.append(f"incertain : {_yn(r.uncertain_prev)} → {_yn(r.uncertain)}")
        if r.gate_industrial_changed:
            f.append(f"industriel : {_yn(r.gate_industrial_prev)} → {_yn(r.gate_industrial)}")
        flags.append("; ".join(f) or None)
    moved["flags"] = flags
    moved["status"] = moved["status"].map({"both": "présent aux deux", "new": "nouveau", "removed": "retiré"})
    fields = [c["field"] for c in spec["columns"]] + ["url"]
    spec["data"] = _records(moved[fields])
    return {"previous": prev.release_id, "n_compared": int((ch["status"] == "both").sum()),
            "n_moved": int(len(moved)), "n_rank": int(ch["rank_delta"].fillna(0).ne(0).sum()),
            "n_decile": int(ch["decile_changed"].sum()),
            "n_flags": int((ch["uncertain_changed"] | ch["gate_industrial_changed"]).sum()),
            "n_secrecy": int(ch["secrecy_changes"].notna().sum()),
            "n_reliability": int(ch["reliability_changes"].notna().sum()),
            "n_new": int((ch["status"] == "new").sum()), "n_removed": int((ch["status"] == "removed").sum()),
            "json": charts.to_json(spec)}


def _put_in_place(tmp: Path, reports_dir: Path, release_id: str, dest: Path | None) -> Path:
    """Readable permissions, then the finished site moved to ``dest`` (a new folder) or swapped
    into ``<reports_dir>/<release>``."""
    for d in [tmp, *[p for p in tmp.rglob("*") if p.is_dir()]]:
        os.chmod(d, 0o755)
    for p in tmp.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)
    if dest is not None:
        final = Path(dest)
        os.replace(tmp, final)
    else:
        final = reports_dir / safe_name(release_id)
        _swap_into_place(tmp, final)
    return final


def _yn(v) -> str:
    return MISSING if is_missing(v) else ("oui" if bool(v) else "non")


_swap_into_place = storage.swap_dir_into_place


def write_latest(reports_dir: Path, folder: str) -> None:
    """``<reports_dir>/latest/index.html``: a redirect to ``<folder>/index.html`` (one atomic write)."""
    html = (f'<!doctype html><html lang="fr"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url=../{folder}/index.html">'
            f'<title>Dernière release : {folder}</title></head><body>'
            f'<p><a href="../{folder}/index.html">Rapport de la dernière release ({folder})</a></p></body></html>\n')
    dest = reports_dir / "latest" / "index.html"
    storage.atomic_write_text(dest, html)
    os.chmod(dest, 0o644)
    os.chmod(dest.parent, 0o755)
