import pandas as pd
import pytest
from territoires_industrie.geography import SourceFormatError, read_insee_sheet, read_ti_2023


def test_real_cog_2023_counts(geography):
    g = geography
    assert len(g.communes) == 34945
    assert len(g.epci) == 1256  # incl. ZZZZZZZZZ "sans objet"
    assert len(g.ze) == 306
    assert g.communes["codgeo"].str.fullmatch(r"\d{5}|2[AB]\d{3}").all()
    assert set(g.communes.loc[g.communes["epci"] == "ZZZZZZZZZ", "codgeo"]) == {"22016", "29083", "29155", "85113"}
    # Corsica and leading zeros survive
    row = g.communes.set_index("codgeo").loc["01001"]
    assert (row["dep"], row["reg"], row["ze2020"]) == ("01", "84", "8405")
    assert g.communes.set_index("codgeo").loc["2A004", "dep"] == "2A"


def test_ti_phase1_unmapped_codes_are_reported_not_dropped(geography):
    assert geography.ti["ti_id"].nunique() == 148
    assert len(geography.ti_unmapped) == 15
    assert {"26219", "01039", "25134"} <= set(geography.ti_unmapped["codgeo"])


def test_missing_header_names_file_and_columns(tmp_path):
    path = tmp_path / "bad.xlsx"
    pd.DataFrame({"A": ["x"], "B": ["y"]}).to_excel(path, sheet_name="EPCI", index=False)
    with pytest.raises(SourceFormatError, match=r"bad.xlsx, sheet 'EPCI': no header row with columns"):
        read_insee_sheet(path, "EPCI", ["EPCI", "LIBEPCI"])


def test_ti_2023_commune_in_two_territories(tmp_path):
    p = tmp_path / "liste-ti-com2023-20240704.csv"
    p.write_text("insee_com,lib_com,id_ti,lib_ti\n1001,A,ti-8401,T1\n25056,Besançon,ti-2701 ; ti-2702,T2 ; T3\n")
    df = read_ti_2023(p)
    assert df[["ti_id", "codgeo"]].values.tolist() == [["ti-8401", "01001"], ["ti-2701", "25056"], ["ti-2702", "25056"]]
    assert df["ti_label"].tolist() == ["T1", "T2", "T3"]
