"""Real recorded responses (tests/fixtures/recorded/, provenance in PROVENANCE.md) replayed
through the project's own HTTP client from a local server: each test asserts the request the
code sends and what it parses. Nothing here is our own description of a service."""

from __future__ import annotations

import json
import zipfile

import pytest
from territoires_industrie.config import get_settings
from territoires_industrie.http import client_from_env
from territoires_industrie.sources import melodi, sirene_api
from territoires_industrie.sources.melodi import MelodiSeries
from territoires_industrie.stages import source_check

from . import cassettes
from . import sources_live_server as srv

KEY = "TEST-KEY-not-a-real-one-4242"


@pytest.fixture
def client(httpserver, tmp_path, monkeypatch):
    srv.live_env(monkeypatch, httpserver, tmp_path, TI_INSEE_API_KEY=KEY)
    return client_from_env(get_settings())


# --- API Sirene 3.11 ------------------------------------------------------------------------------
def test_api_sirene_cursor_pull_of_a_recorded_establishment(client, httpserver, tmp_path):
    """Page 1: the recorded 3.11 cursor header layout (``curseur``/``curseurSuivant``) around the
    recorded 3.11 establishment (a closed restaurant of Saint-Denis, 4 periods, treatment date with
    milliseconds); page 2: the documented end (``curseur == curseurSuivant``, empty list)."""
    etab = cassettes.one("sirene_api/siret_by_siret_3.11.yaml", "/siret/39860733300059").json()["etablissement"]
    header = cassettes.one("sirene_api/siren_cursor_first_page_3.11.yaml", "/siren").json()["header"]
    nxt = header["curseurSuivant"]

    def handler(request):
        from werkzeug import Response

        if request.args.get("curseur") == "*":
            body = {"header": {**header, "total": 1, "nombre": 1}, "etablissements": [etab]}
        else:
            body = {"header": {**header, "total": 1, "nombre": 0, "curseur": nxt, "curseurSuivant": nxt},
                    "etablissements": []}
        return Response(json.dumps(body), status=200, content_type="application/json;charset=utf-8")

    httpserver.expect_request("/api-sirene/3.11/siret").respond_with_handler(handler)
    q = sirene_api.q_updated_since("2024-03-30T00:00:00")
    res = sirene_api.SireneApi(client, KEY).search_siret(q, tmp_path / "pages")
    sent = [req for req, _ in httpserver.log]
    assert [r.args.get("curseur") for r in sent] == ["*", nxt]
    assert all(r.path == "/api-sirene/3.11/siret" and r.args["q"] == q and r.args["nombre"] == "1000" for r in sent)
    assert all(r.headers.get("X-INSEE-Api-Key-Integration") == KEY for r in sent)
    assert "json" in sent[0].headers.get("Accept", "")
    rows, max_ddt = sirene_api.write_flat_zip(res.pages, tmp_path / "flat.zip")
    assert (rows, max_ddt) == (1, "2024-03-30T17:23:40.109")
    with zipfile.ZipFile(tmp_path / "flat.zip") as zf:
        text = zf.read(zf.namelist()[0]).decode("utf-8")
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(text)))
    # the current period (dateFin null) gives state and activity; the address its commune
    assert (row["siret"], row["etatAdministratifEtablissement"], row["activitePrincipaleEtablissement"],
            row["codeCommuneEtablissement"]) == ("39860733300059", "F", "56.10C", "97411")
    assert row["dateDernierTraitementEtablissement"] == "2024-03-30T17:23:40.109"


def test_source_check_reads_the_recorded_informations_answer(client, httpserver, monkeypatch):
    it = cassettes.one("sirene_api/informations_3.11.yaml", "/informations")
    cassettes.respond(httpserver, "/api-sirene/3.11/informations", it)
    first = source_check.check_source(client, "sirene_updates", None)
    assert first["state"] == source_check.NEW and first["details"] == "first check"
    assert first["marker"] == {"version": "3.11", "etablissements_max_treatment": "2024-03-27T01:16:01.889"}
    sent = httpserver.log[-1][0]
    assert sent.path == "/api-sirene/3.11/informations" and sent.headers.get("X-INSEE-Api-Key-Integration") == KEY
    again = source_check.check_source(client, "sirene_updates", first["marker"])
    assert again["state"] == source_check.UNCHANGED
    # the same answer from a newer API version: the contract moved
    httpserver.clear()
    cassettes.respond(httpserver, "/api-sirene/3.11/informations", it,
                      body=it.body.replace(b'"3.11.20"', b'"3.12.0"'))
    drift = source_check.check_source(client, "sirene_updates", first["marker"])
    assert drift["state"] == source_check.DRIFT and "3.12.0" in drift["details"]
    monkeypatch.delenv("TI_INSEE_API_KEY")
    monkeypatch.setattr("territoires_industrie.stages.source_check.insee_api_key", lambda: None)
    assert source_check.check_source(client, "sirene_updates", None)["state"] == source_check.NOT_CHECKED


# --- Melodi ---------------------------------------------------------------------------------------
def test_melodi_recorded_commune_observations_parse_with_their_geo_year(client, httpserver, tmp_path):
    """The recorded answer for the 24 communes of Nantes Métropole (GEO ``2025-COM-*``, PMUN 2023)."""
    it = cassettes.one("melodi/melodi_vcr_get_local_data_filter_by_com_popref.yml",
                       "/data/DS_POPULATIONS_REFERENCE", idTerritoire="TRUE")
    cassettes.respond(httpserver, "/melodi/data/DS_POPULATIONS_REFERENCE", it)
    params = {"GEO": "EPCI-244400404*COM", "POPREF_MEASURE": "PMUN", "TIME_PERIOD": "2023"}
    pages = melodi.fetch_pages(client, "DS_POPULATIONS_REFERENCE", params, tmp_path / "pages")
    sent = httpserver.log[-1][0]
    assert {k: sent.args[k] for k in params} == params
    assert sent.args["page"] == "1" and sent.args["totalCount"] == "true" and sent.args["maxResult"] == "100000"
    geo_years: dict = {}
    s = MelodiSeries("PMUN", "DS_POPULATIONS_REFERENCE", (("POPREF_MEASURE", "PMUN"),), "t", "R")
    values = melodi.collect_series(pages, s, 2023, geo_years)
    recorded = {o["dimensions"]["GEO"].split("-")[-1]: o["measures"]["OBS_VALUE_NIVEAU"]["value"]
                for o in it.json()["observations"]}
    assert len(values) == 24 and values == recorded
    assert geo_years == {"2025": 24}  # the COG year the service codes its communes in, counted


def test_melodi_recorded_empty_answer_is_an_error_not_an_empty_table(client, httpserver, tmp_path):
    """HTTP 200 with ``observations: []`` and ``paging.count: 0`` (a year the service does not hold)."""
    it = cassettes.one("melodi/melodi_vcr_get_data_popref_empty.yml", "/data/DS_POPULATIONS_REFERENCE")
    cassettes.respond(httpserver, "/melodi/data/DS_POPULATIONS_REFERENCE", it)
    pages = melodi.fetch_pages(client, "DS_POPULATIONS_REFERENCE", {"TIME_PERIOD": "1900"}, tmp_path / "p")
    s = MelodiSeries("PMUN", "DS_POPULATIONS_REFERENCE", (), "t", "R")
    with pytest.raises(melodi.UpstreamFormatError, match="no commune"):
        melodi.collect_series(pages, s, 1900)


def test_melodi_recorded_catalog_and_range(client, httpserver):
    cassettes.respond(httpserver, "/melodi/catalog/DS_EC_DECES",
                      cassettes.one("melodi/melodi_vcr_get_metadata_deces.yml", "/catalog/DS_EC_DECES"))
    cassettes.respond(httpserver, "/melodi/range/DS_EC_DECES",
                      cassettes.one("melodi/melodi_vcr_get_range_geo_ec_deces.yml", "/range/DS_EC_DECES"))
    assert melodi.catalog_modified(client, "DS_EC_DECES") == "2025-11-28T11:56:10"
    ranges = melodi.fetch_range(client, "DS_EC_DECES")
    assert {"GEO", "TIME_PERIOD", "SEX", "AGE"} <= set(ranges) and "_T" in ranges["SEX"]
    assert len(ranges["TIME_PERIOD"]) == 751
    # a plan asking a code this dataset does not hold fails before any data query
    series = (MelodiSeries("X", "DS_EC_DECES", (("SEX", "NOPE"),), "t", "R"),)
    year = max(int(y) for y in ranges["TIME_PERIOD"] if y.isdigit())
    with pytest.raises(melodi.CensusPlanError, match="SEX=NOPE not held"):
        melodi.check_plan({"DS_EC_DECES": ranges}, series, year, year)
