"""A local replay of the official endpoints (pytest-httpserver on 127.0.0.1), serving small
responses in the real formats: data.gouv dataset JSON, SIRENE zip / Parquet, API Sirene JSON
pages with cursors, open.urssaf.fr CSV export, INSEE xlsx with the header on row 6 (inside
zips like the real files), BDM SDMX-ML StructureSpecificData, Melodi JSON pages, the IGN
ADMIN EXPRESS COG CARTO 7z (shapefiles) at its real path.

The mini universe: 6 communes of COG 2023 (01001, 21054, 21231, 25056, 2A004, 75056), an old
code 21999 (merged into 21231), a split code 25999 (-> 25056 and 21054), Paris arrondissements.
Expected values in the tests are worked out by hand from the rows below.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook
from territoires_industrie.schemas import SIRENE_STOCK_ALL_COLUMNS
from werkzeug import Response

from . import melodi_fake

# --- the mini geography (COG 2023) ---------------------------------------------------------------
COMMUNES = [
    # codgeo, libgeo, epci, libepci, nature, ze, libze, dep, reg
    ("01001", "L'Abergement-Clémenciat", "200069193", "CC de la Dombes", "CC", "8405", "Bourg-en-Bresse", "01", "84"),
    ("21054", "Dijon", "242100410", "Dijon Métropole", "ME", "2702", "Dijon", "21", "27"),
    ("21231", "Fontaine-lès-Dijon", "242100410", "Dijon Métropole", "ME", "2702", "Dijon", "21", "27"),
    ("25056", "Besançon", "242500361", "Grand Besançon Métropole", "CU", "2703", "Besançon", "25", "27"),
    ("2A004", "Ajaccio", "242010056", "CA du Pays Ajaccien", "CA", "9401", "Ajaccio", "2A", "94"),
    ("75056", "Paris", "200054781", "Métropole du Grand Paris", "ME", "1109", "Paris", "75", "11"),
]
PASSAGE = [(c[0], c[0]) for c in COMMUNES] + [("21999", "21231"), ("25999", "25056"), ("25999", "21054"),
                                              ("97123", "97123")]


def insee_sheet(ws, title: str, human: list[str], machine: list[str], rows: list[tuple]) -> None:
    """INSEE layout: title rows, human header on row 5, machine header on row 6, data from row 7."""
    ws.append([title])
    ws.append(["Géographie au 01/01/2023"])
    ws.append([])
    ws.append(["Source : Insee"])
    ws.append(human)
    ws.append(machine)
    for r in rows:
        ws.append(list(r))


def xlsx_bytes(sheets: dict[str, tuple[list[str], list[tuple]]]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for name, (machine, rows) in sheets.items():
        insee_sheet(wb.create_sheet(name), name, [m.title() for m in machine], machine, rows)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """Deterministic zip (fixed member timestamps): same members -> same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 1, 6, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def epci_zip() -> bytes:
    epcis = {}
    for c in COMMUNES:
        epcis.setdefault(c[2], [c[3], c[4], 0])[2] += 1
    x = xlsx_bytes({
        "EPCI": (["EPCI", "LIBEPCI", "NATURE_EPCI", "NB_COM"], [(k, v[0], v[1], v[2]) for k, v in epcis.items()]),
        "Composition_communale": (["CODGEO", "LIBGEO", "EPCI", "LIBEPCI", "DEP", "REG"],
                                  [(c[0], c[1], c[2], c[3], c[7], c[8]) for c in COMMUNES]),
    })
    return zip_bytes({"Intercommunalite-Metropole_au_01-01-2023.xlsx": x})


def ze_zip() -> bytes:
    zes = {}
    for c in COMMUNES:
        zes.setdefault(c[5], [c[6], 0])[1] += 1
    x = xlsx_bytes({
        "ZE2020": (["ZE2020", "LIBZE2020", "NB_COM"], [(k, v[0], v[1]) for k, v in zes.items()]),
        "Composition_communale": (["CODGEO", "LIBGEO", "ZE2020", "LIBZE2020", "ZE2020_PARTIE_REG", "DEP", "REG"],
                                  [(c[0], c[1], c[5], c[6], "", c[7], c[8]) for c in COMMUNES]),
    })
    return zip_bytes({"ZE2020_au_01-01-2023.xlsx": x})


def appartenance_zip() -> bytes:
    x = xlsx_bytes({
        "COM": (["CODGEO", "LIBGEO", "DEP", "REG", "EPCI", "NATURE_EPCI", "ZE2020", "UU2020", "AAV2020"],
                [(c[0], c[1], c[7], c[8], c[2], c[4], c[5], "", "") for c in COMMUNES]),
        "ARM": (["CODGEO", "LIBGEO", "COM", "LIBCOM", "DEP", "REG"],
                [("75101", "Paris 1er", "75056", "Paris", "75", "11"), ("75102", "Paris 2e", "75056", "Paris", "75", "11")]),
    })
    return zip_bytes({"table-appartenance-geo-communes-23.xlsx": x})


def passage_zip(rows=PASSAGE) -> bytes:
    x = xlsx_bytes({"Table de passage": (["CODGEO_INI", "CODGEO_2023", "LIBGEO_2023"], [(a, b, "") for a, b in rows])})
    return zip_bytes({"table_passage_geo2003_geo2023.xlsx": x, "LISEZ-MOI.txt": b"notice"})


def cog_csv() -> bytes:
    cols = "TYPECOM,COM,REG,DEP,CTCD,ARR,TNCC,NCC,NCCENR,LIBELLE,CAN,COMPARENT".split(",")
    lines = [",".join(cols)]
    for c in COMMUNES:
        lines.append(f"COM,{c[0]},{c[8]},{c[7]},,,0,X,X,\"{c[1]}\",,")
    lines.append("ARM,75101,11,75,,,0,X,X,Paris 1er,,75056")
    lines.append("COMD,21999,27,21,,,0,X,X,Ancienne,,21231")
    return ("\n".join(lines) + "\n").encode("utf-8")


TI_COM = ('insee_com,lib_com,id_ti,lib_ti\n'
          '21054,Dijon,ti-2701,TI Dijon\n'
          '21999,Ancienne commune,ti-2701,TI Dijon\n'
          '1001,L\'Abergement-Clémenciat,ti-8401,TI Dombes\n'
          '25056,Besançon,ti-2701 ; ti-2702,TI Dijon ; TI Doubs\n'
          '25999,Commune scindée,ti-2702,TI Doubs\n').encode("utf-8")
TI_GRPT = ('id_ti,siren_groupement,lib_groupement,nature_juridique\n'
           'ti-2701,242100410,Dijon Métropole,METRO\n'
           'ti-2702,242500361,Grand Besançon Métropole,CU\n'
           'ti-8401,200069193,CC de la Dombes,CC\n'
           'ti-2702,999999999,CC disparue,CC\n').encode("utf-8")


# --- SIRENE ------------------------------------------------------------------------------------
def luhn_siret(prefix13: str) -> str:
    for d in "0123456789":
        code = prefix13 + d
        total = 0
        for i, ch in enumerate(reversed(code)):
            n = int(ch)
            if i % 2 == 1:
                n = n * 2 - 9 if n * 2 > 9 else n * 2
            total += n
        if total % 10 == 0:
            return code
    raise AssertionError


def stock_row(i: int, **kw) -> dict:
    siret = luhn_siret(f"{100000000 + i:09d}0001")
    row = {c: "" for c in SIRENE_STOCK_ALL_COLUMNS}
    row.update(siren=siret[:9], nic=siret[9:], siret=siret, statutDiffusionEtablissement="O",
               dateCreationEtablissement="2015-03-01", trancheEffectifsEtablissement="NN",
               dateDernierTraitementEtablissement="2026-10-01T10:00:00", etablissementSiege="true",
               nombrePeriodesEtablissement="1", dateDebut="2015-03-01", etatAdministratifEtablissement="A",
               activitePrincipaleEtablissement="25.62B", nomenclatureActivitePrincipaleEtablissement="NAFRev2",
               caractereEmployeurEtablissement="O")
    row.update(kw)
    return row


STOCK_ROWS = [
    stock_row(1, codeCommuneEtablissement="21054", trancheEffectifsEtablissement="11"),
    stock_row(2, codeCommuneEtablissement="21054", activitePrincipaleEtablissement="10.71C",
              caractereEmployeurEtablissement="N"),
    stock_row(3, codeCommuneEtablissement="21999"),                       # old code -> 21231
    stock_row(4, codeCommuneEtablissement="25999"),                       # split: reported, not mapped
    stock_row(5, codeCommuneEtablissement="75101"),                       # arrondissement -> 75056
    stock_row(6, codeCommuneEtablissement="", codePaysEtrangerEtablissement="99132"),  # abroad
    stock_row(7, codeCommuneEtablissement="2A004", etatAdministratifEtablissement="F", dateDebut="2024-05-01",
              dateDernierTraitementEtablissement="2026-10-30T09:00:00"),
    stock_row(8, codeCommuneEtablissement="25056", activitePrincipaleEtablissement="47.11B"),
]
STOCK_AS_OF = "2026-10-30"


def stock_csv(rows=STOCK_ROWS, columns=SIRENE_STOCK_ALL_COLUMNS) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode("utf-8")


def stock_zip(rows=STOCK_ROWS, columns=SIRENE_STOCK_ALL_COLUMNS) -> bytes:
    return zip_bytes({"StockEtablissement_utf8.csv": stock_csv(rows, columns)})


def stock_parquet(rows=STOCK_ROWS, extra_column: str | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {c: [r[c] for r in rows] for c in SIRENE_STOCK_ALL_COLUMNS}
    if extra_column:
        cols[extra_column] = ["x"] * len(rows)
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()


HISTORY_HEADER = ("siren,nic,siret,dateFin,dateDebut,etatAdministratifEtablissement,changementEtatAdministratifEtablissement,"
                  "enseigne1Etablissement,enseigne2Etablissement,enseigne3Etablissement,changementEnseigneEtablissement,"
                  "denominationUsuelleEtablissement,changementDenominationUsuelleEtablissement,"
                  "activitePrincipaleEtablissement,nomenclatureActivitePrincipaleEtablissement,"
                  "changementActivitePrincipaleEtablissement,caractereEmployeurEtablissement,"
                  "changementCaractereEmployeurEtablissement")


def history_zip() -> bytes:
    s = STOCK_ROWS[6]["siret"]
    body = (HISTORY_HEADER + "\n"
            f"{s[:9]},{s[9:]},{s},,2024-05-01,F,true,,,,false,,false,25.62B,NAFRev2,false,O,false\n"
            f"{s[:9]},{s[9:]},{s},2024-04-30,2015-03-01,A,false,,,,false,,false,25.62B,NAFRev2,false,O,false\n")
    return zip_bytes({"StockEtablissementHistorique_utf8.csv": body.encode()})


def api_etablissement(siret: str, commune: str, ddt: str, etat: str = "A", ape: str = "25.62B", **top) -> dict:
    """One establishment as API Sirene 3.11 returns it (nested address, periods newest first)."""
    return {
        "siren": siret[:9], "nic": siret[9:], "siret": siret, "statutDiffusionEtablissement": "O",
        "dateCreationEtablissement": "2015-03-01", "trancheEffectifsEtablissement": "11",
        "anneeEffectifsEtablissement": "2024", "activitePrincipaleRegistreMetiersEtablissement": None,
        "dateDernierTraitementEtablissement": ddt, "etablissementSiege": True, "nombrePeriodesEtablissement": 2,
        "uniteLegale": {"denominationUniteLegale": "ACME", "activitePrincipaleUniteLegale": ape},
        "adresseEtablissement": {"numeroVoieEtablissement": "3", "typeVoieEtablissement": "RUE",
                                 "libelleVoieEtablissement": "DES FORGES", "codePostalEtablissement": "21000",
                                 "libelleCommuneEtablissement": "DIJON", "codeCommuneEtablissement": commune,
                                 "codePaysEtrangerEtablissement": None, "nouveauChampAdresse": "x"},
        "adresse2Etablissement": {"codeCommune2Etablissement": None},
        "periodesEtablissement": [
            {"dateFin": None, "dateDebut": "2026-10-31", "etatAdministratifEtablissement": etat,
             "changementEtatAdministratifEtablissement": etat == "F", "activitePrincipaleEtablissement": ape,
             "nomenclatureActivitePrincipaleEtablissement": "NAFRev2", "caractereEmployeurEtablissement": "O",
             "changementCaractereEmployeurEtablissement": False},
            {"dateFin": "2026-10-30", "dateDebut": "2015-03-01", "etatAdministratifEtablissement": "A",
             "activitePrincipaleEtablissement": "10.71C", "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
             "caractereEmployeurEtablissement": "N"},
        ],
        **top,
    }


class FakeSireneApi:
    """API Sirene /siret with cursor paging: ``curseur=*`` -> page 1 (curseurSuivant C1) ... the last
    page repeats its cursor (curseur == curseurSuivant). Records every request's parameters."""

    def __init__(self, etablissements: list[dict], page_size: int, key: str, fail: dict | None = None):
        self.etabs, self.size, self.key = etablissements, page_size, key
        self.calls: list[dict] = []
        self.fail = dict(fail or {})  # cursor -> list of statuses to return first

    def __call__(self, request):
        args = request.args.to_dict()
        self.calls.append(args)
        if request.headers.get("X-INSEE-Api-Key-Integration") != self.key:
            return Response(json.dumps({"fault": {"code": 900901, "message": "Invalid Credentials"}}), 401,
                            content_type="application/json")
        cursor = args.get("curseur", "*")
        pending = self.fail.get(cursor)
        if pending:
            status = pending.pop(0)
            return Response("busy", status, headers={"Retry-After": "1"} if status == 429 else {})
        q = args.get("q", "")
        m = re.search(r"dateDernierTraitementEtablissement:\[([0-9T:-]+) TO \*\]", q)
        rows = [e for e in self.etabs if not m or e["dateDernierTraitementEtablissement"] >= m.group(1)]
        if not rows:
            return Response(json.dumps({"header": {"statut": 404, "message": "Aucun élément trouvé pour q=" + q}}),
                            404, content_type="application/json")
        n = int(args["nombre"])
        pages = [rows[i:i + n] for i in range(0, len(rows), n)]
        k = 0 if cursor == "*" else int(cursor[1:])
        chunk = pages[k] if k < len(pages) else []
        cur, nxt = cursor, (f"C{k + 1}" if k + 1 < len(pages) else cursor)  # last page: curseur == curseurSuivant
        body = {"header": {"statut": 200, "message": "OK", "total": len(rows), "debut": 0, "nombre": len(chunk),
                           "curseur": cur, "curseurSuivant": nxt}, "etablissements": chunk}
        return Response(json.dumps(body), 200, content_type="application/json")


# --- URSSAF -----------------------------------------------------------------------------------------
URSSAF_CSV = ("code_commune;code_ape;grand_secteur_d_activite;ape;nouvelle_colonne;"
              "nombre_d_etablissements_2024;nombre_d_etablissements_2025;effectifs_salaries_2024;effectifs_salaries_2025\n"
              "21054;2562B;GS1 Industrie;Mécanique industrielle;x;3;3;40;42\n"
              "21999;2562B;GS1 Industrie;Mécanique industrielle;x;1;1;5;6\n"
              "1001;1071C;GS1 Industrie;Boulangerie;x;2;2;10;12\n"
              "25056;4711B;GS3 Commerce;Commerce;x;5;5;20;25\n").encode("utf-8")
URSSAF_META = {"dataset_id": "etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last",
               "metas": {"default": {"title": "Nombre d'établissements employeurs et effectifs salariés",
                                     "modified": "2026-05-29T09:12:00+00:00", "records_count": 4}}}


# --- unemployment ------------------------------------------------------------------------------
QUARTERS = ["2025-T3", "2025-T4", "2026-T1", "2026-T2"]
ZE_RATES = {"8405": [5.1, 5.2, 5.3, 5.4], "2702": [6.0, 6.1, 6.2, 6.3], "2703": [6.5, 6.6, 6.7, 6.8],
            "9401": [7.0, 7.1, 7.2, 7.3], "1109": [7.5, 7.6, 7.7, 7.8]}


def chomage_xlsx(quarters=QUARTERS, rates=ZE_RATES) -> bytes:
    wb = Workbook()
    doc = wb.active
    doc.title = "Documentation"
    doc.append(["Taux de chômage localisés"])
    ws = wb.create_sheet("txcho_ze")
    insee_sheet(ws, "Taux de chômage localisés par zone d'emploi", ["Code", "Libellé", "Région", "Libellé région",
                                                                    *quarters],
                ["ZE2020", "LIBZE2020", "REG", "LIBREG", *quarters],
                [(ze, f"ZE {ze}", "27", "Bourgogne", *vals) for ze, vals in rates.items()])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


CHOMAGE_PAGE = """<!doctype html><html><body>
<a href="/fr/statistiques/fichier/1893230/chomage-zone-t1-2003-t1-2026.xlsx">T1 2026</a>
<a href="/fr/statistiques/fichier/1893230/chomage-zone-t1-2003-t2-2026.xlsx">Taux de chômage localisés T2 2026</a>
<a href="https://www.insee.fr/fr/statistiques/fichier/1893230/chomage-zone-t1-2003-t4-2025.xlsx">T4 2025</a>
</body></html>"""


def sdmx(series: list[tuple[str, str, list[tuple[str, str, str]]]]) -> bytes:
    """SDMX-ML 2.1 StructureSpecificData like bdm.insee.fr: series (idbank, ref_area, [(period, value, status)])."""
    out = ["<?xml version='1.0' encoding='UTF-8'?>",
           '<message:StructureSpecificData xmlns:ss="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific" '
           'xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" '
           'xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xmlns:ns1="urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=FR1:SERIES_BDM(1.0):ObsLevelDim:TIME_PERIOD">',
           "<message:Header><message:ID>SERIES_BDM_TEST</message:ID><message:Test>false</message:Test>"
           "<message:Prepared>2026-09-14T14:26:35</message:Prepared></message:Header>",
           '<message:DataSet ss:dataScope="DataStructure" xsi:type="ns1:DataSetType" ss:structureRef="FR1_SERIES_BDM_1_0">']
    for idbank, area, obs in series:
        out.append(f'<Series IDBANK="{idbank}" FREQ="T" TITLE_FR="Taux de chômage localisé - {area}" '
                   f'LAST_UPDATE="2026-06-19" UNIT_MEASURE="POURCENT" UNIT_MULT="0" REF_AREA="{area}" DECIMALS="1">')
        for period, value, status in obs:
            qual = "SD" if status == "SD" else "DEF"
            out.append(f'<Obs TIME_PERIOD="{period}" OBS_VALUE="{value}" OBS_STATUS="{status}" OBS_QUAL="{qual}" OBS_TYPE="A"/>')
        out.append("</Series>")
    out.append("</message:DataSet></message:StructureSpecificData>")
    return "".join(out).encode("utf-8")


def bdm_handler(idbanks_csv: Path, calls: list):
    import pandas as pd

    ref = pd.read_csv(idbanks_csv, dtype=str).set_index("idbank")["ref_area"].to_dict()

    def handle(request):
        ids = request.path.rsplit("/", 1)[-1].split("+")
        calls.append(ids)
        series = []
        for i in ids:
            base = 5.0 + (int(i) % 7) / 10
            series.append((i, ref.get(i, "?"), [("2026-Q1", f"{base + 0.2:.1f}", "SD"), ("2025-Q4", f"{base + 0.1:.1f}", "A"),
                                                 ("2025-Q3", f"{base:.1f}", "A")]))
        return Response(sdmx(series), 200, content_type="application/vnd.sdmx.structurespecificdata+xml;version=2.1")

    return handle


# --- Melodi ------------------------------------------------------------------------------------------
# --- data.gouv -----------------------------------------------------------------------------------
def datagouv_sirene(url_for, *, stock_size: int | None, parquet_size: int | None = None, stock_modified="2026-11-01T06:12:31.000+00:00",
                    with_parquet=True, checksum: tuple[str, str] | None = None) -> dict:
    res = [
        {"id": "r-ul", "title": "Sirene : Fichier StockUniteLegale du 01 Novembre 2026", "format": "zip",
         "url": url_for("/files/StockUniteLegale_utf8.zip"), "filesize": 10, "last_modified": stock_modified},
        {"id": "r-etab", "title": "Sirene : Fichier StockEtablissement du 01 Novembre 2026", "format": "zip",
         "url": url_for("/files/StockEtablissement_utf8.zip"), "filesize": stock_size, "last_modified": stock_modified,
         "checksum": {"type": checksum[0], "value": checksum[1]} if checksum else None},
        {"id": "r-hist", "title": "Sirene : Fichier StockEtablissementHistorique du 01 Novembre 2026", "format": "zip",
         "url": url_for("/files/StockEtablissementHistorique_utf8.zip"), "filesize": None,
         "last_modified": stock_modified},
        {"id": "r-etab-old", "title": "Sirene : Fichier StockEtablissement du 01 Octobre 2026", "format": "zip",
         "url": url_for("/files/old.zip"), "filesize": 1, "last_modified": "2026-10-01T06:00:00+00:00"},
    ]
    if with_parquet:
        res.append({"id": "r-etab-pq", "title": "Sirene : Fichier StockEtablissement du 01 Novembre 2026 (parquet)",
                    "format": "parquet", "url": url_for("/files/stock-stocketablissement-parquet.parquet"),
                    "filesize": parquet_size, "last_modified": stock_modified})
    return {"id": "5b7ffc618b4c4169d30727e0", "slug": "base-sirene", "title": "Base Sirene", "resources": res}


def datagouv_ti(url_for) -> dict:
    def r(name, date):
        return {"id": f"r-{name}", "title": name, "format": "csv", "url": url_for(f"/static/ti/{name}"),
                "filesize": None, "last_modified": f"{date}T09:18:48+00:00"}

    return {"id": "ti", "slug": "programme-territoires-dindustrie", "resources": [
        r("liste-ti-com2023-20230802.csv", "2023-08-02"),    # phase 1 republished in COG 2023: not taken
        r("liste-ti-com2023-20231114.csv", "2023-11-14"),
        r("liste-ti-com2023-20240704.csv", "2024-07-04"),
        r("liste-ti-grpt2023-20240704.csv", "2024-07-04"),
        r("liste-ti-20240704.csv", "2024-07-04"),
    ]}


# --- IGN ADMIN EXPRESS COG CARTO (map geometries) ------------------------------------------------
ADMIN_EXPRESS_EDITION = "2023-05-03"  # the edition of COG 2023
#: south-west corner of each commune's 0.05° square (near the real places; all in metropolitan France)
POSITIONS = {"01001": (4.90, 46.10), "21054": (5.00, 47.30), "21231": (5.00, 47.35), "25056": (6.00, 47.20),
             "2A004": (8.70, 41.90), "75056": (2.30, 48.80)}


def admin_express_7z() -> bytes:
    """The archive in the real layout: one square per commune of the mini universe (Dijon and
    Fontaine-lès-Dijon adjacent), EPCI = union of their communes."""
    from ..unit import admin_express_fixture as fx

    communes = [(c[0], c[1], c[2], c[5], 0, 0) for c in COMMUNES]
    return fx.archive_bytes(ADMIN_EXPRESS_EDITION, communes=communes, epci_names={c[2]: c[3] for c in COMMUNES},
                            positions=POSITIONS, size=0.05)


def admin_express_path(edition: str = ADMIN_EXPRESS_EDITION) -> str:
    """Its real path on the IGN download service, under the replayed ``TI_URL_GEOPF``."""
    from territoires_industrie.sources.admin_express import archive_path

    return "/geopf/" + archive_path(edition)


# --- wiring ---------------------------------------------------------------------------------------
FILES = "/fr/statistiques/fichier"


def serve_universe(httpserver, tmp_key: str = "TEST-KEY-not-a-real-one-4242", sirene_pages=2) -> dict:
    """Register permanent handlers for every source; returns handles for assertions."""
    from territoires_industrie.sources.bdm import IDBANK_FILE

    u = httpserver.url_for
    calls = {"bdm": [], "melodi": []}
    stock = stock_zip()
    httpserver.expect_request("/api/1/datasets/5b7ffc618b4c4169d30727e0/").respond_with_json(
        datagouv_sirene(u, stock_size=len(stock)))
    httpserver.expect_request("/files/StockEtablissement_utf8.zip").respond_with_data(
        stock, content_type="application/zip", headers={"ETag": '"stock-v1"', "Last-Modified": "Sun, 01 Nov 2026 06:12:31 GMT"})
    httpserver.expect_request("/files/StockEtablissementHistorique_utf8.zip").respond_with_data(
        history_zip(), content_type="application/zip")
    pq = stock_parquet()
    httpserver.expect_request("/files/stock-stocketablissement-parquet.parquet").respond_with_data(
        pq, content_type="application/octet-stream")
    httpserver.expect_request("/api/1/datasets/programme-territoires-dindustrie/").respond_with_json(datagouv_ti(u))
    httpserver.expect_request("/static/ti/liste-ti-com2023-20240704.csv").respond_with_data(TI_COM, content_type="text/csv")
    httpserver.expect_request("/static/ti/liste-ti-grpt2023-20240704.csv").respond_with_data(TI_GRPT, content_type="text/csv")
    httpserver.expect_request(f"{FILES}/2510634/Intercommunalite_Metropole_au_01-01-2023.zip").respond_with_data(
        epci_zip(), content_type="application/zip")
    httpserver.expect_request(f"{FILES}/4652957/ZE2020_au_01-01-2023.zip").respond_with_data(ze_zip(),
                                                                                            content_type="application/zip")
    httpserver.expect_request(f"{FILES}/7671844/table-appartenance-geo-communes-23.zip").respond_with_data(
        appartenance_zip(), content_type="application/zip")
    httpserver.expect_request(f"{FILES}/7671867/table_passage_geo2003_geo2023.zip").respond_with_data(
        passage_zip(), content_type="application/zip")
    httpserver.expect_request(f"{FILES}/6800675/v_commune_2023.csv").respond_with_data(cog_csv(), content_type="text/csv")
    httpserver.expect_request("/ods/catalog/datasets/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last"
                              ).respond_with_json(URSSAF_META)
    httpserver.expect_request("/ods/catalog/datasets/etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last"
                              "/exports/csv").respond_with_data(URSSAF_CSV, content_type="text/csv; charset=utf-8")
    httpserver.expect_request("/fr/statistiques/1893230").respond_with_data(CHOMAGE_PAGE, content_type="text/html")
    httpserver.expect_request(f"{FILES}/1893230/chomage-zone-t1-2003-t2-2026.xlsx").respond_with_data(
        chomage_xlsx(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    httpserver.expect_request(re.compile(r"^/bdm/data/SERIES_BDM/.+")).respond_with_handler(bdm_handler(IDBANK_FILE, calls["bdm"]))
    for ds in ("DS_RP_SERIE_HISTORIQUE", "DS_RP_POPULATION_PRINC", "DS_RP_EMPLOI_LR_PRINC", "DS_RP_EMPLOI_LT_PRINC"):
        httpserver.expect_request(f"/melodi/catalog/{ds}").respond_with_json({"identifier": ds, "modified": "2024-06-27"})
    httpserver.expect_request(re.compile(r"^/melodi/(data|range)/.+")).respond_with_handler(
        melodi_fake.handler(calls["melodi"], history_page_size=1))
    httpserver.expect_request(admin_express_path()).respond_with_data(
        admin_express_7z(), content_type="application/x-7z-compressed",
        headers={"ETag": '"adminexpress-2023-05-03"', "Last-Modified": "Wed, 03 May 2023 10:00:00 GMT"})
    return calls


def live_env(monkeypatch, httpserver, tmp_path: Path, **extra) -> None:
    """Point every base URL at the replay server and make retries instantaneous."""
    u = httpserver.url_for
    env = {
        "TI_DATA_DIR": str(tmp_path / "data"), "TI_SOURCE_MODE": "live",
        "TI_URL_DATAGOUV": u("/api/1"), "TI_URL_INSEE_API": u("/api-sirene/3.11"), "TI_URL_INSEE_FILES": u("/"),
        "TI_URL_BDM": u("/bdm"), "TI_URL_MELODI": u("/melodi"), "TI_URL_URSSAF": u("/ods"), "TI_URL_GEOPF": u("/geopf"),
        "TI_HTTP_BACKOFF_BASE": "0.01", "TI_HTTP_BACKOFF_CAP": "0.05", "TI_HTTP_RETRY_AFTER_CAP": "0.05",
        "TI_HTTP_MAX_RETRIES": "3", "TI_HTTP_READ_TIMEOUT": "2", "TI_HTTP_CONNECT_TIMEOUT": "2",
        "TI_HTTP_RATE_INSEE": "100000/60", "TI_COG_YEAR": "2023",
    }
    env.update(extra)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("TI_SIRENE_FORMAT", raising=False)
    for k in ("TI_URL_ADMIN_EXPRESS", "TI_GEO_URL_GEO_ADMIN_EXPRESS", "TI_ADMIN_EXPRESS_EDITION", "TI_FETCH_GEOMETRY",
              "TI_GEOMETRY_DIR"):
        if k not in extra:
            monkeypatch.delenv(k, raising=False)
