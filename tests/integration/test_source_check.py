"""``ti_source_check`` against the local replay of every live source (issue 14): each state
(new vintage, unchanged, contract drift, unreachable, not checked) is produced by what the
services answer, read back from the ``source_status`` table and from ``ti-indicators sources``
the way a data engineer reads it, and notified without any secret."""

from __future__ import annotations

import json
import re

import pytest
from territoires_industrie import cli, pipeline
from territoires_industrie.config import get_settings

from . import cassettes, melodi_fake
from . import sources_live_server as srv

KEY = "TEST-KEY-not-a-real-one-4242"
FILES = "/fr/statistiques/fichier"


def _serve(httpserver, overrides=()) -> list:
    """The replay universe, metadata answers included; ``overrides`` (path, kwargs) win (first match)."""
    hook: list = []
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda r: (hook.append(r.get_data(as_text=True)), __import__("werkzeug").Response("ok"))[1])
    for path, kw in overrides:
        httpserver.expect_request(path).respond_with_data(**kw)
    it = cassettes.one("sirene_api/informations_3.11.yaml", "/informations")
    cassettes.respond(httpserver, "/api-sirene/3.11/informations", it)
    srv.serve_universe(httpserver)
    # geography files of the years after the reference: not published (yet)
    httpserver.expect_request(re.compile(rf"^{FILES}/(2510634|4652957)/.*")).respond_with_data("", status=404)
    return hook


@pytest.fixture
def settings(httpserver, tmp_path, monkeypatch):
    srv.live_env(monkeypatch, httpserver, tmp_path, TI_INSEE_API_KEY=KEY,
                 TI_NOTIFY_WEBHOOK_URL=httpserver.url_for("/hook"), TI_HTTP_MAX_RETRIES="1")
    return get_settings()


def _cli(capsys) -> tuple[int, str]:
    code = cli.main(["sources"])
    return code, capsys.readouterr().out


def test_first_check_then_unchanged(settings, httpserver, capsys):
    _serve(httpserver)
    first = pipeline.run_source_check(settings)
    assert first["states"] == dict.fromkeys(first["states"], "new vintage"), first
    assert set(first["states"]) == {"sirene_stock", "sirene_history", "sirene_updates", "urssaf", "census",
                                    "chomage_ze", "chomage_bdm", "geography", "ti_2023"}
    # metadata only: no data file was downloaded
    paths = [req.path for req, _ in httpserver.log]
    assert not any(p.endswith((".zip", ".xlsx", ".csv", ".parquet")) and req.method == "GET"
                   for (req, _), p in zip(httpserver.log, paths)), paths
    assert not any("/melodi/data/" in p or p.endswith("/exports/csv") for p in paths)
    second = pipeline.run_source_check(settings)
    assert set(second["states"].values()) == {"unchanged"}, second
    code, out = _cli(capsys)
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert set(lines) == set(first["states"]) and all("unchanged" in ln for ln in lines.values())


def test_new_vintage_drift_and_unreachable_are_told_apart(settings, httpserver, capsys, monkeypatch):
    _serve(httpserver)
    pipeline.run_source_check(settings)
    httpserver.clear()
    u = httpserver.url_for
    newer_stock = srv.datagouv_sirene(u, stock_size=len(srv.stock_zip()), stock_modified="2026-12-01T06:10:00.000+00:00")
    hook = _serve(httpserver, overrides=[
        ("/api/1/datasets/5b7ffc618b4c4169d30727e0/", {"response_data": json.dumps(newer_stock),
                                                       "content_type": "application/json"}),
        # open.urssaf.fr down
        ("/ods/catalog/datasets/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last",
         {"response_data": "maintenance", "status": 503}),
        # the EPCI composition moved
        (f"{FILES}/2510634/Intercommunalite_Metropole_au_01-01-2023.zip", {"response_data": "", "status": 404}),
        # a new unemployment quarter
        ("/fr/statistiques/1893230", {"response_data": srv.CHOMAGE_PAGE.replace("t2-2026", "t3-2026"),
                                      "content_type": "text/html"}),
    ])
    # Melodi now holds the 2012/2017/2023 census set
    with monkeypatch.context() as m:
        m.setattr(melodi_fake, "HELD", {ds: (dims, (2012, 2017, 2023) if ds != "DS_RP_SERIE_HISTORIQUE"
                                             else (*melodi_fake.HISTORY[:-3], 2012, 2017, 2023))
                                        for ds, (dims, _) in melodi_fake.HELD.items()})
        res = pipeline.run_source_check(settings)
    st = res["states"]
    # the stock and its history are republished together
    assert st["sirene_stock"] == st["sirene_history"] == st["chomage_ze"] == "new vintage"
    assert st["urssaf"] == "unreachable"
    assert st["geography"] == "contract drift" and st["census"] == "contract drift"
    assert st["sirene_updates"] == st["ti_2023"] == st["chomage_bdm"] == "unchanged"
    code, out = _cli(capsys)
    assert code == 1  # a data engineer's script sees that something needs attention
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert "2026-12-01" in rows["sirene_stock"] and "t3-2026" in rows["chomage_ze"]
    assert "census set replaced" in rows["census"] and "P22_* -> P23_*" in rows["census"]
    assert "Intercommunalite_Metropole_au_01-01-2023.zip" in rows["geography"] and "404" in rows["geography"]
    assert "503" in rows["urssaf"] or "Retr" in rows["urssaf"]
    # notified once, naming the sources that need attention, never the key
    assert len(hook) == 1 and "urssaf" in hook[0] and "census" in hook[0] and "geography" in hook[0]
    assert KEY not in hook[0]
    # after an unreachable check, the next answer is compared with the last *known* marker
    httpserver.clear()
    _serve(httpserver)
    assert pipeline.run_source_check(settings)["states"]["urssaf"] == "unchanged"


def test_no_secret_in_the_status_table(settings, httpserver):
    import sqlalchemy as sa
    from territoires_industrie.warehouse import get_engine

    _serve(httpserver)
    pipeline.run_source_check(settings)
    engine = get_engine(settings.warehouse_url)
    with engine.connect() as conn:
        dump = json.dumps([list(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM source_status")).all()])
        metrics = json.dumps([list(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM run_metrics")).all()])
    engine.dispose()
    assert KEY not in dump and KEY not in metrics and "api-sirene" in dump


def test_sample_mode_checks_nothing_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TI_SOURCE_MODE", "sample")
    res = pipeline.run_source_check(get_settings())
    assert res["skipped"] and "sample mode" in res["reason"]


def test_report_sources_section_shows_what_the_check_saw(settings, httpserver):
    """A policy reader sees, in French, which source could not be reached, next to the validation."""
    from pathlib import Path

    from territoires_industrie.report.build import build_report
    from territoires_industrie.warehouse import get_engine

    from ..unit.report_fixture import publish_fixture

    _serve(httpserver, overrides=[("/ods/catalog/datasets/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last",
                                   {"response_data": "maintenance", "status": 503})])
    pipeline.run_source_check(settings)
    engine = get_engine(settings.warehouse_url)
    publish_fixture(engine)
    out = build_report(engine, settings.reports_dir, settings=settings)
    engine.dispose()
    html = (Path(out["path"]) / "validation.html").read_text(encoding="utf-8")
    section = html[html.index('id="source-status"'):]
    row = section[section.index("<td>urssaf</td>"):].split("</tr>")[0]
    assert "injoignable" in row and "503" in row
    assert section.count("nouveau millésime") == 8 and KEY not in html
