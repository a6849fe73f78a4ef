"""One schema registry per source: required / optional columns and their types.

Parsing (column selection by *name*), validation suites and warehouse table definitions
all derive from these declarations, so a new upstream column is a one-line change here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str = "str"  # str | int | float | date | datetime | bool
    required: bool = True
    pattern: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class SourceSchema:
    source: str
    columns: tuple[Column, ...]
    #: columns known to exist upstream that we deliberately do not read
    ignored: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def optional(self) -> list[str]:
        return [c.name for c in self.columns if not c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def check_header(self, header: list[str], file: str | Path) -> list[str]:
        """Return the columns to read. Missing required -> error naming the file and
        column(s); unknown columns are logged once and ignored."""
        present = set(header)
        missing = [c for c in self.required if c not in present]
        if missing:
            raise MissingColumnError(
                f"{Path(str(file)).name}: required column(s) {missing} missing from the {self.source} file "
                f"(found {len(header)} columns: {header[:8]}{'...' if len(header) > 8 else ''})"
            )
        known = set(self.names) | set(self.ignored)
        unknown = [c for c in header if c not in known]
        if unknown:
            log.warning("%s: %d unknown column(s) ignored in %s: %s", self.source, len(unknown), Path(str(file)).name, unknown)
        return [c for c in self.names if c in present]


class MissingColumnError(DataError, ValueError):
    pass


# --- SIRENE StockEtablissement (54 columns since 16/12/2025) -----------------------------
SIRENE_STOCK_ALL_COLUMNS = (
    "siren nic siret statutDiffusionEtablissement dateCreationEtablissement trancheEffectifsEtablissement "
    "anneeEffectifsEtablissement activitePrincipaleRegistreMetiersEtablissement dateDernierTraitementEtablissement "
    "etablissementSiege nombrePeriodesEtablissement complementAdresseEtablissement numeroVoieEtablissement "
    "indiceRepetitionEtablissement dernierNumeroVoieEtablissement indiceRepetitionDernierNumeroVoieEtablissement "
    "typeVoieEtablissement libelleVoieEtablissement codePostalEtablissement libelleCommuneEtablissement "
    "libelleCommuneEtrangerEtablissement distributionSpecialeEtablissement codeCommuneEtablissement "
    "codeCedexEtablissement libelleCedexEtablissement codePaysEtrangerEtablissement libellePaysEtrangerEtablissement "
    "identifiantAdresseEtablissement coordonneeLambertAbscisseEtablissement coordonneeLambertOrdonneeEtablissement "
    "complementAdresse2Etablissement numeroVoie2Etablissement indiceRepetition2Etablissement typeVoie2Etablissement "
    "libelleVoie2Etablissement codePostal2Etablissement libelleCommune2Etablissement "
    "libelleCommuneEtranger2Etablissement distributionSpeciale2Etablissement codeCommune2Etablissement "
    "codeCedex2Etablissement libelleCedex2Etablissement codePaysEtranger2Etablissement "
    "libellePaysEtranger2Etablissement dateDebut etatAdministratifEtablissement enseigne1Etablissement "
    "enseigne2Etablissement enseigne3Etablissement denominationUsuelleEtablissement activitePrincipaleEtablissement "
    "nomenclatureActivitePrincipaleEtablissement caractereEmployeurEtablissement activitePrincipaleNAF25Etablissement"
).split()

SIRENE_STOCK = SourceSchema(
    source="sirene_stock",
    columns=(
        Column("siret", pattern=r"^\d{14}$", doc="SIRET, 14 digits"),
        Column("codeCommuneEtablissement", doc="commune (or arrondissement) code, empty abroad"),
        Column("codePaysEtrangerEtablissement", required=False),
        Column("etatAdministratifEtablissement", doc="A active / F closed"),
        Column("activitePrincipaleEtablissement", doc="APE, NAF rév. 2 sous-classe with a dot"),
        Column("nomenclatureActivitePrincipaleEtablissement", doc="NAFRev2, NAFRev1, NAF1993, NAP"),
        Column("caractereEmployeurEtablissement", doc="O / N / empty"),
        Column("trancheEffectifsEtablissement", doc="size band (NN, 00..53)"),
        Column("anneeEffectifsEtablissement", required=False),
        Column("dateCreationEtablissement", dtype="date"),
        Column("dateDebut", dtype="date", doc="start of the current period (closure date when F)"),
        Column("dateDernierTraitementEtablissement", dtype="datetime", doc="as-of of the stock = max of this"),
        Column("activitePrincipaleNAF25Etablissement", required=False, doc="NAF 2025 code, added 16/12/2025"),
    ),
    ignored=tuple(SIRENE_STOCK_ALL_COLUMNS),
)

SIRENE_HISTORY = SourceSchema(
    source="sirene_history",
    columns=(
        Column("siret", pattern=r"^\d{14}$"),
        Column("dateFin", dtype="date"),
        Column("dateDebut", dtype="date"),
        Column("etatAdministratifEtablissement"),
        Column("changementEtatAdministratifEtablissement", dtype="bool"),
        Column("activitePrincipaleEtablissement"),
        Column("nomenclatureActivitePrincipaleEtablissement"),
        Column("caractereEmployeurEtablissement"),
        Column("changementCaractereEmployeurEtablissement", dtype="bool", required=False),
    ),
    ignored=(
        "siren nic enseigne1Etablissement enseigne2Etablissement enseigne3Etablissement changementEnseigneEtablissement "
        "denominationUsuelleEtablissement changementDenominationUsuelleEtablissement "
        "changementActivitePrincipaleEtablissement"
    ).split(),
)

URSSAF_ID_COLUMNS = (
    "region code_region departement code_departement zone_d_emploi code_zone_d_emploi intercommunalite "
    "code_intercommunalite commune grand_secteur_d_activite secteur_na17 code_secteur_na17 secteur_na38 "
    "code_secteur_na38 secteur_na88 code_secteur_na88 ape"
).split()

URSSAF = SourceSchema(
    source="urssaf_commune_ape",
    columns=(
        Column("code_commune", doc="commune code (5 chars; zeros may be stripped by exports)"),
        Column("code_ape", doc="APE without dot, e.g. 2562B"),
        Column("grand_secteur_d_activite", required=False),
    ),
    # year columns nombre_d_etablissements_YYYY / effectifs_salaries_YYYY are discovered by regex
    ignored=tuple(URSSAF_ID_COLUMNS),
)
URSSAF_YEAR_RE = r"^(nombre_d_etablissements|effectifs_salaries)_(\d{4})$"

CHOMAGE_ZE = SourceSchema(
    source="chomage_ze",
    columns=(Column("ZE2020"), Column("LIBZE2020"), Column("REG", required=False), Column("LIBREG", required=False)),
)
CHOMAGE_QUARTER_RE = r"^(\d{4})-T([1-4])$"

CENSUS = SourceSchema(
    source="census_rp",
    columns=tuple(
        Column(n, dtype="float" if n != "CODGEO" else "str")
        for n in (
            "CODGEO P21_POP P15_POP P21_POP2554 P21_ACT1564 P21_ACTOCC1564 P21_CHOM1564 "
            "P21_ACT2554 P21_ACTOCC2554 P21_EMPLT P15_EMPLT"
        ).split()
    )
    + (Column("P21_POP1564", dtype="float", required=False),),
)



def census_schema(t1: int, t0: int) -> SourceSchema:
    """The census layout for census year ``t1`` and base year ``t0`` (``CENSUS`` is the 2021/2015 one)."""
    def name(n: str) -> str:
        return n.replace("P21_", f"P{t1 % 100:02d}_").replace("P15_", f"P{t0 % 100:02d}_")

    return SourceSchema(source=CENSUS.source, columns=tuple(
        Column(name(c.name), dtype=c.dtype, required=c.required) for c in CENSUS.columns))


REGISTRY = {s.source: s for s in (SIRENE_STOCK, SIRENE_HISTORY, URSSAF, CHOMAGE_ZE, CENSUS)}


#: Plausible ceilings of counts (France as a whole, rounded up): no commune, EPCI or source row can
#: exceed them; a value above is a unit or parsing error, never a real figure. Used by the parsers
#: and by the hard Great Expectations expectations on every count column.
CEILING_JOBS = 30_000_000            # salaried jobs in France (~26 M, URSSAF)
CEILING_ESTABLISHMENTS = 45_000_000  # rows of the SIRENE establishment stock (~44 M)
CEILING_PERSONS = 70_000_000         # population of France (~68 M, census)
