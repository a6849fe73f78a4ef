import pandas as pd
from territoires_industrie import codes


def test_commune_codes_keep_zeros_corsica_and_overseas():
    s = pd.Series(["1001", "01001", "2a004", "2B033", "97411", " 25056 ", "1001.0"])
    assert codes.normalise_commune(s).tolist() == ["01001", "01001", "2A004", "2B033", "97411", "25056", "01001"]


def test_arrondissements_map_to_parent_commune():
    s = pd.Series(["75112", "69383", "13201", "25056"])
    assert codes.arm_to_commune(s).tolist() == ["75056", "69123", "13055", "25056"]


def test_departement_of_commune():
    s = pd.Series(["01001", "2A004", "97411", "97611", "25056"])
    assert codes.departement_of(s).tolist() == ["01", "2A", "974", "976", "25"]


def test_pad_only_numeric_short_codes():
    assert codes.pad(pd.Series(["51", "0051", "ZZ", "1"]), 4).tolist() == ["0051", "0051", "ZZ", "0001"]


def test_naf_with_dot_and_division():
    s = codes.naf_with_dot(pd.Series(["2562B", "25.62B", "1071c"]))
    assert s.tolist() == ["25.62B", "25.62B", "10.71C"]
    assert codes.naf_division(s).tolist() == ["25", "25", "10"]


def test_luhn():
    assert codes.luhn_ok("552100554")  # a real SIREN
    assert not codes.luhn_ok("552100555")
    assert codes.luhn_ok("35600000000001")  # La Poste exception (digit sum multiple of 5)
