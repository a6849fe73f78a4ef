"""A failed hard gate stops the run before publication and leaves what was published
untouched (byte for byte), in the order the stages run: gate first, then stage/publish.

Hand-made inputs (5 Corsican communes); the geography is read back from the staging area
like the stages do (``gate`` gets no geography in its context)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import sqlalchemy as sa
from territoires_industrie import storage, warehouse
from territoires_industrie.config import Settings
from territoires_industrie.geography import Geography
from territoires_industrie.stages.employment import stage_table
from territoires_industrie.validation import HardGateFailed, gate, latest_status

S = "str"
ESTAB = {"2A004": 3, "2A006": 2, "2B002": 0, "2B005": 1, "2B009": 4}
LEVELS = {("epci", "242000001"): ["2A004", "2A006"], ("epci", "242000002"): ["2B002", "2B005"],
          ("ze", "9401"): ["2A004", "2A006"], ("ze", "9402"): ["2B002", "2B005", "2B009"],
          ("departement", "2A"): ["2A004", "2A006"], ("departement", "2B"): ["2B002", "2B005", "2B009"],
          ("region", "94"): list(ESTAB)}


@pytest.fixture()
def settings(tmp_path) -> Settings:
    s = Settings(data_dir=tmp_path, warehouse_url=f"sqlite:///{tmp_path / 'warehouse.db'}", source_mode="sample",
                 sample_departements=("2A", "2B"), extra={"validation_min_communes": 5})
    communes = pd.DataFrame({
        "codgeo": list(ESTAB), "libgeo": ["Ajaccio", "Afa", "Aghione", "Aiti", "Aléria"],
        "epci": ["242000001", "242000001", "242000002", "242000002", "ZZZZZZZZZ"],
        "dep": ["2A", "2A", "2B", "2B", "2B"], "reg": ["94"] * 5, "ze2020": ["9401", "9401", "9402", "9402", "9402"],
    }).astype(S)
    geo = Geography(
        "2023", communes,
        pd.DataFrame({"epci": ["242000001", "242000002"], "libepci": ["CAPA", "CC"], "nature_epci": ["CA", "CC"],
                      "nb_com": [2, 2]}),
        pd.DataFrame({"ze2020": ["9401", "9402"], "libze2020": ["Ajaccio", "Bastia"], "nb_com": [2, 3]}),
        pd.DataFrame({"ti_id": ["TI1-0001"], "ti_phase": ["2018-2022"], "ti_label": ["Corse"], "codgeo": ["2A004"]}),
        pd.DataFrame(columns=["ti_id", "codgeo"]))
    folder = storage.staging_partition(s.staging_dir, "geography", "2023")
    geo.save(folder)
    storage.set_current(s.staging_dir, "geography", "2023")
    return s


def release_tables(rate_2b: float = 8.0) -> dict[str, pd.DataFrame]:
    terr, vals = [], []
    for c, n in ESTAB.items():
        terr.append(("commune", c, c, c[:2], "94", 1, 100.0))
        vals.append(("commune", c, "estab_ind_active", "2026-10", float(n), float(n), None, "établissements"))
        vals.append(("commune", c, "unemployment_rate", "2025-T3..2026-T2", 8.0, 8.0, 100.0, "%"))
    for (lv, t), members in LEVELS.items():
        terr.append((lv, t, t, members[0][:2], "94", len(members), 100.0 * len(members)))
        vals.append((lv, t, "estab_ind_active", "2026-10", float(sum(ESTAB[m] for m in members)),
                     float(sum(ESTAB[m] for m in members)), None, "établissements"))
        rate = rate_2b if (lv, t) == ("departement", "2B") else 8.0
        vals.append((lv, t, "unemployment_rate", "2025-T3..2026-T2", rate, rate * len(members),
                     100.0 * len(members), "%"))
    territories = pd.DataFrame(terr, columns=["level", "territory_id", "label", "departement", "region", "n_communes",
                                              "population"])
    values = pd.DataFrame(vals, columns=["level", "territory_id", "indicator_id", "period", "value", "numerator",
                                         "denominator", "unit"])
    dictionary = pd.DataFrame({"indicator_id": ["estab_ind_active", "unemployment_rate"],
                               "label_fr": ["Établissements industriels actifs", "Taux de chômage"],
                               "unit": ["établissements", "%"], "formula": ["count", "mean"],
                               "source": ["SIRENE", "INSEE"], "period": ["2026-10", "2025-T3..2026-T2"]})
    tables = {"territories": territories.astype({"level": S, "territory_id": S}),
              "indicator_values": values.astype({c: S for c in ("level", "territory_id", "indicator_id", "period",
                                                                "unit")}),
              "indicator_dictionary": dictionary}
    # tables added to the release by other parts of the platform: every declared column, as NULL
    for name, table in warehouse.RELEASE_TABLES.items():
        df = tables.get(name)
        cols = [c.name for c in table.columns if c.name != "release_id"]
        tables[name] = (df if df is not None else pd.DataFrame(columns=cols)).reindex(columns=cols)
    return tables


def gated_publish(settings: Settings, release_id: str, tables: dict) -> dict:
    """What the indicator + publish stages do: gate, and only then publish in one transaction."""
    gate("indicator_values", tables["indicator_values"], settings=settings, vintage=release_id,
         context={"territories": tables["territories"]})
    engine = warehouse.get_engine(settings.warehouse_url)
    try:
        return warehouse.publish_release(engine, release_id, tables, {"synthetic": True,
                                                                      "validation_status": "passed"})
    finally:
        engine.dispose()


def snapshot(settings: Settings) -> tuple[str, dict]:
    path = settings.data_dir / "warehouse.db"
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as c:
        tables = {t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY 1, 2"), c)
                  for t in ("releases", "current_release", *warehouse.RELEASE_TABLES)}
    engine.dispose()
    return hashlib.sha256(path.read_bytes()).hexdigest(), tables


def test_failed_hard_gate_leaves_the_published_release_byte_identical(settings):
    assert gated_publish(settings, "2026-10", release_tables())["current_release"] == "2026-10"
    digest, before = snapshot(settings)

    # next period: the unemployment rate of Haute-Corse is 130 %: out of range
    with pytest.raises(HardGateFailed) as ei:
        gated_publish(settings, "2026-11", release_tables(rate_2b=130.0))
    msg = str(ei.value)
    assert msg.startswith("hard gate failed for indicator_values 2026-11: 1 check(s) failed")
    assert "expect_column_values_to_be_between on value (where indicator_id IN" in msg
    assert "1 unexpected" in msg and "[130.0]" in msg

    # a required column missing: named too
    broken = release_tables()
    broken["indicator_values"] = broken["indicator_values"].drop(columns="numerator")
    with pytest.raises(HardGateFailed, match=r"indicator_values 2026-11: .*expect_column_to_exist on numerator: "
                                             r"column missing"):
        gated_publish(settings, "2026-11", broken)

    digest_after, after = snapshot(settings)
    assert digest_after == digest
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])
    assert after["current_release"]["release_id"].tolist() == ["2026-10"]
    assert set(after["indicator_values"]["release_id"]) == {"2026-10"}

    # the failure is visible without Python: status, quarantine and HTML report
    st = latest_status(settings)["indicator_values"]
    assert st["status"] == "failed" and st["vintage"] == "2026-11"
    assert (settings.validation_dir / "index.html").read_text().count("FAILED") >= 1
    assert (settings.validation_dir / "indicator_values" / "2026-11" / "report.html").exists()
    assert not (settings.validation_dir / "indicator_values" / "2026-10" / "quarantine.csv").exists()


def test_failed_gate_in_the_employment_stage_keeps_the_previous_partition(settings):
    urssaf = pd.DataFrame({"codgeo": list(ESTAB), "division": ["25", "47", "10", "56", "33"], "year": [2024] * 5,
                           "n_etab": [1.0] * 5, "jobs": [10.0, 5.0, 3.0, 2.0, 7.0]}).astype({"codgeo": S, "division": S})
    urssaf["is_industrial"] = urssaf["division"].isin(["10", "25", "33"])
    stage_table(settings, "urssaf", urssaf, {"rows": 5}, "2024", "jobs_commune_division.parquet")
    current = settings.staging_dir / "urssaf" / "CURRENT"
    staged = settings.staging_dir / "urssaf" / "2024" / "jobs_commune_division.parquet"
    before = (current.read_bytes(), staged.read_bytes())

    bad = urssaf.assign(year=2025)
    bad.loc[2, "codgeo"] = "2B99"  # not a commune
    with pytest.raises(HardGateFailed, match=r"urssaf 2025: .*expect_column_values_to_match_regex on codgeo: "
                                             r"1 unexpected of 5 rows checked, e\.g\. \['2B99'\]"):
        stage_table(settings, "urssaf", bad, {"rows": 5}, "2025", "jobs_commune_division.parquet")
    assert (current.read_bytes(), staged.read_bytes()) == before
    assert not (settings.staging_dir / "urssaf" / "2025").exists()
    q = pd.read_csv(settings.validation_dir / "urssaf" / "2025" / "quarantine.csv", dtype=str)
    assert q[["row_index", "codgeo", "expectation"]].values.tolist() == [
        ["2", "2B99", "expect_column_values_to_match_regex"],
        ["2", "2B99", "expect_column_values_to_be_in_reference_set"]]
