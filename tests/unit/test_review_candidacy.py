"""Candidacy input: arguments and batch files parsed and validated before any query, every
problem named with its line and field, the good rows kept."""

from __future__ import annotations

import pytest
from territoires_industrie.review.candidacy import (
    CandidacyFileError,
    build_candidacy,
    classify,
    from_args,
    normalise_code,
    read_batch,
    split_codes,
)


def _codes(problems, code):
    return [p for p in problems if p.code == code]


def test_codes_split_and_normalised():
    assert split_codes("200000172, 200069193;242100410") == ["200000172", "200069193", "242100410"]
    assert split_codes(["200 000 172", "242100410,200069193"]) == ["200000172", "242100410", "200069193"]
    assert split_codes(None) == [] and split_codes("") == []


def test_codes_separated_by_spaces_are_separate_codes():
    """Issue 21: the documented space separator used to concatenate two SIREN into one
    18-digit code; a SIREN typed in groups of three stays one code."""
    assert split_codes("200000172 200069193") == ["200000172", "200069193"]
    assert split_codes("200000172\t200069193  242100410") == ["200000172", "200069193", "242100410"]
    assert split_codes("200 000 172 200069193") == ["200000172", "200069193"]
    assert split_codes("21231 2A004 ti-2701") == ["21231", "2A004", "ti-2701"]
    assert split_codes(["200 069 193 242 100 410"]) == ["200069193", "242100410"]


def test_control_characters_in_codes_are_escaped_in_messages():
    from territoires_industrie.review.candidacy import from_args

    cand = from_args("X", epci="\x1b[2J200000172,\x1b]0;pwned\x07")
    msgs = " ".join(p.message for p in cand.problems)
    assert "\x1b" not in msgs and "\x07" not in msgs
    assert "\\x1b[2J200000172" in msgs
    assert normalise_code("1001", "commune") == "01001"  # a spreadsheet dropped the zero
    assert normalise_code("2a004", "commune") == "2A004"
    assert normalise_code("200000172.0", "epci") == "200000172"
    assert normalise_code("TI-2701", "ti") == "ti-2701" and normalise_code("ti1-0042", "ti") == "TI1-0042"
    assert [classify(c) for c in ("200000172", "21231", "2B033", "ti-2701", "TI1-0001", "2000001", "x")] == \
        ["epci", "commune", "commune", "ti", "ti", None, None]


def test_duplicates_counted_once_and_reported():
    c = from_args("Dijon-Beaune", epci="242100410,200006682,242100410")
    assert c.codes == ["242100410", "200006682"]
    (dup,) = _codes(c.problems, "duplicate_code")
    assert dup.level == "warning" and "« 242100410 » est donné 2 fois" in dup.message


def test_empty_list_and_empty_name_are_refused():
    c = from_args("Candidature vide", epci="")
    assert [p.code for p in c.fatal] == ["empty"]
    assert "« Candidature vide » ne contient aucun code" in c.fatal[0].message
    c = from_args("   ", epci="242100410")
    assert [p.code for p in c.fatal] == ["missing_name"]
    c = from_args("Deux listes", epci="242100410", communes="21003")
    assert [p.code for p in c.fatal] == ["mixed_kinds"] and "--epci et --communes" in c.fatal[0].message


def test_sql_injection_is_data_never_a_code():
    evil = "'; DROP TABLE releases; --"
    c = from_args(evil, epci="242100410")
    assert c.name == evil and not c.fatal  # a name is data: kept as given (it is escaped in the outputs)
    c = from_args("X", epci=evil)  # split on ";" and spaces like any list of codes: every piece is refused
    assert [p.code for p in c.problems] == ["invalid_code"] * 5 + ["no_valid_code"]
    assert [p.value for p in c.problems[:5]] == ["'", "DROP", "TABLE", "releases", "--"]
    assert "n'est pas un code valide" in c.problems[0].message and c.codes == [] and c.fatal


def test_slug_is_readable_and_unique_per_candidacy():
    a = from_args("Vallée de l'Arve", epci="200000172,200033116")
    b = from_args("Vallée de l'Arve", epci="200033116,200000172")  # same codes in another order: same candidacy
    c = from_args("Vallée de l'Arve", epci="200000172")
    assert a.slug().startswith("vallee-de-l-arve-") and a.slug() == b.slug() != c.slug()
    assert from_args("<script>", epci="200000172").slug().startswith("script-")
    assert build_candidacy("../../etc", "epci", [("200000172", None)]).slug().startswith("etc-")


CSV = (
    "\ufeffDossier;Nom de la candidature;SIREN EPCI\n"   # line 1: DS-like header, BOM
    "101;Dijon-Beaune;242100410\n"                       # 2
    "101;Dijon-Beaune;200006682\n"                       # 3
    "102;Vallée de l'Arve;200 000 172\n"                 # 4 (spaces inside the SIREN)
    "102;Vallée de l'Arve;200033116\n"                   # 5
    "103;Coquilles;20000017\n"                           # 6 (8 digits)
    "103;Coquilles;21003\n"                              # 7 (a commune: decided against the release)
    "104;Trop de champs;242100410;en trop\n"             # 8
    ";;242100410\n"                                      # 9 (no name, no dossier)
    "105;Vide;\n"                                        # 10 (no code)
    "101;Dijon-Beaune;242100410\n"                       # 11 (duplicate of line 2)
    "\n"
    "106;Autre nom;242500361\n"                          # 13
    "106;Autre nom bis;200065647\n"                      # 14 (name differs within one dossier)
)


def test_batch_file_bad_rows_named_good_rows_kept(tmp_path):
    path = tmp_path / "export_ds.csv"
    path.write_text(CSV, encoding="utf-8")
    cands, file_problems = read_batch(path)
    by = {c.dossier: c for c in cands}
    assert list(by) == ["101", "102", "103", "105", "106"]
    assert by["101"].codes == ["242100410", "200006682"] and by["101"].rows == [2, 3, 11]
    assert by["101"].name == "Dijon-Beaune" and by["101"].codes_field == "SIREN EPCI"
    (dup,) = _codes(by["101"].problems, "duplicate_code")
    assert "(lignes 2, 11)" in dup.message and dup.row == 2
    assert by["102"].codes == ["200000172", "200033116"]
    (bad,) = _codes(by["103"].problems, "invalid_code")
    assert bad.row == 6 and bad.field == "SIREN EPCI" and bad.message.startswith("ligne 6, champ SIREN EPCI : « 20000017 »")
    assert "(8 chiffres)" in bad.message
    assert by["103"].codes == ["21003"]  # pattern of a commune: the review will say so and suggest its EPCI
    assert [p.code for p in by["105"].fatal] == ["empty"]
    (missing,) = _codes(by["105"].problems, "missing_code")
    assert missing.message == "ligne 10, champ SIREN EPCI : vide ; ligne ignorée"
    (conflict,) = _codes(by["106"].problems, "name_conflict")
    assert conflict.row == 14 and "« Autre nom » est gardé" in conflict.message
    assert by["106"].codes == ["242500361", "200065647"]
    msgs = {p.code: p for p in file_problems}
    assert msgs["malformed_row"].row == 8 and msgs["malformed_row"].message.startswith(
        "ligne 8 : 4 champ(s) au lieu de 3 (séparateur « ; »)")
    assert msgs["missing_name"].row == 9 and "ni nom de candidature ni numéro de dossier" in msgs["missing_name"].message


def test_batch_comma_separator_commune_column_and_cp1252(tmp_path):
    path = tmp_path / "communes.csv"
    path.write_bytes("nom_candidature,code_commune\nCôte,21003\nCôte,21105\n".encode("cp1252"))
    (c,), problems = read_batch(path)
    assert c.kind == "commune" and c.codes == ["21003", "21105"] and c.name == "Côte"
    assert [p.code for p in problems] == ["encoding"] and "Windows-1252" in problems[0].message


@pytest.mark.parametrize("content, message", [
    ("", "fichier vide"),
    ("nom;autre\nA;B\n", "aucune colonne de codes"),
    ("siren_epci\n242100410\n", "aucune colonne nom_candidature ni dossier"),
])
def test_unusable_batch_files_say_why(tmp_path, content, message):
    path = tmp_path / "lot.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CandidacyFileError, match=message):
        read_batch(path)
    with pytest.raises(CandidacyFileError, match="introuvable"):
        read_batch(tmp_path / "absent.csv")


def test_weight_robustness_share_follows_the_group_position():
    """The share of weight draws under which a group is 'en difficulté': 1 when it tops every
    domain, 0 when it is last, in between (and growing with its strong domain) otherwise; the
    'plus loin de l'emploi' verdict does not move with the weights."""
    import numpy as np
    from territoires_industrie.review.scoring import weight_robustness

    rng = np.random.default_rng(3)
    ref = rng.uniform(0, 100, size=(50, 4))
    regions = np.array(["27"] * 25 + ["84"] * 25)
    w = {"A": 0.35, "B": 0.25, "C": 0.30, "D": 0.10}
    top = weight_robustness({d: 100.0 for d in "ABCD"}, {d: 100.0 for d in "ABCD"}, ref, regions, "27", w, draws=400)
    low = weight_robustness({d: 0.0 for d in "ABCD"}, {d: 100.0 for d in "ABCD"}, ref, regions, "27", w, draws=400)
    assert top["share_in_difficulty"] == 1.0 and low["share_in_difficulty"] == 0.0
    pct = {"A": 95.0, "B": 85.0, "C": 10.0, "D": 10.0}
    mid = [weight_robustness({"A": a, "B": 90.0, "C": 20.0, "D": 20.0}, pct, ref, regions, "27", w, draws=400)
           ["share_in_difficulty"] for a in (60.0, 90.0, 100.0)]
    assert 0.0 < mid[1] < 1.0 and mid[0] <= mid[1] <= mid[2]
    assert mid[1] == weight_robustness({"A": 90.0, "B": 90.0, "C": 20.0, "D": 20.0}, pct, ref, regions, "27", w,
                                       draws=400)["share_in_difficulty"]  # reproducible
    assert top["share_far_from_employment"] == 1.0 and mid and weight_robustness(
        {d: 100.0 for d in "ABCD"}, pct, ref, regions, "27", w, draws=10)["share_far_from_employment"] == 0.0
    # fewer than k domains at the threshold: never in difficulty, whatever the weights
    assert weight_robustness({d: 100.0 for d in "ABCD"}, {"A": 99.0, "B": 1.0, "C": 1.0, "D": 1.0}, ref, regions, "27",
                             w, draws=100)["share_in_difficulty"] == 0.0
