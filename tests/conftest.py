"""Shared fixtures. The real INSEE geography is parsed once per session (about 5 s)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from territoires_industrie.schemas import SIRENE_STOCK_ALL_COLUMNS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def geography():
    from territoires_industrie.geography import build_geography

    return build_geography()


def sirene_row(**overrides) -> dict:
    """One StockEtablissement row with every one of the 54 columns (defaults: an active,
    diffusible, non-employer establishment)."""
    row = {c: "" for c in SIRENE_STOCK_ALL_COLUMNS}
    row.update(
        siren="552100554", nic="00016", siret="55210055400016", statutDiffusionEtablissement="O",
        dateCreationEtablissement="2010-01-01", trancheEffectifsEtablissement="NN",
        dateDernierTraitementEtablissement="2026-10-15T10:00:00", etablissementSiege="true",
        nombrePeriodesEtablissement="1", codeCommuneEtablissement="25056", dateDebut="2010-01-01",
        etatAdministratifEtablissement="A", activitePrincipaleEtablissement="25.62B",
        nomenclatureActivitePrincipaleEtablissement="NAFRev2", caractereEmployeurEtablissement="N",
    )
    row.update(overrides)
    return row


def write_sirene_zip(path: Path, rows: list[dict], columns=None, member="StockEtablissement_utf8.csv") -> Path:
    columns = list(columns or SIRENE_STOCK_ALL_COLUMNS)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, buf.getvalue())
    return path
