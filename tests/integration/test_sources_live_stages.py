"""The stages in live mode against the local replay: geography (with the passage table), SIRENE
stock, employment; a second run with unchanged upstream files skips every dataset.

The Great Expectations gates are replaced by a recorder here: their suites have their own tests
and expect national coverage, which a 6-commune replay cannot give. What is tested is acquisition,
passage-table mapping, staging and the unchanged-upstream skip.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from territoires_industrie import storage
from territoires_industrie.config import get_settings

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
    assert len(pd.read_parquet(folder / "passage.parquet")) == 11

    s_out = run_sirene(live)
    assert s_out["vintage"] == "2026-11-01" and s_out["as_of_from_data"] == srv.STOCK_AS_OF and s_out["rows"] == 8
    _, sfolder = storage.current(live.staging_dir, "sirene_stock")
    agg = pd.read_parquet(sfolder / "establishments_agg.parquet")
    active_ind = agg[agg["is_industrial"] & (agg["etat"] == "A")].groupby("codgeo")["n_etab"].sum().to_dict()
    assert active_ind == {"21054": 2, "21231": 1, "75056": 1}  # 21999 -> 21231, 75101 -> 75056
    closed = agg[agg["etat"] == "F"]
    assert closed[["codgeo", "closure_year", "n_etab"]].values.tolist() == [["2A004", "2024", 1]]
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
    assert e_out["census"]["vintage"] == "2021"
    cen = pd.read_parquet(storage.current(live.staging_dir, "census")[1] / "communes.parquet").set_index("codgeo")
    assert cen.loc["21054", "p21_pop"] == 156920 and cen.loc["21231", "p21_actocc2554"] == 2850
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
    from territoires_industrie.stages.geography import load_passage, remap_counts

    settings = get_settings({"TI_DATA_DIR": str(tmp_path)})
    assert load_passage(settings) is None
    df = pd.DataFrame({"codgeo": ["21054", "21999"], "n": [1, 2]})
    out, rep = remap_counts(df, None, {"21054"}, ["codgeo"], ["n"])
    assert out.equals(df) and rep["unmappable_count"] == 0
