"""Early warning (issue 15) from the outside: API Sirene 3.11 pages replayed through the HTTP
client into the store, every event type, an idempotent replay, a stale batch refused with the
store and the warehouse untouched, and non-diffusible establishments never named or located in
anything published (warehouse, HTML page, CLI) — on the published Corse world."""

from __future__ import annotations

import json
import re
import zipfile

import pandas as pd
import pytest
import sqlalchemy as sa
from territoires_industrie import storage
from territoires_industrie.config import get_settings

from . import sources_live_server as srv
from .reliability_world import copy_world, published_template, run_stages, settings_for

KEY = "sirene-key-ew-Qp7-do-not-log"
PATH = "/api-sirene/3.11/siret"
MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")


@pytest.fixture
def world(tmp_path, tmp_path_factory):
    return copy_world(published_template(tmp_path_factory), tmp_path / "data")


def _dump(url: str) -> dict:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        out = {t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2, 3"), c).to_csv(index=False)
               for t in ("establishment_events", "territory_signals")}
    eng.dispose()
    return out


def _internal_events(settings) -> pd.DataFrame:
    return pd.read_parquet(storage.current(settings.staging_dir, "early_warning")[1] / "events.parquet")


def test_sample_feed_in_the_api_layout_alerts_and_never_shows_non_diffusible(world, monkeypatch, tmp_path, capsys):
    from territoires_industrie import cli, warehouse
    from territoires_industrie.report.build import build_report

    settings = settings_for(world)
    out = run_stages(monkeypatch, settings, ("sirene_updates", "early_warning"))
    ew = out["early_warning"]
    assert ew["batches_merged"] == 30 and ew["synthetic"] is True and ew["alerted"] >= 1
    # the landed pages are API Sirene 3.11 answers: cursor header, nested periods, milliseconds
    pages = sorted((world / "raw" / "sirene_updates").glob("*/*pages*.zip"))
    assert len(pages) == 30
    with zipfile.ZipFile(pages[3]) as zf:
        body = json.loads(zf.read(zf.namelist()[0]))
    assert set(body["header"]) == {"statut", "message", "total", "debut", "nombre", "curseur", "curseurSuivant"}
    e = body["etablissements"][0]
    assert MS.match(e["dateDernierTraitementEtablissement"]) and e["periodesEtablissement"][0]["dateFin"] is None
    assert {"adresseEtablissement", "uniteLegale", "periodesEtablissement"} <= set(e)

    ev = _internal_events(settings)
    assert {"fermeture", "creation", "transfert", "reouverture", "sortie_industrie", "entree_industrie",
            "baisse_effectif"} <= set(ev["type"])
    hidden = set(ev.loc[~ev["diffusible"].astype(bool), "siret"])
    assert hidden, "the SYNTHETIC feed closes non-diffusible establishments"
    url = settings.warehouse_url
    eng = warehouse.get_engine(url)
    site = build_report(eng, tmp_path / "reports", settings=settings)
    eng.dispose()
    html = (tmp_path / "reports" / site["release_id"] / "alertes.html").read_text(encoding="utf-8")
    assert 'id="alerts-table"' in html and "flux SYNTHETIC" in html and html.count('class="alert-chart"') >= 1
    # the monthly release shows the counts since the last stock next to the stock-based indicators
    sig = pd.read_sql("SELECT * FROM territory_signals WHERE window_days = 90", sa.create_engine(url))
    ze = sig[(sig["level"] == "ze") & (sig["closures_since_stock"] > 0)].iloc[0]
    ze_page = (tmp_path / "reports" / site["release_id"] / "ze" / f"{ze['territory_id']}.html").read_text(encoding="utf-8")
    assert (f"Depuis le stock Sirene du {ze['stock_date']}" in ze_page
            and f"<strong>{ze['closures_since_stock']}</strong> fermeture(s)" in ze_page)
    published = _dump(url)
    monkeypatch.setenv("TI_DATA_DIR", str(world))
    monkeypatch.setenv("TI_SOURCE_MODE", "sample")
    capsys.readouterr()  # the stages' logs
    assert cli.main(["alerts", "--json"]) == 0
    text = capsys.readouterr().out
    text = text[text.index("{"):]
    for siret in hidden:
        assert siret not in html and siret not in published["establishment_events"] and siret not in text
    nd = json.loads(text)
    assert nd["synthetic"] is True and nd["alerts"][0]["priority"] == 1

    # a rerun merges nothing, writes the same rows and alerts nobody twice
    again = run_stages(monkeypatch, settings, ("sirene_updates", "early_warning"))["early_warning"]
    assert again["batches_merged"] == 0 and again["notified"]["new_alerts"] == 0
    assert _dump(url) == published


def _pick(ext: pd.DataFrame) -> dict:
    ind = ext["activitePrincipaleEtablissement"].str[:2].between("05", "39")
    a = ext[ind & (ext["etatAdministratifEtablissement"] == "A")]
    f = ext[ind & (ext["etatAdministratifEtablissement"] == "F")]
    large = a[a["trancheEffectifsEtablissement"].isin(["21", "22", "31", "32"])]
    mid = a[a["trancheEffectifsEtablissement"].isin(["12", "21", "22"]) & ~a["siret"].isin(large["siret"].iloc[:1])]
    rest = a[~a["siret"].isin(large["siret"]) & ~a["siret"].isin(mid["siret"])]
    return {"close": large.iloc[0], "drop": mid.iloc[0], "reopen": f.iloc[0], "move": rest.iloc[0],
            "out": rest.iloc[1], "hidden": rest.iloc[2]}


def test_every_event_type_replayed_through_the_http_client(world, httpserver, monkeypatch, tmp_path):
    from territoires_industrie.alerts.store import StaleBatch
    from territoires_industrie.pipeline import run_early_warning
    from territoires_industrie.sources import sirene_api
    from territoires_industrie.sources.sirene import TRANCHE_BOUNDS
    from territoires_industrie.stages.sirene import run_sirene_updates

    srv.live_env(monkeypatch, httpserver, tmp_path, TI_DATA_DIR=str(world))
    monkeypatch.setenv("TI_INSEE_API_KEY", KEY)
    settings = get_settings()
    _, stock = storage.current(settings.staging_dir, "sirene_stock")
    ext = pd.read_parquet(stock / "industrial_establishments.parquet")
    p = _pick(ext)
    other = [c for c in sorted(set(ext["codeCommuneEtablissement"]) - {p["move"]["codeCommuneEtablissement"]})
             if re.fullmatch(r"\d[0-9AB]\d{3}", c)][0]

    def rec(row, ddt, **kw):
        return srv.api_etablissement(row["siret"], kw.pop("commune", row["codeCommuneEtablissement"]), ddt,
                                     etat=kw.pop("etat", "A"), ape=kw.pop("ape", row["activitePrincipaleEtablissement"]),
                                     trancheEffectifsEtablissement=kw.pop("tranche", row["trancheEffectifsEtablissement"]),
                                     **kw)
    lower = {"12": "11", "21": "12", "22": "21"}[p["drop"]["trancheEffectifsEtablissement"]]
    new1, new2 = srv.luhn_siret("9876543210001"), srv.luhn_siret("9876543220001")
    t = "2026-11-03T10:00:{:02d}.{:03d}"
    recs = [
        rec(p["close"], t.format(1, 101), etat="F"),  # its last known band (50+) is the jobs at stake
        rec(p["reopen"], t.format(2, 202)),
        rec(p["move"], t.format(3, 303), commune=other),
        rec(p["out"], t.format(4, 404), ape="46.69B"),
        rec(p["drop"], t.format(5, 505), tranche=lower),
        rec(p["hidden"], t.format(6, 606), etat="F", statutDiffusionEtablissement="P"),
        srv.api_etablissement(new1, other, t.format(7, 707), ape="25.62B", dateCreationEtablissement="2026-11-02"),
        srv.api_etablissement(new2, other, t.format(8, 808), ape="25.62B", dateCreationEtablissement="2012-01-01"),
    ]
    fake = srv.FakeSireneApi(recs, page_size=3, key=KEY)
    httpserver.expect_request(PATH).respond_with_handler(fake)
    run_sirene_updates(settings)
    # asked from the stock's as-of with a cursor (paging itself: test_sources_sirene_api.py)
    assert fake.calls[0]["q"].startswith("dateDernierTraitementEtablissement:[") and fake.calls[0]["curseur"] == "*"
    out = run_early_warning(settings)
    assert out["batches_merged"] == 1 and out["synthetic"] is False
    ev = _internal_events(settings).set_index("siret")
    lo, hi = TRANCHE_BOUNDS[p["close"]["trancheEffectifsEtablissement"]]
    assert ev.loc[p["close"]["siret"], "type"] == "fermeture" and lo >= 50
    assert (ev.loc[p["close"]["siret"], "jobs_lo"], ev.loc[p["close"]["siret"], "jobs_hi"]) == (lo, hi)
    assert ev.loc[p["reopen"]["siret"], "type"] == "reouverture"
    assert ev.loc[p["move"]["siret"], "type"] == "transfert"
    assert ev.loc[p["out"]["siret"], "type"] == "sortie_industrie"
    assert ev.loc[p["drop"]["siret"], "type"] == "baisse_effectif"
    assert ev.loc[new1, "type"] == "creation" and ev.loc[new2, "type"] == "entree_industrie"
    assert ev.loc[p["hidden"]["siret"], "type"] == "fermeture" and not ev.loc[p["hidden"]["siret"], "diffusible"]
    url = settings.warehouse_url
    published = _dump(url)
    assert p["hidden"]["siret"] not in published["establishment_events"]
    assert p["close"]["siret"] in published["establishment_events"]
    sig = pd.read_csv(pd.io.common.StringIO(published["territory_signals"]), dtype={"territory_id": str})
    assert sig.loc[sig["closures_large"] > 0, "alerted"].all() and (sig["closures_large"] > 0).any()

    # replay: the same landed batch merged again changes nothing
    store_before = storage.current(settings.staging_dir, "early_warning")
    assert run_early_warning(settings)["batches_merged"] == 0 and _dump(url) == published

    # a batch wholly older than the watermark (re-landed by hand) is refused; nothing moves
    old = tmp_path / "old"
    old.mkdir()
    page = old / "page-001.json"
    stale = [rec(p["move"], "2026-11-02T09:00:00.000")]
    page.write_text(json.dumps({"header": {"statut": 200, "message": "OK", "total": 1, "debut": 0, "nombre": 1,
                                           "curseur": "*", "curseurSuivant": "*"}, "etablissements": stale}))
    sirene_api.land_pages(settings, [page], "2026-11-01", old / "work", q="replayed by hand", url="test")
    with pytest.raises(StaleBatch, match=r"older than the store's watermark 2026-11-03T10:00:08\.808"):
        run_early_warning(settings)
    assert storage.current(settings.staging_dir, "early_warning") == store_before and _dump(url) == published


def test_a_failed_publication_leaves_everything_and_the_next_run_completes_it(world, monkeypatch, httpserver):
    """The warehouse write fails after the events were inserted (same transaction): no event or
    signal row is published, the store does not move, no notification is sent; the next run
    merges the same batches again and publishes them, with exactly one digest for the run."""
    from territoires_industrie.alerts import tables

    hooks = []
    httpserver.expect_request("/hook").respond_with_handler(
        lambda r: (hooks.append(r.get_json()), __import__("werkzeug").Response("ok"))[1])
    monkeypatch.setenv("TI_NOTIFY_WEBHOOK_URL", httpserver.url_for("/hook"))
    settings = settings_for(world)
    run_stages(monkeypatch, settings, ("sirene_updates",))
    real = tables._insert

    def broken(conn, table, df):
        real(conn, table, df)
        if table.name == "territory_signals":
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk full (injected)"))

    monkeypatch.setattr(tables, "_insert", broken)
    with pytest.raises(sa.exc.OperationalError, match="disk full"):
        run_stages(monkeypatch, settings, ("early_warning",))
    eng = sa.create_engine(settings.warehouse_url)
    with eng.connect() as c:
        for t in ("establishment_events", "territory_signals"):
            assert c.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() == 0, t
    eng.dispose()
    with pytest.raises(FileNotFoundError):
        storage.current(settings.staging_dir, "early_warning")
    assert hooks == [] or all("early_warning" in json.dumps(h) for h in hooks)  # only the failure notice

    monkeypatch.setattr(tables, "_insert", real)
    hooks.clear()
    out = run_stages(monkeypatch, settings, ("early_warning",))["early_warning"]
    assert out["batches_merged"] == 30 and out["events_published"] > 0 and out["notified"]["sent"] is True
    assert len(hooks) == 1, "one digest per run, never one message per event"
    text = json.dumps(hooks[0], ensure_ascii=False)
    assert "[SYNTHETIC] Alertes fermetures industrielles" in text and f"{out['alerted']} territoire(s)" in text
    assert run_stages(monkeypatch, settings, ("early_warning",))["early_warning"]["notified"]["sent"] is False
    assert len(hooks) == 1


def test_the_daily_dag_before_the_first_stock_skips_instead_of_failing(tmp_path, monkeypatch):
    """A fresh install with every DAG unpaused: ti_sirene_updates runs before the monthly chain
    has staged a stock. Both of its tasks say so and succeed (no failure notice every day)."""
    settings = settings_for(tmp_path / "empty")
    out = run_stages(monkeypatch, settings, ("sirene_updates", "early_warning"))
    assert out["sirene_updates"]["skipped"] and "run ti_sirene first" in out["sirene_updates"]["reason"]
    assert out["early_warning"]["skipped"] and "run ti_sirene first" in out["early_warning"]["reason"]
