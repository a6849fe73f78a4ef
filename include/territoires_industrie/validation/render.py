"""HTML pages a person can read without Python: one per gate run
(``validation/<dataset>/<vintage>/report.html``) and an index of the latest status of
every dataset (``validation/index.html``). Static, self-contained (inline CSS, no
JavaScript); every value coming from data is escaped.

:func:`status_fragment` returns the status table alone, for embedding in the published
report.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1b1b;max-width:1200px}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f4f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:.8rem;font-weight:600;font-size:.85rem}
.passed{background:#dcfce7;color:#14532d} .warnings{background:#fef3c7;color:#78350f}
.failed{background:#fee2e2;color:#7f1d1d} .skipped,.none{background:#e5e7eb;color:#374151}
.hard{color:#991b1b;font-weight:600} .soft{color:#92400e}
code{background:#f3f4f6;padding:0 .2rem;border-radius:.2rem;font-size:.85em}
.muted{color:#6b7280} .small{font-size:.8rem}
"""


def e(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        v = json.dumps(v, ensure_ascii=False, default=str)
    return html.escape(str(v), quote=True)


def _badge(status: str) -> str:
    s = status or "none"
    return f'<span class="badge {e(s)}">{e(s.upper())}</span>'


def _num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return e(v)


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _rel(target: str | None, start: Path) -> str | None:
    if not target:
        return None
    try:
        return os.path.relpath(target, start)
    except ValueError:
        return target


def _check_rows(checks: list[dict]) -> str:
    rows = []
    order = sorted(checks, key=lambda c: (c.get("success"), c.get("severity") != "hard"))
    for c in order:
        outcome = "passed" if c.get("success") else ("failed" if c.get("severity") == "hard" else "warnings")
        detail = []
        if c.get("error"):
            detail.append(f"<b>not evaluated:</b> {e(c['error'])}")
        if not c.get("success") and c.get("sample"):
            detail.append(f"sample: <code>{e(c['sample'][:20])}</code>")
        if not c.get("success") and c.get("sample_counts"):
            detail.append(f"most frequent: <code>{e(c['sample_counts'][:10])}</code>")
        if not c.get("success") and c.get("sample_rows"):
            detail.append(f"rows: <code>{e(c['sample_rows'][:20])}</code>")
        if c.get("missing_values"):
            detail.append(f"missing: <code>{e(c['missing_values'])}</code>")
        if c.get("observed_value") is not None:
            detail.append(f"observed: <code>{e(c['observed_value'])}</code>")
        if c.get("params"):
            detail.append(f'<span class="muted small">params: {e(c["params"])}</span>')
        cond = f"<br><span class=\"muted small\">where {e(c['condition'])}</span>" if c.get("condition") else ""
        rows.append(
            f"<tr><td>{_badge(outcome)}</td><td class=\"{e(c.get('severity'))}\">{e(c.get('severity'))}</td>"
            f"<td>{e(c.get('kind'))}</td><td>{e(c.get('description'))}<br><code>{e(c.get('expectation'))}</code>"
            f"{cond}</td><td><code>{e(c.get('column'))}</code></td>"
            f"<td class=\"num\">{_num(c.get('unexpected_count'))}</td><td class=\"num\">{_num(c.get('checked_count', c.get('element_count')))}</td>"
            f"<td class=\"small\">{'<br>'.join(detail)}</td></tr>")
    return ("<table><tr><th>outcome</th><th>gate</th><th>kind</th><th>check</th><th>column</th>"
            "<th>unexpected</th><th>rows checked</th><th>details</th></tr>" + "".join(rows) + "</table>")


def gate_page(r: dict) -> str:
    folder = Path(r["paths"]["html"]).parent
    q = r.get("quarantine") or {}
    body = [f"<p class=\"small\"><a href=\"{e(_rel(str(folder.parent.parent / 'index.html'), folder))}\">"
            "&larr; all datasets</a></p>",
            f"<h1>Validation — {e(r.get('title') or r['dataset'])}</h1>",
            f"<p>{_badge(r['status'])} dataset <code>{e(r['dataset'])}</code>, vintage <b>{e(r['vintage'])}</b>, "
            f"{_num(r.get('rows'))} rows, {_num(r.get('evaluated'))} checks "
            f"(<span class=\"hard\">{_num(r.get('hard_failures'))} hard</span>, "
            f"<span class=\"soft\">{_num(r.get('soft_failures'))} soft</span> failure(s)), "
            f"validated {e(r.get('validated_at'))} in {e(r.get('seconds'))} s with Great Expectations "
            f"{e(r.get('gx_version'))}.</p>"]
    if r["status"] == "failed":
        body.append("<p class=\"hard\">A hard gate failed: this batch was <b>not</b> staged and nothing was "
                    "published from it; the previous publication is untouched.</p>")
    elif r["status"] == "warnings":
        body.append("<p class=\"soft\">Soft gates reported findings: the run went on; please review them.</p>")
    body.append("<h2>Checks</h2>" + _check_rows(r.get("checks", [])))
    if r.get("skipped"):
        body.append("<h2>Not evaluated (optional columns absent)</h2><ul>" + "".join(
            f"<li><code>{e(s['expectation'])}</code> on <code>{e(s['column'])}</code>: {e(s['reason'])}</li>"
            for s in r["skipped"]) + "</ul>")
    d = r.get("drift") or {}
    body.append("<h2>Drift against the previous vintage</h2>")
    if d.get("previous_vintage"):
        body.append(f"<p>Compared with vintage <b>{e(d['previous_vintage'])}</b> ({_num(d.get('compared'))} keys; "
                    f"threshold ±{e(d.get('threshold_pct'))} %, row count ±{e(d.get('rowcount_threshold_pct'))} %). "
                    "Largest moves:</p>")
        rows = "".join(
            f"<tr><td>{e(x.get('metric'))}</td><td><code>{e(x.get('key'))}</code></td>"
            f"<td class=\"num\">{_num(x.get('previous'))}</td><td class=\"num\">{_num(x.get('current'))}</td>"
            f"<td class=\"num\">{_num(x.get('change_pct'))}</td></tr>" for x in (d.get("table") or [])[:30])
        body.append("<table><tr><th>metric</th><th>key</th><th>previous</th><th>current</th><th>change %</th></tr>"
                    + rows + "</table>")
    else:
        body.append("<p class=\"muted\">No earlier vintage validated: nothing to compare with yet.</p>")
    body.append("<h2>Quarantine</h2>")
    if q.get("rows"):
        body.append(f"<p>{_num(q['rows'])} line(s) (one per failed row-level check"
                    f"{', capped: ' + _num(q.get('offending')) + ' in all' if q.get('capped') else ''}): "
                    f"<a href=\"{e(_rel(q.get('csv'), folder))}\">quarantine.csv</a>, "
                    f"<a href=\"{e(_rel(q.get('parquet'), folder))}\">quarantine.parquet</a>.</p>")
        body.append("<table><tr><th>check</th><th>column</th><th>reason</th><th>lines</th></tr>" + "".join(
            f"<tr><td><code>{e(b['expectation'])}</code></td><td><code>{e(b['column'])}</code></td>"
            f"<td>{e(b['reason'])}</td><td class=\"num\">{_num(b['rows'])}</td></tr>" for b in q.get("by_check", []))
            + "</table>")
    else:
        body.append("<p class=\"muted\">No row failed a row-level check.</p>")
    if r.get("stream"):
        body.append("<h2>SIRENE file-level checks (stream)</h2><pre class=\"small\">"
                    f"{e(json.dumps(r['stream'], indent=2, ensure_ascii=False))}</pre>")
    if r.get("parse_report"):
        body.append("<h2>Parse report</h2><pre class=\"small\">"
                    f"{e(json.dumps(r['parse_report'], indent=2, ensure_ascii=False))}</pre>")
    body.append("<h2>Reference lists</h2><pre class=\"small\">"
                f"{e(json.dumps(r.get('references'), indent=2, ensure_ascii=False))}</pre>")
    body.append(f"<p class=\"muted small\">Machine-readable result: <code>{e(r['paths']['result'])}</code></p>")
    return _page(f"Validation {r['dataset']} {r['vintage']} — {r['status']}", "\n".join(body))


def status_fragment(status: dict, base: Path | None = None) -> str:
    """The latest status of every dataset as an HTML table (links relative to ``base``)."""
    if not status:
        return "<p class=\"muted\">No validation has run yet.</p>"
    rows = []
    for name, s in status.items():
        link = _rel(s["paths"]["html"], base) if base else s["paths"]["html"]
        fails = "<br>".join(f"<span class=\"{e(f['severity'])}\">[{e(f['severity'])}]</span> {e(f['text'])}"
                            for f in s.get("failures", [])[:5])
        rows.append(f"<tr><td><a href=\"{e(link)}\"><code>{e(name)}</code></a><br><span class=\"muted small\">"
                    f"{e(s.get('title'))}</span></td><td>{e(s['vintage'])}</td><td>{_badge(s['status'])}</td>"
                    f"<td class=\"num\">{_num(s.get('rows'))}</td><td class=\"num\">{_num(s.get('checks'))}</td>"
                    f"<td class=\"num\">{_num(s['hard_failures'])}</td><td class=\"num\">{_num(s['soft_failures'])}</td>"
                    f"<td class=\"num\">{_num(s['quarantine_rows'])}</td><td>{e(s.get('validated_at'))}</td>"
                    f"<td class=\"small\">{fails}</td></tr>")
    return ("<table><tr><th>dataset</th><th>vintage</th><th>status</th><th>rows</th><th>checks</th><th>hard</th>"
            "<th>soft</th><th>quarantined</th><th>validated at (UTC)</th><th>findings</th></tr>" + "".join(rows)
            + "</table>")


def index_page(status: dict) -> str:
    from .status import overall_status

    base = Path(next(iter(status.values()))["paths"]["index"]).parent if status else None
    body = ["<h1>Data validation — latest status per dataset</h1>",
            f"<p>Overall: {_badge(overall_status(status))}. Every batch entering the pipeline and every indicator "
            "table before publication is validated with Great Expectations. <b>Hard</b> gates (schema, keys, "
            "ranges, completeness, cross-checks) stop the run before anything is staged or published; "
            "<b>soft</b> gates (drift against the previous vintage) are reported and the run goes on.</p>",
            status_fragment(status, base)]
    return _page("Data validation — latest status", "\n".join(body))
