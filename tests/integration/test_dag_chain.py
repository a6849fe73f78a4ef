"""The real DAG chain, run with ``airflow dags test`` on a tiny synthetic sample (Corsica),
asserting on the rows written to the warehouse and on idempotency."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from .airflow_env import RUN_ORDER, airflow_env, dags_test, migrate, recount_active_industrial_by_epci

pytestmark = pytest.mark.slow


def _tables(url: str) -> dict[str, pd.DataFrame]:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        out = {
            t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY {order}"), c)
            for t, order in (("territories", "1, 2, 3"), ("indicator_values", "1, 2, 3, 4, 5"),
                             ("indicator_dictionary", "1, 2"), ("releases", "1"), ("current_release", "1"))
        }
    eng.dispose()
    return out


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    env = airflow_env(tmp)
    migrate(env)
    for dag_id in RUN_ORDER:  # as make run
        dags_test(dag_id, env)
    return tmp, env


def test_chain_publishes_a_synthetic_release(chain_run):
    tmp, env = chain_run
    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    rel = t["current_release"]["release_id"].item()
    assert rel == "2026-11"  # SIRENE stock of 1 Nov 2026 (last update 2026-10-31 in the data)
    row = t["releases"].set_index("release_id").loc[rel]
    assert bool(row["synthetic"]) is True
    levels = set(t["territories"]["level"])
    assert {"epci", "departement", "region", "ti"} <= levels
    assert set(t["territories"].loc[t["territories"]["level"] == "departement", "territory_id"]) == {"2A", "2B"}
    csvs = list((tmp / "data" / "exports" / rel).glob("indicateurs_territoires_*_SYNTHETIC.csv"))
    assert len(csvs) == 1
    exported = pd.read_csv(csvs[0], dtype={"territory_id": str})
    assert set(exported["data_status"]) == {"SYNTHETIC"}


def test_epci_establishment_counts_match_an_independent_count(chain_run, geography):
    """Recount active industrial establishments per EPCI straight from the sample zip."""
    tmp, env = chain_run
    expected = recount_active_industrial_by_epci(tmp / "data", geography)

    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    iv = t["indicator_values"]
    got = iv[(iv["level"] == "epci") & (iv["indicator_id"] == "estab_ind_active")].set_index("territory_id")["value"]
    assert len(got) > 0
    for epci, value in got.items():
        assert value == expected.get(epci, 0), epci


def test_rerun_is_idempotent(chain_run):
    tmp, env = chain_run
    url = f"sqlite:///{tmp}/data/warehouse.db"
    before = _tables(url)
    csv = next((tmp / "data" / "exports" / "latest").glob("*.csv"))  # the path users read (a release link)
    csv_before = csv.read_bytes()
    for dag_id in ("ti_indicators", "ti_publish"):
        dags_test(dag_id, env)
    after = _tables(url)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_like=False)
    assert csv.read_bytes() == csv_before


def test_report_maps_in_a_browser(chain_run, tmp_path):
    """The report of the chain (embedded default, real commune boundaries of Corsica): the overview
    map has one shape per EPCI of the release, filled by its composite class (a higher score never
    gets a lower class), the variable selector recolours, ZE and TI pages show their local map."""
    import json
    from pathlib import Path

    from .cdp_browser import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): map not checked in a browser")
    tmp, env = chain_run
    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    rel = t["current_release"]["release_id"].item()
    epci = set(t["territories"].loc[t["territories"]["level"] == "epci", "territory_id"])
    site = Path(tmp) / "data" / "reports" / rel
    with Browser(tmp_path) as b:
        b.goto((site / "index.html").as_uri())
        b.wait_for("document.querySelectorAll('#map-epci path[data-class]').length > 0")
        shapes = json.loads(b.eval("JSON.stringify(Array.from(document.querySelectorAll('#map-epci path[data-id]'))"
                                   ".map(p => [p.dataset.id, p.getAttribute('fill'), p.dataset.class]))"))
        data = json.loads(b.eval("document.querySelector('#overview-map script.map-data').textContent"))
        assert {s[0] for s in shapes} == epci and len(shapes) == len(epci)
        scores = {c: v["score"] for c, v in data["epci"]["values"].items()}
        by_score = sorted((scores[c], int(k)) for c, _, k in shapes if k != "none")
        assert len({k for _, k in by_score}) >= 3 and all(a[1] <= b[1] for a, b in zip(by_score, by_score[1:]))
        assert all(f.startswith("#") for c, f, k in shapes if scores.get(c) is not None)
        before = [s[1] for s in shapes]
        b.eval("(() => { const s = document.getElementById('map-var'); s.value = 'domain_c';"
               " s.dispatchEvent(new Event('change')); })()")
        after = json.loads(b.eval("JSON.stringify(Array.from(document.querySelectorAll('#map-epci path[data-id]'))"
                                  ".map(p => p.getAttribute('fill')))"))
        assert after != before  # domain C classes are not the composite's
        b.screenshot(tmp_path / "map.png")
        for page in sorted((site / "ze").glob("*.html"))[:1] + sorted((site / "ti").glob("*.html"))[:1]:
            b.goto(page.as_uri())
            n = b.eval("document.querySelectorAll('#local-map path[data-id]').length")
            assert n >= 1 and b.eval("document.querySelectorAll('#local-map path.focus').length") == 1, page.name
        assert b.console_errors() == []
    assert (tmp_path / "map.png").stat().st_size > 10_000


def test_whatif_panel_equals_the_python_computation(chain_run, tmp_path):
    """Issue 16: the "Vos choix" panel of the sample release recomputes in the browser exactly
    what ``indicators.whatif`` computes, for 50 random settings on every reference set (scores to
    1e-9, ranks, deciles and flags exactly); a slider moved with the keyboard changes a named
    territory's rank and flag as the Python computation says; a simulation is labelled so, in the
    page and in its CSV; official settings give the published ranks."""
    import json
    import random
    from pathlib import Path

    from territoires_industrie.indicators import whatif

    from .cdp_browser import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): what-if not checked in a browser")
    tmp, env = chain_run
    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    rel = t["current_release"]["release_id"].item()
    page = Path(tmp) / "data" / "reports" / rel / "index.html"
    rng = random.Random(20261204)
    with Browser(tmp_path, width=1200, height=1400) as b:
        b.goto(page.as_uri())
        b.wait_for("window.tiWhatIf && window.tiWhatIf.panels.length === 1")
        data = json.loads(b.eval("document.querySelector('.whatif-data').textContent"))
        assert data["synthetic"] is True and {"epci", "ze", "ti_2023_2027"} <= set(data["sets"])
        checked = 0
        for _ in range(50):
            s = {"weights": {d: rng.randint(0, 60) for d in "ABCD"}, "difficulty_percentile": rng.choice([70, 75, 80, 90]),
                 "difficulty_min_domains": rng.randint(0, 4), "gate_lq": rng.choice([0.8, 1.0, 1.2]),
                 "gate_jobs_ind": rng.choice([200, 500, 1000]), "far_percentile": rng.choice([60, 80, 95])}
            if sum(s["weights"].values()) == 0:
                s["weights"]["A"] = 1
            for rs, spec in data["sets"].items():
                js = json.loads(b.eval(f"JSON.stringify(window.tiWhatIf.compute({json.dumps(spec['rows'])}, "
                                       f"Object.assign({json.dumps(s)}, {{official: {json.dumps(data['official'])}}})))"))
                py = whatif.recompute(spec["rows"], s)
                for a, p in zip(js, py):
                    assert a["territory_id"] == p["territory_id"]
                    assert (a["score"] is None) == (p["score"] is None)
                    if p["score"] is not None:
                        assert abs(a["score"] - p["score"]) <= 1e-9
                    for k in ("rank", "decile", "gate", "in_difficulty", "far", "top10", "top20"):
                        assert a[k] == p[k], (rs, k, s, a, p)
                    assert a["percentile"] == pytest.approx(p["percentile"], abs=1e-9) if p["percentile"] is not None \
                        else a["percentile"] is None
                    checked += 1
        assert checked >= 50 * len(data["sets"])
        # official settings = the published ranking
        comp = pd.read_sql(sa.text("SELECT territory_id, reference_set, rank_national FROM composite"),
                           sa.create_engine(f"sqlite:///{tmp}/data/warehouse.db"))
        for rs, spec in data["sets"].items():
            py = {r["territory_id"]: r["rank"] for r in whatif.recompute(spec["rows"])}
            pub = comp[comp["reference_set"] == rs].set_index("territory_id")["rank_national"].to_dict()
            assert py == pub, rs
        # the keyboard moves the domain C slider; the page follows the Python computation
        rows = data["sets"][data["default_set"]]["rows"]
        b.eval("document.getElementById('whatif-wC').focus()")
        for _ in range(30):
            b.press("ArrowRight")
        w = {d: int(b.eval(f"document.getElementById('whatif-wn{d}').value")) for d in "ABCD"}
        assert w["C"] == 60 and sum(w.values()) == 100
        expect = {r["territory_id"]: r for r in whatif.recompute(rows, {"weights": w})}
        shown = json.loads(b.eval("JSON.stringify(Array.from(document.querySelectorAll('.whatif-rows tr'))"
                                  ".map(tr => [tr.dataset.id, tr.querySelector('.rank').textContent, "
                                  "tr.querySelector('.flag-diff').textContent]))"))
        for tid, rank, flag in shown:
            e = expect[tid]
            assert rank == (str(e["rank"]) if e["rank"] is not None else "–")
            assert flag == {True: "oui", False: "non", None: "?"}[e["in_difficulty"]]
        official = {r["territory_id"]: r["rank"] for r in whatif.recompute(rows)}
        assert any(official[tid] != expect[tid]["rank"] for tid in official)  # the move did change a rank
        assert b.eval("document.querySelector('.whatif-banner').hidden") is False
        assert b.eval("location.hash").startswith("#choix=")
        csv = json.loads(b.eval("JSON.stringify(window.tiWhatIf.panels[0].exportCsv())"))
        assert csv["name"].startswith("SIMULATION_") and csv["text"].startswith("# Simulation — pas les choix officiels")
        b.eval("document.getElementById('vos-choix').scrollIntoView()")
        b.screenshot(tmp_path / "whatif.png")
        # a link reproduces the settings; "Revenir aux choix officiels" resets
        url = b.eval("location.href")
        b.goto(url)
        b.wait_for("window.tiWhatIf && window.tiWhatIf.panels.length === 1")
        assert int(b.eval("document.getElementById('whatif-wn" + "C').value")) == 60
        b.click("button.whatif-reset")
        assert b.eval("document.querySelector('.whatif-banner').hidden") is True
        # performance: every EPCI of France (~1,250) recomputed after a move
        ms = b.eval("(() => { const rows = []; for (let i = 0; i < 1250; i++) { rows.push({territory_id: 'E' + i, "
                    "region: 'R' + (i % 13), domain_a: (i * 37) % 100, domain_b: (i * 53) % 100, domain_c: (i * 71) % 100, "
                    "domain_d: (i * 89) % 100, ind_lq: 1.1, jobs_ind: 900, gate_official: true}); } "
                    "const s = {weights: {A: 40, B: 20, C: 30, D: 10}, difficulty_percentile: 80, difficulty_min_domains: 2, "
                    "gate_lq: 1, gate_jobs_ind: 500, far_percentile: 80, official: {gate_lq: 1, gate_jobs_ind: 500}}; "
                    "window.tiWhatIf.compute(rows, s); const t0 = performance.now(); window.tiWhatIf.compute(rows, s); "
                    "return performance.now() - t0; })()")
        print(f"what-if: 1,250 EPCI recomputed in {ms:.1f} ms in headless Chromium")
        # the overview map follows the panel (EPCI set, a weight moved), and says it shows a simulation
        b.eval("(() => { const s = document.getElementById('whatif-set'); s.value = 'epci';"
               " s.dispatchEvent(new Event('change')); })()")
        fills = "JSON.stringify(Array.from(document.querySelectorAll('#map-epci path[data-id]')).map(p => p.getAttribute('fill')))"
        before = b.eval(fills)
        b.eval("(() => { const r = document.getElementById('whatif-wD'); r.value = 90; r.dispatchEvent(new Event('input')); })()")
        assert b.eval(fills) != before and b.eval("document.querySelector('.map-simulated-note').hidden") is False
        # the tables page has the same panel
        b.goto((page.parent / "tableaux.html").as_uri())
        b.wait_for("window.tiWhatIf && window.tiWhatIf.panels.length === 1")
        assert b.eval("document.querySelectorAll('.whatif-rows tr').length") > 0
        assert b.console_errors() == []
    assert (tmp_path / "whatif.png").stat().st_size > 10_000


def test_alertes_page_in_a_browser(chain_run, tmp_path):
    """The early warning of the chain (SYNTHETIC daily feed of the Corse sample): the Alertes
    page lists the alerted territories, most difficult first, each with its chart of closures
    against the expected band, and the SYNTHETIC label; the CLI says the same."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from .cdp_browser import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): Alertes page not checked in a browser")
    tmp, env = chain_run
    t = _tables(f"sqlite:///{tmp}/data/warehouse.db")
    rel = t["current_release"]["release_id"].item()
    page = Path(tmp) / "data" / "reports" / rel / "alertes.html"
    with Browser(tmp_path) as b:
        b.goto(page.as_uri())
        b.wait_for("document.querySelector('#alerts-as-of') !== null")
        rows = json.loads(b.eval("JSON.stringify(Array.from(document.querySelectorAll('#alerts-table tbody tr'))"
                                 ".map(r => [r.dataset.level, r.dataset.territory, r.querySelectorAll('svg rect.obs').length]))"))
        assert rows and all(n == 3 for _, _, n in rows)  # 7, 30 and 90 days
        assert "SYNTHETIC" in b.eval("document.getElementById('alerts-as-of').textContent")
        assert b.eval("document.querySelectorAll('#events-table tbody tr').length") > 0
        assert b.eval("document.querySelector('header nav a[href=\"alertes.html\"]') !== null")
        b.screenshot(tmp_path / "alertes.png")
        assert b.console_errors() == []
    out = subprocess.run([sys.executable, "-m", "territoires_industrie.cli", "alerts", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout[out.stdout.index("{"):])
    assert [(a["level"], a["territory_id"]) for a in got["alerts"]] == [(lv, tid) for lv, tid, _ in rows]
