"""The HTML report opened in a real headless browser (Debian's chromium, driven over the
DevTools protocol): figures visible on a territory page, sorting and filtering work, a label
such as ``<script>alert(1)</script>`` is shown as text and never runs, the SYNTHETIC banner
is visible, the map is drawn from a fixture geometry, no JavaScript error. Needs
``apt-get install -y chromium``; skipped (with that message) when it is not installed."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from territoires_industrie import warehouse
from territoires_industrie.config import get_settings
from territoires_industrie.report import build_report

from ..unit.report_fixture import SCRIPT_LABEL, publish_fixture, write_geometry
from .cdp_browser import Browser, chromium_path

NBSP = "\u00a0"
NNBSP = "\u202f"  # thousands separator

pytestmark = [
    pytest.mark.skipif(chromium_path() is None,
                       reason="chromium is not installed (apt-get install -y chromium): browser test skipped"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("websockets", reason="the websockets package drives Chromium over the DevTools protocol")
    tmp = tmp_path_factory.mktemp("report")
    eng = warehouse.get_engine(f"sqlite:///{tmp}/w.db")
    publish_fixture(eng)
    settings = get_settings({"TI_DATA_DIR": str(tmp / "data")})
    out = build_report(eng, settings.reports_dir, settings=settings, geometry_dir=write_geometry(tmp / "geo").parent)
    eng.dispose()
    return Path(out["path"])


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    with Browser(tmp_path_factory.mktemp("chromium")) as b:
        yield b


def _open(browser: Browser, page: Path) -> None:
    browser.goto(page.as_uri())
    browser.wait_for("document.documentElement.dataset.reportReady === '1'")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_territory_page_shows_its_figures(site, browser, tmp_path):
    _open(browser, site / "ti" / "TI1-0001.html")
    assert browser.eval("document.getElementById('territory-name').textContent") == "Vallée de l'Arve"
    assert browser.eval("document.getElementById('composite-rank').textContent") == "1 / 3"
    assert browser.eval("document.getElementById('composite-score').textContent") == "61,5"
    a1 = browser.eval("document.querySelector('tr[data-indicator=\"a1_ind_jobs_decline\"] td.value').textContent")
    assert a1.startswith(f"12,5{NBSP}%") and f"observé 14,0{NBSP}%, poids 0,80" in a1
    jobs = browser.eval("document.querySelector('tr[data-indicator=\"jobs_ind\"] td.value').textContent")
    assert jobs == f"4{NNBSP}321{NBSP}emplois"
    # the charts were drawn by the vendored Plotly (domains, history over 2 releases, levels t0 -> t1)
    browser.wait_for("document.querySelectorAll('#chart-domains .main-svg').length > 0")
    browser.wait_for("document.querySelectorAll('#chart-history .scatterlayer .point').length === 2")
    labels = browser.eval("document.getElementById('chart-levels').textContent")
    assert f"4{NNBSP}938{NBSP}emplois" in labels and f"4{NNBSP}321{NBSP}emplois" in labels  # 2020 -> 2025
    assert browser.console_errors() == []
    shot = browser.screenshot(tmp_path / "territory.png", full_page=True)
    width, height = _png_size(shot)
    assert width == 1280 and height > 900 and shot.stat().st_size > 20_000


def test_script_label_is_text_and_never_runs(site, browser):
    _open(browser, site / "ti" / "TI1-0002.html")
    assert browser.eval("document.getElementById('territory-name').textContent") == SCRIPT_LABEL
    assert browser.eval("window.__alerts.length") == 0
    # no executable <script> carries the label (JSON data blocks are not executed)
    assert browser.eval("[...document.scripts].filter(s => (!s.type || s.type === 'text/javascript')"
                        " && s.textContent.includes('alert(1)')).length") == 0
    assert "secret B" in browser.eval("document.querySelector('tr[data-indicator=\"jobs_ind\"]').textContent")
    _open(browser, site / "tableaux.html")
    browser.wait_for("document.querySelectorAll('#table-ti .tabulator-row').length === 3")
    cells = browser.eval("[...document.querySelectorAll('#table-ti .tabulator-cell[tabulator-field=\"label\"]')]"
                         ".map(c => c.textContent)")
    assert SCRIPT_LABEL in cells and browser.eval("window.__alerts.length") == 0


def test_synthetic_banner_is_visible(site, browser):
    for page in ("index.html", "tableaux.html", "ze/8405.html"):
        _open(browser, site / page)
        box = browser.eval("(() => { const b = document.getElementById('synthetic-banner');"
                           " const r = b.getBoundingClientRect(); const s = getComputedStyle(b);"
                           " return {h: r.height, top: r.top, vis: s.visibility, disp: s.display, text: b.innerText}; })()")
        assert box["h"] > 20 and box["top"] == 0 and box["vis"] == "visible" and box["disp"] != "none", page
        assert "DONNÉES SYNTHÉTIQUES" in box["text"] and "SYNTHETIC SAMPLE DATA" in box["text"], page


def test_sorting_and_filtering_the_table(site, browser, tmp_path):
    _open(browser, site / "tableaux.html")
    first = "document.querySelector('#table-ti .tabulator-row .tabulator-cell[tabulator-field=\"label\"]').textContent"
    browser.wait_for("document.querySelectorAll('#table-ti .tabulator-row').length === 3")
    assert browser.eval(first) == "Vallée de l'Arve"  # initial order: rank 1 first
    # a user clicks the "Population" header: largest first
    browser.click("#table-ti .tabulator-col[tabulator-field=\"population\"] .tabulator-col-title")
    browser.wait_for(f"{first} === 'Bassin minier'")
    assert browser.eval("[...document.querySelectorAll('#table-ti .tabulator-cell[tabulator-field=\"population\"]')]"
                        ".map(c => c.textContent)") == [f"250{NNBSP}000", f"45{NNBSP}678", f"12{NNBSP}000"]
    browser.screenshot(tmp_path / "tables-sorted.png")
    # filter by département: open the header filter list, pick one
    browser.click("#table-ti .tabulator-col[tabulator-field=\"departement\"] .tabulator-header-filter input")
    browser.wait_for("document.querySelectorAll('.tabulator-edit-list-item').length === 3")
    items = browser.eval("[...document.querySelectorAll('.tabulator-edit-list-item')].map(e => e.textContent)")
    assert items == ["Côte-d'Or (21)", "Haute-Savoie (74)", "Pas-de-Calais (62)"]
    browser.click(".tabulator-edit-list-item:nth-child(1)")
    browser.wait_for("document.querySelectorAll('#table-ti .tabulator-row').length === 1")
    assert browser.eval(first) == SCRIPT_LABEL
    assert browser.eval("document.querySelector('[data-count-for=\"table-ti\"]').textContent") == "1"
    # and by région through the API (same header filter)
    browser.eval("TIReport.tables['table-ti'].clearHeaderFilter();"
                 " TIReport.tables['table-ti'].setHeaderFilterValue('region', 'Auvergne-Rhône-Alpes (84)')")
    browser.wait_for(f"document.querySelectorAll('#table-ti .tabulator-row').length === 1 && {first} === \"Vallée de l'Arve\"")
    # a deep link opens another level sorted: zones d'emploi by ascending composite
    browser.goto((site / "index.html").as_uri())
    browser.goto((site / "tableaux.html").as_uri() + "#niveau=ze&tri=score:asc")
    browser.wait_for("!document.getElementById('panel-ze').hidden")
    browser.wait_for("document.querySelector('#table-ze .tabulator-row .tabulator-cell[tabulator-field=\"label\"]')"
                     "?.textContent === 'Dijon'")
    assert browser.console_errors() == []


def test_overview_map_changes_and_downloads(site, browser):
    _open(browser, site / "index.html")
    browser.wait_for("document.querySelectorAll('#map-epci path[data-id]').length === 3")
    browser.wait_for("document.querySelectorAll('#chart-distribution .main-svg').length > 0")
    text = browser.eval("document.body.innerText")
    assert "Carte non disponible pour : zones d'emploi" in text
    assert "Vallée de l'Arve" in browser.eval("document.querySelector('.top-table').innerText")
    _open(browser, site / "evolutions.html")
    browser.wait_for("document.querySelectorAll('#table-changes .tabulator-row').length === 3")
    assert "Release 2026-11 comparée à 2026-10." in browser.eval("document.body.innerText")
    _open(browser, site / "telechargements.html")
    href = browser.eval("document.querySelector('#downloads a').href")
    assert href.endswith("indicateurs_territoires_2026-11_SYNTHETIC.xlsx")
    assert Path(href.removeprefix("file://")).is_file()
    assert browser.console_errors() == []
