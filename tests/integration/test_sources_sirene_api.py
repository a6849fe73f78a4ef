"""API Sirene 3.11 against a local replay: cursor paging, watermark, resume after an
interruption, retries, credential errors, flattening to the stock layout, and the key never
leaking into logs or files."""

from __future__ import annotations

import json
import logging
import zipfile

import pytest
from territoires_industrie import fetch, storage
from territoires_industrie.config import get_settings
from territoires_industrie.http import CredentialError, HttpClient, HttpConfig, RetryBudgetExceeded, UpstreamFormatError
from territoires_industrie.sources import sirene_api

from . import sources_live_server as srv

KEY = "sirene-key-Zx81-do-not-log"
PATH = "/api-sirene/3.11/siret"


def etabs(n: int) -> list[dict]:
    out = []
    for i in range(n):
        siret = srv.luhn_siret(f"{200000000 + i:09d}0001")
        out.append(srv.api_etablissement(siret, "21054" if i % 2 else "21231", f"2026-11-0{1 + i % 5}T0{i % 9}:00:00",
                                         etat="F" if i == 3 else "A"))
    return out


@pytest.fixture
def api(httpserver, tmp_path, monkeypatch):
    srv.live_env(monkeypatch, httpserver, tmp_path)
    monkeypatch.setenv("TI_INSEE_API_KEY", KEY)
    fake = srv.FakeSireneApi(etabs(5), page_size=2, key=KEY)
    httpserver.expect_request(PATH).respond_with_handler(fake)
    return get_settings(), fake


def test_cursor_paging_until_curseur_equals_curseur_suivant(api, tmp_path):
    settings, fake = api
    got = fetch.acquire("sirene_updates", settings, since="2026-10-30", nombre=2)
    assert [c["curseur"] for c in fake.calls] == ["*", "C1", "C2"]  # 3 pages of 2, 2, 1
    assert all(c["nombre"] == "2" and c["q"] == "dateDernierTraitementEtablissement:[2026-10-30 TO *]" for c in fake.calls)
    assert got.changed and got.vintage == "2026-10-30_2026-11-05T040000"  # max treatment time in the data
    assert got.path.name == "StockEtablissement_updates.zip" and got.manifest["rows"] == 5
    assert got.manifest["window_from"] == "2026-10-30" and got.manifest["window_to"] == "2026-11-05T04:00:00"
    df = sirene_api.read_flat(got.path)
    assert list(df.columns) == list(srv.SIRENE_STOCK_ALL_COLUMNS)  # the stock layout, by name
    r = df[df["siret"] == etabs(5)[3]["siret"]].iloc[0]
    # current values come from the period whose dateFin is null
    assert (r["etatAdministratifEtablissement"], r["dateDebut"], r["activitePrincipaleEtablissement"]) == \
           ("F", "2026-10-31", "25.62B")
    assert (r["codeCommuneEtablissement"], r["etablissementSiege"], r["nombrePeriodesEtablissement"]) == \
           ("21054", "true", "2")
    assert (got.path.parent / "api_pages.zip").exists()
    with zipfile.ZipFile(got.path.parent / "api_pages.zip") as zf:
        assert sorted(zf.namelist()) == ["pages/page-000001.json", "pages/page-000002.json", "pages/page-000003.json"]


def test_flattened_updates_are_readable_by_the_stock_parser(api):
    from territoires_industrie.sources.sirene import aggregate_stock

    settings, _ = api
    got = fetch.acquire("sirene_updates", settings, since="2026-10-30")
    agg, rep = aggregate_stock(got.path, {"21054", "21231"})
    assert rep.rows == 5 and rep.as_of == "2026-11-05"
    ind = agg[agg["is_industrial"]]
    assert int(ind["n_etab"].sum()) == 5 and int(ind.loc[ind["etat"] == "F", "n_etab"].sum()) == 1


def test_watermark_moves_to_the_end_of_the_last_batch(api):
    settings, fake = api
    fetch.acquire("sirene_updates", settings, stock_as_of="2026-10-30")
    assert sirene_api.watermark(settings, "2026-10-30") == "2026-11-05T04:00:00"
    fake.calls.clear()
    again = fetch.acquire("sirene_updates", settings, stock_as_of="2026-10-30")
    assert fake.calls[0]["q"] == "dateDernierTraitementEtablissement:[2026-11-05T04:00:00 TO *]"
    assert not again.changed  # only the boundary record came back: nothing new, nothing landed
    fake.etabs = fake.etabs + [srv.api_etablissement(srv.luhn_siret("3000000000001"), "21054", "2026-11-09T08:00:00")]
    got = fetch.acquire("sirene_updates", settings, stock_as_of="2026-10-30")
    # the range is inclusive: the boundary record comes again with the new one (de-duplicated later)
    assert got.changed and got.manifest["rows"] == 2 and got.vintage == "2026-11-05T040000_2026-11-09T080000"
    assert sirene_api.watermark(settings, "2026-10-30") == "2026-11-09T08:00:00"
    # a newer stock moves the watermark past every landed batch
    assert sirene_api.watermark(settings, "2026-12-01") == "2026-12-01"


def test_no_update_since_the_watermark_lands_nothing(api):
    settings, fake = api
    got = fetch.acquire("sirene_updates", settings, since="2026-12-01")
    assert not got.changed and got.manifest["rows"] == 0
    assert len(fake.calls) == 1  # 404 "Aucun élément trouvé" = no result, not an error
    assert not list((settings.raw_dir / "sirene_updates").glob("2026-*"))


def test_429_with_retry_after_then_success(api, monkeypatch):
    settings, fake = api
    fake.fail = {"C1": [429]}
    sleeps = []
    client = HttpClient(HttpConfig.from_env(), sleep=sleeps.append, redact_logs=False)
    got = fetch.acquire("sirene_updates", settings, since="2026-10-30", nombre=2, client=client)
    assert got.manifest["rows"] == 5
    assert [c["curseur"] for c in fake.calls] == ["*", "C1", "C1", "C2"]
    assert sleeps == [0.05]  # Retry-After 1 s, capped by TI_HTTP_RETRY_AFTER_CAP=0.05 in this test


def test_interrupted_pull_resumes_at_the_last_completed_page(api, monkeypatch):
    settings, fake = api
    monkeypatch.setenv("TI_HTTP_MAX_RETRIES", "1")
    fake.fail = {"C2": [500, 500]}
    with pytest.raises(RetryBudgetExceeded, match="HTTP 500"):
        fetch.acquire("sirene_updates", settings, since="2026-10-30", nombre=2)
    work = settings.raw_dir / "sirene_updates" / ".work" / "since_2026-10-30" / "pages"
    state = json.loads((work / "cursor_state.json").read_text())
    assert (state["pages"], state["next_cursor"], state["rows"], state["done"]) == (2, "C2", 4, False)
    page1 = (work / "page-000001.json").read_bytes()
    assert not list((settings.raw_dir / "sirene_updates").glob("2026-*"))  # nothing landed
    fake.calls.clear()
    got = fetch.acquire("sirene_updates", settings, since="2026-10-30", nombre=2)
    assert [c["curseur"] for c in fake.calls] == ["C2"]  # resumed, pages 1-2 not fetched again
    assert got.manifest["rows"] == 5 and got.manifest["pages"] == 3
    with zipfile.ZipFile(got.path.parent / "api_pages.zip") as zf:
        assert zf.read("pages/page-000001.json") == page1
    assert not (settings.raw_dir / "sirene_updates" / ".work" / "since_2026-10-30").exists()


def test_a_retried_page_overwrites_its_file(api, tmp_path):
    settings, fake = api
    client = HttpClient(HttpConfig.from_env(), redact_logs=False)
    out = tmp_path / "pages"
    out.mkdir()
    (out / "page-000001.json").write_text("half-written garbage")
    sirene_api.SireneApi(client, KEY).search_siret("dateDernierTraitementEtablissement:[2026-10-30 TO *]", out, nombre=2)
    assert json.loads((out / "page-000001.json").read_text())["header"]["curseur"] == "*"
    assert len(list(out.glob("page-*.json"))) == 3 and not list(out.glob("*.part"))


def test_wrong_key_names_the_credential_and_never_leaks(api, httpserver, monkeypatch, caplog):
    settings, fake = api
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TI_INSEE_API_KEY", "wrong-key-123456789")
    client = HttpClient(HttpConfig.from_env(), redact_logs=False)
    with pytest.raises(CredentialError) as exc:
        fetch.acquire("sirene_updates", settings, since="2026-10-30", client=client)
    assert "HTTP 401" in str(exc.value) and "TI_INSEE_API_KEY" in str(exc.value)
    assert "wrong-key-123456789" not in str(exc.value) and "wrong-key-123456789" not in caplog.text
    assert len(fake.calls) == 1


def test_missing_key_fails_before_any_request(api, monkeypatch):
    settings, fake = api
    monkeypatch.delenv("TI_INSEE_API_KEY")
    with pytest.raises(CredentialError, match="none is configured.*TI_INSEE_API_KEY.*portail-api.insee.fr"):
        fetch.acquire("sirene_updates", settings, since="2026-10-30")
    assert fake.calls == []


def test_key_never_in_logs_nor_files(api, caplog):
    """Redaction filter off: proves the code itself never logs the key or writes it to disk."""
    settings, _ = api
    caplog.set_level(logging.DEBUG)
    client = HttpClient(HttpConfig.from_env(), redact_logs=False)
    fetch.acquire("sirene_updates", settings, since="2026-10-30", nombre=2, client=client)
    assert "API Sirene: page 3" in caplog.text  # progress was logged
    assert KEY not in caplog.text
    for p in settings.data_dir.rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p
            if p.suffix == ".zip":
                with zipfile.ZipFile(p) as zf:
                    assert all(KEY.encode() not in zf.read(n) for n in zf.namelist()), p


def test_malformed_page_and_bad_page_size(api, httpserver):
    settings, _ = api
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data('{"header": {"statut": 200, "curseur": "*"', content_type="application/json")
    with pytest.raises(UpstreamFormatError, match="API Sirene /siret page 1: malformed JSON"):
        fetch.acquire("sirene_updates", settings, since="2026-10-30")
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_json({"header": {"statut": 200}, "unitesLegales": []})
    with pytest.raises(UpstreamFormatError, match="lacks header.curseurSuivant"):
        fetch.acquire("sirene_updates", settings, since="2026-10-30")
    with pytest.raises(ValueError, match="nombre must be in 1..1000"):
        fetch.acquire("sirene_updates", settings, since="2026-10-30", nombre=1001)
    with pytest.raises(ValueError, match="watermark must be a date"):
        fetch.acquire("sirene_updates", settings, since="yesterday")


def test_q_builder_wraps_historised_variables_in_periode():
    assert sirene_api.term("codeCommuneEtablissement", "21054") == "codeCommuneEtablissement:21054"
    assert sirene_api.term("etatAdministratifEtablissement", "A") == "periode(etatAdministratifEtablissement:A)"
    q = sirene_api.q_territory(["21054", "2A004"], industrial_only=False)
    assert q == ("(codeCommuneEtablissement:21054 OR codeCommuneEtablissement:2A004) AND "
                 "periode(etatAdministratifEtablissement:A)")
    q = sirene_api.q_territory(["21054"])
    assert q.startswith("codeCommuneEtablissement:21054 AND periode(etatAdministratifEtablissement:A AND "
                        "(activitePrincipaleEtablissement:05* OR ")
    assert q.endswith("activitePrincipaleEtablissement:39*))") and q.count(" OR ") == 34


def test_single_territory_pull_in_chunks(api, tmp_path):
    settings, fake = api
    client = HttpClient(HttpConfig.from_env(), redact_logs=False)
    dest, rows = sirene_api.pull_territory(client, ["21054", "21231", "21054"], tmp_path / "terr", key=KEY, chunk=1)
    qs = [c["q"] for c in fake.calls if c["curseur"] == "*"]
    assert len(qs) == 2 and qs[0].startswith("codeCommuneEtablissement:21054 AND periode(")
    # the fake server ignores the commune filter: each chunk returns the same 5, de-duplicated by SIRET
    assert rows == 5 and sirene_api.read_flat(dest)["siret"].is_unique


def test_territory_pull_asks_for_the_state_now(api, tmp_path):
    """Issue 14 defect 6: ``periode(...)`` without ``date=`` matches establishments that were ever
    active/industrial; every query of a territory pull carries the date (today by default)."""
    import datetime as dt

    _, fake = api
    client = HttpClient(HttpConfig.from_env(), redact_logs=False)
    sirene_api.pull_territory(client, ["21054", "21231"], tmp_path / "terr", key=KEY, chunk=1)
    assert fake.calls and all(c.get("date") == dt.date.today().isoformat() for c in fake.calls), fake.calls
    fake.calls.clear()
    sirene_api.pull_territory(client, ["21054"], tmp_path / "terr2", key=KEY, date="2026-11-30")
    assert {c.get("date") for c in fake.calls} == {"2026-11-30"}


def test_stage_merges_batches_since_the_stock(api, monkeypatch):
    from territoires_industrie.stages.sirene import run_sirene_updates

    settings, fake = api
    folder = storage.staging_partition(settings.staging_dir, "sirene_stock", "2026-11-01")
    storage.write_json(folder / "parse_report.json", {"as_of": "2026-11-02"})
    storage.set_current(settings.staging_dir, "sirene_stock", "2026-11-01")
    out = run_sirene_updates(settings)
    # treatments on 2026-11-01 are in the stock (as-of 11-02 counts from 11-02 inclusive): 5 - 1 = 4 kept
    assert out["establishments"] == 4 and out["stock_as_of"] == "2026-11-02"
    assert fake.calls[0]["q"] == "dateDernierTraitementEtablissement:[2026-11-02 TO *]"
    upd = storage.current(settings.staging_dir, "sirene_updates")[1] / "updates.parquet"
    import pandas as pd

    df = pd.read_parquet(upd)
    assert df["siret"].is_unique and (df["dateDernierTraitementEtablissement"].str[:10] >= "2026-11-02").all()
    again = run_sirene_updates(settings)
    assert again["skipped"] is True  # nothing new since the watermark


def test_millisecond_treatment_times_make_a_valid_watermark(httpserver, tmp_path, monkeypatch):
    """Issue 14 defect 5: API Sirene 3.11 returns ``dateDernierTraitementEtablissement`` as
    ``AAAA-MM-JJTHH:MM:SS.MMM``; the second incremental run raised ValueError on its own watermark."""
    srv.live_env(monkeypatch, httpserver, tmp_path)
    monkeypatch.setenv("TI_INSEE_API_KEY", KEY)
    rows = [srv.api_etablissement(srv.luhn_siret(f"{200000000 + i:09d}0001"), "21231", f"2026-11-0{1 + i}T04:00:00.{i}25")
            for i in range(3)]
    fake = srv.FakeSireneApi(rows, page_size=2, key=KEY)
    httpserver.expect_request(PATH).respond_with_handler(fake)
    settings = get_settings()
    first = fetch.acquire("sirene_updates", settings, stock_as_of="2026-10-30")
    assert first.changed and sirene_api.watermark(settings, "2026-10-30") == "2026-11-03T04:00:00.225"
    fake.calls.clear()
    again = fetch.acquire("sirene_updates", settings, stock_as_of="2026-10-30")  # raised ValueError before
    assert fake.calls[0]["q"] == "dateDernierTraitementEtablissement:[2026-11-03T04:00:00 TO *]"
    assert not again.changed  # only the boundary record: nothing new landed
    fake.etabs = fake.etabs + [srv.api_etablissement(srv.luhn_siret("3000000000001"), "21054", "2026-11-09T08:00:00.001")]
    got = fetch.acquire("sirene_updates", settings, stock_as_of="2026-10-30")
    assert got.changed and sirene_api.watermark(settings, "2026-10-30") == "2026-11-09T08:00:00.001"


def test_a_404_that_is_not_the_api_answer_is_an_error_naming_the_url(httpserver, tmp_path, monkeypatch):
    """Issue 14 defect 7: only the API's own JSON "no result" answer means empty; a 404 page from a
    wrong base URL or path used to be read as "no update" and the run succeeded with nothing."""
    from territoires_industrie.http import HttpError

    srv.live_env(monkeypatch, httpserver, tmp_path)
    monkeypatch.setenv("TI_INSEE_API_KEY", KEY)
    httpserver.expect_request(PATH).respond_with_data("<html><body>404 Not Found</body></html>", status=404,
                                                      content_type="text/html")
    settings = get_settings()
    with pytest.raises(HttpError, match=r"HTTP 404 from http://.*/siret is not the API's 'no result' answer"):
        fetch.acquire("sirene_updates", settings, since="2026-12-01")
    assert not list((settings.raw_dir / "sirene_updates").glob("2026-*"))
