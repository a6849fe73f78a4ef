"""Great Expectations gates, one suite per dataset: a clean hand-made batch passes; a
corrupted one (bad codes, duplicates, missing column, out-of-range value, missing
département) fails with the expected expectation names, columns and counts, worked out by
hand below. Plus: quarantine file, drift (soft gate), status summary, HTML escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from territoires_industrie.config import Settings
from territoires_industrie.geography import Geography
from territoires_industrie.validation import (
    HardGateFailed,
    ValidationSetupError,
    format_summary,
    gate,
    latest_status,
    overall_status,
)

S = "str"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def geo() -> Geography:
    """5 Corsican communes: 2 EPCI (+ 1 commune without EPCI), 2 ZE (+ a Guyane ZE with no
    commune, absent from the unemployment file by design), 1 phase-1 TI."""
    communes = pd.DataFrame({
        "codgeo": ["2A004", "2A006", "2B002", "2B005", "2B009"],
        "libgeo": ["Ajaccio", "Afa", "Aghione", "Aiti", "Aléria"],
        "epci": ["242000001", "242000001", "242000002", "242000002", "ZZZZZZZZZ"],
        "dep": ["2A", "2A", "2B", "2B", "2B"],
        "reg": ["94"] * 5,
        "ze2020": ["9401", "9401", "9402", "9402", "9402"],
    }).astype(S)
    epci = pd.DataFrame({"epci": ["242000001", "242000002"], "libepci": ["CA du Pays Ajaccien", "CC X"],
                         "nature_epci": ["CA", "CC"], "nb_com": [2, 2]})
    ze = pd.DataFrame({"ze2020": ["9401", "9402", "0301"], "libze2020": ["Ajaccio", "Bastia", "Cayenne"],
                       "nb_com": [2, 3, 0]})
    ti = pd.DataFrame({"ti_id": ["TI1-0001"] * 2, "ti_phase": ["2018-2022"] * 2, "ti_label": ["Corse"] * 2,
                       "codgeo": ["2A004", "2B002"]})
    return Geography("2023", communes, epci, ze, ti, pd.DataFrame(columns=["ti_id", "codgeo"]))


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, warehouse_url=f"sqlite:///{tmp_path}/w.db", source_mode="sample",
                    sample_departements=("2A", "2B"), extra={"validation_min_communes": 5})


def run(dataset, df, settings, geo, vintage="v1", **ctx):
    return gate(dataset, df, settings=settings, vintage=vintage, context={"geography": geo, **ctx})


def failures(dataset, df, settings, geo, vintage="v1", **ctx) -> tuple[dict, HardGateFailed]:
    with pytest.raises(HardGateFailed) as ei:
        run(dataset, df, settings, geo, vintage, **ctx)
    return {(f["expectation"], f["column"]): f.get("unexpected_count") for f in ei.value.failures}, ei.value


def sirene_agg() -> pd.DataFrame:
    return pd.DataFrame([
        # codgeo, nomenclature, naf, division, is_industrial, etat, employer, tranche, n
        ("2A004", "NAFRev2", "25.62B", "25", True, "A", "O", "11", 3),
        ("2A004", "NAFRev2", "", "", False, "A", "N", "", 5),
        ("2A006", "NAFRev2", "33.12Z", "33", True, "A", "O", "12", 2),
        ("2B002", "NAFRev2", "10.71C", "10", True, "F", "N", "00", 1),
        ("2B005", "NAFRev1", "", "", False, "F", "", "", 2),
    ], columns=["codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche",
                "n_etab"]).astype(
        {c: S for c in ["codgeo", "nomenclature", "naf", "division", "etat", "employer", "tranche"]})


def urssaf_df() -> pd.DataFrame:
    df = pd.DataFrame({
        "codgeo": ["2A004", "2A004", "2A006", "2B002", "2B005", "2B009"],
        "division": ["25", "47", "10", "25", "56", "33"],
        "year": [2025] * 6,
        "n_etab": [2.0, 5.0, 1.0, 3.0, 1.0, 1.0],
        "jobs": [40.0, 12.0, 8.0, 60.0, None, 30.0],  # None = secret, allowed
    }).astype({"codgeo": S, "division": S})
    df["is_industrial"] = df["division"].isin(["10", "25", "33"])
    return df


def chomage_df() -> pd.DataFrame:
    return pd.DataFrame({"ze2020": ["9401", "9401", "9402", "9402"], "quarter": ["2026-T1", "2026-T2"] * 2,
                         "rate": [7.1, 6.9, 9.4, 9.8]}).astype({"ze2020": S, "quarter": S})


CENSUS_COLS = ["rp1_pop", "rp0_pop", "rp1_pop2554", "rp1_act1564", "rp1_actocc1564", "rp1_chom1564", "rp1_act2554",
               "rp1_actocc2554", "rp1_emplt", "rp0_emplt"]


def census_df() -> pd.DataFrame:
    rows = {
        "2A004": [70000, 68000, 27000, 33000, 29000, 4000, 24000, 21500, 40000, 39000],
        "2A006": [3000, 2900, 1200, 1500, 1380, 120, 1100, 1010, 600, 590],
        "2B002": [100, 95, 40, 45, 40, 5, 35, 31, 10, 12],
        "2B005": [50, 55, 18, 22, 20, 2, 15, 14, 4, 4],
        "2B009": [2200, 2100, 850, 1000, 900, 100, 760, 690, 700, 680],
    }
    df = pd.DataFrame([[k, *map(float, v)] for k, v in rows.items()], columns=["codgeo", *CENSUS_COLS])
    return df.astype({"codgeo": S})


#: active industrial establishments per commune; every other level is the sum of its communes
ESTAB = {"2A004": 3, "2A006": 2, "2B002": 0, "2B005": 1, "2B009": 4}
LEVEL_SUMS = {  # worked out by hand from ESTAB and the geography above
    ("epci", "242000001"): 5, ("epci", "242000002"): 1, ("ze", "9401"): 5, ("ze", "9402"): 5,
    ("departement", "2A"): 5, ("departement", "2B"): 5, ("region", "94"): 10, ("ti", "TI1-0001"): 3,
}


def indicator_long() -> pd.DataFrame:
    rows = []
    for c, n in ESTAB.items():
        rows.append(("commune", c, "estab_ind_active", "2026-11", float(n), float(n), None, "établissements"))
        rows.append(("commune", c, "unemployment_rate", "2025-T3..2026-T2", 8.0, 80.0, 1000.0, "%"))
    for (lv, t), n in LEVEL_SUMS.items():
        rows.append((lv, t, "estab_ind_active", "2026-11", float(n), float(n), None, "établissements"))
        rows.append((lv, t, "unemployment_rate", "2025-T3..2026-T2", 8.0, 400.0, 5000.0, "%"))
    df = pd.DataFrame(rows, columns=["level", "territory_id", "indicator_id", "period", "value", "numerator",
                                     "denominator", "unit"])
    return df.astype({c: S for c in ["level", "territory_id", "indicator_id", "period", "unit"]})


def territories(long: pd.DataFrame) -> pd.DataFrame:
    return long[["level", "territory_id"]].drop_duplicates().reset_index(drop=True)


def composite_df() -> pd.DataFrame:
    return pd.DataFrame({
        "level": ["epci", "epci"], "territory_id": ["242000001", "242000002"], "reference_set": ["epci", "epci"],
        "score": [62.5, 20.0], "domain_a": [70.0, 10.0], "domain_b": [50.0, 30.0], "domain_c": [60.0, 20.0],
        "domain_d": [40.0, 15.0], "rank_national": [1, 2], "rank_regional": [1.0, 2.0],
        "percentile_national": [100.0, 50.0], "percentile_regional": [100.0, 50.0], "decile": [10, 5],
        "mc_rank_median": [1.0, 2.0], "mc_rank_p05": [1.0, 1.0], "mc_rank_p95": [2.0, 2.0],
        "p_top10": [0.8, 0.2], "p_top20": [0.9, 0.4], "n_reference": [2, 2],
    }).astype({"level": S, "territory_id": S, "reference_set": S})


def history_df() -> pd.DataFrame:
    return pd.DataFrame({
        "siret": ["55210055400016", "55210055400016", "40483304800022", "40483304800022"],
        "year": [2024, 2025, 2024, 2025],
        "etat": ["A", "A", "A", "F"], "employer": ["O", "O", "N", "N"],
        "naf": ["25.62B", "25.62B", "10.71C", "10.71C"], "nomenclature": ["NAFRev2"] * 4,
    }).astype({c: S for c in ["siret", "etat", "employer", "naf", "nomenclature"]})


HISTORY_REPORT = {"file": "StockEtablissementHistorique_utf8.csv", "rows": 10, "years": [2024, 2025]}


# --------------------------------------------------------------------------- geography
def test_geography_clean_passes(settings, geo):
    r = run("geography", geo.communes, settings, geo)
    assert r.status == "passed" and r.hard_failures == [] and r.evaluated >= 20


def test_geography_unmapped_commune_and_unknown_ze_fail(settings, geo):
    c = geo.communes.copy()
    c.loc[1, "epci"] = None  # 2A006 not mapped to an EPCI
    c.loc[3, "ze2020"] = "9999"  # 2B005 in a ZE that does not exist
    got, _ = failures("geography", c, settings, geo)
    assert got == {("expect_column_values_to_not_be_null", "epci"): 1,
                   ("expect_column_values_to_be_in_reference_set", "ze2020"): 1}


# --------------------------------------------------------------------------- sirene_stock
def test_sirene_clean_passes_and_writes_result(settings, geo):
    r = run("sirene_stock", sirene_agg(), settings, geo, vintage="2026-11-01")
    assert r.status == "passed"
    res = json.loads(open(r.result_path).read())
    assert res["rows"] == 5 and res["hard_failures"] == 0 and res["quarantine"]["rows"] == 0
    assert (settings.validation_dir / "sirene_stock" / "2026-11-01" / "report.html").exists()
    assert not (settings.validation_dir / "sirene_stock" / "2026-11-01" / "quarantine.parquet").exists()


def test_sirene_bad_codes_fail_and_are_quarantined(settings, geo):
    df = sirene_agg()
    df.loc[0, "codgeo"] = "2A99"  # 4 characters
    df.loc[2, "naf"] = "33.12"  # industrial row without the sous-classe letter
    df.loc[3, "tranche"] = "99"  # not an INSEE size band
    got, exc = failures("sirene_stock", df, settings, geo)
    assert got == {
        ("expect_column_values_to_match_regex", "codgeo"): 1,
        ("expect_column_values_to_be_in_reference_set", "codgeo"): 1,
        ("expect_column_values_to_match_regex", "naf"): 1,
        ("expect_column_values_to_be_in_reference_set", "naf"): 1,
        ("expect_column_values_to_be_in_set", "tranche"): 1,
    }
    msg = str(exc)
    assert "sirene_stock v1" in msg and "expect_column_values_to_match_regex on codgeo" in msg and "'2A99'" in msg
    q = pd.read_csv(exc.quarantine_path.with_suffix(".csv"), dtype=str)
    assert len(q) == 5  # one line per (row, failed check)
    cog = q[q["expectation"] == "expect_column_values_to_be_in_reference_set"].set_index("column")
    assert cog.loc["codgeo", "row_index"] == "0" and cog.loc["codgeo", "codgeo"] == "2A99"
    assert "exists in the COG 2023" in cog.loc["codgeo", "reason"]
    assert cog.loc["naf", "naf"] == "33.12" and cog.loc["naf", "row_index"] == "2"
    assert q.loc[q["column"] == "tranche", "tranche"].tolist() == ["99"]


def test_big_frames_are_validated_in_row_chunks_with_the_same_result(settings, geo, monkeypatch, caplog):
    """Above CHUNK_ROWS rows the row-wise checks run chunk by chunk (memory): same failures,
    counts, samples and quarantined rows as one pass, and whole-frame checks (uniqueness)
    still see duplicates that sit in different chunks."""
    from territoires_industrie.validation import gates

    df = pd.concat([sirene_agg()] * 3, ignore_index=True)  # 15 rows: duplicates across chunks
    df.loc[0, "codgeo"] = "2A99"
    df.loc[7, "tranche"] = "99"
    df.loc[12, "naf"] = "33.12"
    one, exc_one = failures("sirene_stock", df, settings, geo)
    q_one = pd.read_csv(exc_one.quarantine_path.with_suffix(".csv"), dtype=str)
    monkeypatch.setattr(gates, "CHUNK_ROWS", 4)
    monkeypatch.setattr(gates.run_suite, "__defaults__", (4, None))
    with caplog.at_level("INFO", logger="territoires_industrie.validation.gates"):
        chunked, exc = failures("sirene_stock", df, settings, geo)
    assert "in chunks of 4 rows" in caplog.text
    assert chunked == one
    assert chunked[("expect_compound_columns_to_be_unique",
                    "codgeo, nomenclature, naf, division, is_industrial, etat, employer, tranche")] >= 8
    assert chunked[("expect_column_values_to_be_in_set", "tranche")] == 1
    q = pd.read_csv(exc.quarantine_path.with_suffix(".csv"), dtype=str)
    pd.testing.assert_frame_equal(q.sort_values(list(q.columns)).reset_index(drop=True),
                                  q_one.sort_values(list(q_one.columns)).reset_index(drop=True))
    res = json.loads(Path(exc.result_path).read_text())
    regex = next(c for c in res["checks"] if c["expectation"] == "expect_column_values_to_match_regex"
                 and c["column"] == "codgeo")
    assert regex["element_count"] == 15 and regex["unexpected_count"] == 1 and regex["sample"] == ["2A99"]


def test_sirene_duplicates_fail(settings, geo):
    df = pd.concat([sirene_agg(), sirene_agg().iloc[[1]]], ignore_index=True)
    got, _ = failures("sirene_stock", df, settings, geo)
    key = "codgeo, nomenclature, naf, division, is_industrial, etat, employer, tranche"
    assert got == {("expect_compound_columns_to_be_unique", key): 2}  # both copies flagged


def test_sirene_missing_column_fails_and_its_checks_are_skipped(settings, geo):
    got, exc = failures("sirene_stock", sirene_agg().drop(columns="tranche"), settings, geo)
    assert got == {("expect_column_to_exist", "tranche"): None}
    assert "expect_column_to_exist on tranche: column missing" in str(exc)
    res = json.loads(exc.result_path.read_text())
    assert any(s["expectation"] == "expect_column_values_to_be_in_set" and s["column"] == "tranche"
               for s in res["skipped"])


def test_sirene_missing_departement_and_zero_count_fail(settings, geo):
    df = sirene_agg()
    df = df[~df["codgeo"].str.startswith("2B")].reset_index(drop=True)
    df.loc[0, "n_etab"] = 0
    got, exc = failures("sirene_stock", df, settings, geo)
    assert got == {("expect_column_distinct_values_to_contain_set", "departement_of_codgeo"): None,
                   ("expect_column_values_to_be_between", "n_etab"): 1}
    missing = [f for f in exc.failures if f["column"] == "departement_of_codgeo"][0]
    assert missing["missing_values"] == ["2B"]


def test_sirene_unknown_communes_in_parse_report_soft_then_hard(settings, geo):
    rep = {"rows": 1000, "unknown_commune_codes": 1, "unknown_commune_establishments": 5,
           "unknown_communes_sample": {"2B999": 5}}
    r = run("sirene_stock", sirene_agg(), settings, geo, report=rep)  # 0.5 % <= 1 %: soft
    assert r.status == "warnings"
    assert [(f["column"], f["unexpected_count"]) for f in r.soft_failures] == [("codeCommuneEtablissement", 5)]
    rep["unknown_commune_establishments"] = 20  # 2 % > 1 %: hard
    got, _ = failures("sirene_stock", sirene_agg(), settings, geo, report=rep)
    assert got == {("expect_column_values_to_be_in_reference_set", "codeCommuneEtablissement"): 20}


# --------------------------------------------------------------------------- sirene_history
def test_history_clean_passes(settings, geo):
    assert run("sirene_history", history_df(), settings, geo, report=HISTORY_REPORT).status == "passed"


def test_history_bad_siret_duplicate_and_missing_year_fail(settings, geo):
    df = history_df()
    df.loc[3, "year"] = 2024  # (40483304800022, 2024) twice, and no 2025 state left for it...
    df.loc[1, "year"] = 2024  # ... nor for the other: year 2025 missing entirely
    df.loc[0, "siret"] = "5521005540001"  # 13 digits
    got, exc = failures("sirene_history", df, settings, geo, report=HISTORY_REPORT)
    assert got == {("expect_column_values_to_match_regex", "siret"): 1,
                   ("expect_compound_columns_to_be_unique", "siret, year"): 2,
                   ("expect_column_distinct_values_to_contain_set", "year"): None}
    assert [f["missing_values"] for f in exc.failures if f["column"] == "year"] == [[2025]]


def _history_rows(n_sirets: int) -> pd.DataFrame:
    sirets = [f"{55210055400016 + 1000 * i:014d}" for i in range(n_sirets)]
    df = pd.DataFrame({"siret": [s for s in sirets for _ in (2024, 2025)], "year": [2024, 2025] * n_sirets})
    for c, v in (("etat", "A"), ("employer", "O"), ("naf", "25.62B"), ("nomenclature", "NAFRev2")):
        df[c] = v
    return df.astype({c: S for c in ["siret", "etat", "employer", "naf", "nomenclature"]})


@pytest.mark.parametrize("shuffle", [False, True], ids=["sorted", "unsorted"])
def test_history_duplicates_are_found_when_uniqueness_runs_in_key_chunks(settings, geo, monkeypatch, caplog, shuffle):
    """The national states are validated in chunks cut between two SIRETs: a duplicate
    (siret, year) that a plain 4-row cut would split over two chunks is still found, with
    the same count and quarantined rows as one pass; an unsorted frame is not trusted (whole
    frame), so duplicates far apart are found too."""
    from territoires_industrie.validation import gates

    df = _history_rows(9)  # 18 rows, plain 4-row chunks: [0..3] [4..7] ...
    df.loc[4, "siret"] = df.loc[3, "siret"]  # rows 2, 3, 4 now one SIRET: (…, 2024) at rows 2 and 4
    if shuffle:
        df.loc[17, ["siret", "year"]] = df.loc[0, ["siret", "year"]].tolist()  # last row = first row's key
        df = df.iloc[[17, *range(1, 17), 0]].reset_index(drop=True)
    one, exc_one = failures("sirene_history", df, settings, geo, report=HISTORY_REPORT)
    monkeypatch.setattr(gates, "CHUNK_ROWS", 4)
    monkeypatch.setattr(gates.run_suite, "__defaults__", (4, None))
    with caplog.at_level("INFO", logger="territoires_industrie.validation.gates"):
        chunked, exc = failures("sirene_history", df, settings, geo, report=HISTORY_REPORT)
    assert chunked == one
    assert chunked[("expect_compound_columns_to_be_unique", "siret, year")] == (4 if shuffle else 2)
    assert ("not sorted by siret" in caplog.text) == shuffle
    assert ("1 key-wise expectations in chunks of 4 rows" in caplog.text) == (not shuffle)
    q, q_one = (pd.read_csv(e.quarantine_path.with_suffix(".csv"), dtype=str) for e in (exc, exc_one))
    pd.testing.assert_frame_equal(q.sort_values(list(q.columns)).reset_index(drop=True),
                                  q_one.sort_values(list(q_one.columns)).reset_index(drop=True))


def test_key_chunks_never_split_a_key():
    from territoires_industrie.validation import gates

    df = pd.DataFrame({"k": ["a", "a", "a", "b", "c", "c", "c", "c", "d"]})
    bounds = gates._key_chunks(df, "k", 2)
    assert bounds == [(0, 3), (3, 8), (8, 9)]  # "a" and "c" are never cut
    assert gates._key_sorted(df, "k") and not gates._key_sorted(df.iloc[::-1], "k")
    assert not gates._key_sorted(pd.DataFrame({"k": ["a", None, "b"]}), "k")
    assert gates._key_sorted(pd.DataFrame({"k": [1, 1, 2]}), "k") and not gates._key_sorted(pd.DataFrame({"k": [2, 1]}), "k")


# --------------------------------------------------------------------------- urssaf
def test_urssaf_clean_passes(settings, geo):
    assert run("urssaf", urssaf_df(), settings, geo, vintage="2025").status == "passed"


def test_urssaf_corrupted_fails_with_counts(settings, geo):
    df = urssaf_df()
    df.loc[1, "division"] = "4A"  # not a division
    df.loc[4, "is_industrial"] = True  # division 56 flagged industrial
    df.loc[3, "jobs"] = -5.0
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # duplicate (2A004, 25, 2025)
    got, exc = failures("urssaf", df, settings, geo, vintage="2025")
    assert got == {
        ("expect_column_values_to_match_regex", "division"): 1,
        ("expect_column_values_to_be_in_reference_set", "division"): 1,
        ("expect_column_values_to_be_in_set", "division"): 1,
        ("expect_column_values_to_be_between", "jobs"): 1,
        ("expect_column_values_to_be_plausible_counts", "jobs"): 1,
        ("expect_compound_columns_to_be_unique", "codgeo, division, year"): 2,
    }
    assert "urssaf 2025" in str(exc) and "expect_column_values_to_be_between on jobs: 1 unexpected" in str(exc)


@pytest.mark.parametrize("value", [float("inf"), 1e12, 10.5])
def test_urssaf_absurd_counts_fail_the_hard_gate(settings, geo, value):
    """Issue 21: a count that is not finite, whole and below France's total never reaches a
    published table, whatever parser produced it (the gate does not trust the parser)."""
    df = urssaf_df()
    df.loc[3, "jobs"] = value
    got, exc = failures("urssaf", df, settings, geo, vintage="2025")
    assert got.get(("expect_column_values_to_be_plausible_counts", "jobs")) == 1, got
    assert "expect_column_values_to_be_plausible_counts on jobs: 1 unexpected" in str(exc)


@pytest.mark.parametrize("value", [float("inf"), 1e9])
def test_census_absurd_counts_fail_the_hard_gate(settings, geo, value):
    df = census_df()
    df.loc[0, "rp1_pop"] = value
    got, _ = failures("census", df, settings, geo)
    assert got.get(("expect_column_values_to_be_plausible_counts", "rp1_pop")) == 1, got


def test_urssaf_missing_departement(settings, geo):
    df = urssaf_df()
    got, exc = failures("urssaf", df[df["codgeo"].str.startswith("2B")], settings, geo)
    assert got == {("expect_column_distinct_values_to_contain_set", "departement_of_codgeo"): None}
    assert exc.failures[0]["missing_values"] == ["2A"]


# --------------------------------------------------------------------------- chomage_ze
def test_chomage_clean_passes_without_guyane(settings, geo):
    # ZE 0301 (Guyane) is in the ZE list but not expected in the unemployment file
    assert run("chomage_ze", chomage_df(), settings, geo, vintage="2026-T2").status == "passed"


def test_chomage_out_of_range_bad_code_and_missing_ze_fail(settings, geo):
    df = chomage_df()
    df.loc[0, "rate"] = 120.0  # 9401, 2026-T1: not a rate
    df.loc[3, "ze2020"] = "94O2"  # letter O instead of zero, latest quarter: 9402 now missing there
    got, exc = failures("chomage_ze", df, settings, geo, vintage="2026-T2")
    assert got == {
        ("expect_column_values_to_be_between", "rate"): 1,
        ("expect_column_values_to_match_regex", "ze2020"): 1,
        ("expect_column_values_to_be_in_reference_set", "ze2020"): 1,
        ("expect_column_distinct_values_to_contain_set", "ze_in_latest_quarter"): None,
    }
    assert [f["missing_values"] for f in exc.failures if f["column"] == "ze_in_latest_quarter"] == [["9402"]]
    assert [f["sample"] for f in exc.failures if f["column"] == "rate"] == [[120.0]]


# --------------------------------------------------------------------------- census
def test_census_clean_passes(settings, geo):
    assert run("census", census_df(), settings, geo, vintage="2021").status == "passed"


def test_census_inconsistent_duplicate_negative_fail(settings, geo):
    df = census_df()
    df.loc[1, "rp1_actocc1564"] = 1600.0  # more employed than actives (1500)
    df.loc[2, "rp1_pop"] = -1.0  # also makes rp1_pop < rp1_act1564 and < rp1_pop2554
    df = pd.concat([df, df.iloc[[4]]], ignore_index=True)
    got, _ = failures("census", df, settings, geo, vintage="2021")
    assert got == {
        ("expect_column_values_to_be_unique", "codgeo"): 2,
        ("expect_column_values_to_be_between", "rp1_pop"): 1,
        ("expect_column_values_to_be_plausible_counts", "rp1_pop"): 1,
        ("expect_column_pair_values_a_to_be_greater_than_b", "rp1_act1564, rp1_actocc1564"): 1,
        ("expect_column_pair_values_a_to_be_greater_than_b", "rp1_pop, rp1_act1564"): 1,
        ("expect_column_pair_values_a_to_be_greater_than_b", "rp1_pop, rp1_pop2554"): 1,
    }


# --------------------------------------------------------------------------- indicator_values
def test_indicators_clean_passes_and_cross_checks_every_level(settings, geo):
    long = indicator_long()
    r = run("indicator_values", long, settings, geo, vintage="2026-11", territories=territories(long))
    assert r.status == "passed"
    res = json.loads(open(r.result_path).read())
    cc = [c for c in res["checks"] if c["column"] == "crosscheck_rel_diff"][0]
    assert cc["checked_count"] == len(LEVEL_SUMS)  # 8 non-commune count rows compared with their communes
    # optional columns of the richer table are not there: their checks are skipped, not failed
    assert {s["column"] for s in res["skipped"]} >= {"shrink_weight", "secret_status", "n_units"}


def test_indicators_cross_check_range_and_unknown_territory_fail(settings, geo):
    long = indicator_long()
    terr = territories(long)
    bad = long.copy()
    i = bad.index[(bad["territory_id"] == "242000001") & (bad["indicator_id"] == "estab_ind_active")][0]
    bad.loc[i, "value"] = 6.0  # member communes sum to 5
    j = bad.index[(bad["territory_id"] == "2B") & (bad["indicator_id"] == "unemployment_rate")][0]
    bad.loc[j, "value"] = 130.0
    extra = bad.iloc[[i]].assign(territory_id="242000999", value=1.0)  # EPCI not in the COG nor the release
    bad = pd.concat([bad, extra], ignore_index=True)
    got, exc = failures("indicator_values", bad, settings, geo, vintage="2026-11", territories=terr)
    assert got == {
        ("expect_column_values_to_be_between", "crosscheck_rel_diff"): 1,
        ("expect_column_values_to_be_between", "value"): 1,
        ("expect_column_values_to_be_in_reference_set", "territory_id"): 1,
        ("expect_column_values_to_be_in_reference_set", "territory_key"): 1,
    }
    cc = [f for f in exc.failures if f["column"] == "crosscheck_rel_diff"][0]
    assert cc["sample"] == [pytest.approx(0.2)]  # |6 - 5| / 5
    rng = [f for f in exc.failures if f["column"] == "value"][0]
    assert rng["sample"] == [130.0] and "indicator_id IN" in rng["condition"]
    q = pd.read_parquet(exc.quarantine_path)
    row = q[q["column"] == "crosscheck_rel_diff"].iloc[0]
    assert (row["territory_id"], row["value"], row["member_communes_sum"]) == ("242000001", "6.0", "5.0")


def test_indicators_missing_departement_fails(settings, geo):
    long = indicator_long()
    bad = long[~((long["level"] == "departement") & (long["territory_id"] == "2B"))]
    got, exc = failures("indicator_values", bad, settings, geo, vintage="2026-11", territories=territories(bad))
    assert got == {("expect_column_distinct_values_to_contain_set", "departement_territories"): None}
    assert exc.failures[0]["missing_values"] == ["2B"]


def test_indicators_optional_columns_checked_when_present(settings, geo):
    long = indicator_long().assign(shrink_weight=1.0, secret_status="V")
    long["secret_status"] = long["secret_status"].astype(S)
    long.loc[0, "shrink_weight"] = 1.5
    long.loc[1, "secret_status"] = "X"
    long.loc[2, "secret_status"] = "A"  # secret cell with a published value
    got, _ = failures("indicator_values", long, settings, geo, vintage="2026-11", territories=territories(long))
    assert got == {("expect_column_values_to_be_between", "shrink_weight"): 1,
                   ("expect_column_values_to_be_in_set", "secret_status"): 1,
                   ("expect_column_values_to_be_null", "value"): 1}


# --------------------------------------------------------------------------- composite
def test_composite_clean_passes(settings, geo):
    assert run("composite", composite_df(), settings, geo, vintage="2026-11").status == "passed"


def test_composite_out_of_range_fails(settings, geo):
    df = composite_df()
    df.loc[0, "score"] = 101.0
    df.loc[1, "p_top10"] = 1.2
    df.loc[1, "rank_national"] = 0
    df.loc[0, "mc_rank_p05"] = 3.0  # above the median (1)
    got, _ = failures("composite", df, settings, geo, vintage="2026-11")
    assert got == {
        ("expect_column_values_to_be_between", "score"): 1,
        ("expect_column_values_to_be_between", "p_top10"): 1,
        ("expect_column_values_to_be_between", "rank_national"): 1,
        ("expect_column_pair_values_a_to_be_greater_than_b", "mc_rank_median, mc_rank_p05"): 1,
    }


# --------------------------------------------------------------------------- drift, status, html
def test_drift_is_a_soft_gate_against_the_previous_vintage(settings, geo):
    assert run("urssaf", urssaf_df(), settings, geo, vintage="2024").status == "passed"
    df = urssaf_df()
    df.loc[df["codgeo"] == "2B002", "jobs"] = 120.0  # 2B industrial jobs 60 + 30 = 90 -> 150: +66.7 %
    r = run("urssaf", df, settings, geo, vintage="2025")  # no exception: soft
    assert r.status == "warnings" and r.hard_failures == []
    (f,) = r.soft_failures
    assert f["column"] == "change_pct" and f["unexpected_count"] == 1
    assert f["sample"] == [{"metric": "industrial_jobs_by_departement", "key": "2B", "previous": 90.0,
                            "current": 150.0, "change_pct": pytest.approx(66.667)}]
    res = json.loads(open(r.result_path).read())
    assert res["drift"]["previous_vintage"] == "2024" and res["drift"]["threshold_pct"] == 10.0


def test_failed_vintage_is_not_a_drift_baseline(settings, geo):
    run("urssaf", urssaf_df(), settings, geo, vintage="2023")
    bad = urssaf_df().assign(jobs=-1.0)
    with pytest.raises(HardGateFailed):
        run("urssaf", bad, settings, geo, vintage="2024")
    r = run("urssaf", urssaf_df(), settings, geo, vintage="2025")
    assert json.loads(open(r.result_path).read())["drift"]["previous_vintage"] == "2023"
    assert r.status == "passed"


def test_latest_status_summary_and_index(settings, geo):
    run("census", census_df(), settings, geo, vintage="2021")
    bad = chomage_df()
    bad.loc[0, "rate"] = 120.0
    with pytest.raises(HardGateFailed):
        run("chomage_ze", bad, settings, geo, vintage="2026-T2")
    st = latest_status(settings)
    assert list(st) == ["chomage_ze", "census"]
    assert st["chomage_ze"]["status"] == "failed" and st["chomage_ze"]["hard_failures"] == 1
    assert st["chomage_ze"]["quarantine_rows"] == 1 and st["census"]["status"] == "passed"
    assert overall_status(st) == "failed"
    text = format_summary(st)
    assert "chomage_ze        2026-T2     FAILED" in text
    assert "[hard] expect_column_values_to_be_between on rate: 1 unexpected of 4 rows checked, e.g. [120.0]" in text
    assert "Overall: FAILED" in text
    index = (settings.validation_dir / "index.html").read_text()
    assert "chomage_ze/2026-T2/report.html" in index and "FAILED" in index and "PASSED" in index


def test_html_escapes_values(settings, geo):
    df = chomage_df()
    df.loc[0, "ze2020"] = "<script>alert(1)</script>"
    with pytest.raises(HardGateFailed) as ei:
        run("chomage_ze", df, settings, geo)
    page = ei.value.html_path.read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_missing_geography_is_a_clear_error(settings):
    with pytest.raises(ValidationSetupError, match="staging dataset 'geography' is missing.*run the geography stage"):
        gate("urssaf", urssaf_df(), settings=settings, vintage="2025")


def test_unknown_dataset(settings, geo):
    with pytest.raises(ValueError, match="no validation suite for dataset 'foo'"):
        run("foo", urssaf_df(), settings, geo)


# --------------------------------------------------------------------------- chomage_bdm (live)
def bdm_df() -> pd.DataFrame:
    return pd.DataFrame({
        "idbank": ["001515842", "001515842", "001515943", "001515943"],
        "ref_area": ["FM", "FM", "D2A", "D2A"], "niveau": ["national", "national", "departement", "departement"],
        "code_insee": ["FM", "FM", "2A", "2A"], "time_period": ["2026-Q1", "2026-Q2"] * 2,
        "quarter": ["2026-T1", "2026-T2"] * 2, "rate": [7.3, 7.4, 8.1, 8.0],
    }).astype(S)


def test_bdm_clean_passes_and_corrupted_fails(settings, geo):
    df = bdm_df().assign(rate=lambda d: d["rate"].astype(float))
    assert run("chomage_bdm", df, settings, geo, vintage="2026-T2").status == "passed"
    df.loc[1, "rate"] = 0.0  # a rate of exactly 0 is not possible
    df.loc[2, "code_insee"] = "2C"  # no such département
    got, _ = failures("chomage_bdm", df, settings, geo, vintage="2026-T2")
    assert got == {("expect_column_values_to_be_between", "rate"): 1,
                   ("expect_column_values_to_be_in_reference_set", "code_insee"): 1}


def test_empty_batch_fails_and_the_exception_pickles(settings, geo):
    import pickle

    got, exc = failures("chomage_ze", chomage_df().iloc[0:0], settings, geo, vintage="2026-T2")
    assert got == {("expect_table_row_count_to_be_between", None): None}
    again = pickle.loads(pickle.dumps(exc))
    assert str(again) == str(exc) and again.dataset == "chomage_ze"


def test_sirene_updates_need_no_geography(settings):
    df = pd.DataFrame({"siret": ["55210055400016", "40483304800022"], "codeCommuneEtablissement": ["25056", ""],
                       "etatAdministratifEtablissement": ["A", "F"],
                       "activitePrincipaleEtablissement": ["25.62B", "47.11B"],
                       "nomenclatureActivitePrincipaleEtablissement": ["NAFRev2", "NAFRev2"],
                       "trancheEffectifsEtablissement": ["11", ""],
                       "dateDernierTraitementEtablissement": ["2026-11-02T10:00:00"] * 2}).astype(S)
    ok = gate("sirene_updates", df, settings=settings, vintage="2026-11-01_x")  # no staged geography needed
    assert ok.status == "passed"
    df.loc[1, "siret"] = "55210055400016"
    df.loc[1, "codeCommuneEtablissement"] = "2A04"
    with pytest.raises(HardGateFailed) as ei:
        gate("sirene_updates", df, settings=settings, vintage="2026-11-01_y")
    got = {(f["expectation"], f["column"]): f["unexpected_count"] for f in ei.value.failures}
    assert got == {("expect_column_values_to_be_unique", "siret"): 2,
                   ("expect_column_values_to_match_regex", "codeCommuneEtablissement"): 1}


def test_gx_does_not_fingerprint_the_batch(settings, geo, monkeypatch):
    """GX hashes every pandas batch under 1 GB for a marker the gate never reads (815 MB and
    4.8 s per call on the 13M history states): the gate turns it off. Fails if a GX upgrade
    renames the switch."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    def no_hash(df):
        raise AssertionError("GX fingerprinted the batch")

    monkeypatch.setattr(engine, "hash_pandas_dataframe", no_hash)
    assert run("sirene_history", history_df(), settings, geo, report=HISTORY_REPORT).status == "passed"
