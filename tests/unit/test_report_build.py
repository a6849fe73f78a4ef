"""The static report built from the warehouse (HTML as written; the browser test renders it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from territoires_industrie import warehouse
from territoires_industrie.config import get_settings
from territoires_industrie.publish import build_exports, load_release
from territoires_industrie.report import build_report, compute_changes
from territoires_industrie.report.fmt import fmt_number, fmt_value

from .report_fixture import EPCI_CODES, SCRIPT_LABEL, fixture_tables, publish_fixture, write_geometry

NBSP = "\u00a0"
NNBSP = "\u202f"  # thousands separator


@pytest.fixture()
def engine(tmp_path):
    e = warehouse.get_engine(f"sqlite:///{tmp_path}/w.db")
    publish_fixture(e)
    yield e
    e.dispose()


@pytest.fixture()
def settings(tmp_path):
    return get_settings({"TI_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One site built once for the read-only tests of this module."""
    tmp = tmp_path_factory.mktemp("site")
    eng = warehouse.get_engine(f"sqlite:///{tmp}/w.db")
    publish_fixture(eng)
    settings = get_settings({"TI_DATA_DIR": str(tmp / "data")})
    out = build_report(eng, settings.reports_dir, settings=settings, geometry_dir=write_geometry(tmp / "geo").parent)
    eng.dispose()
    return Path(out["path"]), out


def test_french_number_formats():
    assert fmt_value(12.4949, "%") == f"12,5{NBSP}%"
    assert fmt_value(4321.0, "emplois") == f"4{NNBSP}321{NBSP}emplois"
    assert fmt_value(-0.04, "%") == f"0,0{NBSP}%"  # no "-0,0"
    assert fmt_value(3.0, "classe 1-5") == f"classe{NBSP}3"
    assert fmt_value(None, "%") == "–" and fmt_value(float("nan"), "%") == "–"
    assert fmt_number(1234567.891, 2) == f"1{NNBSP}234{NNBSP}567,89"


def test_site_pages_and_latest_redirect(site):
    path, out = site
    reports_dir = path.parent
    assert out["release_id"] == "2026-11" and out["pages"] == 5 and out["previous_release"] == "2026-10"
    assert path.name == "2026-11" and reports_dir.name == "reports"
    for name in ("index.html", "tableaux.html", "evolutions.html", "validation.html", "telechargements.html",
                 "ti/TI1-0001.html", "ti/TI1-0002.html", "ti/TI1-0003.html", "ze/8405.html", "ze/2701.html",
                 "static/plotly.min.js", "static/tabulator.min.js", "static/tabulator_simple.min.css",
                 "static/LICENSE-tabulator.txt", "static/LICENSE-plotly.txt",
                 "downloads/indicateurs_territoires_2026-11_SYNTHETIC.xlsx",
                 "downloads/indicateurs_territoires_2026-11_SYNTHETIC_fr.csv"):
        assert (path / name).is_file(), name
    latest = (reports_dir / "latest" / "index.html").read_text()
    assert 'url=../2026-11/index.html' in latest
    assert not [p for p in reports_dir.iterdir() if p.name.startswith(".")]  # no temp folder left
    # offline: no script, style or link fetched from the network
    for page in path.rglob("*.html"):
        html = page.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', html), page


def test_territory_page_shows_its_figures_escaped(site):
    path, _ = site
    html = (path / "ti" / "TI1-0001.html").read_text()
    assert "Vallée de l&#39;Arve" in html or "Vallée de l'Arve" in html
    assert f"12,5{NBSP}%" in html  # a1, shrunk value
    assert f"14,0{NBSP}%" in html and "0,80" in html  # observed value and weight
    assert f"4{NNBSP}321{NBSP}emplois" in html
    assert "fiabilité limitée" in html
    assert '<div class="v" id="composite-rank">1 / 3</div>' in html
    # percentile of a1 among the 3 TI of the phase: values 12.49, 5.0, 20.0 -> 2nd of 3 -> 67
    row = re.search(r'<tr data-indicator="a1_ind_jobs_decline">.*?</tr>', html, re.S).group(0)
    assert ">67<" in row
    bad = (path / "ti" / "TI1-0002.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in bad
    assert "secret B" in bad
    for page in path.rglob("*.html"):
        assert SCRIPT_LABEL not in page.read_text(), page  # never raw, neither in HTML nor in embedded JSON


def test_synthetic_banner_on_every_page(site):
    path, _ = site
    for page in path.rglob("*.html"):
        assert 'id="synthetic-banner"' in page.read_text(), page


def test_map_from_fixture_geometry(site, engine, settings, tmp_path):
    path, out = site
    assert out["maps"] == ["epci"]
    html = (path / "index.html").read_text()
    svg = re.search(r'<svg id="map-epci".*?</svg>', html, re.S).group(0)
    ids = re.findall(r'<path data-id="([^"]+)"', svg)
    assert sorted(ids) == sorted(EPCI_CODES)  # one shape per EPCI of the release
    assert "200023414" not in svg  # a feature of no territory of the release is not drawn
    titles = " ".join(re.findall(r"<title>(.*?)</title>", svg))
    for label in ("CC Faucigny-Glières", "Dijon Métropole", "Grand Besançon Métropole"):
        assert label in titles
    assert "rang" in titles and "indice composite" in titles
    data = json.loads(re.search(r'<script type="application/json" class="map-data">(.*?)</script>', html, re.S).group(1))
    assert set(data["epci"]["values"]) == set(EPCI_CODES)
    assert 'id="map-unavailable"' in html and "zones d&#39;emploi" in html  # no ZE geometry: said so
    assert (path / "static" / "maps.js").exists() and "cdn" not in svg.lower() and "http" not in svg.replace(
        "http://www.w3.org/2000/svg", "")
    # without any geometry, the map section says so and the charts remain
    out2 = build_report(engine, tmp_path / "reports2", settings=settings)
    html2 = (Path(out2["path"]) / "index.html").read_text()
    assert out2["maps"] == [] and 'id="map-unavailable"' in html2 and 'data-plotly="chart-distribution"' in html2


def test_changes_since_previous_release(engine, site):
    rd, prev = load_release(engine, "2026-11"), load_release(engine, "2026-10")
    ch = compute_changes(rd, prev).set_index(["level", "territory_id"])
    assert ch.loc[("ti", "TI1-0001"), "rank_delta"] == 1  # 2 -> 1: now ranked more difficult
    assert ch.loc[("ti", "TI1-0003"), "rank_delta"] == -1
    assert bool(ch.loc[("ti", "TI1-0001"), "uncertain_changed"]) and bool(ch.loc[("ti", "TI1-0001"), "decile_changed"])
    assert not bool(ch.loc[("ti", "TI1-0003"), "uncertain_changed"])
    assert ch.loc[("ti", "TI1-0002"), "secrecy_changes"] == "jobs_ind (V → B)"
    assert bool(ch.loc[("ti", "TI1-0002"), "moved"]) and not bool(ch.loc[("ze", "8405"), "moved"])
    path, _ = site
    html = (path / "evolutions.html").read_text()
    assert "Release 2026-11 comparée à 2026-10." in html
    data = json.loads(re.search(r'data-table="table-changes">(.*?)</script>', html, re.S).group(1))["data"]
    assert {r["territory_id"] for r in data} == {"TI1-0001", "TI1-0002", "TI1-0003"}


def test_first_release_and_release_without_composite(tmp_path, settings):
    eng = warehouse.get_engine(f"sqlite:///{tmp_path}/first.db")
    t = fixture_tables()
    t["composite"] = None
    warehouse.publish_release(eng, "2026-09", t, {"synthetic": False})
    out = build_report(eng, tmp_path / "r", settings=None)
    site = Path(out["path"])
    assert "Classement non disponible dans cette release" in (site / "evolutions.html").read_text()
    page = (site / "ti" / "TI1-0001.html").read_text()
    assert "Indice composite non disponible dans cette release" in page and f"12,5{NBSP}%" in page
    assert 'id="synthetic-banner"' not in page
    assert "non disponible" in (site / "index.html").read_text()
    assert "Détail des contrôles non disponible" in (site / "validation.html").read_text()
    eng.dispose()


def test_rebuild_replaces_the_site_atomically(engine, settings, tmp_path):
    out = build_report(engine, settings.reports_dir, settings=settings)
    t = fixture_tables("2026-11")
    t["territories"].loc[t["territories"]["territory_id"] == "TI1-0001", "label"] = "Arve renommée"
    warehouse.publish_release(engine, "2026-11", t, {"synthetic": True})
    out2 = build_report(engine, settings.reports_dir, settings=settings)
    assert out2["path"] == out["path"]
    assert "Arve renommée" in (Path(out2["path"]) / "ti" / "TI1-0001.html").read_text()
    assert sorted(p.name for p in settings.reports_dir.iterdir()) == ["2026-11", "latest"]
    # an older release can be rebuilt without moving "latest"
    old = build_report(engine, settings.reports_dir, "2026-10", settings=settings)
    assert old["latest"] is None and "2026-11" in (settings.reports_dir / "latest" / "index.html").read_text()
    assert "Première release publiée (2026-10)" in (Path(old["path"]) / "evolutions.html").read_text()


def test_downloads_are_the_release_exports(engine, settings, tmp_path):
    exp = tmp_path / "exports" / "2026-11"
    build_exports(load_release(engine), exp)
    out = build_report(engine, settings.reports_dir, settings=settings, exports_dir=exp)
    dl = Path(out["path"]) / "downloads"
    for f in exp.iterdir():
        assert (dl / f.name).read_bytes() == f.read_bytes(), f.name
    html = (Path(out["path"]) / "telechargements.html").read_text()
    assert 'href="downloads/indicateurs_territoires_2026-11_SYNTHETIC.xlsx"' in html


def test_validation_status_is_shown(engine, settings, monkeypatch):
    import territoires_industrie.validation as validation

    status = {"urssaf": {"dataset": "urssaf", "title": "URSSAF jobs", "vintage": "2025", "status": "warnings",
                         "rows": 1200, "checks": 23, "hard_failures": 0, "soft_failures": 1, "quarantine_rows": 4,
                         "failures": [{"severity": "soft", "text": "jobs_total: 4 rows outside the expected range"}]}}
    monkeypatch.setattr(validation, "latest_status", lambda s: status)
    out = build_report(engine, settings.reports_dir, settings=settings)
    html = (Path(out["path"]) / "validation.html").read_text()
    assert "URSSAF jobs" in html and "jobs_total: 4 rows outside the expected range" in html
    assert "avertissements" in html and "2026-10" in html  # every release with its status


def test_report_command_rebuilds_from_the_warehouse(tmp_path, monkeypatch, capsys):
    from territoires_industrie import cli

    data = tmp_path / "data"
    monkeypatch.setenv("TI_DATA_DIR", str(data))
    monkeypatch.delenv("TI_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("TI_GEOMETRY_DIR", raising=False)
    assert cli.main(["report"]) == 1
    assert "No release published yet" in capsys.readouterr().out
    eng = warehouse.get_engine(f"sqlite:///{data}/warehouse.db")
    publish_fixture(eng)
    eng.dispose()
    assert cli.main(["report", "--exports"]) == 0
    out = capsys.readouterr().out
    index = data / "reports" / "2026-11" / "index.html"
    assert f"Open the report : {index.as_uri()}" in out and "[SYNTHETIC data]" in out
    assert index.is_file() and (data / "exports" / "2026-11" / "MANIFEST.json").is_file()
    assert cli.main(["report", "--release", "2025-01"]) == 1
    assert "release '2025-01' is not in the warehouse (complete releases: 2026-10, 2026-11)" in capsys.readouterr().out


def test_methode_page_defines_every_indicator_from_the_release_dictionary(site, engine):
    """One source of truth: the definitions on the page are the release's data dictionary rows;
    every indicator named in a table or on a territory page links to its definition there."""
    import html as htmllib

    path, _ = site
    page = (path / "methode.html").read_text(encoding="utf-8")
    dic = warehouse.read_release(engine, "2026-11", "indicator_dictionary")
    assert len(dic) > 0
    for r in dic.to_dict("records"):
        anchor = page.index(f'id="ind-{r["indicator_id"]}"')
        block = htmllib.unescape(page[anchor:page.index("</div>", anchor)])
        assert r["label_fr"] in block and (r["formula"] or "") in block, r["indicator_id"]
    for section in ("usage", "composite", "incertitude", "lissage", "secret", "sources"):
        assert f'id="{section}"' in page
    assert "classement incertain" in page.lower() and "ne doit pas servir" in page
    # every page links to the method; indicator links from the territory pages and the tables resolve
    index = (path / "index.html").read_text(encoding="utf-8")
    assert 'href="methode.html"' in index
    anchors = set(re.findall(r'id="(ind-[^"]+)"', page))
    linked = set()
    for p in (path / "ti").glob("*.html"):
        linked |= set(re.findall(r'href="\.\./methode\.html#(ind-[^"]+)"', p.read_text(encoding="utf-8")))
    tables = (path / "tableaux.html").read_text(encoding="utf-8")
    linked |= set(re.findall(r'"definition": ?"methode\.html#(ind-[^"]+)"', tables))
    assert linked and linked <= anchors, linked - anchors


def test_a_definition_changed_in_the_dictionary_changes_the_page(engine, settings, tmp_path):
    """The page does not keep its own copy of a definition."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE indicator_dictionary SET formula = 'FORMULE-DE-TEST' "
                             "WHERE indicator_id = (SELECT MIN(indicator_id) FROM indicator_dictionary)"))
    out = build_report(engine, tmp_path / "r", settings=settings)
    assert "FORMULE-DE-TEST" in (Path(out["path"]) / "methode.html").read_text(encoding="utf-8")


def test_candidacy_map_draws_the_members_over_their_zones():
    """The review's small map: the members coloured by their class among EPCI (hatched when the
    score is missing), the neighbours grey, the zones d'emploi as outlines; none without geometry."""
    import pandas as pd
    from territoires_industrie.report.geometry import LevelGeometry
    from territoires_industrie.report.maps import candidacy

    def sq(x, y):
        return [[(x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1), (x, y)]]

    epci = LevelGeometry("epci", Path("epci.geojson"), {f"E{i}": sq(i, 0) for i in range(8)}, [], 0, source="test")
    ze = LevelGeometry("ze", Path("ze.geojson"), {"Z1": [[(4, 0), (8, 0), (8, 1), (4, 1), (4, 0)]]}, [], 0)
    comp = pd.DataFrame({"territory_id": [f"E{i}" for i in range(8)], "reference_set": "epci", "label": "x",
                         "score": [10.0, 20, 30, 40, 50, 60, 70, None], "rank_national": range(8, 0, -1),
                         "n_reference": 8, "mc_rank_p05": 1, "mc_rank_p95": 8,
                         **{f"domain_{d}": 1.0 for d in "abcd"}, "url": None})
    m = candidacy({"epci": epci, "ze": ze}, ["E6", "E7", "E99"], comp)
    svg = m["svg"]
    assert re.findall(r'<path data-id="([^"]+)"', svg) == ["E6", "E7"] and m["missing"] == ["E99"]
    fills = dict(re.findall(r'<path data-id="([^"]+)"[^>]*fill="([^"]+)"', svg))
    assert fills["E6"].startswith("#") and fills["E7"] == "url(#hatch-map-candidacy)"  # missing: hatched, not 0
    assert 'stroke-dasharray' in svg  # the zone d'emploi outline
    assert candidacy({"ze": ze}, ["E6"], comp) is None
