"""Choropleth maps of the report as inline SVG: offline (no tile server, no CDN, no library),
one ``<path>`` per territory, readable without JavaScript.

- **Overview**: one SVG per reference set (EPCI, zones d'emploi, départements, Territoires
  d'industrie 2023-2027 and 2018-2022) with a selector of the set and of the variable (composite
  index, domains A-D). The page is rendered coloured by the composite; the selector recolours
  from the embedded values (``maps.js``). Classes are the quintiles of the variable within the set
  (class 5 = most in difficulty), secret or missing values are **hatched**, never coloured as 0.
  Hover: name, value, rank and 90 % interval; click opens the territory's page.
- **Local map** of a zone d'emploi or Territoire d'industrie page: the EPCI around it, coloured by
  their composite among EPCI, with the territory's outline drawn over them.
- Under every map: the legend with the class bounds, the geometry source and vintage.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import pandas as pd

from .charts import CLASS_COLORS
from .fmt import fmt_number, fmt_rank

WIDTH = 760.0
GEOMETRY_LEVELS = ("epci", "ze", "departement", "ti")
VARIABLES = {"score": "Indice composite", "domain_a": "Domaine A", "domain_b": "Domaine B",
             "domain_c": "Domaine C", "domain_d": "Domaine D"}
#: reference set -> (geometry level, feature filter on the ``phase`` property, label)
SETS = {
    "epci": ("epci", None, "EPCI"),
    "ze": ("ze", None, "Zones d'emploi"),
    "departement": ("departement", None, "Départements"),
    "ti_2023_2027": ("ti", "2023-2027", "Territoires d'industrie 2023-2027"),
    "ti_2018_2022": ("ti", "2018-2022", "Territoires d'industrie 2018-2022"),
}
HATCH = ('<pattern id="hatch-{id}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">'
         '<rect width="6" height="6" fill="#f4f5f7"/><line x1="0" y1="0" x2="0" y2="6" stroke="#8a939e" '
         'stroke-width="1.6"/></pattern>')


@dataclass
class Projection:
    lon0: float
    lat1: float
    k: float  # pixels per degree of longitude
    coslat: float
    width: float
    height: float

    @classmethod
    def fit(cls, rings: list[list[tuple[float, float]]], width: float = WIDTH, pad: float = 0.02) -> "Projection":
        xs = [p[0] for r in rings for p in r]
        ys = [p[1] for r in rings for p in r]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        dx, dy = (x1 - x0) or 0.1, (y1 - y0) or 0.1
        x0, x1, y0, y1 = x0 - dx * pad, x1 + dx * pad, y0 - dy * pad, y1 + dy * pad
        coslat = math.cos(math.radians((y0 + y1) / 2))
        k = width / ((x1 - x0) * coslat)
        return cls(x0, y1, k, coslat, width, round((y1 - y0) * k, 1))

    def d(self, rings) -> str:
        parts = []
        for ring in rings:
            pts = [f"{(x - self.lon0) * self.coslat * self.k:.1f} {(self.lat1 - y) * self.k:.1f}" for x, y in ring]
            parts.append("M" + "L".join(pts) + "Z")
        return "".join(parts)


def breaks(values: pd.Series) -> list[float]:
    """The 4 inner quintile bounds of the non-missing values (empty when fewer than 5 values)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if len(v) < 5:
        return []
    return [float(x) for x in v.quantile([0.2, 0.4, 0.6, 0.8]).tolist()]


def klass(value, bounds: list[float]) -> int | None:
    """0..4 (4 = highest value = most in difficulty), None when missing or secret."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    if not bounds:
        return 2
    return sum(1 for b in bounds if float(value) > b)


def _fill(k: int | None, svg_id: str) -> str:
    return f"url(#hatch-{svg_id})" if k is None else CLASS_COLORS[k]


def _num(v, nd=1):
    return None if v is None or pd.isna(v) else round(float(v), nd)


def _values(rows: pd.DataFrame, root: str) -> dict:
    out = {}
    for r in rows.to_dict("records"):
        url = r.get("url")
        out[str(r["territory_id"])] = {
            "n": r.get("label") or r["territory_id"], "u": f"{root}{url}" if isinstance(url, str) and url else "",
            "r": None if pd.isna(r.get("rank_national")) else int(r["rank_national"]),
            "N": None if pd.isna(r.get("n_reference")) else int(r["n_reference"]),
            "lo": _num(r.get("mc_rank_p05"), 0), "hi": _num(r.get("mc_rank_p95"), 0),
            **{v: _num(r.get(v)) for v in VARIABLES},
        }
    return out


def _svg(svg_id: str, proj: Projection, shapes: dict, klasses: dict, titles: dict, extra: str = "",
         cls: str = "map") -> str:
    """One ``<path>`` per territory, its fill the class colour (or the hatch), its ``<title>`` the
    hover text for readers without JavaScript."""
    paths = "".join(f'<path data-id="{html.escape(c)}" d="{proj.d(shapes[c])}" fill="{_fill(klasses.get(c), svg_id)}">'
                    f'<title>{html.escape(titles.get(c, c))}</title></path>' for c in sorted(shapes))
    return (f'<svg id="{svg_id}" class="{cls}" viewBox="0 0 {proj.width:.0f} {proj.height:.0f}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg"><defs>{HATCH.format(id=svg_id)}</defs><g class="shapes">{paths}</g>'
            f'{extra}</svg>')


def legend(bounds: list[float], label: str) -> list[dict]:
    """Classes with their bounds (French numbers) + the hatched "secret or missing" entry."""
    edges = ["min", *[fmt_number(b, 1) for b in bounds], "max"]
    items = [{"color": CLASS_COLORS[k], "text": f"{edges[k]} – {edges[k + 1]}"} for k in range(len(edges) - 1)] \
        if bounds else [{"color": CLASS_COLORS[2], "text": "valeurs (moins de 5 territoires : pas de classes)"}]
    items[0]["text"] += " (moins en difficulté)" if bounds else ""
    items[-1]["text"] += " (plus en difficulté)" if bounds else ""
    return [{"title": label}, *items, {"color": "", "text": "secret statistique ou non disponible", "hatch": True}]


def overview(geos: dict, comp: pd.DataFrame, root: str = "") -> dict | None:
    """The overview map: {"sets": [...], "data": JSON for maps.js} or None without geometry."""
    if comp.empty:
        return None
    sets = []
    data = {}
    for rs, (level, phase, label) in SETS.items():
        g = geos.get(level)
        rows = comp[comp["reference_set"] == rs]
        if g is None or rows.empty:
            continue
        shapes = {c: rings for c, rings in g.shapes.items() if c in set(rows["territory_id"])
                  and (phase is None or g.phases.get(c) == phase)}
        if not shapes:
            continue
        proj = Projection.fit([r for rings in shapes.values() for r in rings])
        bnds = {v: breaks(rows[v]) for v in VARIABLES if v in rows.columns}
        vals = _values(rows, root)
        klasses = {c: klass(vals.get(c, {}).get("score"), bnds["score"]) for c in shapes}
        titles = {c: tooltip_text(vals[c]) for c in shapes if c in vals}
        sets.append({"set": rs, "label": label, "drawn": len(shapes),
                     "svg": _svg(f"map-{rs}", proj, shapes, klasses, titles),
                     "legend": legend(bnds["score"], VARIABLES["score"]), "source": g.source,
                     "outside": [c for c in g.outside if c in vals]})
        data[rs] = {"values": vals, "breaks": bnds,
                    "legends": {v: legend(b, VARIABLES[v]) for v, b in bnds.items()}}
    if not sets:
        return None
    return {"sets": sets, "variables": VARIABLES, "json": json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            .replace("</", "<\\/")}


def local(geos: dict, level: str, territory_id: str, comp: pd.DataFrame, root: str = "../") -> dict | None:
    """The map of one zone d'emploi / Territoire d'industrie page: the EPCI around it (composite
    among EPCI) and its outline; None when a geometry is missing."""
    focus_geo, epci_geo = geos.get(level), geos.get("epci")
    if focus_geo is None or epci_geo is None or territory_id not in focus_geo.shapes:
        return None
    focus = focus_geo.shapes[territory_id]
    fx = [p[0] for r in focus for p in r]
    fy = [p[1] for r in focus for p in r]
    mx, my = (max(fx) - min(fx)) * 0.25 + 0.05, (max(fy) - min(fy)) * 0.25 + 0.05
    box = (min(fx) - mx, min(fy) - my, max(fx) + mx, max(fy) + my)
    around = {c: rings for c, rings in epci_geo.shapes.items() if _overlaps(epci_geo.bbox(c), box)}
    rows = comp[comp["reference_set"] == "epci"]
    bnds = breaks(rows["score"]) if len(rows) else []
    vals = _values(rows[rows["territory_id"].isin(around)], root)
    proj = Projection.fit(focus + [r for rings in around.values() for r in rings], width=560, pad=0.0)
    klasses = {c: klass(vals.get(c, {}).get("score"), bnds) for c in around}
    titles = {c: tooltip_text(vals[c]) for c in around if c in vals}
    outline = f'<path class="focus" d="{proj.d(focus)}" fill="none" stroke="#1d1d1b" stroke-width="2.5"/>'
    return {"svg": _svg(f"map-local-{level}", proj, around, klasses, titles, outline, cls="map local"),
            "legend": legend(bnds, "Indice composite des EPCI"), "drawn": len(around), "source": epci_geo.source,
            "json": json.dumps({"epci": {"values": vals}}, ensure_ascii=False, separators=(",", ":"))
            .replace("</", "<\\/")}


def _overlaps(a, b) -> bool:
    return not (a[2] < b[0] or a[0] > b[2] or a[3] < b[1] or a[1] > b[3])


def tooltip_text(v: dict, variable: str = "score") -> str:
    """The hover text (the same as ``maps.js`` builds; used by the tests and the no-JS title)."""
    val = v.get(variable)
    out = f"{v['n']} : {VARIABLES[variable].lower()} {fmt_number(val, 1) if val is not None else 'non disponible'}"
    if v.get("r") is not None:
        out += f" · rang {fmt_rank(v['r'])}/{fmt_rank(v['N'])}"
    if v.get("lo") is not None:
        out += f" · intervalle {fmt_rank(v['lo'])}–{fmt_rank(v['hi'])}"
    return out


def candidacy(geos: dict, members: list[str], comp: pd.DataFrame, width: float = 420) -> dict | None:
    """The small map of a candidacy review: its EPCI coloured by their composite class among EPCI,
    the other EPCI around in grey, the zones d'emploi around as outlines. None without geometry."""
    epci_geo = geos.get("epci")
    if epci_geo is None:
        return None
    drawn = [m for m in members if m in epci_geo.shapes]
    if not drawn:
        return None
    boxes = [epci_geo.bbox(m) for m in drawn]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    mx, my = (x1 - x0) * 0.15 + 0.03, (y1 - y0) * 0.15 + 0.03
    box = (x0 - mx, y0 - my, x1 + mx, y1 + my)
    around = {c: r for c, r in epci_geo.shapes.items() if c not in drawn and _overlaps(epci_geo.bbox(c), box)}
    ze_geo = geos.get("ze")
    zes = {c: r for c, r in (ze_geo.shapes.items() if ze_geo else []) if _overlaps(ze_geo.bbox(c), box)}
    rows = comp[comp["reference_set"] == "epci"] if len(comp) else comp
    bnds = breaks(rows["score"]) if len(rows) else []
    vals = _values(rows[rows["territory_id"].isin(drawn)], "") if len(rows) else {}
    proj = Projection.fit([r for m in drawn for r in epci_geo.shapes[m]] + [r for rings in around.values() for r in rings],
                          width=width, pad=0.0)
    svg_id = "map-candidacy"
    grey = "".join(f'<path d="{proj.d(r)}" fill="#e6e8eb" stroke="#ffffff" stroke-width=".6"/>' for r in around.values())
    ze_lines = "".join(f'<path d="{proj.d(r)}" fill="none" stroke="#5b6470" stroke-width="1.2" stroke-dasharray="4 2"/>'
                       for r in zes.values())
    members_svg = "".join(
        f'<path data-id="{html.escape(m)}" d="{proj.d(epci_geo.shapes[m])}" fill="{_fill(klass(vals.get(m, {}).get("score"), bnds), svg_id)}" '
        f'stroke="#1d1d1b" stroke-width="1.2"><title>{html.escape(tooltip_text(vals[m]) if m in vals else m)}</title></path>'
        for m in drawn)
    svg = (f'<svg id="{svg_id}" class="map candidacy" viewBox="0 0 {proj.width:.0f} {proj.height:.0f}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg"><defs>{HATCH.format(id=svg_id)}</defs>{grey}{members_svg}{ze_lines}</svg>')
    return {"svg": svg, "legend": legend(bnds, "Indice composite des EPCI membres"), "drawn": len(drawn),
            "missing": [m for m in members if m not in epci_geo.shapes], "source": epci_geo.source,
            "zones": len(zes)}
