"""Bad-input corpus (issue 9): every file of ``tests/fixtures/bad_inputs/`` (see its README) fails
with a clear error naming the file and the row / field, or is repaired as documented; and a bad
input arriving after a release was published leaves that release byte-identical."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from .reliability_world import copy_world, published_template, run_stages, settings_for, snapshot

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs"
KNOWN = {"21231", "21054", "25056", "01001"}


def _sirene(p):
    from territoires_industrie.sources import sirene
    from territoires_industrie.validation import SireneStreamChecker

    checker = SireneStreamChecker()
    df, _ = sirene.aggregate_stock(p, KNOWN, on_batch=checker.update)
    return df, checker.result()


def _melodi(p):
    from territoires_industrie.sources import melodi

    return melodi.collect_series([p], melodi.CENSUS_SERIES[0], 2021)


def _parsers():
    from territoires_industrie.geography import read_ti_2023
    from territoires_industrie.sources import bdm, census, chomage, urssaf

    return {"sirene": _sirene, "urssaf": lambda p: urssaf.parse_urssaf(p, KNOWN), "census": lambda p: census.parse_census(p, KNOWN),
            "chomage": chomage.parse_chomage_ze, "bdm": lambda p: bdm.parse_sdmx([p]), "melodi": _melodi, "ti": read_ti_2023}


# file -> (exception class name, substrings the message must contain besides the file name)
ERRORS = {
    "sirene_truncated.zip": ("SireneFileError", ["not a valid zip file", "truncated"]),
    "sirene_wrong_members.zip": ("SireneFileError", ["expected member 'StockEtablissement_utf8.csv'", "StockUniteLegale_utf8.csv"]),
    "sirene_empty.zip": ("SireneFileError", ["not a valid zip file"]),
    "sirene_html_200.zip": ("SireneFileError", ["not a valid zip file"]),
    "sirene_header_only.zip": ("SireneFileError", ["no data rows"]),
    "sirene_missing_column.zip": ("MissingColumnError", ["['codeCommuneEtablissement']"]),
    "sirene_renamed_column.zip": ("MissingColumnError", ["['activitePrincipaleEtablissement']"]),
    "sirene_semicolon.zip": ("MissingColumnError", ["'siret'", "found 1 columns"]),
    "urssaf_latin1.csv": ("TabularFileError", ["not valid utf-8 at byte", "re-export it as UTF-8"]),
    "urssaf_missing_column.csv": ("MissingColumnError", ["['code_commune']"]),
    "urssaf_renamed_columns_labels.csv": ("MissingColumnError", ["['code_commune', 'code_ape']", "Code commune"]),
    "urssaf_negative_count.csv": ("TabularFileError", ["negative count", "file line 3", "effectifs_salaries_2025"]),
    "urssaf_nan_count.csv": ("TabularFileError", ["non-finite count", "file line 3", "'effectifs_salaries_2024'"]),
    "urssaf_inf_count.csv": ("TabularFileError", ["non-finite count inf", "file line 3", "'effectifs_salaries_2024'"]),
    "urssaf_fractional_count.csv": ("TabularFileError", ["non-integer count 10.5", "file line 3",
                                                         "'effectifs_salaries_2024'"]),
    "urssaf_absurd_count.csv": ("TabularFileError", ["above the plausible ceiling 30,000,000", "1000000000000.0",
                                                     "file line 3", "'effectifs_salaries_2024'"]),
    "urssaf_empty.csv": ("TabularFileError", ["empty file"]),
    "urssaf_header_only.csv": ("TabularFileError", ["header only"]),
    "urssaf_html_200.csv": ("TabularFileError", ["HTML/XML page"]),
    "urssaf_text_in_count.csv": ("TabularFileError", ["'n.d.'", "file line 4", "'effectifs_salaries_2024'"]),
    "urssaf_no_year_columns.csv": ("TabularFileError", ["no effectifs_salaries_YYYY column"]),
    "census_missing_column.csv": ("MissingColumnError", ["['P15_EMPLT']"]),
    "census_header_only.csv": ("TabularFileError", ["header only"]),
    "chomage_wrong_sheet.xlsx": ("SourceFormatError", ["sheet 'txcho_ze' not found"]),
    "chomage_no_machine_header.xlsx": ("SourceFormatError", ["'ZE2020'", "sheet 'txcho_ze'"]),
    "chomage_html_200.xlsx": ("SourceFormatError", ["not an xlsx file"]),
    "chomage_empty.xlsx": ("SourceFormatError", ["empty"]),
    "chomage_truncated.xlsx": ("SourceFormatError", ["not a readable xlsx file", "truncated"]),
    "bdm_html_200.xml": ("UpstreamFormatError", ["HTML page instead of SDMX-ML"]),
    "bdm_malformed.xml": ("UpstreamFormatError", ["malformed XML", "line 4"]),
    "bdm_missing_observations.xml": ("UpstreamFormatError", ["no <Series>/<Obs>"]),
    "bdm_non_numeric_obs.xml": ("UpstreamFormatError", ["'abc'", "001515842", "2026-Q2"]),
    "melodi_malformed.json": ("UpstreamFormatError", ["malformed JSON"]),
    "melodi_no_observations.json": ("UpstreamFormatError", ["no 'observations' list"]),
    "ti_missing_column.csv": ("SourceFormatError", ["['id_ti']"]),
}


def test_corpus_is_complete_and_documented():
    files = sorted(p.name for p in CORPUS.iterdir() if p.name not in ("README.md", "make_corpus.py"))
    readme = (CORPUS / "README.md").read_text()
    assert len(files) >= 30
    assert [f for f in files if f"`{f}`" not in readme] == []
    assert set(ERRORS) | set(REPAIRS) | set(GATED) == set(files)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_input_fails_with_a_clear_message(name):
    kind, parts = ERRORS[name]
    with pytest.raises(Exception) as info:
        _parsers()[name.split("_")[0]](CORPUS / name)
    assert type(info.value).__name__ == kind, f"{name}: {type(info.value).__name__}: {info.value}"
    msg = str(info.value)
    assert msg.startswith(name), f"the message must start with the file name: {msg}"
    for part in parts:
        assert part in msg, f"{name}: {part!r} not in {msg!r}"


def _urssaf_2025(df, codgeo, division):
    row = df[(df["codgeo"] == codgeo) & (df["division"] == division) & (df["year"] == 2025)]
    return float(row["jobs"].iloc[0]), float(row["n_etab"].iloc[0])


def _repair_checks():
    def sirene_counts(expected, failing=None):
        def check(out):
            df, stream = out
            got = {(r.codgeo, r.naf): int(r.n_etab) for r in df.itertuples()}
            assert got == expected
            failed = [c for c in stream["checks"] if not c["success"]]
            if failing is None:
                assert failed == []
            else:  # repaired in the counts, but the SIRENE file itself is flagged (INSEE never strips zeros)
                assert [(c["check"], c["sample"]) for c in failed] == [failing]
        return check

    base = {("21231", "25.62B"): 1, ("21054", "25.62B"): 1, ("25056", "10.71C"): 1}

    def urssaf_base(out):
        df, _ = out
        # file rows: 21231/2562B 42 jobs 3 etab, 21231/1071C 11 jobs 2 etab, 21054/2562B 8 jobs 1 etab (2025)
        assert _urssaf_2025(df, "21231", "25") == (42.0, 3.0)
        assert _urssaf_2025(df, "21231", "10") == (11.0, 2.0)
        assert _urssaf_2025(df, "21054", "25") == (8.0, 1.0)

    def urssaf_padded(out):
        df, rep = out
        assert rep["commune_codes_zero_padded"] == 2
        assert _urssaf_2025(df, "01001", "25") == (42.0, 3.0) and _urssaf_2025(df, "01001", "10") == (11.0, 2.0)

    def census_comma(out):
        df, _ = out
        assert df.loc[df["codgeo"] == "21231", "rp1_pop"].iloc[0] == 155000.5

    def chomage_row9(out):
        df, rep = out
        assert rep["latest_quarter"] == "2026-T2"
        assert df[["ze2020", "quarter", "rate"]].values.tolist() == [["0051", "2026-T1", 6.1], ["0051", "2026-T2", 6.3]]

    return {
        "sirene_wrong_member.zip": sirene_counts({k: 40 for k in base}),
        "sirene_latin1.zip": sirene_counts(base),
        "sirene_extra_column.zip": sirene_counts(base),
        "sirene_4char_commune.zip": sirene_counts({("01001", "25.62B"): 2}, ("commune_format", ["1001"])),
        "urssaf_bom.csv": urssaf_base,
        "urssaf_comma.csv": urssaf_base,
        "urssaf_extra_column.csv": urssaf_base,
        "urssaf_4char_commune.csv": urssaf_padded,
        "census_decimal_comma.csv": census_comma,
        "chomage_header_on_row_9.xlsx": chomage_row9,
    }


REPAIRS = sorted(_repair_checks())


@pytest.mark.parametrize("name", REPAIRS)
def test_bad_input_is_repaired_as_documented(name):
    out = _parsers()[name.split("_")[0]](CORPUS / name)
    _repair_checks()[name](out)


# files the parser reads but a hard check rejects: (file, failing check, substrings of its sample)
GATED = {
    "sirene_duplicate_siret.zip": ("siret_unique", "55210055400016"),
    "sirene_unknown_naf.zip": ("naf_in_table", "99.99Z"),
    "chomage_rate_out_of_range.xlsx": (None, None),
}


@pytest.mark.parametrize("name", ["sirene_duplicate_siret.zip", "sirene_unknown_naf.zip"])
def test_stream_checks_name_the_offending_value(name):
    check, value = GATED[name]
    _, stream = _sirene(CORPUS / name)
    failed = {c["check"]: c for c in stream["checks"] if not c["success"]}
    assert set(failed) == {check}
    c = failed[check]
    assert c["severity"] == "hard" and c["unexpected_count"] == 1 and c["sample"] == [value]
    if check == "naf_in_table":  # data row 3 = file line 4, with its SIRET
        assert c["sample_detail"] == [{"row": 3, "siret": "55210055400032", "value": "99.99Z"}]
    else:
        assert c["sample_detail"][0]["occurrences"] == 2


def test_out_of_range_rates_are_parsed_as_such():
    from territoires_industrie.sources import chomage

    df, _ = chomage.parse_chomage_ze(CORPUS / "chomage_rate_out_of_range.xlsx")
    assert sorted(df["rate"]) == [-2.0, 6.1, 7.0, 140.0]  # the gate (stage-level test below) rejects them


# --- stage level: a bad input after a published release leaves it byte-identical -------------

def _rewrite_zip_member(path: Path, edit) -> None:
    with zipfile.ZipFile(path) as zf:
        name = zf.namelist()[0]
        text = zf.read(name).decode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, edit(text))


def _dup_first_row(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines + [lines[1]])


def _negative_urssaf(path: Path) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))
    col = rows[0].index("effectifs_salaries_2024")
    rows[5][col] = "-3"
    buf = io.StringIO()
    csv.writer(buf, delimiter=";", lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _rate_140(path: Path) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb["txcho_ze"]
    for row in ws.iter_rows(min_row=1, max_row=15):
        if row[0].value == "ZE2020":
            ws.cell(row[0].row + 1, ws.max_column).value = 140.0
            break
    wb.save(path)


STAGE_CASES = {
    # id: (sample file, raw source, corruption, stage, exception, substrings)
    "sirene_truncated": ("sirene/StockEtablissement_utf8.zip", "sirene_stock",
                         lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "sirene",
                         "SireneFileError", ["StockEtablissement_utf8.zip"]),
    "sirene_duplicate_siret": ("sirene/StockEtablissement_utf8.zip", "sirene_stock",
                               lambda p: _rewrite_zip_member(p, _dup_first_row), "sirene", "HardGateFailed",
                               ["sirene_stock", "siret"]),
    "urssaf_negative": ("urssaf/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last.csv", "urssaf",
                        _negative_urssaf, "employment", "TabularFileError", ["file line 6), column",
                                                                              "effectifs_salaries_2024"]),
    "chomage_rate_140": ("chomage/chomage-zone-t1-2003-t2-2026.xlsx", "chomage_ze", _rate_140, "employment",
                         "HardGateFailed", ["chomage_ze", "rate"]),
}


def _as_if_published(data, sample_rel):
    """The bad file stands for what the source published: record its sha256 in the sample
    manifest (otherwise the sample check refuses it before landing, see below)."""
    import hashlib
    import json

    mpath = data / "sample" / "SAMPLE_MANIFEST.json"
    m = json.loads(mpath.read_text())
    for entry in m["files"].values():
        if entry["path"] == sample_rel:
            entry["sha256"] = hashlib.sha256((data / "sample" / sample_rel).read_bytes()).hexdigest()
    mpath.write_text(json.dumps(m))


def test_altered_sample_file_is_refused_before_it_reaches_the_raw_zone(tmp_path, tmp_path_factory, monkeypatch):
    """Issue 21: a sample file altered after generation used to be landed in the immutable raw
    zone first, then fail parsing, and block every later run with a LandingConflict."""
    data = copy_world(published_template(tmp_path_factory), tmp_path / "data")
    settings = settings_for(data)
    before = snapshot(settings)
    raw_before = sorted(str(p.relative_to(data)) for p in (data / "raw").rglob("*"))
    sample = data / "sample" / "urssaf" / "etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last.csv"
    original = sample.read_bytes()
    _negative_urssaf(sample)
    for folder in (data / "raw" / "urssaf").iterdir():  # force a new landing
        for f in folder.iterdir():
            f.chmod(0o644)
            f.unlink()
    with pytest.raises(Exception) as info:
        run_stages(monkeypatch, settings, ("employment",))
    assert type(info.value).__name__ == "SampleFileAltered"
    assert sample.name in str(info.value) and "nothing was landed" in str(info.value)
    assert not [p for p in (data / "raw" / "urssaf").rglob("*.csv")], "the altered file reached the raw zone"
    assert snapshot(settings) == before
    sample.write_bytes(original)  # restored: the next run lands and publishes as before
    run_stages(monkeypatch, settings, ("employment",))
    assert sorted(str(p.relative_to(data)) for p in (data / "raw").rglob("*")) == raw_before


@pytest.mark.parametrize("case", sorted(STAGE_CASES))
def test_bad_input_leaves_the_published_release_unchanged(case, tmp_path, tmp_path_factory, monkeypatch):
    sample_rel, source, corrupt, stage, kind, parts = STAGE_CASES[case]
    data = copy_world(published_template(tmp_path_factory), tmp_path / "data")
    settings = settings_for(data)
    before = snapshot(settings)
    assert before["warehouse"]["releases"], "the world holds a published release"
    corrupt(data / "sample" / sample_rel)
    _as_if_published(data, sample_rel)
    # a new download of the same vintage: the landed copy is replaced by the bad one
    for folder in (data / "raw" / source).iterdir():
        for f in folder.iterdir():
            f.unlink()
    with pytest.raises(Exception) as info:
        run_stages(monkeypatch, settings, (stage,))
    assert type(info.value).__name__ == kind, f"{type(info.value).__name__}: {info.value}"
    for part in parts:
        assert part in str(info.value), f"{part!r} not in {info.value}"
    after = snapshot(settings)
    assert after["pointers"] == before["pointers"]
    assert after["files"] == before["files"]
    assert after["warehouse"] == before["warehouse"]
