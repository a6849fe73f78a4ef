"""Streaming parser of StockEtablissementHistorique: state of chosen SIRETs at year ends."""

import csv
import io
import zipfile
from pathlib import Path

import pytest
from territoires_industrie.sources import sirene_history
from territoires_industrie.sources.sirene import SireneFileError

HEADER = ["siren", "nic", "siret", "dateFin", "dateDebut", "etatAdministratifEtablissement",
          "changementEtatAdministratifEtablissement", "enseigne1Etablissement", "enseigne2Etablissement",
          "enseigne3Etablissement", "changementEnseigneEtablissement", "denominationUsuelleEtablissement",
          "changementDenominationUsuelleEtablissement", "activitePrincipaleEtablissement",
          "nomenclatureActivitePrincipaleEtablissement", "changementActivitePrincipaleEtablissement",
          "caractereEmployeurEtablissement", "changementCaractereEmployeurEtablissement"]
REAL_4_ROWS = Path(__file__).resolve().parents[2] / "include/territoires_industrie/data/real/sirene/StockEtablissementHistorique_4rows_opensignauxfaibles.csv"


def _row(siret, debut, fin, etat, naf, emp, nom="NAFRev2"):
    r = dict.fromkeys(HEADER, "")
    r.update(siren=siret[:9], nic=siret[9:], siret=siret, dateDebut=debut, dateFin=fin,
             etatAdministratifEtablissement=etat, activitePrincipaleEtablissement=naf,
             nomenclatureActivitePrincipaleEtablissement=nom, caractereEmployeurEtablissement=emp)
    return r


def _zip(path: Path, rows, header=HEADER) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(sirene_history.HISTORY_MEMBER, buf.getvalue())
    return path


def test_states_at_year_ends(tmp_path):
    a, b, c, other = "11111111100011", "22222222200022", "33333333300033", "99999999900099"
    rows = [
        # a: employer from 2019-03-01, stops employing 2023-06-30, closed 2024-09-15 (file order: newest first)
        _row(a, "2024-09-15", "", "F", "25.62B", "N"),
        _row(a, "2023-07-01", "2024-09-14", "A", "25.62B", "N"),
        _row(a, "2019-03-01", "2023-06-30", "A", "25.62B", "O"),
        # b: created 2023-05-10: no state at the end of 2022
        _row(b, "2023-05-10", "", "A", "10.71C", "O"),
        # c: period ending exactly on 31/12/2022, next one starting 01/01/2023
        _row(c, "2023-01-01", "", "A", "28.11Z", "O"),
        _row(c, "2015-01-01", "2022-12-31", "A", "28.11Z", "N"),
        _row(other, "2000-01-01", "", "A", "25.62B", "O"),  # not requested: dropped at the batch
    ]
    z = _zip(tmp_path / "h.zip", rows)
    df, rep = sirene_history.states_at_year_ends(z, [a, b, c, "44444444400044"], [2022, 2023, 2024])
    got = {(r.siret, r.year): (r.etat, r.employer, r.naf) for r in df.itertuples()}
    assert got == {
        (a, 2022): ("A", "O", "25.62B"), (a, 2023): ("A", "N", "25.62B"), (a, 2024): ("F", "N", "25.62B"),
        (b, 2023): ("A", "O", "10.71C"), (b, 2024): ("A", "O", "10.71C"),
        (c, 2022): ("A", "N", "28.11Z"), (c, 2023): ("A", "O", "28.11Z"), (c, 2024): ("A", "O", "28.11Z"),
    }
    assert list(df.columns) == sirene_history.STATE_COLUMNS
    assert df["year"].dtype == "int64"
    assert rep.rows == 7 and rep.rows_kept == 6
    assert rep.as_dict()["sirets_missing"] == 1  # 4444... is not in the file
    assert rep.sirets_found == 3 and rep.sirets_with_state == 3


def test_overlapping_periods_keep_the_latest_start(tmp_path):
    s = "11111111100011"
    z = _zip(tmp_path / "h.zip", [_row(s, "2020-01-01", "", "A", "25.62B", "O"),
                                  _row(s, "2018-01-01", "2021-06-30", "A", "25.62B", "N")])
    df, rep = sirene_history.states_at_year_ends(z, [s], [2020])
    assert df[["etat", "employer"]].values.tolist() == [["A", "O"]]
    assert rep.overlapping_periods == 1


def test_real_history_layout(tmp_path):
    """The 4 real rows (opensignauxfaibles): unit 00032517500016 was active from 2000, closed
    on 2009-05-27; at the end of 2007 its activity was not coded (empty NAF)."""
    text = REAL_4_ROWS.read_text(encoding="utf-8")
    z = tmp_path / "real.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(sirene_history.HISTORY_MEMBER, text)
    df, _ = sirene_history.states_at_year_ends(z, ["00032517500016"], [2007, 2008, 2009])
    got = {r.year: (r.etat, r.naf, r.nomenclature) for r in df.itertuples()}
    assert got == {2007: ("A", "", ""), 2008: ("A", "32.12Z", "NAFRev2"), 2009: ("F", "32.12Z", "NAFRev2")}


def test_errors_name_the_file_and_column(tmp_path):
    bad = tmp_path / "truncated.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SireneFileError, match="truncated.zip"):
        sirene_history.states_at_year_ends(bad, ["1"], [2020])
    z = _zip(tmp_path / "h.zip", [_row("11111111100011", "2020-01-01", "", "A", "25.62B", "O")],
             header=[h for h in HEADER if h != "dateFin"])
    with pytest.raises(ValueError, match=r"h.zip.*dateFin"):
        sirene_history.states_at_year_ends(z, ["11111111100011"], [2020])


def test_siret_membership_matches_is_in_including_odd_values():
    """The binary-search positions used on the 98M-row history select exactly pyarrow's is_in and
    point at the right SIRET, including 13-char codes (no zero-padding equality), non-digits and
    an empty wanted set."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from territoires_industrie.sources.sirene_history import _SiretSet

    wanted = pa.array(["00000000000001", "01000002400017", "99999999999999"])
    batch = pa.array(["01000002400017", "1000002400017", "00000000000001", "00000000000002", "99999999999999", ""])
    assert _SiretSet(wanted).index(batch).tolist() == [1, -1, 0, -1, 2, -1]
    assert (_SiretSet(wanted).index(batch) >= 0).tolist() == pc.is_in(batch, value_set=wanted).to_pylist()
    assert _SiretSet(wanted).index(pa.array(["0100000240001X", "00000000000001"])).tolist() == [-1, 0]
    assert _SiretSet(pa.array([], pa.string())).index(batch).tolist() == [-1] * 6
    assert _SiretSet(pa.array(["00000000000001", "ABC"])).index(batch).tolist() == [-1, -1, 0, -1, -1, -1]

