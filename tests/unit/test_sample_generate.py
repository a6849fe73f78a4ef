"""SYNTHETIC sample generator: exact official layouts, internal consistency, determinism."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from territoires_industrie.codes import luhn_ok
from territoires_industrie.geography import build_geography
from territoires_industrie.sample import generate_sample
from territoires_industrie.sample.generate import HISTORY_COLUMNS, STOCK_COLUMNS

DEPS = ("08", "25", "39", "70", "2A")
KEYS = {"sirene_stock", "sirene_history", "urssaf", "chomage_ze", "census", "ti_2023", "ti_2023_grpt", "manifest"}

EXPECTED_STOCK_HEADER = (
    "siren,nic,siret,statutDiffusionEtablissement,dateCreationEtablissement,trancheEffectifsEtablissement,"
    "anneeEffectifsEtablissement,activitePrincipaleRegistreMetiersEtablissement,dateDernierTraitementEtablissement,"
    "etablissementSiege,nombrePeriodesEtablissement,complementAdresseEtablissement,numeroVoieEtablissement,"
    "indiceRepetitionEtablissement,dernierNumeroVoieEtablissement,indiceRepetitionDernierNumeroVoieEtablissement,"
    "typeVoieEtablissement,libelleVoieEtablissement,codePostalEtablissement,libelleCommuneEtablissement,"
    "libelleCommuneEtrangerEtablissement,distributionSpecialeEtablissement,codeCommuneEtablissement,"
    "codeCedexEtablissement,libelleCedexEtablissement,codePaysEtrangerEtablissement,libellePaysEtrangerEtablissement,"
    "identifiantAdresseEtablissement,coordonneeLambertAbscisseEtablissement,coordonneeLambertOrdonneeEtablissement,"
    "complementAdresse2Etablissement,numeroVoie2Etablissement,indiceRepetition2Etablissement,typeVoie2Etablissement,"
    "libelleVoie2Etablissement,codePostal2Etablissement,libelleCommune2Etablissement,"
    "libelleCommuneEtranger2Etablissement,distributionSpeciale2Etablissement,codeCommune2Etablissement,"
    "codeCedex2Etablissement,libelleCedex2Etablissement,codePaysEtranger2Etablissement,"
    "libellePaysEtranger2Etablissement,dateDebut,etatAdministratifEtablissement,enseigne1Etablissement,"
    "enseigne2Etablissement,enseigne3Etablissement,denominationUsuelleEtablissement,activitePrincipaleEtablissement,"
    "nomenclatureActivitePrincipaleEtablissement,caractereEmployeurEtablissement,activitePrincipaleNAF25Etablissement"
)


@pytest.fixture(scope="module")
def geography():
    return build_geography()


@pytest.fixture(scope="module")
def sample(tmp_path_factory, geography) -> dict[str, Path]:
    return generate_sample(tmp_path_factory.mktemp("sample"), geography, departements=DEPS, scale=0.2)


def _read_zip_csv(path: Path, member: str) -> tuple[str, pd.DataFrame]:
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == [member]
        raw = zf.read(member)
    text = raw.decode("utf-8")
    return text.split("\n", 1)[0], pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def stock(sample) -> pd.DataFrame:
    header, df = _read_zip_csv(sample["sirene_stock"], "StockEtablissement_utf8.csv")
    assert header == EXPECTED_STOCK_HEADER
    return df


@pytest.fixture(scope="module")
def history(sample) -> pd.DataFrame:
    return _read_zip_csv(sample["sirene_history"], "StockEtablissementHistorique_utf8.csv")[1]


@pytest.fixture(scope="module")
def urssaf(sample) -> pd.DataFrame:
    return pd.read_csv(sample["urssaf"], sep=";", dtype=str, keep_default_na=False)


def test_returned_keys_and_paths(sample):
    assert set(sample) == KEYS
    assert sample["sirene_stock"].as_posix().endswith("sirene/StockEtablissement_utf8.zip")
    assert sample["chomage_ze"].as_posix().endswith("chomage/chomage-zone-t1-2003-t2-2026.xlsx")
    for p in sample.values():
        assert p.is_file() and p.stat().st_size > 0
    leftovers = [p for p in sample["manifest"].parent.rglob("*.tmp")]
    assert leftovers == []


def test_stock_columns_exact_order(stock):
    assert list(stock.columns) == STOCK_COLUMNS
    assert len(STOCK_COLUMNS) == 54
    assert len(stock) > 10_000


def test_stock_siret_unique_luhn(stock):
    assert stock["siret"].is_unique
    assert stock["siret"].str.fullmatch(r"\d{14}").all()
    assert (stock["siret"] == stock["siren"] + stock["nic"]).all()
    assert stock["siren"].str.fullmatch(r"\d{9}").all() and stock["nic"].str.fullmatch(r"\d{5}").all()
    assert all(luhn_ok(s) for s in stock["siret"])
    assert all(luhn_ok(s) for s in stock["siren"].unique())


def test_stock_communes_in_requested_departements(stock, geography):
    foreign = stock["codePaysEtrangerEtablissement"] != ""
    assert 0 < foreign.sum() < 0.01 * len(stock)
    assert (stock.loc[foreign, "codeCommuneEtablissement"] == "").all()
    com = stock.loc[~foreign, "codeCommuneEtablissement"]
    assert com.str.len().eq(5).all()
    known = set(geography.communes["codgeo"].astype(str))
    assert set(com) <= known
    dep = geography.communes.set_index(geography.communes["codgeo"].astype(str))["dep"].astype(str)
    assert set(com.map(dep)) == set(DEPS)
    corsica = stock["codeCommuneEtablissement"].str.startswith("2A")
    assert stock.loc[corsica, "codePostalEtablissement"].str.fullmatch(r"20\d{3}").all()


def test_stock_dates_and_domains(stock):
    ddt = stock["dateDernierTraitementEtablissement"]
    assert ddt.str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}").all()
    assert ddt.max() <= "2026-10-31T23:59:59"
    assert ddt.max().startswith("2026-10-31")
    for col in ("dateCreationEtablissement", "dateDebut"):
        assert stock[col].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert (stock["dateDebut"] >= stock["dateCreationEtablissement"]).all()
    assert set(stock["etatAdministratifEtablissement"]) == {"A", "F"}
    closed = (stock["etatAdministratifEtablissement"] == "F").mean()
    assert 0.35 < closed < 0.55
    assert set(stock["statutDiffusionEtablissement"]) == {"O", "P"}
    nd = stock["statutDiffusionEtablissement"] == "P"
    assert (stock.loc[nd, "libelleVoieEtablissement"] == "[ND]").all()
    assert not stock["codeCommuneEtablissement"].str.contains("ND").any()
    assert set(stock["etablissementSiege"]) == {"true", "false"}
    assert set(stock["caractereEmployeurEtablissement"]) <= {"O", "N", ""}
    tranches = {"NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53", ""}
    assert set(stock["trancheEffectifsEtablissement"]) <= tranches
    non_emp = stock["caractereEmployeurEtablissement"] != "O"
    assert stock.loc[non_emp, "trancheEffectifsEtablissement"].isin(["NN", ""]).all()
    sized = ~stock["trancheEffectifsEtablissement"].isin(["NN", ""])
    assert stock.loc[sized, "anneeEffectifsEtablissement"].isin(["2021", "2022", "2023"]).all()
    assert stock["trancheEffectifsEtablissement"].isin(["41", "42", "51"]).any()  # dominance cases
    active = stock["etatAdministratifEtablissement"] == "A"
    employer_share = (stock.loc[active, "caractereEmployeurEtablissement"] == "O").mean()
    assert 0.18 < employer_share < 0.32


def test_stock_activity_codes(stock):
    nom = stock["nomenclatureActivitePrincipaleEtablissement"]
    assert set(nom) <= {"NAFRev2", "NAFRev1", "NAF1993"}
    assert (nom == "NAFRev2").mean() > 0.8
    rev2 = stock.loc[nom == "NAFRev2", "activitePrincipaleEtablissement"]
    assert rev2.str.fullmatch(r"\d{2}\.\d{2}[A-Z]").all()
    assert (stock.loc[nom != "NAFRev2", "etatAdministratifEtablissement"] == "F").all()
    industrial = (nom == "NAFRev2") & stock["activitePrincipaleEtablissement"].str[:2].between("05", "39")
    assert 0.05 <= industrial.mean() <= 0.15
    naf25 = stock["activitePrincipaleNAF25Etablissement"]
    filled = (stock["etatAdministratifEtablissement"] == "A") & (nom == "NAFRev2")
    assert (naf25[filled] != "").all() and (naf25[~filled] == "").all()
    assert (naf25[filled] != stock.loc[filled, "activitePrincipaleEtablissement"]).any()


def test_history_consistent_with_stock(stock, history):
    assert list(history.columns) == HISTORY_COLUMNS
    assert set(history["siret"]) == set(stock["siret"])
    current = history[history["dateFin"] == ""]
    assert current["siret"].is_unique and len(current) == len(stock)
    m = stock.merge(current, on="siret", suffixes=("", "_h"))
    for col in ("dateDebut", "etatAdministratifEtablissement", "activitePrincipaleEtablissement",
                "nomenclatureActivitePrincipaleEtablissement", "caractereEmployeurEtablissement"):
        assert (m[col] == m[f"{col}_h"]).all(), col
    counts = history.groupby("siret").size()
    assert (stock.set_index("siret")["nombrePeriodesEtablissement"].astype(int) == counts.reindex(stock["siret"]).to_numpy()).all()
    first = history.groupby("siret")["dateDebut"].min()
    assert (first.reindex(stock["siret"]).to_numpy() == stock["dateCreationEtablissement"].to_numpy()).all()
    # newest period first within a siret; closure = dateDebut of the final F period
    prev_siret = history["siret"].shift()
    same = history["siret"] == prev_siret
    assert (history.loc[same, "dateDebut"] < history["dateDebut"].shift()[same]).all()
    closed = current[current["etatAdministratifEtablissement"] == "F"]
    assert (closed["changementEtatAdministratifEtablissement"] == "true").all()
    flags = [c for c in history.columns if c.startswith("changement")]
    assert set(np.unique(history[flags].to_numpy())) == {"true", "false"}
    assert (history["changementCaractereEmployeurEtablissement"] == "true").any()


def test_urssaf_layout(sample, urssaf):
    first = sample["urssaf"].read_text(encoding="utf-8").split("\n", 1)[0]
    assert first.startswith("region;code_region;departement;code_departement;zone_d_emploi;")
    years = list(range(2006, 2026))
    n_cols = [f"nombre_d_etablissements_{y}" for y in years]
    e_cols = [f"effectifs_salaries_{y}" for y in years]
    assert list(urssaf.columns[-40:]) == n_cols + e_cols
    assert list(urssaf.columns[:19])[-2:] == ["ape", "code_ape"]
    assert urssaf["code_ape"].str.fullmatch(r"\d{4}[A-Z]").all()
    assert not urssaf["code_ape"].str.startswith("84").any()
    assert (urssaf["ape"].str.split(" ", n=1).str[0] == urssaf["code_ape"]).all()
    assert (urssaf["code_secteur_na88"] == urssaf["code_ape"].str[:2]).all()
    values = urssaf[n_cols + e_cols]
    assert values.apply(lambda s: s.str.fullmatch(r"\d+")).all().all()  # non-negative ints, no decimals
    ints = values.astype(int)
    assert (ints[n_cols].sum(axis=1) > 0).all()
    assert set(urssaf["grand_secteur_d_activite"]) <= {
        "GS1 Industrie", "GS2 Construction", "GS3 Commerce", "GS4 Hôtellerie-restauration", "GS5 Autres services"}
    ind = urssaf["code_ape"].str[:2].between("05", "39")
    assert (urssaf.loc[ind, "grand_secteur_d_activite"] == "GS1 Industrie").all()
    assert set(urssaf["code_departement"]) <= set(DEPS)


def test_urssaf_consistent_with_sirene(stock, history, urssaf):
    """URSSAF 2025 = SIRENE establishments that were employers at 31/12/2025, by commune x APE."""
    h = history
    at_2025 = (h["dateDebut"] <= "2025-12-31") & ((h["dateFin"] == "") | (h["dateFin"] >= "2025-12-31"))
    emp = h[at_2025 & (h["etatAdministratifEtablissement"] == "A") & (h["caractereEmployeurEtablissement"] == "O")]
    emp = emp.merge(stock[["siret", "codeCommuneEtablissement", "trancheEffectifsEtablissement"]], on="siret")
    emp = emp[(emp["codeCommuneEtablissement"] != "") & (emp["trancheEffectifsEtablissement"] != "00")
              & ~emp["activitePrincipaleEtablissement"].str.startswith("84")]
    key = emp["codeCommuneEtablissement"] + "|" + emp["activitePrincipaleEtablissement"].str.replace(".", "", regex=False)
    expected = key.value_counts().sort_index()
    u = urssaf[urssaf["nombre_d_etablissements_2025"] != "0"]
    got = pd.Series(u["nombre_d_etablissements_2025"].astype(int).to_numpy(), index=u["code_commune"] + "|" + u["code_ape"])
    got = got.sort_index()
    assert got.index.equals(expected.index) and (got.to_numpy() == expected.to_numpy()).all()
    # headcounts: current employers' size bands bound the 2025 total (loosely: 2026 entries/exits)
    bands = {"00": (0, 0), "01": (1, 2), "02": (3, 5), "03": (6, 9), "11": (10, 19), "12": (20, 49), "21": (50, 99),
             "22": (100, 199), "31": (200, 249), "32": (250, 499), "41": (500, 999), "42": (1000, 1999),
             "51": (2000, 4999)}
    cur = stock[(stock["etatAdministratifEtablissement"] == "A") & (stock["caractereEmployeurEtablissement"] == "O")
                & (stock["codeCommuneEtablissement"] != "") & ~stock["activitePrincipaleEtablissement"].str.startswith("84")]
    lo = cur["trancheEffectifsEtablissement"].map(lambda t: bands[t][0]).sum()
    hi = cur["trancheEffectifsEtablissement"].map(lambda t: bands[t][1]).sum()
    total_2025 = urssaf["effectifs_salaries_2025"].astype(int).sum()
    assert 0.9 * lo <= total_2025 <= 1.15 * hi


def test_urssaf_declining_epci_lose_industrial_jobs(urssaf):
    ind = urssaf["grand_secteur_d_activite"] == "GS1 Industrie"
    cols = ["effectifs_salaries_2020", "effectifs_salaries_2025"]
    by_epci = urssaf.loc[ind, cols].astype(int).groupby(urssaf.loc[ind, "code_intercommunalite"]).sum()
    ratio = by_epci["effectifs_salaries_2025"] / by_epci["effectifs_salaries_2020"].clip(lower=1)
    assert (ratio < 0.86).sum() >= 3  # a few clearly declining EPCI
    assert (ratio > 0.95).sum() >= 20  # most are not


def test_chomage_xlsx(sample, geography):
    wb = load_workbook(sample["chomage_ze"], read_only=True)
    assert wb.sheetnames == ["Documentation", "txcho_ze", "txcho_parties reg"]
    doc = [r[0] for r in wb["Documentation"].iter_rows(values_only=True) if r and r[0]]
    assert any("SYNTHETIC — données générées, ne pas utiliser comme chiffres réels" in line for line in doc)
    rows = list(wb["txcho_ze"].iter_rows(values_only=True))
    header = list(rows[5])
    assert header[:4] == ["ZE2020", "LIBZE2020", "REG", "LIBREG"]
    assert header[4] == "2003-T1" and header[-1] == "2026-T2" and len(header) == 4 + 94
    assert rows[4][0] == "Code de la zone d'emploi 2020"
    data = [r for r in rows[6:] if r[0]]
    codes = [r[0] for r in data]
    assert not any(c.startswith(("03", "06")) for c in codes)
    expected = {c for c in geography.ze["ze2020"].astype(str) if not c.startswith(("03", "06"))}
    assert set(codes) == expected and len(codes) == len(expected)
    inter = [r for r in data if r[0].startswith("00")]
    assert inter and all(r[2] == "00" and r[3] == "INTERRÉGIONAL " for r in inter)
    values = np.array([[np.nan if v is None else v for v in r[4:]] for r in data], dtype=float)
    assert np.nanmin(values) > 2 and np.nanmax(values) < 25
    assert 7 <= np.nanmean(values[:, -1]) <= 10
    dom = np.array([r[0][:2] in ("01", "02", "04") for r in data])
    t2014 = header.index("2014-T1") - 4
    assert np.isnan(values[dom, :t2014]).all() and not np.isnan(values[dom, t2014:]).any()
    assert not np.isnan(values[~dom]).any()
    parts = list(wb["txcho_parties reg"].iter_rows(values_only=True))
    assert list(parts[5][:4]) == ["ZER2020", "LIBZER2020", "REG", "LIBREG"]
    assert all(re.fullmatch(r"\d{4}", r[0]) for r in parts[6:] if r[0])


def test_census(sample):
    df = pd.read_csv(sample["census"], sep=";", dtype={"CODGEO": str})
    assert sample["census"].read_text(encoding="utf-8").startswith(
        "CODGEO;P21_POP;P15_POP;P21_POP1564;P21_POP2554;P21_ACT1564;P21_ACTOCC1564;P21_CHOM1564;"
        "P21_ACT2554;P21_ACTOCC2554;P21_EMPLT;P15_EMPLT\n")
    assert df["CODGEO"].is_unique and df["CODGEO"].str.len().eq(5).all()
    assert np.allclose(df["P21_CHOM1564"], df["P21_ACT1564"] - df["P21_ACTOCC1564"], rtol=0, atol=1e-6)
    assert ((df["P21_POP2554"] < df["P21_POP1564"]) & (df["P21_POP1564"] < df["P21_POP"])).all()
    assert (df["P21_ACTOCC1564"] <= df["P21_ACT1564"]).all() and (df["P21_ACTOCC2554"] <= df["P21_ACT2554"]).all()


def test_territoires_industrie(sample, geography):
    com = pd.read_csv(sample["ti_2023"], dtype=str)
    assert list(com.columns) == ["insee_com", "lib_com", "id_ti", "lib_ti"]
    assert com["lib_ti"].str.split(" ; ").explode().str.contains("SYNTHETIC").all()
    multi = com[com["id_ti"].str.contains(" ; ", regex=False)]
    assert len(multi) >= 1 and multi["lib_ti"].str.contains(" ; ", regex=False).all()
    assert com["id_ti"].str.split(" ; ").explode().str.fullmatch(r"ti-\d{4}").all()
    assert 6 <= com["id_ti"].str.split(" ; ").explode().nunique() <= 10
    grpt = pd.read_csv(sample["ti_2023_grpt"], dtype=str)
    assert list(grpt.columns) == ["id_ti", "siren_groupement", "lib_groupement", "nature_juridique"]
    assert set(grpt["nature_juridique"]) <= {"CC", "CA", "CU", "METRO", "MET69"}
    assert grpt.groupby("id_ti").size().between(1, 4).all()
    # whole EPCI: the communes of each TI are exactly those of its groupements
    comm = geography.communes.astype({"codgeo": str, "epci": str})
    ti = com.assign(id_ti=com["id_ti"].str.split(" ; ")).explode("id_ti")
    for tid, g in grpt.groupby("id_ti"):
        expected = set(comm.loc[comm["epci"].isin(g["siren_groupement"]), "codgeo"])
        got = set(ti.loc[ti["id_ti"] == tid, "insee_com"])
        extra = got - expected
        assert expected <= got and len(extra) <= 1, tid


def test_manifest(sample):
    m = json.loads(sample["manifest"].read_text(encoding="utf-8"))
    assert m["synthetic"] is True and "SYNTHETIC" in m["warning"]
    assert m["as_of"] == {"sirene_stock": "2026-11-01", "urssaf": "2025-12-31", "chomage_ze": "2026-Q2", "census": "2021"}
    assert sorted(m["departements"]) == sorted(DEPS)
    assert set(m["files"]) == KEYS - {"manifest"}
    root = sample["manifest"].parent
    for key, info in m["files"].items():
        data = (root / info["path"]).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["bytes"] == len(data), key
        assert info["rows"] > 0


def test_deterministic_and_atomic(tmp_path, geography):
    a = generate_sample(tmp_path / "a", geography, departements=DEPS, seed=7, scale=0.05)
    b = generate_sample(tmp_path / "b", geography, departements=DEPS, seed=7, scale=0.05)
    for key in KEYS:
        assert hashlib.sha256(a[key].read_bytes()).hexdigest() == hashlib.sha256(b[key].read_bytes()).hexdigest(), key
    c = generate_sample(tmp_path / "c", geography, departements=DEPS, seed=8, scale=0.05)
    assert a["sirene_stock"].read_bytes() != c["sirene_stock"].read_bytes()
    with zipfile.ZipFile(a["sirene_stock"]) as zf:
        assert all(i.date_time == (2026, 11, 1, 0, 0, 0) for i in zf.infolist())
    # rewriting in place leaves no temporary file and the same bytes
    before = a["urssaf"].read_bytes()
    generate_sample(tmp_path / "a", geography, departements=DEPS, seed=7, scale=0.05)
    assert a["urssaf"].read_bytes() == before
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_csv_quoting_round_trip(sample):
    with zipfile.ZipFile(sample["sirene_stock"]) as zf:
        text = zf.read("StockEtablissement_utf8.csv").decode("utf-8")
    assert "\r" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert {len(r) for r in rows} == {54}


def test_unknown_departement_rejected(tmp_path, geography):
    with pytest.raises(ValueError, match="99"):
        generate_sample(tmp_path, geography, departements=("99",), scale=0.05)
