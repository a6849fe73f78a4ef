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


_HOW_TO_ENABLE = {
    "chromium": "install Debian's chromium (apt-get install -y chromium; .ci/run does it)",
    "PostgreSQL": "start PostgreSQL on 127.0.0.1:5432 with trust auth (or set TI_TEST_PG_ADMIN_URL)",
    "Redis": "start Redis on 127.0.0.1:6379",
}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """At the end of ``make test``: which groups of tests were skipped, why, and how to enable them."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        terminalreporter.write_line("all test groups ran (none skipped)", green=True)
        return
    groups: dict[str, list[str]] = {}
    for rep in skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        key = next((k for k in _HOW_TO_ENABLE if k.lower() in reason.lower()), reason.removeprefix("Skipped: "))
        groups.setdefault(key, []).append(rep.nodeid.split("::")[0])
    terminalreporter.section("skipped test groups", sep="-", yellow=True)
    for key, files in sorted(groups.items()):
        how = _HOW_TO_ENABLE.get(key)
        terminalreporter.write_line(f"{len(files)} test(s) need {key}: {', '.join(sorted(set(files)))}"
                                    + (f" -> to run them: {how}" if how else ""))
