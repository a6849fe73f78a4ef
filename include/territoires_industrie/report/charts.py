"""Chart specifications (Plotly figures as JSON) for the report pages.

Each function returns a plain ``{"data": [...], "layout": {...}}`` dict that the page
embeds as JSON and ``report.js`` hands to ``Plotly.newPlot``. Labels coming from the data
are HTML-escaped before they reach Plotly (its text renderer reads a few tags).
"""

from __future__ import annotations

import html
import json

import pandas as pd

from .fmt import fmt_number, fmt_pct01, fmt_rank, fmt_value

DOMAIN_NAMES = {"domain_a": "A. Recul de l'emploi industriel", "domain_b": "B. Érosion du tissu industriel",
                "domain_c": "C. Éloignement de l'emploi", "domain_d": "D. Déprise territoriale"}
CLASS_COLORS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]  # quintiles, low -> high difficulty
NO_DATA_COLOR = "#d0d4d9"
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, Liberation Sans, Arial, sans-serif", "size": 13}


def esc(s) -> str:
    return html.escape("" if s is None or (isinstance(s, float) and s != s) else str(s), quote=False)


def _fig(fig) -> dict:
    d = fig.to_plotly_json()
    d["layout"].pop("template", None)
    d["layout"].setdefault("font", FONT)
    d["layout"].setdefault("paper_bgcolor", "#fff")
    d["layout"].setdefault("plot_bgcolor", "#fff")
    return d


def to_json(spec: dict) -> str:
    """JSON text (NaN -> null) safe inside ``<script type="application/json">``."""
    from plotly.utils import PlotlyJSONEncoder

    text = json.dumps(spec, cls=PlotlyJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def composite_distribution(comp: pd.DataFrame, set_labels: dict[str, str]) -> dict:
    """Box plot with every territory as a point, one row per ranking set."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for rs, g in comp.groupby("reference_set", sort=False):
        fig.add_trace(go.Box(
            x=g["score"].tolist(), name=esc(set_labels.get(rs, rs)), boxpoints="all", jitter=0.4, pointpos=0,
            orientation="h", marker={"size": 5, "color": "#000091", "opacity": 0.55}, line={"color": "#5c6570"},
            hovertext=[f"{esc(lab)}<br>indice {fmt_number(s, 1)} · rang {fmt_rank(r)}/{fmt_rank(n)}"
                       for lab, s, r, n in zip(g["label"], g["score"], g["rank_national"], g["n_reference"])],
            hoverinfo="text", showlegend=False,
        ))
    fig.update_layout(height=120 + 55 * comp["reference_set"].nunique(), margin={"l": 230, "r": 20, "t": 20, "b": 45},
                      xaxis={"title": {"text": "Indice composite de difficulté (0-100)"}, "range": [0, 100],
                             "gridcolor": "#eee"})
    return _fig(fig)


def top_intervals(rows: pd.DataFrame, root: str = "") -> dict:
    """Observed rank (dot) and Monte Carlo 90 % interval (bar) of the most difficult territories."""
    import plotly.graph_objects as go

    rows = rows.sort_values("rank_national")
    labels = [f"{esc(lab)} ({esc(tid)})" for lab, tid in zip(rows["label"], rows["territory_id"])]
    rank = rows["rank_national"].astype(float)
    plus = (rows["mc_rank_p95"].astype(float) - rank).clip(lower=0).fillna(0)
    minus = (rank - rows["mc_rank_p05"].astype(float)).clip(lower=0).fillna(0)
    colors = ["#b34000" if bool(u) else "#000091" for u in rows["uncertain"].fillna(False)]
    fig = go.Figure(go.Scatter(
        x=rank.tolist(), y=labels, mode="markers", marker={"size": 9, "color": colors},
        error_x={"type": "data", "symmetric": False, "array": plus.tolist(), "arrayminus": minus.tolist(),
                 "color": "#8a94a6", "thickness": 2, "width": 4},
        customdata=[f"{root}{u}" if u else "" for u in rows.get("url", pd.Series([""] * len(rows))).fillna("")],
        hovertext=[f"{lab}<br>rang {fmt_rank(r)} (intervalle à 90 % : {fmt_rank(a)}-{fmt_rank(b)})<br>"
                   f"P(10 % les plus en difficulté) = {fmt_pct01(p)}"
                   for lab, r, a, b, p in zip(labels, rank, rows["mc_rank_p05"], rows["mc_rank_p95"], rows["p_top10"])],
        hoverinfo="text",
    ))
    fig.update_layout(height=90 + 26 * len(rows), margin={"l": 300, "r": 20, "t": 10, "b": 45},
                      xaxis={"title": {"text": "Rang (1 = le plus en difficulté) et intervalle à 90 %"},
                             "rangemode": "tozero", "gridcolor": "#eee"},
                      yaxis={"autorange": "reversed", "type": "category"})
    return _fig(fig)


def domain_heatmap(rows: pd.DataFrame) -> dict:
    import plotly.graph_objects as go

    rows = rows.sort_values("rank_national")
    cols = [c for c in DOMAIN_NAMES if c in rows.columns]
    labels = [f"{esc(lab)} ({esc(tid)})" for lab, tid in zip(rows["label"], rows["territory_id"])]
    z = rows[cols].astype(float).round(1).values.tolist()
    fig = go.Figure(go.Heatmap(
        z=z, x=[DOMAIN_NAMES[c] for c in cols], y=labels, colorscale="YlOrRd", zmin=0, zmax=100,
        colorbar={"title": {"text": "score"}}, hovertemplate="%{y}<br>%{x} : %{z}<extra></extra>",
        text=[[fmt_number(v, 0) for v in r] for r in z], texttemplate="%{text}",
    ))
    fig.update_layout(height=110 + 26 * len(rows), margin={"l": 300, "r": 20, "t": 10, "b": 60},
                      yaxis={"autorange": "reversed", "type": "category"})
    return _fig(fig)


# Per-territory charts are plain dicts (hundreds of pages: building Plotly objects costs ~20 ms each).

def _layout(**kw) -> dict:
    return {"font": FONT, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff", **kw}


def _num(v):
    return None if v is None or (isinstance(v, float) and v != v) else float(v)


def territory_domains(row: dict, median: dict, set_label: str) -> dict:
    cols = [c for c in DOMAIN_NAMES if c in row]
    names = [DOMAIN_NAMES[c] for c in cols]
    data = [
        {"type": "bar", "x": names, "y": [_num(row[c]) for c in cols], "name": "ce territoire",
         "marker": {"color": "#000091"}, "text": [fmt_number(row[c], 0) for c in cols], "textposition": "outside"},
        {"type": "bar", "x": names, "y": [_num(median.get(c)) for c in cols], "name": f"médiane des {esc(set_label)}",
         "marker": {"color": "#b8c0cc"}},
    ]
    layout = _layout(barmode="group", height=340, margin={"l": 50, "r": 20, "t": 30, "b": 80},
                     yaxis={"range": [0, 110], "title": {"text": "score 0-100 (100 = plus en difficulté)"},
                            "gridcolor": "#eee"}, legend={"orientation": "h", "y": 1.12})
    return {"data": data, "layout": layout}


def score_history(hist: pd.DataFrame) -> dict:
    """Composite score and rank across the releases kept in the warehouse."""
    hist = hist.sort_values("release_id")
    data = [{
        "type": "scatter", "x": hist["release_id"].tolist(), "y": [_num(v) for v in hist["score"]],
        "mode": "lines+markers+text", "text": [f"rang {fmt_rank(r)}" for r in hist["rank_national"]],
        "textposition": "top center", "line": {"color": "#000091"}, "name": "indice composite", "hoverinfo": "text",
        "hovertext": [f"release {esc(r)} : indice {fmt_number(s, 1)}, rang {fmt_rank(k)}/{fmt_rank(n)}"
                      for r, s, k, n in zip(hist["release_id"], hist["score"], hist["rank_national"],
                                            hist["n_reference"])],
    }]
    layout = _layout(height=300, margin={"l": 50, "r": 20, "t": 30, "b": 50},
                     xaxis={"type": "category", "title": {"text": "release"}, "range": [-0.5, len(hist) - 0.5]},
                     yaxis={"range": [0, 105], "title": {"text": "indice (0-100)"}, "gridcolor": "#eee"})
    return {"data": data, "layout": layout}


def level_trends(series: list[dict]) -> dict:
    """Small multiples: each series is {"title", "unit", "points": [(year, value), ...]}."""
    n = len(series)
    gap = 0.08
    width = (1 - gap * (n - 1)) / n
    data, layout = [], _layout(height=320, margin={"l": 60, "r": 20, "t": 50, "b": 40}, annotations=[])
    for i, s in enumerate(series):
        k = "" if i == 0 else str(i + 1)
        pts = sorted(s["points"])
        data.append({
            "type": "scatter", "x": [str(p[0]) for p in pts], "y": [_num(p[1]) for p in pts],
            "mode": "lines+markers+text", "text": [fmt_value(p[1], s["unit"]) for p in pts],
            "textposition": "top center", "cliponaxis": False, "line": {"color": "#000091"}, "showlegend": False,
            "hoverinfo": "text", "xaxis": f"x{k}", "yaxis": f"y{k}",
            "hovertext": [f"{esc(s['title'])} {p[0]} : {fmt_value(p[1], s['unit'])}" for p in pts],
        })
        x0 = i * (width + gap)
        layout[f"xaxis{k}"] = {"domain": [x0, x0 + width], "anchor": f"y{k}", "type": "category",
                               "range": [-0.5, len(pts) - 0.5]}
        layout[f"yaxis{k}"] = {"anchor": f"x{k}", "rangemode": "tozero", "gridcolor": "#eee"}
        layout["annotations"].append({"text": esc(s["title"]), "x": x0 + width / 2, "y": 1.0, "xref": "paper",
                                      "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "yshift": 8, "font": {"size": 14}})
    return {"data": data, "layout": layout}
