"""The review page opened in a real headless browser (Debian's chromium, command-line mode):
the rendered DOM shows the candidacy, its figures, the thresholds and the SYNTHETIC banner; a
name such as ``<script>alert(1)</script>`` is text, never an element; a screenshot is taken;
printed to PDF the page takes one or two A4 pages. Needs ``apt-get install -y chromium``;
skipped (with that message) when it is not installed."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from territoires_industrie import warehouse
from territoires_industrie.review import from_args, load_review_context, review_batch, review_candidacy

from ..unit.review_world import BEAUNE, CLUSES, DIJON, EPCI, FAUCIGNY, publish_world, write_geometry

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NBSP, NNBSP = "\u00a0", "\u202f"
NAME = "<script>alert(1)</script> Dijon-Beaune"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium): browser test skipped")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    out = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review_browser")
    eng = warehouse.get_engine(f"sqlite:///{tmp}/w.db")
    publish_world(eng, write_geometry(tmp / "geo"))
    ctx = load_review_context(eng)
    eng.dispose()
    out = tmp / "reviews"
    small = review_candidacy(from_args(NAME, epci=f"{DIJON},{BEAUNE}"), ctx, out_root=out)
    # a crowded page: 4 EPCI (the reported cap), a masked member and five input problems
    crowded = review_candidacy(from_args("Vallée de l'Arve élargie", epci=f"{FAUCIGNY},{CLUSES},{DIJON},{BEAUNE},"
                                         "21003,200000173,243500139,ti-2701,2000001"), ctx, out_root=out)
    batch = review_batch([from_args(f"Lot {i}", epci=list(EPCI)[i:i + 2]) for i in range(5)], ctx, out_root=out,
                         batch_name="lot-navigateur")
    return {"tmp": tmp, "small": Path(small.paths["html"]), "crowded": Path(crowded.paths["html"]),
            "batch": Path(batch["paths"]["html"])}


def test_rendered_page_shows_figures_thresholds_and_banner(reviews, tmp_path):
    dom = _chromium(tmp_path, "--dump-dom", reviews["small"].as_uri()).stdout.replace("&nbsp;", NBSP)
    assert '<h1 id="candidacy-name">&lt;script&gt;alert(1)&lt;/script&gt; Dijon-Beaune</h1>' in dom
    # the name is text: the only script elements are the what-if panel's data and code, none holds the name
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", dom, re.S | re.I)
    assert len(scripts) == 2 and re.findall(r"<script([^>]*)>", dom)[0] == ' type="application/json" class="whatif-data"'
    assert not any("alert(1)" in sc for sc in scripts)
    assert 'id="synthetic-banner"' in dom and "DONNÉES SYNTHÉTIQUES" in dom
    assert f'<b id="population">24{NNBSP}000</b>' in dom
    row = re.search(r'<tr data-indicator="jobs_ind".*?</tr>', dom, re.S).group(0)
    assert f"1{NNBSP}500{NBSP}emplois" in row
    row = re.search(r'<tr data-indicator="unemployment_rate".*?</tr>', dom, re.S).group(0)
    assert f"7,3{NBSP}%" in row and f"660 / 9{NNBSP}000" in row  # sum of unemployed / sum of active people
    flags = re.search(r'<table class="flags" id="flags">.*?</table>', dom, re.S).group(0)
    assert "LQ ≥ 1 et ≥ 500 emplois industriels" in flags and "≥ 50% de la population dans la zone d'emploi" in flags
    assert 'id="thresholds"' in dom and "P(top 20 %) ≥ 0,8" in dom
    assert "Release <b id=\"release-id\">2026-11</b>" in dom and "sirene_stock 2026-11-01" in dom


def test_screenshot_is_a_real_page(reviews, tmp_path):
    shot = tmp_path / "review.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1240,1754", reviews["small"].as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1240, 1754)
    assert len(data) > 60_000  # text, tables and the banner: a blank page of this size is a few kB


@pytest.mark.parametrize("which", ["small", "crowded"])
def test_printed_on_one_or_two_a4_pages(reviews, tmp_path, which):
    pdf = tmp_path / f"{which}.pdf"
    _chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", reviews[which].as_uri())
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert 1 <= _pages(pdf) <= 2
    assert b"/MediaBox [0 0 594.95996 841.91998]" in pdf.read_bytes() or b"/MediaBox [0 0 595" in pdf.read_bytes()


def test_batch_summary_links_every_reviewed_candidacy(reviews, tmp_path):
    dom = _chromium(tmp_path, "--dump-dom", reviews["batch"].as_uri()).stdout
    links = re.findall(r'<a href="(\.\./[^"]+/review\.html)">', dom)
    assert len(links) == 5
    for link in links:
        assert (reviews["batch"].parent / link).resolve().is_file()
    ranks = [int(r) for r in re.findall(r'<tr class="">\s*<td>(\d+)</td>', dom)]
    assert ranks == [1, 2, 3, 4, 5]


def test_whatif_panel_of_the_review_equals_the_python_computation(reviews, tmp_path):
    """Issue 16: the review's "Vos choix" panel places the candidacy in each reference set as
    ``indicators.whatif.place_group`` does, for 50 random settings (scores to 1e-9, percentiles,
    rank and flags exactly); official settings give the page's published figures; a weight moved
    with the keyboard shows the simulation banner; screenshot."""
    import json
    import random

    from territoires_industrie.indicators import whatif

    from .cdp_browser import Browser

    page = reviews["small"]
    doc = json.loads((page.parent / "review.json").read_text(encoding="utf-8"))
    rng = random.Random(16)
    with Browser(tmp_path, width=1000, height=1400) as b:
        b.goto(page.as_uri())
        b.wait_for("window.tiWhatIf && window.tiWhatIf.panels.length === 1")
        data = json.loads(b.eval("document.querySelector('.whatif-data').textContent"))
        assert set(data["sets"]) == {c["reference_set"] for c in doc["composite"]}
        for rs, spec in data["sets"].items():
            off = whatif.place_group(spec["group"], spec["reference"])
            c = next(c for c in doc["composite"] if c["reference_set"] == rs)
            assert off["percentile"] == pytest.approx(c["percentile_national"], abs=1e-9)
        for _ in range(50):
            s = {"weights": {d: rng.randint(0, 60) for d in "ABCD"}, "difficulty_percentile": rng.choice([50, 70, 80, 90]),
                 "difficulty_min_domains": rng.randint(0, 4), "gate_lq": rng.choice([0.8, 1.0, 1.5]),
                 "gate_jobs_ind": rng.choice([200, 500, 5000]), "far_percentile": rng.choice([50, 80, 95])}
            if sum(s["weights"].values()) == 0:
                s["weights"]["B"] = 1
            for rs, spec in data["sets"].items():
                js = json.loads(b.eval(f"JSON.stringify(window.tiWhatIf.placeGroup({json.dumps(spec['group'])}, "
                                       f"{json.dumps(spec['reference'])}, Object.assign({json.dumps(s)}, "
                                       f"{{official: {json.dumps(data['official'])}}})))"))
                py = whatif.place_group(spec["group"], spec["reference"], s)
                for k in ("rank", "in_difficulty", "far", "gate", "percentile", "percentile_regional"):
                    assert js[k] == py[k], (rs, k, s)
                assert (js["score"] is None) == (py["score"] is None)
                if py["score"] is not None:
                    assert abs(js["score"] - py["score"]) <= 1e-9
        assert b.eval("document.querySelector('.whatif-review .whatif-banner').hidden") is True
        b.eval("document.getElementById('rw-D').focus()")
        for _ in range(15):
            b.press("ArrowRight")
        assert b.eval("document.querySelector('input[name=wD][type=number]').value") == "25"
        assert b.eval("document.querySelector('.whatif-review .whatif-banner').hidden") is False
        b.eval("document.getElementById('vos-choix').scrollIntoView()")
        b.screenshot(tmp_path / "review-whatif.png")
        assert b.console_errors() == []
    assert (tmp_path / "review-whatif.png").stat().st_size > 10_000
