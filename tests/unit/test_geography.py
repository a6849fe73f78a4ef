import numpy as np
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


# --- one geography vintage for every source (issue 14) -----------------------------------------
def _merges():
    from territoires_industrie.geography import read_merges

    return read_merges()


def test_ti_phase1_communes_nouvelles_land_on_their_2023_commune_with_the_real_merges_table():
    """The 15 phase-1 codes absorbed into a commune nouvelle before 2023 are no longer lost."""
    from territoires_industrie.geography import build_geography

    g = build_geography(passage=_merges())
    assert g.ti_unmapped.empty
    assert len(g.ti_mapped) == 15
    m = g.ti_mapped.set_index("codgeo_ini")
    assert m.loc["25134", "codgeo"] == "25185" and m.loc["25134", "ti_id"] == "TI1-2704"  # Haut-Doubs Horloger
    assert set(g.ti.loc[g.ti["ti_id"] == "TI1-2704", "codgeo"]) >= {"25185"}
    assert set(m["codgeo"]) <= set(g.communes["codgeo"])


def test_counts_of_a_newer_and_of_an_older_code_are_summed_on_the_reference_commune(geography):
    """Real cases: 12218 is a commune nouvelle created after 2023 under a new code, whose one 2023
    predecessor is 12076 (12114 and 12173 had merged before); 25134 was absorbed by 25185 before 2023."""
    from territoires_industrie.stages.geography import remap_counts

    known = geography.commune_codes()
    assert "12218" not in known and {"12076", "25185"} <= known and not {"12114", "12173", "25134"} & known
    df = pd.DataFrame({"codgeo": ["12218", "12076", "25134", "25185", "99999"], "n": [5, 3, 2, 7, 1]})
    out, rep = remap_counts(df, _merges(), known, ["codgeo"], ["n"])
    assert out.set_index("codgeo")["n"].to_dict() == {"12076": 8, "25185": 9}
    assert rep["newer"] == {"12218": "12076"} and rep["mapped"] == {"25134": "25185"}
    assert rep["unmappable"] == ["99999"] and rep["unmappable_count"] == 1
    assert out["n"].sum() == df["n"].sum() - 1  # nothing lost but the unmappable code, which is reported


def _remap_counts_before_issue_19(df, passage, known, keys, values):
    """remap_counts as it was (deep copy, whole-frame re-sum and string sort): the reference."""
    from territoires_industrie.geography import map_to_vintage

    df = df.copy()
    new, rep = map_to_vintage(df["codgeo"], passage, known)
    s = df["codgeo"].astype("string")  # the row-by-row translation it used
    old = s.map(lambda c: rep["mapped"].get(c, rep["newer"].get(c, c)) if isinstance(c, str) else c).astype("string")
    pd.testing.assert_series_equal(new, old, check_names=False)
    df["codgeo"] = old.astype(str)
    df = df[df["codgeo"].isin(known)]
    if rep["mapped"] or rep["newer"]:
        df = df.groupby(keys, as_index=False, dropna=False)[values].sum(min_count=1)
    return df.sort_values(keys).reset_index(drop=True), rep


@pytest.mark.parametrize("case", ["translated", "none-translated", "duplicate-keys", "one-key", "sorted-input"])
def test_remap_counts_gives_what_the_whole_frame_re_sum_gave(geography, case):
    """The national-scale remap (translated codes only re-summed, integer-rank sort) against
    the whole-frame re-sum it replaced, cell for cell, on shuffled rows with missing values,
    translated (older and newer) codes, an unmappable one, and the fallbacks (rows sharing a
    key outside the translated communes; one key)."""
    from territoires_industrie.stages.geography import remap_counts

    known = geography.commune_codes()
    rng = np.random.default_rng(19)
    codes = ["12076", "25185", "21231", "2A004", "01015", "12218", "25134", "99999"]
    if case == "none-translated":
        codes = codes[:5]
    keys = ["codgeo"] if case == "one-key" else ["codgeo", "division", "is_industrial", "year"]
    rows = [(c, d, d < "40", y) for c in codes for d in ("10", "25", "47") for y in (2019, 2024)]
    df = pd.DataFrame(rows, columns=["codgeo", "division", "is_industrial", "year"])
    if case == "one-key":
        df = df.drop_duplicates("codgeo")[["codgeo"]]
    df["jobs"] = rng.integers(0, 50, len(df)).astype(float)
    df.loc[df.sample(frac=0.2, random_state=1).index, "jobs"] = np.nan
    df["n_etab"] = rng.integers(1, 9, len(df)).astype(float)
    if case == "duplicate-keys":
        df = pd.concat([df, df[df["codgeo"] == "21231"]], ignore_index=True)
    df = df.sample(frac=1.0, random_state=2).reset_index(drop=True).astype({"codgeo": "str"})
    if case == "sorted-input":  # as the stock aggregate comes: the order is checked, not redone
        df = df[~df["codgeo"].isin(["12218", "25134", "99999"])].sort_values(keys).reset_index(drop=True)
    before = df.copy()
    want, want_rep = _remap_counts_before_issue_19(df, _merges(), known, keys, ["jobs", "n_etab"])
    got, rep = remap_counts(df, _merges(), known, keys, ["jobs", "n_etab"])
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert rep == want_rep
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is untouched
    if case == "translated":
        assert rep["newer"] == {"12218": "12076"} and rep["mapped"] == {"25134": "25185"}


def test_a_newer_source_tells_which_reference_communes_absorbed_others(geography):
    from territoires_industrie.stages.geography import remap_counts

    m = _merges()
    known = geography.commune_codes()
    later = m[m["codgeo"].isin(known) & m["codgeo_ini"].isin(known) & (m["codgeo"] != m["codgeo_ini"])]
    x, y = later.iloc[0]["codgeo"], later.iloc[0]["codgeo_ini"]  # a real merger after 2023
    df = pd.DataFrame({"codgeo": [x, "21231"], "n": [4, 1]})
    _, rep = remap_counts(df, m, known, ["codgeo"], ["n"], newer_source=True)
    assert y in rep["absorbed_after_reference"][x]
    _, same_year = remap_counts(df, m, known, ["codgeo"], ["n"], newer_source=False)
    assert same_year["absorbed_after_reference"] == {}
    from territoires_industrie.validation.gates import passage_checks

    checks = passage_checks(rep, rows=2)
    assert any(c["column"] == "commune code (merged since)" and c["severity"] == "soft" and x in c["sample"][0]
               for c in checks)


def test_merges_table_zeros_repaired_and_a_bad_row_named(tmp_path):
    from territoires_industrie.geography import read_merges

    ok = tmp_path / "ok.csv"
    ok.write_text("code_commune_actuelle,departement,ancien_code\n1015,1,1340\n2A004,2A,2A999\n")
    assert read_merges(ok).values.tolist() == [["01340", "01015"], ["2A999", "2A004"]]
    bad = tmp_path / "bad.csv"
    bad.write_text("code_commune_actuelle,departement,ancien_code\n01015,01,01340\n21231,25,21999\n")
    with pytest.raises(SourceFormatError, match=r"bad.csv: row 3"):
        read_merges(bad)
    cols = tmp_path / "cols.csv"
    cols.write_text("commune,dep,old\n01015,01,01340\n")
    with pytest.raises(SourceFormatError, match=r"cols.csv: column\(s\) \['code_commune_actuelle'"):
        read_merges(cols)


def test_sample_geography_stage_maps_ti_perimeters_and_stages_the_passage(tmp_path, monkeypatch):
    from territoires_industrie import storage
    from territoires_industrie.config import get_settings
    from territoires_industrie.stages.geography import run_geography

    env = {"TI_DATA_DIR": str(tmp_path), "TI_SOURCE_MODE": "sample", "TI_SAMPLE_DEPARTEMENTS": "2A,2B",
           "TI_SAMPLE_SCALE": "0.3"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = get_settings(env)
    monkeypatch.setattr("territoires_industrie.stages.geography.gate", lambda *a, **k: None)
    out = run_geography(s)
    assert out["ti_mapped_communes"] == 15 and out["ti_unmapped_communes"] == 0
    _, folder = storage.current(s.staging_dir, "geography")
    assert len(pd.read_parquet(folder / "passage.parquet")) == len(_merges())
    assert len(pd.read_parquet(folder / "ti_mapped.parquet")) == 15
    # the map layers of the embedded default: real boundaries dissolved into the COG 2023 communes
    g = out["geometry"]
    assert g["status"] == "ok" and g["shapes"] == 4094 and g["communes"] == 4059 and g["unmappable_count"] == 0
    import json

    layers = {n: json.loads((folder / "geometry" / f"{n}.geojson").read_text()) for n in ("epci", "ze", "departement", "ti")}
    assert len(layers["departement"]["features"]) == 10
    assert {f["properties"]["phase"] for f in layers["ti"]["features"]} == {"2018-2022", "2023-2027"}
    codes_epci = {f["properties"]["code"] for f in layers["epci"]["features"]}
    assert {"200015162", "200033827"} <= codes_epci  # two EPCI of Corsica
