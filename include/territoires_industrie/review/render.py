"""Outputs of a review: a one-page HTML (A4, printable on one or two pages), the JSON document,
and the candidacy as one CSV row and one XLSX row — each stamped with the release and the
source vintages. Batch: a summary table ranking the candidacies (CSV, XLSX, HTML, JSON).

Every label coming from data (candidacy name, territory labels, codes) is HTML-escaped by
Jinja's autoescape; in CSV/XLSX, text cells that a spreadsheet would read as a formula
(starting with ``=``, ``+``, ``-``, ``@``) are prefixed with ``'``. No timestamp is written:
the same review of the same release gives the same bytes.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd

from .. import storage
from ..storage import jsonable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SETS = ("ti_2023_2027", "ze", "epci")
FLAG_KEYS = (("gate_industrial", "porte_industrielle"), ("in_difficulty", "en_difficulte"),
             ("robustly_in_difficulty", "robustement_en_difficulte"), ("far_from_employment", "plus_loin_de_l_emploi"),
             ("ze_coherence", "coherence_zone_emploi"), ("epci_cap", "au_plus_4_epci"), ("contiguity", "contigu"))
FLAG_LABELS_FR = {"gate_industrial": "Territoire industriel (porte)", "in_difficulty": "En difficulté",
                  "robustly_in_difficulty": "Robustement en difficulté",
                  "far_from_employment": "Plus loin de l'emploi", "ze_coherence": "Cohérence de bassin d'emploi",
                  "epci_cap": "Au plus 4 EPCI", "contiguity": "Contiguïté"}


def safe_text(v):
    """A text cell a spreadsheet will not evaluate."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    from ..report.fmt import MISSING, fmt_int, fmt_number, fmt_pct01, fmt_value, is_missing

    env = Environment(loader=PackageLoader("territoires_industrie.review", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def pct(v, decimals=0):
        return MISSING if is_missing(v) else fmt_number(v, decimals)

    def share(v, decimals=1):
        return MISSING if is_missing(v) else f"{fmt_number(100 * float(v), decimals)}\u00a0%"

    def yn(v):
        return "?" if v is None else ("oui" if v else "non")

    def yn_class(v):
        return "unknown" if v is None else ("yes" if v else "no")

    env.filters.update(value=fmt_value, num=fmt_number, int=fmt_int, pct01=fmt_pct01, pct=pct, share=share, yn=yn,
                       yn_class=yn_class)
    env.globals.update(MISSING=MISSING, is_missing=is_missing)
    return env


_ENV = None


def env():
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV


WHATIF_JS = Path(__file__).resolve().parents[1] / "report" / "static" / "whatif.js"


def render_html(doc: dict, candidacy_map: dict | None = None, whatif: dict | None = None) -> str:
    from .vocabulary import DOMAIN_LABELS_FR, SECRET_FR

    comp = {c["reference_set"]: c for c in doc["composite"]}
    return env().get_template("review.html").render(
        doc=doc, comp=comp, sets=[s for s in SETS if s in comp], flag_labels=FLAG_LABELS_FR,
        domain_labels=DOMAIN_LABELS_FR, secret_fr=SECRET_FR, candidacy_map=candidacy_map, whatif=whatif,
        whatif_js=WHATIF_JS.read_text(encoding="utf-8") if whatif else "",
        vintages=sorted((doc["release"]["source_vintages"] or {}).items()))


def whatif_data(doc: dict, composite: pd.DataFrame) -> dict | None:
    """The review's "Vos choix" panel: the candidacy's published domain scores and domain
    percentiles in each reference set, and the set's published domain scores and régions
    (public: the composite table of the release). ``indicators.whatif.place_group`` is the
    reference implementation of what the page computes."""
    from ..indicators import whatif
    from .vocabulary import DOMAIN_LABELS_FR

    gate = (doc.get("flags") or {}).get("gate_industrial") or {}
    observed = gate.get("observed") or {}
    sets = {}
    for c in doc["composite"]:
        rs = c["reference_set"]
        ref = composite[composite["reference_set"] == rs]
        ref = ref[["region", "domain_a", "domain_b", "domain_c", "domain_d"]].astype({"region": str})
        group = {**{f"domain_{d}": c.get(f"domain_{d}") for d in "abcd"}, "region": None if c.get("region") is None
                 else str(c["region"]), "domain_pct": c.get("domain_pct") or {}, "ind_lq": observed.get("ind_lq"),
                 "jobs_ind": observed.get("jobs_ind"), "gate_official": gate.get("value")}
        sets[rs] = {"label": c.get("label") or rs, "group": group,
                    "reference": json.loads(ref.to_json(orient="records"))}
    if not sets:
        return None
    data = {"official": whatif.OFFICIAL, "order": [s for s in SETS if s in sets] + [s for s in sets if s not in SETS],
            "sets": sets}
    return {"json": json.dumps(jsonable(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            .replace("</", "<\\/"), "official": whatif.OFFICIAL, "domains": [(d, DOMAIN_LABELS_FR.get(d, d)) for d in "ABCD"]}


_GEOS: dict = {}


def candidacy_map(doc: dict, composite: pd.DataFrame, settings=None) -> dict | None:
    """The small map of the candidacy (its EPCI over their zones d'emploi) from the staged
    geometry, or None when there is none; geometries are read once per process and folder."""
    from ..report import maps
    from ..report.geometry import find_files, geometry_dirs, load_level

    if settings is None:
        from ..config import get_settings

        settings = get_settings()
    files = find_files(geometry_dirs(settings))
    if "epci" not in files:
        return None
    key = tuple(sorted((k, str(p), p.stat().st_mtime_ns) for k, p in files.items() if k in ("epci", "ze")))
    if key not in _GEOS:
        _GEOS.clear()
        _GEOS[key] = {k: load_level(p, k, None) for k, p in files.items() if k in ("epci", "ze")}
    members = [m["epci"] for m in doc["perimeter"]["members"]]
    return maps.candidacy(_GEOS[key], members, composite)


def csv_row(doc: dict) -> dict:
    """The candidacy as one row (machine column names; empty = not available / secret)."""
    rel, cand, checks = doc["release"], doc["candidacy"], doc["perimeter"]["checks"]
    row = {
        "diffusion": _diffusion(doc)["label"],
        "release_id": rel["release_id"], "data_status": rel["data_status"], "pipeline_version": rel["pipeline_version"],
        "source_vintages": json.dumps(rel["source_vintages"], sort_keys=True, ensure_ascii=False),
        "dossier": cand["dossier"], "candidature": cand["name"], "type_codes": cand["kind"],
        "codes_donnes": " ".join(cand["codes"]), "epci_membres": " ".join(m["epci"] for m in doc["perimeter"]["members"]),
        "n_epci": checks["n_epci"], "n_communes": checks["n_communes"], "population": checks["population"],
        "region_principale": doc["perimeter"]["region"], "zone_emploi_principale": checks["main_ze"],
        "part_zone_emploi_principale": checks["main_ze_share"],
    }
    comp = {c["reference_set"]: c for c in doc["composite"]}
    for s in SETS:
        c = comp.get(s) or {}
        mc = c.get("mc") or {}
        row.update({f"score_{s}": c.get("score"), f"percentile_national_{s}": c.get("percentile_national"),
                    f"percentile_regional_{s}": c.get("percentile_regional"), f"rang_{s}": c.get("rank_equivalent"),
                    f"n_reference_{s}": c.get("n_reference"), f"rang_p05_{s}": mc.get("rank_p05"),
                    f"rang_p95_{s}": mc.get("rank_p95"), f"p_top20_{s}": mc.get("p_top20")})
        for d in "ABCD":
            row[f"domaine_{d.lower()}_percentile_{s}"] = (c.get("domain_pct") or {}).get(d)
    f = doc["flags"]
    for key, col in FLAG_KEYS:
        row[col] = f[key]["value"]
    row["incertain"] = f["robustly_in_difficulty"]["uncertain"]
    w = doc["within"]
    row.update({"etendue_top20_population": w["extent_top20_population_share"],
                "epci_le_plus_en_difficulte": (w["most_difficult_member"] or {}).get("epci"),
                "score_max_epci": w["local_concentration_max_epci_score"],
                "dispersion_scores_epci": w["dispersion_epci_score"]})
    for r in doc["indicators"]:
        row[r["indicator_id"]] = r["value"]
    row["n_problemes"] = len(doc["problems"])
    row["problemes"] = " | ".join(p["message"] for p in doc["problems"])
    return {k: safe_text(v) for k, v in row.items()}


def _diffusion(doc: dict) -> dict:
    """The document's diffusion mode (documents written before the mode existed are public)."""
    return doc.get("diffusion") or {"mode": "publique", "label": "diffusion publique (secret statistique appliqué)",
                                    "text": None}


def restricted(doc: dict) -> bool:
    return _diffusion(doc)["mode"] == "restreinte"


def _readme(doc_release: dict, extra: list[tuple[str, str]] | None = None, diffusion: dict | None = None
            ) -> list[tuple[str, str]]:
    rows = [(diffusion["label"], diffusion["text"])] if diffusion and diffusion.get("text") else []
    if doc_release["synthetic"]:
        rows.append(("ATTENTION", "DONNÉES SYNTHÉTIQUES : release construite sur l'échantillon généré ; aucun chiffre "
                                  "ne décrit un territoire réel."))
    rows += [("Release", doc_release["release_id"]), ("Statut des données", doc_release["data_status"]),
             ("Version du pipeline", str(doc_release["pipeline_version"])),
             ("Millésimes des sources", ", ".join(f"{k} {v}" for k, v in sorted(doc_release["source_vintages"].items()))),
             ("Géographie (COG)", doc_release["geography_vintage"])]
    return rows + (extra or [])


_FIXED_DATETIME = (2000, 1, 1, 0, 0, 0)


def _xlsx_value(v):
    v = jsonable(v)
    return None if v is None else safe_text(v)


def write_small_xlsx(sheets: dict[str, pd.DataFrame], dest: Path, readme: list[tuple[str, str]]) -> Path:
    """A small workbook, fast and with reproducible bytes: a "Lisez-moi" sheet (release,
    vintages, rules), then one sheet per table (bold frozen header, numbers as numbers, text
    never read as a formula)."""
    import io
    import zipfile
    from datetime import datetime

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook(write_only=True)
    wb.properties.creator = "territoires-industrie-indicators"
    wb.properties.created = wb.properties.modified = datetime(*_FIXED_DATETIME)
    bold = Font(bold=True)
    ws = wb.create_sheet("Lisez-moi")
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 110
    for key, value in readme:
        k = WriteOnlyCell(ws, value=safe_text(key))
        k.font = Font(bold=True, color="B00020" if key == "ATTENTION" else None)
        v = WriteOnlyCell(ws, value=safe_text(value))
        v.alignment = Alignment(wrap_text=True, vertical="top")
        ws.append([k, v])
    for name, df in sheets.items():
        ws = wb.create_sheet(name[:31])
        ws.freeze_panes = "A2"
        for i, c in enumerate(df.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = min(max(len(str(c)) + 2, 10), 40)
        header = []
        for c in df.columns:
            cell = WriteOnlyCell(ws, value=str(c))
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in df.itertuples(index=False, name=None):
            ws.append([_xlsx_value(v) for v in row])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    with storage.atomic_path(dest) as tmp, zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, \
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():  # fixed entry dates: same bytes for the same review
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            out.writestr(zi, src.read(info.filename))
    return Path(dest)


def write_outputs(doc: dict, folder: Path, xlsx: bool = True, candidacy_map: dict | None = None,
                  whatif: dict | None = None) -> dict:
    """review.html / review.json / review.csv (/ review.xlsx) in ``folder``; returns the names.
    In a batch the XLSX rows of every candidacy go to the batch workbook instead
    (``xlsx=False``: openpyxl costs ~40 ms a workbook)."""
    from .scoring import rules_fr

    folder = Path(folder)
    storage.atomic_write_text(folder / "review.html", render_html(doc, candidacy_map, whatif))
    storage.atomic_write_text(folder / "review.json",
                              json.dumps(jsonable(doc), ensure_ascii=False, indent=2, allow_nan=False) + "\n")
    row_dict = csv_row(doc)
    with storage.atomic_path(folder / "review.csv") as tmp:  # one row: the csv module, same format as the exports
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(list(row_dict))
            w.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
                        for v in row_dict.values()])
    row = pd.DataFrame([row_dict])
    names = {"html": "review.html", "json": "review.json", "csv": "review.csv"}
    if not xlsx:
        for p in folder.iterdir():
            p.chmod(0o600 if restricted(doc) else 0o644)
        return names
    ind = pd.DataFrame(doc["indicators"])[["indicator_id", "label_fr", "domain", "unit", "period", "value", "numerator",
                                           "denominator", "secret_status", "reliable", "pct_ti_2023_2027", "pct_ze",
                                           "pct_epci"]]
    members = pd.DataFrame(doc["perimeter"]["members"])
    problems = pd.DataFrame(doc["problems"], columns=["level", "code", "message", "row", "field", "value", "suggestion"])
    sheets = {"Candidature": row, "Indicateurs": ind, "EPCI membres": members, "Remarques": problems}
    rules = [(f"Règle : {FLAG_LABELS_FR.get(k, k)}", v) for k, v in rules_fr().items() if k in FLAG_LABELS_FR]
    write_small_xlsx(sheets, folder / "review.xlsx", readme=_readme(doc["release"], [
        ("Diffusion", _diffusion(doc)["label"]), ("Candidature", doc["candidacy"]["name"]), *rules],
        diffusion=_diffusion(doc)))
    for p in folder.iterdir():
        p.chmod(0o600 if restricted(doc) else 0o644)
    return {**names, "xlsx": "review.xlsx"}


# --- batch -------------------------------------------------------------------------------------

SUMMARY_COLUMNS = {
    "rang": "rang", "dossier": "dossier", "candidature": "candidature", "statut": "statut", "n_epci": "n_epci",
    "population": "population", "ensemble_de_classement": "ensemble_de_classement", "score": "score",
    "percentile_national": "percentile_national", "percentile_regional": "percentile_regional",
    "rang_p05": "rang_p05", "rang_p95": "rang_p95", "p_top20": "p_top20",
}


def batch_table(results, rejected: list[dict]) -> pd.DataFrame:
    """One row per candidacy, ranked by its composite against the first available flag set
    (Territoires d'industrie 2023-2027, else zones d'emploi); rejected candidacies last."""
    from .scoring import primary_set

    rows = []
    for res in results:
        doc = res.document
        s = primary_set(doc)
        comp = next((c for c in doc["composite"] if c["reference_set"] == s), {})
        mc = comp.get("mc") or {}
        r = csv_row(doc)
        rows.append({
            "rang": None, "dossier": doc["candidacy"]["dossier"], "candidature": safe_text(doc["candidacy"]["name"]),
            "statut": "examinée", "n_epci": r["n_epci"], "epci_membres": r["epci_membres"], "population": r["population"],
            "ensemble_de_classement": s, "score": comp.get("score"), "percentile_national": comp.get("percentile_national"),
            "percentile_regional": comp.get("percentile_regional"), "rang_p05": mc.get("rank_p05"),
            "rang_p95": mc.get("rank_p95"), "p_top20": mc.get("p_top20"),
            **{col: r[col] for _, col in FLAG_KEYS}, "incertain": r["incertain"],
            "etendue_top20_population": r["etendue_top20_population"], "n_remarques": r["n_problemes"],
            "remarques": r["problemes"], "html": f"../{doc['candidacy']['slug']}/review.html",
            "release_id": doc["release"]["release_id"], "data_status": doc["release"]["data_status"],
        })
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["score", "candidature"], ascending=[False, True], na_position="last", kind="stable")
        df["rang"] = range(1, len(df) + 1)
    rej = pd.DataFrame([{
        "rang": None, "dossier": r["candidacy"]["dossier"], "candidature": safe_text(r["candidacy"]["name"]),
        "statut": "rejetée", "n_epci": 0, "epci_membres": "", "n_remarques": len(r["problems"]),
        "remarques": safe_text(" | ".join(p["message"] for p in r["problems"])),
    } for r in rejected])
    out = pd.concat([d for d in (df, rej) if len(d)], ignore_index=True) if (len(df) or len(rej)) else pd.DataFrame(
        columns=["rang", "dossier", "candidature", "statut"])
    out["rang"] = out["rang"].astype("Int64")
    return out.reset_index(drop=True)


def write_batch(summary: pd.DataFrame, rejected: list[dict], file_problems, ctx, folder: Path, batch_name: str,
                detail: pd.DataFrame | None = None) -> dict:
    """summary.html / .csv / .xlsx / .json and problems.csv of a batch; ``detail``: the full
    row of every reviewed candidacy (:func:`csv_row`), a sheet of the workbook and
    ``candidatures.csv``."""
    from ..publish.exports import write_csv, write_xlsx

    folder = Path(folder)
    release = {"release_id": ctx.release_id, "synthetic": ctx.synthetic,
               "data_status": "SYNTHETIC" if ctx.synthetic else "officiel",
               "pipeline_version": ctx.release.get("pipeline_version"),
               "source_vintages": ctx.release.get("source_vintages") or {}, "geography_vintage": ctx.geography_vintage}
    problems = pd.DataFrame([p.as_dict() for p in file_problems]
                            + [{**p, "candidature": r["candidacy"]["name"]} for r in rejected for p in r["problems"]],
                            columns=["candidature", "level", "code", "message", "row", "field", "value", "suggestion"])
    problems["row"] = pd.to_numeric(problems["row"], errors="coerce").astype("Int64")  # line 11, not 11.0
    write_csv(summary, folder / "summary.csv")
    write_csv(problems.map(safe_text), folder / "problems.csv")
    sheets = {"Classement": summary.drop(columns=["html"], errors="ignore"), "Remarques": problems.map(safe_text)}
    names = {"html": "summary.html", "csv": "summary.csv", "xlsx": "summary.xlsx", "json": "summary.json",
             "problems_csv": "problems.csv"}
    if detail is not None and len(detail):
        sheets["Candidatures (détail)"] = detail
        write_csv(detail, folder / "candidatures.csv")
        names["detail_csv"] = "candidatures.csv"
    write_xlsx(sheets, folder / "summary.xlsx", readme=_readme(release, [("Lot", safe_text(batch_name))]))
    records = json.loads(summary.to_json(orient="records", force_ascii=False))
    storage.atomic_write_text(folder / "summary.json", json.dumps(
        {"schema": "ti-candidacy-batch/1", "batch": batch_name, "release": release, "candidacies": records,
         "file_problems": [p.as_dict() for p in file_problems]}, ensure_ascii=False, indent=2) + "\n")
    html = env().get_template("batch.html").render(
        release=release, batch=batch_name, rows=[{k: (None if isinstance(v, float) and math.isnan(v) else v)
                                                  for k, v in r.items()} for r in summary.astype(object).to_dict("records")],
        problems=problems.astype(object).where(problems.notna(), None).to_dict("records"),
        vintages=sorted(release["source_vintages"].items()))
    storage.atomic_write_text(folder / "summary.html", html)
    for p in folder.iterdir():
        p.chmod(0o644)
    return names
