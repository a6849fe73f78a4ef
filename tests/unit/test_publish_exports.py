"""Published warehouse tables (documented schema, releases kept, history) and the exports
people download (XLSX, CSV `,` / `;`, Parquet): round trips, French formats, determinism."""

from __future__ import annotations

import re
import uuid
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from territoires_industrie import warehouse
from territoires_industrie.publish import build_exports, exports_complete, french_table, load_release, wide_table
from territoires_industrie.publish.exports import export_names, xlsx_sheets
from territoires_industrie.publish.schema_doc import documented_block

from .report_fixture import SCRIPT_LABEL, publish_fixture

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "report.md"
TYPE_FAMILY = {"STRING": "str", "VARCHAR": "str", "TEXT": "str", "FLOAT": "float", "REAL": "float",
               "DOUBLE": "float", "DOUBLE_PRECISION": "float", "INTEGER": "int", "BIGINT": "int",
               "BOOLEAN": "bool"}


@pytest.fixture()
def engine(tmp_path):
    e = warehouse.get_engine(f"sqlite:///{tmp_path}/w.db")
    publish_fixture(e)
    yield e
    e.dispose()


@pytest.fixture()
def rd(engine):
    return load_release(engine)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer columns as floats (a spreadsheet has no integer NULL)."""
    return df.astype({c: "float64" for c in df.columns if str(df[c].dtype) == "Int64"})


def _documented_schema() -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, type family)]} parsed from the schema tables of docs/report.md."""
    block = documented_block(DOC.read_text(encoding="utf-8"))
    out, current = {}, None
    for line in block.splitlines():
        m = re.match(r"^### `(\w+)`", line)
        if m:
            current = out.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\| `(\w+)` \| (\w+)", line)
        if m and current is not None:
            current.append((m.group(1), TYPE_FAMILY[m.group(2)]))
    return out


def _family(sa_type) -> str:
    name = type(sa_type).__name__.upper()
    for k, v in TYPE_FAMILY.items():
        if name.startswith(k):
            return v
    raise AssertionError(f"unexpected column type {name}")


def _check_schema(eng) -> None:
    documented = _documented_schema()
    assert set(documented) == {"releases", "territories", "indicator_values", "indicator_dictionary", "composite"}
    insp = sa.inspect(eng)
    for table, cols in documented.items():
        got = [(c["name"], c["type"]) for c in insp.get_columns(table)]
        assert [n for n, _ in got] == [n for n, _ in cols], f"{table}: warehouse columns differ from docs/report.md"
        for (name, t), (_, fam) in zip(got, cols):
            if fam == "bool" and eng.dialect.name == "sqlite":
                assert type(t).__name__.upper() in ("BOOLEAN", "INTEGER"), (table, name, t)
            else:
                assert _family(t) == fam, (table, name, t, fam)
    for view, table in warehouse.LATEST_VIEWS.items():
        got = [c["name"] for c in insp.get_columns(view)]
        assert got == [n for n, _ in documented[table]], view


def test_docs_schema_is_generated_from_the_table_definitions():
    assert documented_block(DOC.read_text(encoding="utf-8")) == warehouse.schema_markdown(), (
        "docs/report.md is out of date: .venv/bin/python -m territoires_industrie.publish.schema_doc docs/report.md")


def test_every_published_table_has_the_documented_columns_sqlite(engine):
    _check_schema(engine)


@pytest.mark.postgres
def test_every_published_table_has_the_documented_columns_postgres_copy():
    """Same schema on PostgreSQL, loaded with COPY; read back equal to the SQLite warehouse."""
    pytest.importorskip("psycopg2")
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            name = f"ti_test_{uuid.uuid4().hex[:10]}"
            c.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc.orig}")
    pg = warehouse.get_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}")
    try:
        publish_fixture(pg)
        _check_schema(pg)
        lite = warehouse.get_engine("sqlite://")
        publish_fixture(lite)
        for table in warehouse.RELEASE_TABLES:
            a = warehouse.read_release(pg, "2026-11", table)
            b = warehouse.read_release(lite, "2026-11", table)
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
        assert warehouse.current_release_id(pg) == "2026-11"
    finally:
        pg.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_every_release_is_kept_and_latest_points_at_the_newest(engine):
    rel = warehouse.list_releases(engine)
    assert rel["release_id"].tolist() == ["2026-10", "2026-11"]
    assert warehouse.previous_release_id(engine, "2026-11") == "2026-10"
    assert warehouse.previous_release_id(engine, "2026-10") is None
    meta = warehouse.release_meta(engine, "2026-11")
    assert meta["pipeline_version"] and meta["source_vintages"]["urssaf"] == "2025" and meta["synthetic"] is True
    assert meta["validation_status"] == "warnings"
    with pytest.raises(KeyError, match="2025-01.*2026-10, 2026-11"):
        warehouse.release_meta(engine, "2025-01")
    # the same territory, compared month on month
    comp = warehouse.read_release(engine, "2026-10", "composite").set_index("territory_id")
    assert comp.loc["TI1-0001", "rank_national"] == 2
    latest = warehouse.read_latest(engine, "latest_composite").set_index("territory_id")
    assert latest.loc["TI1-0001", "rank_national"] == 1
    hist = warehouse.read_history(engine, "composite", levels=("ti",), columns=("score",))
    assert hist[hist["territory_id"] == "TI1-0001"]["score"].tolist() == [45.0, 61.5]
    assert list(hist.columns) == ["release_id", "level", "territory_id", "reference_set", "score"]
    # typed: codes stay strings with their leading zero, flags are booleans
    terr = warehouse.read_release(engine, "2026-11", "territories")
    assert "01001" in set(terr["territory_id"]) and str(terr["territory_id"].dtype) == "str"
    assert str(warehouse.read_release(engine, "2026-11", "composite")["uncertain"].dtype) == "boolean"


def test_wide_table_one_row_per_territory(rd):
    w = wide_table(rd).set_index(["level", "territory_id"])
    assert len(w) == 14 and w.index.is_unique
    ti1 = w.loc[("ti", "TI1-0001")]
    assert ti1["score"] == 61.5 and ti1["rank_national"] == 1 and ti1["n_reference"] == 3
    assert ti1["a1_ind_jobs_decline"] == 12.4949 and ti1["jobs_ind"] == 4321.0
    assert ti1["unreliable_indicators"] == "a1_ind_jobs_decline"
    assert pd.isna(ti1["secret_indicators"])
    ti2 = w.loc[("ti", "TI1-0002")]
    assert ti2["label"] == SCRIPT_LABEL and pd.isna(ti2["jobs_ind"]) and ti2["secret_indicators"] == "jobs_ind:B"
    assert w.loc[("ti", "TI1-0003"), "secret_indicators"] == "b1_net_closure_rate:A"
    # population is an identity column, not repeated as an indicator column
    assert list(w.columns).count("population") == 1 and w.loc[("commune", "01001"), "population"] == 832.0
    # a territory without composite (commune) has empty composite columns
    assert pd.isna(w.loc[("commune", "21231"), "score"])


def test_xlsx_round_trip_equals_the_table(rd, tmp_path):
    out = build_exports(rd, tmp_path / "exp")
    path = Path(out["xlsx"])
    assert path.name == "indicateurs_territoires_2026-11_SYNTHETIC.xlsx"
    wide = wide_table(rd)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Lisez-moi", "Territoires d'industrie", "Zones d'emploi", "EPCI", "Départements",
                             "Régions", "Communes", "Dictionnaire"]
    for level, sheet in (("ti", "Territoires d'industrie"), ("ze", "Zones d'emploi"), ("epci", "EPCI"),
                         ("departement", "Départements"), ("region", "Régions"), ("commune", "Communes")):
        expected = french_table(rd, wide[wide["level"] == level].reset_index(drop=True))
        got = pd.read_excel(path, sheet_name=sheet, dtype={"Code": str, "Département": str, "Région": str})
        assert list(got.columns) == list(expected.columns), sheet
        pd.testing.assert_frame_equal(_plain(got), _plain(expected), check_dtype=False, check_exact=False,
                                      rtol=1e-12, obj=sheet)
        ws = wb[sheet]
        assert ws.freeze_panes == "A2", sheet
    ws = wb["Territoires d'industrie"]
    header = [c.value for c in ws[1]]
    assert header[:4] == ["Version (release)", "Niveau", "Code", "Libellé"]
    assert "Recul de l'emploi salarié industriel sur 5 ans (%)" in header
    assert "Indice composite de difficulté (0-100)" in header
    row = {h: c for h, c in zip(header, ws[2])}  # TI1-0001 (rows sorted by code)
    assert row["Code"].value == "TI1-0001" and row["Libellé"].value == "Vallée de l'Arve"
    assert row["Indice composite de difficulté (0-100)"].data_type == "n"
    assert row["Indice composite de difficulté (0-100)"].value == 61.5
    assert row["Emplois salariés industriels (31/12) (emplois)"].value == 4321
    assert row["Classement incertain"].value == "non" and row["Territoire industriel"].value == "oui"
    communes = wb["Communes"]
    assert communes["C2"].value == "01001" and communes["C2"].data_type == "s"  # leading zero kept, as text
    readme = {r[0].value: r[1].value for r in wb["Lisez-moi"].iter_rows()}
    assert "DONNÉES SYNTHÉTIQUES" in readme["ATTENTION"] and readme["Release"] == "2026-11"
    assert readme["Millésime : urssaf"] == "2025"
    dic = pd.read_excel(path, sheet_name="Dictionnaire").set_index("Identifiant")
    assert dic.loc["a1_ind_jobs_decline", "Unité"] == "%" and dic.loc["a1_ind_jobs_decline", "Période"] == "2020-2025"
    assert dic.loc["a1_ind_jobs_decline", "Colonne"] == "Recul de l'emploi salarié industriel sur 5 ans (%)"
    assert dic.loc["a1_ind_jobs_decline", "Sens"] == "plus élevé = plus de difficulté"
    assert dic.loc["score", "Colonne"] == "Indice composite de difficulté (0-100)"
    assert set(dic.index) == set(wide.columns)
    # no timestamp in the document properties
    with zipfile.ZipFile(path) as z:
        core = z.read("docProps/core.xml").decode()
        assert "2000-01-01T00:00:00Z" in core
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_csv_exports_comma_and_french_semicolon(rd, tmp_path):
    out = build_exports(rd, tmp_path / "exp")
    main = pd.read_csv(out["csv"], dtype={"territory_id": str, "departement": str, "region": str})
    assert Path(out["csv"]).name == "indicateurs_territoires_2026-11_SYNTHETIC.csv"
    assert set(main["data_status"]) == {"SYNTHETIC"} and "commune" not in set(main["level"])
    assert len(main) == 12
    ti1 = main.set_index("territory_id").loc["TI1-0001"]
    assert ti1["a1_ind_jobs_decline"] == 12.4949 and ti1["score"] == 61.5 and bool(ti1["uncertain"]) is False

    raw = Path(out["csv_fr"]).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: French Excel reads UTF-8 accents
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Statut des données;Version (release);Niveau;Code;Libellé;")
    assert ";12,4949;" in text and ";61,5;" in text  # decimal comma
    fr = pd.read_csv(out["csv_fr"], sep=";", decimal=",", encoding="utf-8-sig",
                     dtype={"Code": str, "Département": str, "Région": str})
    expected = french_table(rd, pd.read_csv(out["csv"], dtype={"territory_id": str, "departement": str,
                                                              "region": str, "ti_phase": str}))
    pd.testing.assert_frame_equal(fr.drop(columns="Statut des données"),
                                  expected.drop(columns="Statut des données"), check_dtype=False)
    row = fr.set_index("Code").loc["TI1-0002"]
    assert row["Libellé"] == SCRIPT_LABEL and pd.isna(row["Emplois salariés industriels (31/12) (emplois)"])
    assert row["Indicateurs sous secret statistique"] == "jobs_ind:B"


def test_parquet_round_trip(rd, tmp_path):
    out = build_exports(rd, tmp_path / "exp")
    got = pd.read_parquet(out["parquet"])
    expected = wide_table(rd)
    expected.insert(0, "data_status", "SYNTHETIC")
    pd.testing.assert_frame_equal(got, expected)
    assert got.loc[got["territory_id"] == "01001", "label"].item() == "L'Abergement-Clémenciat"
    long = pd.read_parquet(out["long_parquet"])
    assert len(long) == len(rd.indicator_values)
    assert long.set_index(["territory_id", "indicator_id"]).loc[("TI1-0001", "a1_ind_jobs_decline"), "value_raw"] == 14.0


def test_exports_are_deterministic_and_verifiable(rd, engine, tmp_path):
    a = build_exports(rd, tmp_path / "a")
    b = build_exports(load_release(engine), tmp_path / "b")
    names = export_names("2026-11", True)
    for kind, name in names.items():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), kind
    assert (tmp_path / "a" / "MANIFEST.json").read_bytes() == (tmp_path / "b" / "MANIFEST.json").read_bytes()
    assert exports_complete(tmp_path / "a", "2026-11") and not exports_complete(tmp_path / "a", "2026-10")
    Path(a["csv"]).write_text("tampered")
    assert not exports_complete(tmp_path / "a", "2026-11")
    assert Path(b["xlsx"]).stat().st_mode & 0o777 == 0o644  # readable by the web server / file share


def test_xlsx_sheets_of_an_older_release_without_composite(tmp_path):
    """A release published before the composite existed still exports (no composite columns)."""
    from .report_fixture import fixture_tables

    eng = warehouse.get_engine(f"sqlite:///{tmp_path}/old.db")
    t = fixture_tables()
    t["composite"] = None
    warehouse.publish_release(eng, "2026-09", t, {"synthetic": False})
    rd = load_release(eng)
    assert not rd.synthetic
    sheets = xlsx_sheets(rd)
    assert "Indice composite de difficulté (0-100)" not in sheets["Territoires d'industrie"].columns
    out = build_exports(rd, tmp_path / "exp")
    assert Path(out["csv"]).name == "indicateurs_territoires_2026-09.csv"
    assert set(pd.read_csv(out["csv"])["data_status"]) == {"official"}
    eng.dispose()
