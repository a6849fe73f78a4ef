"""Issue 14 defect 9: INSEE CSV tables read from a Windows-1252 file, or with leading zeros a
spreadsheet stripped, are repaired exactly or refused naming the file; never a raw
UnicodeDecodeError. Layout of ``v_commune_2025.csv`` (COG, insee.fr); real codes and names."""

from __future__ import annotations

import pytest
from territoires_industrie.geography import SourceFormatError
from territoires_industrie.sources.geo_live import read_cog_communes

HEADER = "TYPECOM,COM,REG,DEP,CTCD,ARR,TNCC,NCC,NCCENR,LIBELLE,CAN,COMPARENT"
ROWS = [
    "COM,01001,84,01,01D,012,5,ABERGEMENT CLEMENCIAT,Abergement-Clémenciat,L'Abergement-Clémenciat,0108,",
    "COM,21003,27,21,21D,213,1,AHUY,Ahuy,Ahuy,2105,",
    "COM,74119,84,74,74D,743,1,EVIAN LES BAINS,Évian-les-Bains,Évian-les-Bains,7404,",
    "COM,2A004,94,2A,20R,2A1,1,AJACCIO,Ajaccio,Ajaccio,2A98,",
    "COMD,01015,84,01,01D,012,1,ARBIGNIEU,Arbignieu,Arbignieu,0128,01015",
]


def _write(tmp_path, rows, encoding="utf-8", name="v_commune_2025.csv"):
    p = tmp_path / name
    p.write_bytes(("\n".join([HEADER, *rows]) + "\n").encode(encoding))
    return p


def test_windows_1252_file_is_decoded_exactly(tmp_path):
    good = read_cog_communes(_write(tmp_path, ROWS))
    latin = read_cog_communes(_write(tmp_path, ROWS, "cp1252", "v_commune_cp1252.csv"))
    assert latin.equals(good)
    assert "Évian-les-Bains" in set(latin["libelle"]) and "L'Abergement-Clémenciat" in set(latin["libelle"])


def test_stripped_leading_zeros_are_restored(tmp_path):
    good = read_cog_communes(_write(tmp_path, ROWS))
    stripped = [r.replace("COM,01001,84,01,", "COM,1001,84,1,").replace("COMD,01015,84,01,", "COMD,1015,84,1,")
                for r in ROWS]
    got = read_cog_communes(_write(tmp_path, stripped, name="v_commune_excel.csv"))
    assert got.equals(good)
    assert got.loc[got["com"] == "01001", "dep"].item() == "01"


def test_semicolon_export_of_a_spreadsheet_is_read(tmp_path):
    good = read_cog_communes(_write(tmp_path, ROWS))
    semi = [r.replace(",", ";") for r in ROWS]
    p = tmp_path / "v_commune_semicolon.csv"
    p.write_text("\n".join([HEADER.replace(",", ";"), *semi]) + "\n", encoding="cp1252")
    assert read_cog_communes(p).equals(good)


def test_codes_that_cannot_be_repaired_are_refused_naming_file_and_line(tmp_path):
    bad = list(ROWS)
    bad[1] = bad[1].replace("COM,21003,27,21,", "COM,2103,27,21,")  # 2103 -> 02103, not in département 21
    with pytest.raises(SourceFormatError, match=r"v_commune_bad.csv: line 3: commune '02103' is not in département '21'"):
        read_cog_communes(_write(tmp_path, bad, name="v_commune_bad.csv"))


def test_undecodable_file_is_refused_naming_the_file(tmp_path):
    p = tmp_path / "v_commune_utf16.csv"
    p.write_bytes(b"\x81\x8d\x8f\x90\x9d" * 10)  # bytes undefined in Windows-1252
    with pytest.raises(SourceFormatError, match=r"v_commune_utf16.csv: neither UTF-8 nor Windows-1252"):
        read_cog_communes(p)
