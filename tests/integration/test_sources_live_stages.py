"""The stages in live mode against the local replay: geography (with the passage table), SIRENE
stock, employment; a second run with unchanged upstream files skips every dataset.

The Great Expectations gates are replaced by a recorder here: their suites have their own tests
and expect national coverage, which a 6-commune replay cannot give. What is tested is acquisition,
passage-table mapping, staging and the unchanged-upstream skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from territoires_industrie import storage
from territoires_industrie.config import get_settings

from . import melodi_fake
from . import sources_live_server as srv


@pytest.fixture
def gates(monkeypatch):
    seen = []

    def record(dataset, df, *, settings, vintage, context=None):
        seen.append((dataset, vintage, len(df), (context or {}).get("report")))

    for stage in ("geography", "sirene", "employment"):
        monkeypatch.setattr(f"territoires_industrie.stages.{stage}.gate", record)
    return seen


@pytest.fixture
def live(httpserver, tmp_path, monkeypatch):
    srv.live_env(monkeypatch, httpserver, tmp_path)
    srv.serve_universe(httpserver)
    return get_settings()


def count(httpserver, path):
    return sum(1 for r, _ in httpserver.log if r.path == path)


def test_live_chain_geography_sirene_employment(live, httpserver, gates):
    from territoires_industrie.stages.employment import run_employment
    from territoires_industrie.stages.geography import run_geography
    from territoires_industrie.stages.sirene import run_sirene

    geo_out = run_geography(live)
    assert (geo_out["vintage"], geo_out["communes"], geo_out["epci"], geo_out["ze"]) == ("2023", 6, 5, 5)
    checks = geo_out["checks"]
    assert checks["epci_disagreements"] == 0 and checks["arrondissements"] == 2
    assert checks["cog_communes"] == 6 and checks["cog_missing_in_compositions"] == []
    assert checks["ti_grpt_epci_not_in_vintage"] == ["999999999"]
    _, folder = storage.current(live.staging_dir, "geography")
    ti = pd.read_parquet(folder / "ti.parquet")
    t23 = ti[ti["ti_phase"] == "2023-2027"]
    members = t23.groupby("ti_id")["codgeo"].apply(lambda s: sorted(s)).to_dict()
    # 21999 -> 21231 by the passage table, "1001" zero-padded, 25056 in two TI
    assert members == {"ti-2701": ["21054", "21231", "25056"], "ti-2702": ["25056"], "ti-8401": ["01001"]}
    unm = pd.read_parquet(folder / "ti_unmapped.parquet")
    assert unm.loc[unm["ti_phase"] == "2023-2027", "codgeo"].tolist() == ["25999"]  # a split: reported
    # the INSEE table of the replay (11 rows) + the bundled real merges table (communes nouvelles to 2026)
    from territoires_industrie.geography import read_merges

    assert len(pd.read_parquet(folder / "passage.parquet")) == 11 + len(read_merges())

    s_out = run_sirene(live)
    assert s_out["vintage"] == "2026-11-01" and s_out["as_of_from_data"] == srv.STOCK_AS_OF and s_out["rows"] == 8
    _, sfolder = storage.current(live.staging_dir, "sirene_stock")
    agg = pd.read_parquet(sfolder / "establishments_agg.parquet")
    active_ind = agg[agg["is_industrial"] & (agg["etat"] == "A")].groupby("codgeo")["n_etab"].sum().to_dict()
    assert active_ind == {"21054": 2, "21231": 1, "75056": 1}  # 21999 -> 21231, 75101 -> 75056
    closed = agg[agg["etat"] == "F"]
    assert closed[["codgeo", "naf", "n_etab"]].values.tolist() == [["2A004", "25.62B", 1]]
    rep = json.loads((sfolder / "parse_report.json").read_text())
    assert rep["passage"]["mapped"] == {"21999": "21231"}
    assert rep["passage"]["unmappable"] == ["25999"] and rep["passage"]["split"] == ["25999"]
    assert rep["foreign_rows"] == 1 and rep["raw_sha256"]
    assert [g[0] for g in gates] == ["geography", "sirene_stock"]
    assert gates[1][3]["passage"]["unmappable_count"] == 1

    e_out = run_employment(live)
    _, ufolder = storage.current(live.staging_dir, "urssaf")
    jobs = pd.read_parquet(ufolder / "jobs_commune_division.parquet")
    j = jobs.set_index(["codgeo", "division", "year"])
    assert j.loc[("21231", "25", 2025), "jobs"] == 6 and j.loc[("01001", "10", 2025), "jobs"] == 12
    assert bool(j.loc[("21231", "25", 2025), "is_industrial"]) is True
    assert e_out["urssaf"]["vintage"] == "2025" and e_out["chomage_ze"]["vintage"] == "2026-T2"
    assert e_out["census"]["vintage"] == "2022"  # the latest census year the service holds
    cfolder = storage.current(live.staging_dir, "census")[1]
    cen = pd.read_parquet(cfolder / "communes.parquet").set_index("codgeo")
    want = melodi_fake.expected(2022, 2016)
    assert cen.loc["21054", "rp1_pop"] == pytest.approx(want["21054"]["P22_POP"])
    assert cen.loc["21231", "rp1_actocc2554"] == pytest.approx(want["21231"]["P22_ACTOCC2554"])
    assert cen.loc["21231", "rp1_pop2554"] == pytest.approx(want["21231"]["P22_POP2554"])  # summed age bands
    assert json.loads((cfolder / "parse_report.json").read_text())["census_years"] == {"t1": 2022, "t0": 2016}
    assert e_out["chomage_bdm"]["vintage"] == "2026-T1" and e_out["chomage_bdm"]["series"] == 115
    bdm = pd.read_parquet(storage.current(live.staging_dir, "chomage_bdm")[1] / "rates.parquet")
    assert len(bdm) == 115 * 3 and set(bdm["quarter"]) == {"2025-T3", "2025-T4", "2026-T1"}

    # second run, nothing changed upstream: no data file is downloaded again, every stage skips
    downloads = count(httpserver, "/files/StockEtablissement_utf8.zip")
    assert run_geography(live)["skipped"] is True
    assert run_sirene(live)["skipped"] is True
    again = run_employment(live)
    assert all(again[k]["skipped"] is True for k in ("urssaf", "chomage_ze", "census", "chomage_bdm")), again
    assert count(httpserver, "/files/StockEtablissement_utf8.zip") == downloads
    # each dataset gated once (geography, sirene_stock, urssaf, chomage_ze, census, chomage_bdm)
    assert sorted(g[0] for g in gates) == sorted(["geography", "sirene_stock", "urssaf", "chomage_ze", "census",
                                                  "chomage_bdm"])


def test_sample_mode_geography_has_no_passage_and_reports_unknown_codes(tmp_path):
    """No passage data is bundled: in sample mode unknown codes keep being reported, not mapped."""
    from territoires_industrie.staged import load_passage
    from territoires_industrie.stages.geography import remap_counts

    settings = get_settings({"TI_DATA_DIR": str(tmp_path)})
    assert load_passage(settings) is None
    df = pd.DataFrame({"codgeo": ["21054", "21999"], "n": [1, 2]})
    out, rep = remap_counts(df, None, {"21054"}, ["codgeo"], ["n"])
    assert out.equals(df) and rep["unmappable_count"] == 0


# --- official geometries (IGN ADMIN EXPRESS COG CARTO) -------------------------------------------
def geojson_codes(path) -> set[str]:
    return {f["properties"]["code"] for f in json.loads(path.read_text(encoding="utf-8"))["features"]}


def staged_codes(folder) -> tuple[set[str], set[str]]:
    return set(pd.read_parquet(folder / "epci.parquet")["epci"]), set(pd.read_parquet(folder / "ze.parquet")["ze2020"])


def test_live_geography_writes_the_official_geometries(live, httpserver, gates):
    from shapely.geometry import shape
    from territoires_industrie.report.geometry import load_geometries
    from territoires_industrie.sources import admin_express as ax
    from territoires_industrie.stages.geography import run_geography

    out = run_geography(live)
    g = out["geometry"]
    name = ax.archive_name(srv.ADMIN_EXPRESS_EDITION)
    assert g["status"] == "ok" and g["edition"] == "2023-05-03" and g["file"] == name and g["archive_bytes"] > 0
    assert g["epci"]["vintage_without_shape_count"] == 0 and g["ze"]["without_shape_count"] == 0
    assert g["communes"]["vintage_without_shape_count"] == 0 and g["communes"]["epci_disagreements_count"] == 0
    assert (live.raw_dir / "geo_admin_express" / "2023-05-03" / name).exists()  # landed like every raw file

    _, folder = storage.current(live.staging_dir, "geography")
    epci, ze = staged_codes(folder)
    assert geojson_codes(folder / "geometry" / "epci.geojson") == epci and len(epci) == 5
    assert geojson_codes(folder / "geometry" / "ze.geojson") == ze and len(ze) == 5
    rep = json.loads((folder / "parse_report.json").read_text())["geometry"]
    assert rep["status"] == "ok" and rep["raw_sha256"] and rep["files"]["ze.geojson"] > 0
    assert "http" not in json.dumps({k: v for k, v in rep.items() if k != "raw_path"})  # no URL in the report
    zes = {f["properties"]["code"]: f for f in json.loads((folder / "geometry" / "ze.geojson").read_text())["features"]}
    dijon = shape(zes["2702"]["geometry"])  # Dijon + Fontaine-lès-Dijon dissolved: one 0.05 x 0.10 rectangle
    assert dijon.geom_type == "Polygon" and dijon.area == pytest.approx(0.05 * 0.10, rel=1e-6)
    assert zes["2702"]["properties"] == {"code": "2702", "nom": "Dijon", "communes": 2}

    # the report's loader finds them in the current partition and draws every territory
    geos = load_geometries({"epci": epci, "ze": ze}, settings=live)
    assert set(geos) == {"epci", "ze"}
    assert set(geos["epci"].shapes) == epci and set(geos["ze"].shapes) == ze and geos["ze"].unmatched_features == 0

    # unchanged upstream (same ETag): nothing rebuilt, the geometry stays
    again = run_geography(live)
    assert again["skipped"] is True and again["geometry"]["status"] == "ok"
    assert count(httpserver, srv.admin_express_path()) == 2
    assert geojson_codes(folder / "geometry" / "epci.geojson") == epci


@pytest.mark.parametrize("status", [404, 500])
def test_geometry_download_failure_never_fails_the_geography(live, httpserver, gates, monkeypatch, status):
    from territoires_industrie.report.geometry import load_geometries
    from territoires_industrie.stages.geography import run_geography

    monkeypatch.setenv("TI_HTTP_MAX_RETRIES", "0")
    httpserver.expect_oneshot_request(srv.admin_express_path()).respond_with_data("unavailable", status=status)
    out = run_geography(live)
    assert (out["vintage"], out["communes"], out["epci"], out["ze"]) == ("2023", 6, 5, 5)  # indicators' inputs staged
    g = out["geometry"]
    assert g["status"] == "unavailable" and f"HTTP {status}" in g["reason"] and g["previous_kept"] is False
    _, folder = storage.current(live.staging_dir, "geography")
    assert json.loads((folder / "parse_report.json").read_text())["geometry"]["status"] == "unavailable"
    assert not (folder / "geometry").exists()
    assert load_geometries({"epci": staged_codes(folder)[0], "ze": staged_codes(folder)[1]}, settings=live) == {}
    assert not list((live.raw_dir / "geo_admin_express").glob("20*"))  # nothing landed

    # the archive is back: only the geometry is built, then everything is skipped
    again = run_geography(live)
    assert again["skipped"] is False and again["rebuilt"] == ["geometry"] and again["geometry"]["status"] == "ok"
    assert geojson_codes(folder / "geometry" / "ze.geojson") == staged_codes(folder)[1]
    assert json.loads((folder / "parse_report.json").read_text())["geometry"]["status"] == "ok"
    assert run_geography(live)["skipped"] is True
    assert [g[0] for g in gates] == ["geography"]  # the vintage itself was built (and gated) once


def test_bad_geometry_archive_is_reported_and_switch_off(live, httpserver, gates, monkeypatch):
    from territoires_industrie.stages.geography import run_geography

    from ..unit import admin_express_fixture as fx

    lambert = fx.archive_bytes(srv.ADMIN_EXPRESS_EDITION, prj=fx.LAMBERT93_PRJ)
    httpserver.expect_oneshot_request(srv.admin_express_path()).respond_with_data(lambert)
    out = run_geography(live)
    g = out["geometry"]
    assert g["status"] == "unavailable" and "EPCI.prj" in g["reason"] and "WGS84G" in g["reason"]
    assert out["communes"] == 6 and not (storage.current(live.staging_dir, "geography")[1] / "geometry").exists()

    monkeypatch.setenv("TI_FETCH_GEOMETRY", "0")
    before = count(httpserver, srv.admin_express_path())
    off = run_geography(live)
    assert off["skipped"] is True and off["geometry"]["status"] == "disabled"
    assert count(httpserver, srv.admin_express_path()) == before  # not even asked


def test_live_chain_runs_through_to_a_published_release(live, httpserver, gates, monkeypatch):
    """TI_SOURCE_MODE=live, every source replayed: geography -> SIRENE stock and history ->
    employment (URSSAF, ZE, Melodi census, BDM) -> indicators -> publish, through the tracked
    pipeline functions the DAG tasks call. (The Great Expectations gates are recorded, not run:
    their suites expect national coverage; they have their own tests.)"""
    import sqlalchemy as sa
    from territoires_industrie import pipeline, warehouse

    for stage in ("sirene_history", "indicators", "publish"):
        monkeypatch.setattr(f"territoires_industrie.stages.{stage}.gate", lambda *a, **k: None, raising=False)
    monkeypatch.setenv("TI_MC_DRAWS", "20")
    for step in ("geography", "sirene", "sirene_history", "employment", "indicators"):
        getattr(pipeline, f"run_{step}")(live)
    out = pipeline.run_publish(live)
    assert out["release_id"] == "2026-11" and out["current_release"] == "2026-11" and out["synthetic"] is False
    assert out["indicator_values"] > 0 and Path(out["csv"]).exists() and Path(out["report"]).exists()
    engine = warehouse.get_engine(live.warehouse_url)
    with engine.connect() as conn:
        meta = conn.execute(sa.select(warehouse.releases)).mappings().one()
        levels = dict(conn.execute(sa.text("SELECT level, COUNT(*) FROM latest_territories GROUP BY level")).all())
    engine.dispose()
    vintages = json.loads(meta["source_vintages"]) if isinstance(meta["source_vintages"], str) else meta["source_vintages"]
    # every vintage is the one read from the replayed services, none from the sample
    assert vintages["sirene_stock"] == "2026-11-01" and vintages["census"] == "2022" and vintages["urssaf"] == "2025"
    assert vintages["chomage_ze"] == "2026-T2" and vintages["geography"] == "2023"
    assert {"commune", "epci", "ze", "departement"} <= set(levels)
