"""Parsers on hand-built files in the official layouts; expected values worked out by hand."""


import pandas as pd
import pytest
from territoires_industrie.schemas import SIRENE_STOCK_ALL_COLUMNS, MissingColumnError
from territoires_industrie.sources import census, chomage, urssaf
from territoires_industrie.sources.sirene import SireneFileError, aggregate_stock
from territoires_industrie.sources.tabular import TabularFileError

from ..conftest import sirene_row, write_sirene_zip

KNOWN = {"25056", "01001", "75056", "2A004"}


def _rows():
    return [
        # 2 active industrial employers in Besançon, one in the 4-char... no: codes in SIRENE are clean
        sirene_row(siret="00000000000001", caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="12"),
        sirene_row(siret="00000000000002", caractereEmployeurEtablissement="O", trancheEffectifsEtablissement="12"),
        # closed industrial establishment (closure date in dateDebut)
        sirene_row(siret="00000000000003", etatAdministratifEtablissement="F", dateDebut="2024-05-02"),
        # non-industrial (retail) active
        sirene_row(siret="00000000000004", activitePrincipaleEtablissement="47.11B"),
        # old nomenclature, division 29 in NAFRev1 must NOT count as industry
        sirene_row(siret="00000000000005", activitePrincipaleEtablissement="29.5A", nomenclatureActivitePrincipaleEtablissement="NAFRev1"),
        # Paris arrondissement -> 75056
        sirene_row(siret="00000000000006", codeCommuneEtablissement="75112", dateDernierTraitementEtablissement="2026-10-31T23:10:00"),
        # abroad
        sirene_row(siret="00000000000007", codeCommuneEtablissement="", codePaysEtrangerEtablissement="99109"),
        # commune code outside the vintage (merged commune)
        sirene_row(siret="00000000000008", codeCommuneEtablissement="25134"),
    ]


def test_stock_aggregate_counts(tmp_path):
    z = write_sirene_zip(tmp_path / "StockEtablissement_utf8.zip", _rows())
    df, rep = aggregate_stock(z, KNOWN)
    assert rep.rows == 8
    assert rep.as_of == "2026-10-31"
    assert rep.foreign_rows == 1
    assert rep.unknown_communes == {"25134": 1}
    ind = df[df["is_industrial"]]
    assert ind.loc[(ind["etat"] == "A") & (ind["codgeo"] == "25056"), "n_etab"].sum() == 2
    assert ind.loc[ind["etat"] == "F", ["codgeo", "naf", "n_etab"]].values.tolist() == [["25056", "25.62B", 1]]
    assert df.loc[df["codgeo"] == "75056", "n_etab"].sum() == 1
    assert not df.loc[df["nomenclature"] == "NAFRev1", "is_industrial"].any()
    assert df["n_etab"].sum() == 6  # 8 - abroad - unknown commune


def test_stock_extra_column_is_ignored_and_column_order_irrelevant(tmp_path):
    cols = list(reversed(SIRENE_STOCK_ALL_COLUMNS)) + ["aNewInseeColumn"]
    z = write_sirene_zip(tmp_path / "s.zip", _rows()[:2], columns=cols)
    df, rep = aggregate_stock(z, KNOWN)
    assert df["n_etab"].sum() == 2


def test_stock_missing_required_column_names_file_and_column(tmp_path):
    cols = [c for c in SIRENE_STOCK_ALL_COLUMNS if c != "etatAdministratifEtablissement"]
    z = write_sirene_zip(tmp_path / "StockEtablissement_utf8.zip", _rows()[:1], columns=cols)
    with pytest.raises(MissingColumnError, match=r"StockEtablissement_utf8.zip: required column\(s\) \['etatAdministratifEtablissement'\]"):
        aggregate_stock(z, KNOWN)


def test_truncated_zip_is_a_clear_error(tmp_path):
    z = write_sirene_zip(tmp_path / "full.zip", _rows() * 50)
    cut = tmp_path / "StockEtablissement_utf8.zip"
    cut.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(SireneFileError, match="StockEtablissement_utf8.zip"):
        aggregate_stock(cut, KNOWN)


def test_header_only_stock(tmp_path):
    z = write_sirene_zip(tmp_path / "StockEtablissement_utf8.zip", [])
    with pytest.raises(SireneFileError, match="no data rows"):
        aggregate_stock(z, KNOWN)


URSSAF_HEADER = ("region;code_region;departement;code_departement;commune;code_commune;grand_secteur_d_activite;"
                 "ape;code_ape;nombre_d_etablissements_2020;nombre_d_etablissements_2025;"
                 "effectifs_salaries_2020;effectifs_salaries_2025")


def test_urssaf_wide_to_long(tmp_path):
    p = tmp_path / "urssaf.csv"
    p.write_text(
        URSSAF_HEADER + "\n"
        "R;27;Doubs;25;Besançon;25056;GS1 Industrie;2562B Mécanique;2562B;3;2;120;90\n"
        "R;84;Ain;01;X;1001;GS1 Industrie;1071C Boulangerie;1071C;1;1;5;7\n"
        "R;27;Doubs;25;Besançon;25056;GS3 Commerce;4711B Commerce;4711B;4;5;30;\n",
        encoding="utf-8",
    )
    df, rep = urssaf.parse_urssaf(p, KNOWN)
    assert rep["commune_codes_zero_padded"] == 1
    assert rep["years"] == [2020, 2025]
    row = df.set_index(["codgeo", "division", "year"])
    assert row.loc[("25056", "25", 2025), "jobs"] == 90
    assert row.loc[("01001", "10", 2020), "jobs"] == 5
    assert row.loc[("25056", "25", 2025), "is_industrial"]
    assert pd.isna(row.loc[("25056", "47", 2025), "jobs"])  # empty cell = missing, never 0
    assert rep["as_of_year"] == 2025


def test_urssaf_negative_count_names_row_and_column(tmp_path):
    p = tmp_path / "urssaf.csv"
    p.write_text(URSSAF_HEADER + "\nR;27;D;25;B;25056;GS1;x;2562B;1;1;-4;3\n", encoding="utf-8")
    with pytest.raises(TabularFileError, match=r"urssaf.csv: negative count -4.0 at data row 1 \(file line 2\), column .effectifs_salaries_2020."):
        urssaf.parse_urssaf(p, KNOWN)


def _urssaf_random_file(path, rows: int, seed: int = 5):
    import numpy as np

    rng = np.random.default_rng(seed)
    communes = np.array(["25056", "1001", "75112", "2A004", "99999", "75056"])  # 99999: outside the vintage
    apes = np.array(["2562B", "1071C", "4711B", "2511Z", "8610Z", ""])
    lines = [URSSAF_HEADER]
    for _ in range(rows):
        v = rng.integers(0, 50, 4).astype(str)
        v[rng.random(4) < 0.2] = ""  # secret cells
        lines.append(f"R;27;D;25;C;{rng.choice(communes)};GS;x;{rng.choice(apes)};" + ";".join(v))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _urssaf_reference(path, known):
    """The whole file at once in plain pandas: the semantics the streaming parser must keep."""
    from territoires_industrie import codes

    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)  # an empty APE stays "" (not dropped)
    for c in [c for c in df.columns if c[-4:].isdigit()]:
        df[c] = pd.to_numeric(df[c].replace("", None)).astype("float64")
    df["codgeo"] = codes.arm_to_commune(codes.normalise_commune(df["code_commune"]))
    df["division"] = codes.naf_with_dot(df["code_ape"]).str[:2]
    df = df[df["codgeo"].isin(known)]
    w = df.groupby(["codgeo", "division"])[[c for c in df.columns if c[-4:].isdigit()]].sum(min_count=1)
    out = []
    for (com, div), r in w.iterrows():
        for y in (2020, 2025):
            out.append((com, div, y, r[f"nombre_d_etablissements_{y}"], r[f"effectifs_salaries_{y}"]))
    return pd.DataFrame(out, columns=["codgeo", "division", "year", "n_etab", "jobs"])


def test_urssaf_streamed_in_small_blocks_equals_the_whole_file_reference(tmp_path):
    p = _urssaf_random_file(tmp_path / "urssaf.csv", 3000)
    df, rep = urssaf.parse_urssaf(p, KNOWN, block_size=4096)  # ~60 blocks, same groups in many blocks
    exp = _urssaf_reference(p, KNOWN)
    assert rep["rows"] == 3000 and rep["unknown_commune_codes"] == 1 and rep["unknown_communes_sample"] == ["99999"]
    assert list(df.columns) == ["codgeo", "division", "year", "n_etab", "jobs", "is_industrial"]
    pd.testing.assert_frame_equal(df.drop(columns="is_industrial").astype({"codgeo": object, "division": object}),
                                  exp.astype({"codgeo": object, "division": object}), check_dtype=True)
    assert df["is_industrial"].tolist() == df["division"].isin(["10", "25"]).tolist()
    whole, _ = urssaf.parse_urssaf(p, KNOWN)  # one block
    pd.testing.assert_frame_equal(df, whole)


def test_urssaf_negative_count_in_a_later_block_names_its_file_line(tmp_path):
    p = _urssaf_random_file(tmp_path / "urssaf.csv", 2000)
    lines = p.read_text().splitlines()
    lines[1501] = lines[1501].rsplit(";", 1)[0] + ";-1"  # data row 1501 = file line 1502
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(TabularFileError, match=r"negative count -1.0 at data row 1501 \(file line 1502\), column .effectifs_salaries_2025"):
        urssaf.parse_urssaf(p, KNOWN, block_size=4096)


def test_urssaf_latin1_file_is_refused_with_file_name(tmp_path):
    p = tmp_path / "urssaf.csv"
    p.write_bytes((URSSAF_HEADER + "\nR;27;D;25;Besançon;25056;GS1;x;2562B;1;1;4;3\n").encode("latin-1"))
    with pytest.raises(TabularFileError, match=r"urssaf.csv: not valid utf-8"):
        urssaf.parse_urssaf(p, KNOWN)


def test_urssaf_html_error_page(tmp_path):
    p = tmp_path / "urssaf.csv"
    p.write_text("<!DOCTYPE html><html><body>Service unavailable</body></html>")
    with pytest.raises(TabularFileError, match="HTML"):
        urssaf.parse_urssaf(p, KNOWN)


def _chomage_xlsx(path, quarters, rows):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Documentation"
    ws = wb.create_sheet("txcho_ze")
    ws.append(["Taux de chômage localisés"])
    ws.append(["Moyenne trimestrielle - données CVS en %"])
    ws.append([])
    ws.append([])
    ws.append(["Code", "Libellé", "Région", "Libellé région", *quarters])
    ws.append(["ZE2020", "LIBZE2020", "REG", "LIBREG", *quarters])
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_chomage_header_on_row_6_and_last_quarters(tmp_path):
    p = tmp_path / "chomage-zone-t1-2003-t2-2026.xlsx"
    qs = ["2025-T3", "2025-T4", "2026-T1", "2026-T2"]
    _chomage_xlsx(p, qs, [["2701", "Besançon", "27", "BFC", 6.0, 6.5, 7.0, 7.5], ["51", "Alençon", "28", "N", 5, 5, 5, None]])
    df, rep = chomage.parse_chomage_ze(p)
    assert rep["latest_quarter"] == "2026-T2"
    assert set(df["ze2020"]) == {"2701", "0051"}
    assert len(df) == 7
    assert chomage.last_quarters("2026-T2", 4) == qs
    assert chomage.last_quarters("2026-T2", 4, offset=8) == ["2023-T3", "2023-T4", "2024-T1", "2024-T2"]


def test_chomage_not_an_xlsx(tmp_path):
    p = tmp_path / "chomage.xlsx"
    p.write_text("<html>error</html>")
    with pytest.raises(ValueError, match="chomage.xlsx: not an xlsx"):
        chomage.parse_chomage_ze(p)


def test_census_parse(tmp_path):
    p = tmp_path / "base-cc.csv"
    cols = "CODGEO;P21_POP;P15_POP;P21_POP2554;P21_ACT1564;P21_ACTOCC1564;P21_CHOM1564;P21_ACT2554;P21_ACTOCC2554;P21_EMPLT;P15_EMPLT"
    p.write_text(cols + "\n25056;1000.5;990;400;500;450;50;380;350;700;710\n", encoding="utf-8")
    df, rep = census.parse_census(p, KNOWN)
    assert df.loc[0, "codgeo"] == "25056" and df.loc[0, "rp1_pop"] == 1000.5 and df.loc[0, "rp1_chom1564"] == 50


def test_urssaf_last_years_keeps_the_window_and_2019(tmp_path):
    header = URSSAF_HEADER.rsplit(";", 4)[0] + ";" + ";".join(
        [f"nombre_d_etablissements_{y}" for y in (2012, 2019, 2020, 2025)] + [f"effectifs_salaries_{y}" for y in (2012, 2019, 2020, 2025)])
    p = tmp_path / "urssaf.csv"
    p.write_text(header + "\nR;27;Doubs;25;Besançon;25056;GS1;x;2562B;1;2;3;4;10;20;30;40\n", encoding="utf-8")
    df, rep = urssaf.parse_urssaf(p, KNOWN, last_years=3)  # 2023-2025 present: 2025 only, plus 2019
    assert sorted(df["year"].unique()) == [2019, 2025] and rep["years_not_staged"] == [2012, 2020]
    assert df.set_index("year").loc[2019, "jobs"] == 20 and df.set_index("year").loc[2025, "n_etab"] == 4
    full, rep = urssaf.parse_urssaf(p, KNOWN)
    assert sorted(full["year"].unique()) == [2012, 2019, 2020, 2025] and rep["years_not_staged"] == []


def test_census_years_come_from_the_header_not_from_the_code(tmp_path):
    """A 2022 census file (``P22_*``, base ``P16_*``, plus an older ``P11_POP``) is read with its
    own years: staged as year-free ``rp1_*`` / ``rp0_*`` columns, the years in the report."""
    from territoires_industrie.sources.census import parse_census

    cols = ["CODGEO", "P22_POP", "P16_POP", "P11_POP", "P22_POP2554", "P22_ACT1564", "P22_ACTOCC1564", "P22_CHOM1564",
            "P22_ACT2554", "P22_ACTOCC2554", "P22_EMPLT", "P16_EMPLT"]
    p = tmp_path / "base-cc-2022.csv"
    p.write_text(";".join(cols) + "\n21231;8900;8800;8700;3300;4200;3900;300;3000;2850;2100;2000\n")
    df, rep = parse_census(p, {"21231"})
    assert rep["census_years"] == {"t1": 2022, "t0": 2016}
    r = df.set_index("codgeo").loc["21231"]
    assert (r["rp1_pop"], r["rp0_pop"], r["rp1_pop2554"], r["rp0_emplt"]) == (8900, 8800, 3300, 2000)
    assert not [c for c in df.columns if c.startswith("p")]  # nothing named after a year inside


def test_census_file_without_a_census_year_is_refused_naming_it(tmp_path):
    from territoires_industrie.sources.census import parse_census
    from territoires_industrie.sources.tabular import TabularFileError

    p = tmp_path / "base-cc-x.csv"
    p.write_text("CODGEO;P22_POP;P16_POP\n21231;1;1\n")
    with pytest.raises(TabularFileError, match=r"base-cc-x.csv: no P<yy>_POP2554 column"):
        parse_census(p, {"21231"})
