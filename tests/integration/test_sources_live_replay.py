"""Live mode of every source family, proven against a local replay of the official endpoints
(pytest-httpserver on 127.0.0.1; no test touches the internet).

Per source: success (the file lands immutable under raw/<source>/<vintage>/ with its manifest),
pagination / chunking / newest-file discovery, retries (429 with Retry-After, 5xx, timeout), the
unchanged-upstream skip, and bad inputs that must never land.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from territoires_industrie import fetch
from territoires_industrie.config import get_settings
from territoires_industrie.geography import SourceFormatError
from territoires_industrie.http import DownloadError, UpstreamFormatError
from territoires_industrie.schemas import MissingColumnError
from werkzeug import Response

from . import sources_live_server as srv


@pytest.fixture
def live(httpserver, tmp_path, monkeypatch):
    srv.live_env(monkeypatch, httpserver, tmp_path)
    calls = srv.serve_universe(httpserver)
    settings = get_settings()
    settings.extra["calls"] = calls  # handy handle for the tests
    return settings


def requests_to(httpserver, path: str) -> int:
    return sum(1 for req, _ in httpserver.log if req.path == path)


def landed(settings, source: str) -> list[Path]:
    root = settings.raw_dir / source
    return sorted(p for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts and ".work" not in p.parts
                  and p.name not in ("manifest.json", "_state.json"))


def serve_once(httpserver, path, *args, **kw):
    """Put a one-shot response in front of the permanent handler of ``path``."""
    httpserver.expect_oneshot_request(path).respond_with_data(*args, **kw)


# --- SIRENE bulk (data.gouv) ---------------------------------------------------------------------
def test_sirene_stock_resolved_by_title_and_landed_with_manifest(live, httpserver):
    got = fetch.acquire("sirene_stock", live)
    assert got.changed and got.vintage == "2026-11-01"  # data.gouv last_modified, not the wall clock
    assert got.path == live.raw_dir / "sirene_stock" / "2026-11-01" / "StockEtablissement_utf8.zip"
    assert got.path.read_bytes() == srv.stock_zip()
    assert not os.stat(got.path).st_mode & stat.S_IWUSR  # landed files are read-only
    m = got.manifest
    assert m["url"].endswith("/files/StockEtablissement_utf8.zip")  # newest StockEtablissement zip, not UL/histo/old
    assert m["rows"] == 8 and m["bytes"] == len(srv.stock_zip()) and len(m["sha256"]) == 64
    assert m["headers"]["ETag"] == '"stock-v1"' and m["title"].startswith("Sirene : Fichier StockEtablissement du")
    assert m["fetched_at"] and m["vintage_basis"] == "data.gouv last_modified"
    assert not list((live.raw_dir / "sirene_stock" / ".incoming").iterdir())


def test_sirene_stock_unchanged_upstream_is_not_fetched_again(live, httpserver):
    first = fetch.acquire("sirene_stock", live)
    again = fetch.acquire("sirene_stock", live)
    assert not again.changed and again.path == first.path and again.vintage == first.vintage
    assert requests_to(httpserver, "/files/StockEtablissement_utf8.zip") == 1
    # new metadata (re-published resource) but the same ETag: conditional GET, body not re-read
    state_file = live.raw_dir / "sirene_stock" / "_state.json"
    state = json.loads(state_file.read_text())
    state["StockEtablissement_utf8.zip"]["upstream"]["last_modified"] = "2026-10-01T00:00:00"
    state_file.write_text(json.dumps(state))
    third = fetch.acquire("sirene_stock", live)
    assert not third.changed
    req = [r for r, _ in httpserver.log if r.path == "/files/StockEtablissement_utf8.zip"][-1]
    assert req.headers["If-None-Match"] == '"stock-v1"' and req.headers["If-Modified-Since"]


def test_sirene_stock_retried_after_500(live, httpserver):
    serve_once(httpserver, "/files/StockEtablissement_utf8.zip", "oops", status=500)
    got = fetch.acquire("sirene_stock", live)
    assert got.changed and got.manifest["attempts"] == 2
    assert requests_to(httpserver, "/files/StockEtablissement_utf8.zip") == 2


def test_truncated_sirene_zip_never_lands(live, httpserver, monkeypatch):
    monkeypatch.setenv("TI_HTTP_MAX_RETRIES", "1")
    cut = srv.stock_zip()[:-40]
    httpserver.clear()
    httpserver.expect_request("/api/1/datasets/5b7ffc618b4c4169d30727e0/").respond_with_json(
        srv.datagouv_sirene(httpserver.url_for, stock_size=len(cut)))
    httpserver.expect_request("/files/StockEtablissement_utf8.zip").respond_with_data(cut)
    with pytest.raises(DownloadError, match="StockEtablissement_utf8.zip: not a valid zip"):
        fetch.acquire("sirene_stock", live)
    assert landed(live, "sirene_stock") == []
    assert not (live.raw_dir / "sirene_stock" / "_state.json").exists()


def test_sirene_zip_with_a_missing_required_column_never_lands(live, httpserver):
    cols = [c for c in srv.SIRENE_STOCK_ALL_COLUMNS if c != "etatAdministratifEtablissement"]
    bad = srv.stock_zip(columns=cols)
    httpserver.clear()
    httpserver.expect_request("/api/1/datasets/5b7ffc618b4c4169d30727e0/").respond_with_json(
        srv.datagouv_sirene(httpserver.url_for, stock_size=len(bad)))
    httpserver.expect_request("/files/StockEtablissement_utf8.zip").respond_with_data(bad)
    with pytest.raises(MissingColumnError, match=r"StockEtablissement_utf8\.zip: required column\(s\) "
                                                 r"\['etatAdministratifEtablissement'\] missing"):
        fetch.acquire("sirene_stock", live)
    assert landed(live, "sirene_stock") == []


def test_sirene_checksum_from_datagouv_is_verified(live, httpserver, monkeypatch):
    monkeypatch.setenv("TI_HTTP_MAX_RETRIES", "0")
    data = srv.stock_zip()
    httpserver.clear()
    httpserver.expect_request("/api/1/datasets/5b7ffc618b4c4169d30727e0/").respond_with_json(
        srv.datagouv_sirene(httpserver.url_for, stock_size=len(data), checksum=("sha1", "f" * 40)))
    httpserver.expect_request("/files/StockEtablissement_utf8.zip").respond_with_data(data)
    with pytest.raises(DownloadError, match="sha1 checksum mismatch"):
        fetch.acquire("sirene_stock", live)
    assert landed(live, "sirene_stock") == []


def test_datagouv_dataset_without_the_resource_or_malformed(live, httpserver):
    from territoires_industrie.sources.datagouv import ResourceNotFound

    httpserver.clear()
    httpserver.expect_oneshot_request("/api/1/datasets/5b7ffc618b4c4169d30727e0/").respond_with_json(
        {"id": "x", "resources": [{"id": "1", "title": "StockUniteLegale", "url": "u", "format": "zip",
                                   "last_modified": "2026-11-01"}]})
    with pytest.raises(ResourceNotFound, match="StockEtablissement"):
        fetch.acquire("sirene_stock", live)
    httpserver.expect_oneshot_request("/api/1/datasets/5b7ffc618b4c4169d30727e0/").respond_with_data(
        '{"resources": [', content_type="application/json")
    with pytest.raises(UpstreamFormatError, match="malformed JSON"):
        fetch.acquire("sirene_stock", live)


def test_sirene_parquet_twin_lands_and_aggregates_like_the_zip(live, monkeypatch):
    from territoires_industrie.sources.sirene import aggregate_stock

    zip_got = fetch.acquire("sirene_stock", live)
    monkeypatch.setenv("TI_SIRENE_FORMAT", "parquet")
    pq_got = fetch.acquire("sirene_stock", live)
    assert pq_got.path.name == "StockEtablissement_utf8.parquet" and pq_got.vintage == "2026-11-01"
    assert pq_got.manifest["rows"] == 8 and pq_got.manifest["format"] == "parquet"
    known = {"21054", "75056", "2A004", "25056"}
    a, ra = aggregate_stock(zip_got.path, known)
    b, rb = aggregate_stock(pq_got.path, known)
    pd.testing.assert_frame_equal(a, b)
    assert ra.as_of == rb.as_of == srv.STOCK_AS_OF
    assert int(a.loc[(a["codgeo"] == "21054") & a["is_industrial"] & (a["etat"] == "A"), "n_etab"].sum()) == 2


def test_sirene_parquet_with_a_new_upstream_column_is_read_by_name(tmp_path, caplog):
    """INSEE adds columns without notice (NAF25 on 16/12/2025): logged and ignored, never positional."""
    from territoires_industrie.sources.sirene import aggregate_stock

    p = tmp_path / "StockEtablissement_utf8.parquet"
    p.write_bytes(srv.stock_parquet(extra_column="activitePrincipaleNAF2027Etablissement"))
    caplog.set_level(logging.WARNING)
    agg, rep = aggregate_stock(p, {"21054", "75056"})
    assert "activitePrincipaleNAF2027Etablissement" in caplog.text and "unknown column" in caplog.text
    assert rep.rows == 8 and int(agg.loc[agg["codgeo"] == "75056", "n_etab"].sum()) == 1


def test_sirene_history_lands_with_header_check(live):
    got = fetch.acquire("sirene_history", live)
    assert got.path.name == "StockEtablissementHistorique_utf8.zip" and got.vintage == "2026-11-01"
    assert got.manifest["rows"] == 2


# --- URSSAF -------------------------------------------------------------------------------------------
URSSAF_EXPORT = "/ods/catalog/datasets/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last/exports/csv"


def test_urssaf_export_lands_and_parses(live, httpserver, caplog):
    from territoires_industrie.sources.urssaf import parse_urssaf

    got = fetch.acquire("urssaf", live)
    assert got.vintage == "2026-05-29" and got.manifest["rows"] == 4 and got.manifest["licence"] == "ODbL"
    req = [r for r, _ in httpserver.log if r.path == URSSAF_EXPORT][0]
    assert req.args["delimiter"] == ";" and req.args["use_labels"] == "false"
    caplog.set_level(logging.WARNING)
    df, rep = parse_urssaf(got.path, {"21054", "01001", "25056", "21231"})
    assert "nouvelle_colonne" in caplog.text  # unknown new column: logged, ignored
    assert rep["as_of_year"] == 2025 and rep["commune_codes_zero_padded"] == 1
    row = df[(df["codgeo"] == "01001") & (df["year"] == 2025)].iloc[0]
    assert (row["division"], row["jobs"], row["n_etab"]) == ("10", 12.0, 2.0)
    assert rep["unknown_commune_codes"] == 1 and rep["unknown_communes_sample"] == ["21999"]


def test_urssaf_unchanged_metadata_skips_the_export(live, httpserver):
    fetch.acquire("urssaf", live)
    again = fetch.acquire("urssaf", live)
    assert not again.changed and requests_to(httpserver, URSSAF_EXPORT) == 1


def test_urssaf_retry_on_503_then_429(live, httpserver):
    serve_once(httpserver, URSSAF_EXPORT, "", status=503)
    serve_once(httpserver, URSSAF_EXPORT, "", status=429, headers={"Retry-After": "0"})
    got = fetch.acquire("urssaf", live)
    assert got.manifest["attempts"] == 3


def test_urssaf_html_error_page_and_missing_column_never_land(live, httpserver):
    serve_once(httpserver, URSSAF_EXPORT, "<!DOCTYPE html><html>Erreur 500 Opendatasoft</html>", content_type="text/html")
    with pytest.raises(DownloadError, match="expected a csv file, received an HTML page"):
        fetch.acquire("urssaf", live)
    serve_once(httpserver, URSSAF_EXPORT, srv.URSSAF_CSV.replace(b"code_ape", b"code_naf"), content_type="text/csv")
    with pytest.raises(MissingColumnError, match=r"etablissements-et-effectifs.*\.csv: required column\(s\) \['code_ape'\]"):
        fetch.acquire("urssaf", live)
    assert landed(live, "urssaf") == []


def test_urssaf_catalog_without_modified_date(live, httpserver):
    serve_once(httpserver, "/ods/catalog/datasets/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last",
               json.dumps({"metas": {"default": {"title": "x"}}}), content_type="application/json")
    with pytest.raises(UpstreamFormatError, match="no metas.default.modified"):
        fetch.acquire("urssaf", live)


# --- unemployment by zone d'emploi (xlsx) --------------------------------------------------------------
ZE_FILE = "/fr/statistiques/fichier/1893230/chomage-zone-t1-2003-t2-2026.xlsx"


def test_chomage_newest_file_found_on_the_page(live, httpserver):
    got = fetch.acquire("chomage_ze", live)
    assert got.path.name == "chomage-zone-t1-2003-t2-2026.xlsx"  # highest (year, quarter) among the links
    assert got.vintage == "2026-T2" and got.manifest["rows"] == 5  # 5 ZE
    assert requests_to(httpserver, ZE_FILE) == 1


def test_chomage_page_down_falls_back_to_expected_names(live, httpserver):
    import datetime as dt

    httpserver.clear()
    httpserver.expect_request("/fr/statistiques/1893230").respond_with_data("gone", status=404)
    httpserver.expect_request("/fr/statistiques/fichier/1893230/chomage-zone-t1-2003-t3-2026.xlsx",
                              method="HEAD").respond_with_data("", status=404)
    httpserver.expect_request(ZE_FILE).respond_with_data(srv.chomage_xlsx())
    got = fetch.acquire("chomage_ze", live, today=dt.date(2026, 12, 2))  # tries t3-2026 first, then t2-2026
    assert got.vintage == "2026-T2"
    heads = [r.path.rsplit("/", 1)[-1] for r, _ in httpserver.log if r.method == "HEAD"]
    assert heads == ["chomage-zone-t1-2003-t3-2026.xlsx", "chomage-zone-t1-2003-t2-2026.xlsx"]


def test_chomage_retry_after_429(live, httpserver):
    serve_once(httpserver, ZE_FILE, "", status=429, headers={"Retry-After": "0"})
    assert fetch.acquire("chomage_ze", live).manifest["attempts"] == 2


def test_chomage_data_quarter_wins_over_the_file_name(live, httpserver, caplog):
    serve_once(httpserver, ZE_FILE, srv.chomage_xlsx(quarters=["2025-T2", "2025-T3", "2025-T4", "2026-T1"]))
    caplog.set_level(logging.WARNING)
    got = fetch.acquire("chomage_ze", live)
    assert got.vintage == "2026-T1" and "the data wins" in caplog.text


def test_chomage_bad_files_never_land(live, httpserver):
    import io

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Documentation"
    buf = io.BytesIO()
    wb.save(buf)
    serve_once(httpserver, ZE_FILE, buf.getvalue())
    with pytest.raises(SourceFormatError, match=r"chomage-zone-t1-2003-t2-2026\.xlsx: sheet 'txcho_ze' not found"):
        fetch.acquire("chomage_ze", live)
    serve_once(httpserver, ZE_FILE, "<html><body>Page introuvable</body></html>", content_type="text/html")
    with pytest.raises(DownloadError, match="received an HTML page"):
        fetch.acquire("chomage_ze", live)
    assert landed(live, "chomage_ze") == []


# --- BDM (SDMX) ----------------------------------------------------------------------------------------
def test_bdm_all_115_series_in_one_call(live):
    from territoires_industrie.sources import bdm

    got = fetch.acquire("chomage_bdm", live)
    assert got.vintage == "2026-Q1"  # latest TIME_PERIOD in the data
    assert got.path.name == "taux_chomage_bdm_part01.xml" and len(live.extra["calls"]["bdm"]) == 1
    assert len(live.extra["calls"]["bdm"][0]) == 115 and "001515884" in live.extra["calls"]["bdm"][0]  # D2A
    df, rep = bdm.parse_sdmx([got.path], bdm.load_idbanks())
    assert rep["series"] == 115 and rep["missing_idbanks"] == [] and rep["provisional_latest"] == 115
    d2a = df[(df["ref_area"] == "D2A") & (df["quarter"] == "2026-T1")].iloc[0]
    assert d2a["code_insee"] == "2A" and d2a["obs_status"] == "SD" and d2a["niveau"] == "departement"
    # 1515884 % 7 = 6 -> base 5.6; 2026-Q1 = base + 0.2
    assert d2a["rate"] == pytest.approx(5.8)


def test_bdm_chunks_of_idbanks_and_unchanged_rerun(live, httpserver):
    from territoires_industrie.http import client_from_env
    from territoires_industrie.sources import bdm

    client = client_from_env(live)
    got = bdm.acquire_taux_chomage(client, live, chunk=50)
    assert [len(c) for c in live.extra["calls"]["bdm"]] == [50, 50, 15]
    files = sorted(p.name for p in got.path.parent.glob("*.xml"))
    assert files == ["taux_chomage_bdm_part01.xml", "taux_chomage_bdm_part02.xml", "taux_chomage_bdm_part03.xml"]
    df, rep = bdm.parse_sdmx(sorted(got.path.parent.glob("*.xml")), bdm.load_idbanks())
    assert rep["series"] == 115
    again = bdm.acquire_taux_chomage(client, live, chunk=50)
    assert not again.changed and again.path == got.path


def test_bdm_retry_then_sdmx_error_and_malformed_xml(live, httpserver):
    import re

    path = re.compile(r"^/bdm/data/SERIES_BDM/.+")
    serve_once(httpserver, path, "", status=503)
    assert fetch.acquire("chomage_bdm", live).vintage == "2026-Q1"
    serve_once(httpserver, path, '<?xml version="1.0"?><message:Error xmlns:message="http://www.sdmx.org/resources/'
               'sdmxml/schemas/v2_1/message"><message:ErrorMessage code="100"><common:Text xmlns:common="c">No '
               'results found</common:Text></message:ErrorMessage></message:Error>')
    with pytest.raises(UpstreamFormatError, match="SDMX error message from BDM: No results found"):
        fetch.acquire("chomage_bdm", live)
    serve_once(httpserver, path, srv.sdmx([("001515842", "FM", [("2026-Q1", "7.9", "SD")])])[:-60])
    with pytest.raises(UpstreamFormatError, match="malformed XML"):
        fetch.acquire("chomage_bdm", live)
    assert len(landed(live, "chomage_bdm")) == 1  # only the first, good response


# --- Melodi (census) ---------------------------------------------------------------------------------
def test_melodi_census_pages_to_the_census_layout(live, httpserver):
    """Against a service holding the 2011/2016/2022 set (melodi_fake.py, built from the recorded
    facts): the years come from ``range`` (2022 and 2016: the default 2021/2015 of the previous
    code answered zero observations), 15-64 and 25-54 populations are summed from the age bands
    the dataset has, and every value lands in the census layout with the real years."""
    from territoires_industrie.sources.census import parse_census

    from . import melodi_fake

    got = fetch.acquire("census", live)
    assert got.vintage == "2022" and got.path.name == "census_melodi_2022.csv"
    calls = live.extra["calls"]["melodi"]
    assert [ds for kind, ds, _ in calls if kind == "range"] == sorted(melodi_fake.HELD)  # ranges read first
    data = [(ds, a) for kind, ds, a in calls if kind == "data"]
    hist = [a for ds, a in data if ds == "DS_RP_SERIE_HISTORIQUE"]
    assert len(hist) == 6  # two POP series x 3 pages of 1 observation (2 communes + 1 département)
    assert [a.get("page") for a in hist[:3]] == ["1", "2", "3"]  # page=1 sent (next only then), paging.next followed
    pop_ages = sorted(a["AGE"] for ds, a in data if ds == "DS_RP_POPULATION_PRINC")
    assert pop_ages == sorted(["Y15T24", "Y25T39", "Y40T54", "Y55T64", "Y25T39", "Y40T54"])  # codes that exist
    assert all(a["SEX"] == "_T" for ds, a in data if ds == "DS_RP_EMPLOI_LT_PRINC")  # unused dimension -> total
    lines = got.path.read_text().splitlines()
    assert lines[0] == ("CODGEO;P22_POP;P16_POP;P22_POP1564;P22_POP2554;P22_ACT1564;P22_ACTOCC1564;P22_CHOM1564;"
                        "P22_ACT2554;P22_ACTOCC2554;P22_EMPLT;P16_EMPLT")
    assert len(lines) == 3  # the département row is not a commune
    want = melodi_fake.expected(2022, 2016)
    for row in lines[1:]:
        code, *vals = row.split(";")
        cols = lines[0].split(";")[1:]
        assert {c: float(v) for c, v in zip(cols, vals, strict=True)} == pytest.approx(want[code], rel=1e-12)
    df, rep = parse_census(got.path, {"21054", "21231"})
    assert rep["census_years"] == {"t1": 2022, "t0": 2016}
    r = df.set_index("codgeo").loc["21231"]
    assert r["rp1_pop2554"] == pytest.approx(want["21231"]["P22_POP2554"]) and r["rp0_emplt"] == pytest.approx(
        want["21231"]["P16_EMPLT"])
    assert rep["unknown_commune_codes"] == 0
    assert (got.path.parent / "melodi_pages_2022.zip").exists()
    report = got.manifest["report"]
    assert report["geo_years"] == {"2025": 30}  # 2 communes x 15 queries: the GEO codes' COG year, reported
    assert report["held_years"]["DS_RP_POPULATION_PRINC"] == [2011, 2016, 2022]


def test_melodi_unchanged_catalog_skips_data_requests(live):
    fetch.acquire("census", live)
    n = len([c for c in live.extra["calls"]["melodi"] if c[0] == "data"])
    again = fetch.acquire("census", live)
    assert not again.changed and len([c for c in live.extra["calls"]["melodi"] if c[0] == "data"]) == n


def test_melodi_codes_the_service_does_not_hold_fail_before_any_data_query(live, monkeypatch):
    """The previous series (AGE=Y15T64 in DS_RP_POPULATION_PRINC) and a forced year not held are
    refused from the ranges, naming dataset, dimension and the codes available."""
    from territoires_industrie.sources import melodi

    series = melodi.CENSUS_SERIES
    old = (melodi.MelodiSeries("POP1564", "DS_RP_POPULATION_PRINC",
                               (("RP_MEASURE", "POP"), ("SEX", "_T"), ("AGE", "Y15T64")), "t", "?"),)
    monkeypatch.setattr(melodi, "CENSUS_SERIES", old + melodi.CENSUS_SERIES[:1] + melodi.CENSUS_SERIES[-1:])
    with pytest.raises(melodi.CensusPlanError, match=r"DS_RP_POPULATION_PRINC: AGE=Y15T64 not held \(codes: .*Y15T24"):
        fetch.acquire("census", live)
    assert not [c for c in live.extra["calls"]["melodi"] if c[0] == "data"]
    monkeypatch.setattr(melodi, "CENSUS_SERIES", series)
    monkeypatch.setenv("TI_CENSUS_YEAR", "2021")
    with pytest.raises(melodi.CensusPlanError, match=r"TIME_PERIOD 2021 not held \(held: \[2011, 2016, 2022\]\)"):
        fetch.acquire("census", live)
    assert landed(live, "census") == []


def test_melodi_a_new_census_set_is_a_new_vintage(live, monkeypatch):
    """When INSEE publishes the next set (2012/2017/2023), the next run lands census 2023 beside
    2022, with base year 2017: a new vintage, not a crash nor an empty table."""
    from . import melodi_fake

    first = fetch.acquire("census", live)
    monkeypatch.setattr(melodi_fake, "CENSUS_SET", (2012, 2017, 2023))
    held = {ds: (dims, (2012, 2017, 2023) if ds != "DS_RP_SERIE_HISTORIQUE" else (*melodi_fake.HISTORY, 2017, 2023))
            for ds, (dims, _) in melodi_fake.HELD.items()}
    monkeypatch.setattr(melodi_fake, "HELD", held)
    second = fetch.acquire("census", live)
    assert (first.vintage, second.vintage) == ("2022", "2023") and second.changed
    assert second.path.read_text().splitlines()[0].startswith("CODGEO;P23_POP;P17_POP;P23_POP1564")
    assert sorted(p.parent.name for p in landed(live, "census")) == ["2022", "2022", "2023", "2023"]


def test_melodi_retry_and_bad_responses(live, httpserver, monkeypatch):
    import re

    from territoires_industrie.sources import melodi

    data = re.compile(r"^/melodi/data/.+")
    serve_once(httpserver, data, "", status=429, headers={"Retry-After": "0"})
    assert fetch.acquire("census", live).changed
    monkeypatch.setattr(melodi, "CENSUS_SERIES", melodi.CENSUS_SERIES.__class__(
        [melodi.MelodiSeries("POP", "DS_RP_SERIE_HISTORIQUE", (("RP_MEASURE", "POP"),), "t", "3P"),
         melodi.MelodiSeries("POP", "DS_RP_SERIE_HISTORIQUE", (("RP_MEASURE", "POP"),), "t0", "3P")]))
    monkeypatch.setenv("TI_CENSUS_YEAR", "2016")  # another state key: no reuse
    monkeypatch.setenv("TI_CENSUS_BASE_YEAR", "2011")
    serve_once(httpserver, data, '{"observations": [{"dimensions"', content_type="application/json")
    with pytest.raises(UpstreamFormatError, match="Melodi DS_RP_SERIE_HISTORIQUE page 1: malformed JSON"):
        fetch.acquire("census", live)
    assert [p.parent.name for p in landed(live, "census")] == ["2022", "2022"]


# --- geography files and TI lists ---------------------------------------------------------------------
@pytest.mark.parametrize("key,name,rows", [
    ("geo_epci", "Intercommunalite_Metropole_au_01-01-2023.zip", 6),
    ("geo_ze", "ZE2020_au_01-01-2023.zip", 6),
    ("geo_appartenance", "table-appartenance-geo-communes-23.zip", 6),
    ("geo_passage", "table_passage_geo2003_geo2023.zip", 11),  # 6 + 21999 + 2 (split 25999) + 2 forced (971xx)
    ("geo_cog", "v_commune_2023.csv", 6),
])
def test_geography_files_land_by_year(live, key, name, rows):
    got = fetch.acquire(key, live)
    assert got.path.name == name and got.vintage == "2023" and got.manifest["rows"] == rows


def test_passage_table_maps_old_codes_and_reports_the_rest(live, tmp_path):
    from territoires_industrie.geography import map_to_vintage
    from territoires_industrie.sources import geo_live

    got = fetch.acquire("geo_passage", live)
    passage = geo_live.read_passage_table(geo_live.extract_xlsx(got.path, tmp_path, "passage_geo"), 2023)
    assert set(passage.loc[passage["codgeo_ini"] == "97123", "codgeo"]) == {"97701"}  # forced
    known = {c[0] for c in srv.COMMUNES}
    s = pd.Series(["21054", "21999", "25999", "97123", "99999", "1001"])
    from territoires_industrie import codes

    out, rep = map_to_vintage(codes.normalise_commune(s), passage, known)
    assert out.tolist() == ["21054", "21231", "25999", "97123", "99999", "01001"]
    assert rep["mapped"] == {"21999": "21231"} and rep["split"] == ["25999"]
    assert rep["unmappable_count"] == 3 and rep["unmappable"] == ["25999", "97123", "99999"]


def test_geography_retry_and_bad_files(live, httpserver, monkeypatch):
    path = "/fr/statistiques/fichier/7671867/table_passage_geo2003_geo2023.zip"
    serve_once(httpserver, path, "", status=502)
    assert fetch.acquire("geo_passage", live).manifest["attempts"] == 2
    bad_sheet = srv.zip_bytes({"table_passage_geo2003_geo2023.xlsx": srv.xlsx_bytes(
        {"Liste des fusions": (["CODGEO_INI", "CODGEO_2023"], [("21999", "21231")])})})
    serve_once(httpserver, "/fr/statistiques/fichier/4652957/ZE2020_au_01-01-2023.zip", bad_sheet)
    with pytest.raises(SourceFormatError, match="sheet 'ZE2020' not found"):
        fetch.acquire("geo_ze", live)
    monkeypatch.setenv("TI_HTTP_MAX_RETRIES", "0")  # else the retry gets the good file
    serve_once(httpserver, "/fr/statistiques/fichier/2510634/Intercommunalite_Metropole_au_01-01-2023.zip",
               srv.epci_zip()[:500])
    with pytest.raises(DownloadError, match="not a valid zip"):
        fetch.acquire("geo_epci", live)
    assert landed(live, "geo_ze") == [] and landed(live, "geo_epci") == []


def test_ti_newest_2023_lists(live, httpserver):
    com = fetch.acquire("ti_2023", live)
    grpt = fetch.acquire("ti_2023_grpt", live)
    assert com.path.name == "liste-ti-com2023-20240704.csv" and com.vintage == "2024-07-04"
    assert com.manifest["file_date"] == "20240704" and com.manifest["rows"] == 5
    assert grpt.path.name == "liste-ti-grpt2023-20240704.csv" and grpt.manifest["rows"] == 4
    assert requests_to(httpserver, "/static/ti/liste-ti-com2023-20230802.csv") == 0


def test_ti_bad_file_and_retry(live, httpserver):
    serve_once(httpserver, "/static/ti/liste-ti-com2023-20240704.csv", "", status=500)
    serve_once(httpserver, "/static/ti/liste-ti-com2023-20240704.csv", b"insee_com,lib_com,lib_ti\n21054,Dijon,TI\n")
    with pytest.raises(SourceFormatError, match=r"liste-ti-com2023-20240704\.csv: required column\(s\) \['id_ti'\]"):
        fetch.acquire("ti_2023", live)
    assert landed(live, "ti_2023") == []


def test_landed_vintage_is_immutable(live, httpserver):
    """Different bytes under an already landed vintage are refused, the landed file untouched."""
    from territoires_industrie.storage import LandingConflict

    first = fetch.acquire("ti_2023", live)
    before = first.path.read_bytes()
    state_file = live.raw_dir / "ti_2023" / "_state.json"
    state_file.unlink()  # lost state: the same vintage is fetched again
    serve_once(httpserver, "/static/ti/liste-ti-com2023-20240704.csv", srv.TI_COM + b"21231,Fontaine,ti-2701,TI Dijon\n")
    with pytest.raises(LandingConflict, match="immutable"):
        fetch.acquire("ti_2023", live)
    assert first.path.read_bytes() == before


def test_unknown_live_source(live):
    with pytest.raises(KeyError, match="no live fetcher"):
        fetch.acquire("nope", live)


def test_sample_mode_still_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("TI_SOURCE_MODE", raising=False)
    assert get_settings({"TI_DATA_DIR": str(tmp_path)}).source_mode == "sample"


def test_zip_members_never_partially_extracted(live):
    """The landed zip is exactly what was served and passes a full CRC read."""
    got = fetch.acquire("geo_epci", live)
    with zipfile.ZipFile(got.path) as zf:
        assert zf.testzip() is None and zf.namelist() == ["Intercommunalite-Metropole_au_01-01-2023.xlsx"]




def test_a_slow_source_times_out_and_is_retried(live, httpserver, monkeypatch):
    import time as _time

    monkeypatch.setenv("TI_HTTP_READ_TIMEOUT", "0.3")
    monkeypatch.setenv("TI_HTTP_BACKOFF_BASE", "0.5")  # the replay server is single-threaded: let it finish
    monkeypatch.setenv("TI_HTTP_BACKOFF_CAP", "0.5")
    state = {"n": 0}

    def slow_once(request):
        state["n"] += 1
        if state["n"] == 1:
            _time.sleep(0.5)
        return Response(srv.chomage_xlsx(), content_type="application/octet-stream")

    httpserver.expect_oneshot_request(ZE_FILE).respond_with_handler(slow_once)
    httpserver.expect_oneshot_request(ZE_FILE).respond_with_handler(slow_once)
    got = fetch.acquire("chomage_ze", live)
    assert got.vintage == "2026-T2" and got.manifest["attempts"] == 2 and state["n"] == 2
