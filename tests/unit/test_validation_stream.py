"""File-level checks on the SIRENE stock stream (``SireneStreamChecker`` as the ``on_batch``
hook of ``aggregate_stock``): counts, samples with row numbers, duplicates across batches,
and the ``sirene_stock`` gate failing on them. Expected values worked out by hand."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from territoires_industrie.config import Settings
from territoires_industrie.geography import Geography
from territoires_industrie.sources.sirene import aggregate_stock
from territoires_industrie.validation import HardGateFailed, SireneStreamChecker, gate

from ..conftest import sirene_row, write_sirene_zip

KNOWN = {"25056", "2A004"}


def _rows():
    return [
        sirene_row(siret="55210055400016"),                                            # 1 clean
        sirene_row(siret="5521005540002"),                                             # 2 SIRET 13 digits
        sirene_row(siret="40483304800022", codeCommuneEtablissement="2A04"),          # 3 bad commune
        sirene_row(siret="40483304800030", codeCommuneEtablissement="[ND]"),          # 4 masked: not an error
        sirene_row(siret="40483304800048", codeCommuneEtablissement="",
                   codePaysEtrangerEtablissement="99109"),                              # 5 abroad: not an error
        sirene_row(siret="40483304800055", activitePrincipaleEtablissement="2562B"),  # 6 NAF without dot
        sirene_row(siret="40483304800063", activitePrincipaleEtablissement="25.62Y"),  # 7 well-formed, not in NAF
        sirene_row(siret="40483304800071", activitePrincipaleEtablissement="29.5A",
                   nomenclatureActivitePrincipaleEtablissement="NAFRev1"),            # 8 old nomenclature: ok
        sirene_row(siret="40483304800089", trancheEffectifsEtablissement="99"),       # 9 bad size band
        sirene_row(siret="40483304800097", trancheEffectifsEtablissement=""),         # 10 empty band: ok
        sirene_row(siret="55210055400016", etatAdministratifEtablissement="X"),       # 11 duplicate + bad state
    ]


@pytest.fixture()
def checked(tmp_path):
    z = write_sirene_zip(tmp_path / "StockEtablissement_utf8.zip", _rows())
    checker = SireneStreamChecker(sample_size=5)
    agg, rep = aggregate_stock(z, KNOWN, on_batch=checker.update)
    return checker.result(), agg, rep


def test_counts_and_samples(checked):
    res, _, rep = checked
    assert res["rows"] == rep.rows == 11
    assert res["counts"] == {"siret_format": 1, "siret_unique": 1, "commune_format": 1, "naf_format": 1,
                             "naf_in_table": 1, "tranche_domain": 1, "etat_domain": 1}
    assert res["foreign_rows"] == 1 and res["masked_commune_rows"] == 1
    assert res["nafrev2_rows"] == 10
    by = {c["check"]: c for c in res["checks"]}
    assert by["siret_format"]["sample"] == ["5521005540002"] and by["siret_format"]["sample_rows"] == [2]
    assert by["commune_format"]["sample_detail"] == [{"row": 3, "siret": "40483304800022", "value": "2A04"}]
    assert by["naf_format"]["sample"] == ["2562B"] and by["naf_in_table"]["sample"] == ["25.62Y"]
    assert by["naf_in_table"]["element_count"] == 10  # NAFRev2 rows only
    assert by["tranche_domain"]["sample_rows"] == [9] and by["etat_domain"]["sample"] == ["X"]
    assert by["siret_unique"]["sample_detail"] == [{"row": None, "siret": "55210055400016",
                                                    "value": "55210055400016", "occurrences": 2}]
    assert all(c["engine"] == "stream" and c["severity"] == "hard" for c in res["checks"])
    assert res["memory_bound_bytes"] == 8 * 11


def test_quarantine_rows_carry_row_number_and_reason(checked):
    res, _, _ = checked
    q = pd.DataFrame(res["quarantine"])
    assert len(q) == 7
    line = q[q["check"] == "commune_format"].iloc[0]
    assert (line["row"], line["siret"], line["column"], line["value"]) == (3, "40483304800022",
                                                                          "codeCommuneEtablissement", "2A04")
    assert "file data row 3" in line["reason"]


def test_duplicates_across_batches_and_row_numbers_continue():
    schema = pa.schema([("siret", pa.string()), ("codeCommuneEtablissement", pa.string())])
    b1 = pa.record_batch([pa.array(["00000000000001", "00000000000002"]), pa.array(["25056", "25056"])], schema=schema)
    b2 = pa.record_batch([pa.array(["00000000000003", "00000000000001", "ABC"]), pa.array(["25056", "1234", "25056"])],
                         schema=schema)
    c = SireneStreamChecker(naf_codes=["25.62B"])
    c.update(b1)
    c.update(b2)
    res = c.result()
    assert res["rows"] == 5
    assert res["counts"]["siret_unique"] == 1 and res["counts"]["siret_format"] == 1
    by = {x["check"]: x for x in res["checks"]}
    assert by["siret_format"]["sample_rows"] == [5]  # third row of the second batch
    assert by["commune_format"]["sample_rows"] == [4] and by["commune_format"]["sample"] == ["1234"]
    assert by["siret_unique"]["sample"] == ["00000000000001"]
    assert c.result() is res  # computed once


def test_duplicate_check_can_be_turned_off():
    schema = pa.schema([("siret", pa.string())])
    c = SireneStreamChecker(naf_codes=["25.62B"], check_duplicates=False)
    c.update(pa.record_batch([pa.array(["00000000000001", "00000000000001"])], schema=schema))
    res = c.result()
    assert "siret_unique" not in {x["check"] for x in res["checks"]} and res["memory_bound_bytes"] == 0


def test_quarantine_cap():
    schema = pa.schema([("siret", pa.string())])
    c = SireneStreamChecker(naf_codes=["25.62B"], sample_size=2, quarantine_cap=3)
    c.update(pa.record_batch([pa.array([f"bad{i}" for i in range(10)])], schema=schema))
    res = c.result()
    assert res["counts"]["siret_format"] == 10
    assert len(res["quarantine"]) == 3 and len(res["checks"][0]["sample"]) == 2


def test_sirene_gate_fails_on_stream_findings(tmp_path, checked):
    res, agg, rep = checked
    communes = pd.DataFrame({"codgeo": ["25056", "2A004"], "libgeo": ["Besançon", "Ajaccio"],
                             "epci": ["242500001", "242000001"], "dep": ["25", "2A"], "reg": ["27", "94"],
                             "ze2020": ["2701", "9401"]}).astype("str")
    geo = Geography("2023", communes,
                    pd.DataFrame({"epci": ["242500001", "242000001"], "libepci": ["A", "B"], "nature_epci": ["CU", "CA"],
                                  "nb_com": [1, 1]}),
                    pd.DataFrame({"ze2020": ["2701", "9401"], "libze2020": ["A", "B"], "nb_com": [1, 1]}),
                    pd.DataFrame(columns=["ti_id", "ti_phase", "ti_label", "codgeo"]), pd.DataFrame())
    settings = Settings(data_dir=tmp_path / "data", warehouse_url="sqlite://", sample_departements=("25",))
    with pytest.raises(HardGateFailed) as ei:
        gate("sirene_stock", agg, settings=settings, vintage="2026-11-01",
             context={"geography": geo, "stream": res, "report": rep.as_dict()})
    got = {(f["expectation"], f["column"]): f["unexpected_count"] for f in ei.value.failures}
    assert got == {
        ("expect_column_values_to_match_regex", "siret"): 1,
        ("expect_column_values_to_be_unique", "siret"): 1,
        ("expect_column_values_to_match_regex", "codeCommuneEtablissement"): 1,
        ("expect_column_values_to_match_regex", "activitePrincipaleEtablissement"): 1,
        ("expect_column_values_to_be_in_reference_set", "activitePrincipaleEtablissement"): 1,
        ("expect_column_values_to_be_in_set", "trancheEffectifsEtablissement"): 1,
        ("expect_column_values_to_be_in_set", "etatAdministratifEtablissement"): 1,
        # the aggregate itself: 2562B (division "25", so industrial) and 25.62Y reach it, as do
        # size band 99 and state X
        ("expect_column_values_to_match_regex", "naf"): 1,
        ("expect_column_values_to_be_in_reference_set", "naf"): 2,
        ("expect_column_values_to_be_in_set", "tranche"): 1,
        ("expect_column_values_to_be_in_set", "etat"): 1,
        # 2 of 11 establishments (2A04 and [ND]) are outside the COG: 18 % > 1 %
        ("expect_column_values_to_be_in_reference_set", "codeCommuneEtablissement"): 2,
    }
    q = pd.read_csv(ei.value.quarantine_path.with_suffix(".csv"), dtype=str)
    stream = q[q["scope"] == "stream"]
    assert len(stream) == 7 and set(stream["siret"]) >= {"5521005540002", "55210055400016"}
