"""Expectation suites, one per dataset, written as code and reviewed like code.

Each dataset has three functions, registered in :data:`DATASETS`:

- ``prepare(df, refs, context)``: the batch GX validates — the typed, filtered table the
  pipeline uses, plus a few *derived* columns named after what they are
  (``departement_of_codgeo``, ``crosscheck_rel_diff``...) so that completeness and
  cross-checks are ordinary column expectations;
- ``suite(refs)``: the :class:`great_expectations.ExpectationSuite` (GX imported inside);
- ``metrics(df, context)``: per-vintage summary numbers kept in ``metrics.json`` for the
  drift (soft) gate against the previous vintage.

Severity uses GX's own field: ``critical`` = **hard gate** (schema, keys, ranges,
completeness, cross-checks: stops the run before anything is staged or published),
``warning`` = **soft gate** (reported, the run goes on). ``meta`` carries the kind of
check and a sentence a data engineer can read without opening Python.

Expectations on an *optional* column (e.g. ``shrink_weight`` of the indicator table) are
skipped by the runner when the column is absent; required columns are guarded by
``expect_column_to_exist``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .. import codes
from ..schemas import CEILING_ESTABLISHMENTS, CEILING_JOBS, CEILING_PERSONS

log = logging.getLogger(__name__)

HARD, SOFT = "critical", "warning"
COMMUNE_PATTERN = r"^(?:\d{5}|2[AB]\d{3})$"  # = codes.COMMUNE_RE, non-capturing (pandas warns on groups)
NAF_PATTERN = codes.NAF_REV2_RE.pattern  # ^\d{2}\.\d{2}[A-Z]$
EPCI_PATTERN = r"^(?:\d{9}|Z{9})$"
ZE_PATTERN = codes.ZE_RE.pattern
QUARTER_PATTERN = r"^\d{4}-T[1-4]$"
YEAR_OR_EMPTY_PATTERN = r"^(?:\d{4})?$"
NO_EPCI = "ZZZZZZZZZ"

#: INSEE size bands of the SIRENE stock (+ NN and empty = non-employer / unknown).
TRANCHES = ("NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53")
SIRENE_NOMENCLATURES = ("NAFRev2", "NAFRev1", "NAF1993", "NAP", "")
#: ZE absent from the localised-unemployment file: Guyane (03xx) and Mayotte (06xx).
CHOMAGE_ABSENT_ZE_PREFIXES = ("03", "06")

#: Indicators whose value is a proportion in percent (must lie in [0, 100]). Extend when an
#: indicator of that nature is added (non-employment rate of 25-54 year olds...).
PROPORTION_INDICATORS = ("ind_share", "unemployment_rate", "c1_unemployment_rate", "c2_non_employment_25_54")
#: Units of additive counts (must be >= 0, and sum exactly from communes to every level).
COUNT_UNITS = ("établissements", "emplois", "personnes", "habitants")
CROSSCHECK_TOLERANCE = 1e-6  # relative
DEFAULT_LEVELS = ("commune", "epci", "ze", "departement", "region", "ti")
REQUIRED_LEVELS = ("commune", "epci", "ze", "departement", "region")


# --------------------------------------------------------------------------- references
@dataclass
class References:
    """Reference code lists one gate checks against (COG vintage, NAF table, coverage)."""

    cog_vintage: str
    communes: frozenset
    epci: frozenset
    ze: frozenset
    departements: tuple
    regions: tuple
    expected_departements: tuple
    expected_ze: tuple
    naf_sous_classes: frozenset
    naf_divisions: frozenset
    industrial_divisions: tuple
    levels: tuple = DEFAULT_LEVELS
    territories: frozenset | None = None
    geography: object = None
    synthetic: bool = True
    min_communes: int = 30_000
    extra: dict = field(default_factory=dict)

    def reference_sets(self) -> dict[str, frozenset]:
        sets = {
            "communes": self.communes,
            "epci": self.epci,
            "epci_or_none": self.epci | {NO_EPCI},
            "ze": self.ze,
            "departements": frozenset(self.departements),
            "regions": frozenset(self.regions),
            "naf_sous_classes": self.naf_sous_classes,
            "naf_divisions": self.naf_divisions,
        }
        if self.territories is not None:
            sets["territories"] = self.territories
        return sets

    def describe(self) -> dict:
        return {
            "cog_vintage": self.cog_vintage, "communes": len(self.communes), "epci": len(self.epci),
            "ze": len(self.ze), "departements": len(self.departements), "regions": len(self.regions),
            "expected_departements": list(self.expected_departements), "expected_ze": len(self.expected_ze),
            "naf_sous_classes": len(self.naf_sous_classes), "naf_divisions": len(self.naf_divisions),
            "territories": None if self.territories is None else len(self.territories),
            "synthetic": self.synthetic,
        }


def build_references(geo, settings, context: dict | None = None) -> References:
    """Reference lists from the geography of the run, the NAF table and the settings.

    Expected départements: the sample's départements in sample mode, every département of
    the COG vintage in live mode."""
    from ..nomenclature import INDUSTRIAL_DIVISIONS, naf_sous_classes

    context = context or {}
    if geo is None:  # a dataset whose suite checks no code against the COG
        from ..geography import Geography

        empty = pd.DataFrame({k: pd.Series(dtype="str") for k in ("codgeo", "epci", "ze2020", "dep", "reg")})
        geo = Geography("none", empty, pd.DataFrame({"epci": pd.Series(dtype="str")}),
                        pd.DataFrame({"ze2020": pd.Series(dtype="str")}), pd.DataFrame(), pd.DataFrame())
    c = geo.communes
    deps = tuple(sorted(c["dep"].dropna().astype(str).unique()))
    regs = tuple(sorted(c["reg"].dropna().astype(str).unique()))
    ze = frozenset(geo.ze["ze2020"].astype(str)) if len(geo.ze) else frozenset(c["ze2020"].dropna().astype(str))
    epci = frozenset(geo.epci["epci"].astype(str)) - {NO_EPCI}
    if getattr(settings, "is_synthetic", False) and getattr(settings, "sample_departements", None):
        expected = tuple(settings.sample_departements)
    else:
        expected = deps
    expected_ze = tuple(sorted(z for z in ze if not z.startswith(CHOMAGE_ABSENT_ZE_PREFIXES)))
    naf = naf_sous_classes()
    territories = None
    if context.get("territories") is not None:
        t = context["territories"]
        territories = frozenset((t["level"].astype(str) + ":" + t["territory_id"].astype(str)).tolist())
    try:
        from ..indicators.base import LEVELS

        levels = tuple(dict.fromkeys((*DEFAULT_LEVELS, *LEVELS)))
    except Exception:  # pragma: no cover - the indicators package is being reworked
        levels = DEFAULT_LEVELS
    extra = dict(getattr(settings, "extra", None) or {})
    rep = context.get("report") or {}
    if isinstance(rep, dict) and rep.get("years"):
        extra["history_years"] = list(rep["years"])
    return References(
        cog_vintage=str(geo.vintage), communes=frozenset(c["codgeo"].astype(str)), epci=epci, ze=ze,
        departements=deps, regions=regs, expected_departements=expected, expected_ze=expected_ze,
        naf_sous_classes=frozenset(naf["NIV5"].dropna().astype(str)),
        naf_divisions=frozenset(naf["NIV2"].dropna().astype(str)),
        industrial_divisions=tuple(INDUSTRIAL_DIVISIONS), levels=levels, territories=territories, geography=geo,
        synthetic=bool(getattr(settings, "is_synthetic", True)),
        min_communes=int(extra.get("validation_min_communes", 30_000)), extra=extra,
    )


# --------------------------------------------------------------------------- helpers
def expectation(name: str, *, severity: str = HARD, kind: str, description: str, **kwargs):
    """One GX expectation with our metadata: ``name`` is the GX class name."""
    import great_expectations.expectations as gxe

    from . import gx_custom

    cls = getattr(gx_custom, name, None) or getattr(gxe, name)
    return cls(severity=severity, meta={"kind": kind, "description": description}, **kwargs)


def col(name: str):
    from great_expectations.expectations.row_conditions import Column

    return Column(name)


def _suite(name: str, expectations: list):
    import great_expectations as gx

    return gx.ExpectationSuite(name=name, expectations=expectations)


def _exist(columns, what: str) -> list:
    """Required columns, and a batch that is not empty."""
    return [expectation("ExpectTableRowCountToBeBetween", kind="completeness", min_value=1,
                        description=f"the batch ({what}) is not empty")] + \
        [expectation("ExpectColumnToExist", kind="schema", column=c,
                     description=f"required column {c} ({what}) is present") for c in columns]


def _dtype_exp(column: str, kind: str):
    from .gx_custom import ExpectColumnDtypeToBeKind

    return ExpectColumnDtypeToBeKind(column=column, kind=kind, severity=HARD,
                                     meta={"kind": "schema", "description": f"{column} is typed as {kind}"})


def _commune_keys(column: str, refs: References, *, unique: bool = False) -> list:
    out = [
        expectation("ExpectColumnValuesToNotBeNull", kind="keys", column=column,
                    description=f"{column}: every row has a commune code"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column=column, regex=COMMUNE_PATTERN,
                    description=f"{column}: commune code is 5 characters (digits, or 2A/2B + 3 digits)"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column=column, reference="communes",
                    description=f"{column}: commune code exists in the COG {refs.cog_vintage}"),
    ]
    if unique:
        out.append(expectation("ExpectColumnValuesToBeUnique", kind="keys", column=column,
                               description=f"{column}: one row per commune"))
    return out


def _departements_complete(refs: References, what: str) -> object:
    return expectation(
        "ExpectColumnDistinctValuesToContainSet", kind="completeness", column="departement_of_codgeo",
        value_set=list(refs.expected_departements),
        description=f"every expected département has {what} ({len(refs.expected_departements)} expected)")




def _counts(columns, max_value: float, *, integer: bool = True) -> list:
    """Counts by meaning: finite, >= 0, <= a plausible ceiling, whole numbers when the source
    publishes integers (hard expectations: a violation blocks publication)."""
    what = "a whole number" if integer else "a number"
    return [expectation("ExpectColumnValuesToBePlausibleCounts", kind="range", column=c, max_value=max_value,
                        integer=integer, description=f"{c} is a count: finite, >= 0, <= {max_value:,.0f}, {what}")
            for c in columns]


def _non_negative(columns, kind: str = "range") -> list:
    return [expectation("ExpectColumnValuesToBeBetween", kind=kind, column=c, min_value=0,
                        description=f"{c} is a count: >= 0") for c in columns]


def _with_departement(df: pd.DataFrame, column: str = "codgeo") -> pd.DataFrame:
    return df.assign(departement_of_codgeo=codes.departement_of(df[column]).astype("str")) \
        if column in df.columns else df


def _sum_by(df: pd.DataFrame, key: pd.Series, value: pd.Series) -> dict:
    s = pd.Series(value.to_numpy(), index=key.to_numpy()).groupby(level=0).sum(min_count=1)
    return {str(k): (None if pd.isna(v) else float(v)) for k, v in s.sort_index().items()}


# --------------------------------------------------------------------------- geography
GEOGRAPHY_REQUIRED = ("codgeo", "epci", "ze2020", "dep", "reg")


def prepare_geography(df, refs, context):
    return _with_departement(df)


def geography_suite(refs: References, columns=()):
    e = _exist(GEOGRAPHY_REQUIRED, "COG commune table")
    e += [_dtype_exp(c, "string") for c in GEOGRAPHY_REQUIRED]
    e += [
        expectation("ExpectColumnValuesToNotBeNull", kind="keys", column="codgeo",
                    description="codgeo: every row has a commune code"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="codgeo", regex=COMMUNE_PATTERN,
                    description="codgeo: commune code is 5 characters (digits, or 2A/2B + 3 digits)"),
        expectation("ExpectColumnValuesToBeUnique", kind="keys", column="codgeo",
                    description="codgeo: one row per commune"),
        expectation("ExpectColumnValuesToNotBeNull", kind="completeness", column="epci",
                    description="every commune is mapped to an EPCI (ZZZZZZZZZ for the 4 island communes)"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="epci", regex=EPCI_PATTERN,
                    description="epci: EPCI SIREN is 9 digits (or ZZZZZZZZZ)"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="epci", reference="epci_or_none",
                    description=f"epci: EPCI SIREN is in the EPCI list of the COG {refs.cog_vintage}"),
        expectation("ExpectColumnValuesToNotBeNull", kind="completeness", column="ze2020",
                    description="every commune is mapped to a zone d'emploi 2020"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="ze2020", reference="ze",
                    description="ze2020: zone d'emploi is in the ZE2020 list"),
        expectation("ExpectColumnValuesToNotBeNull", kind="completeness", column="dep",
                    description="every commune has a département"),
        expectation("ExpectColumnValuesToNotBeNull", kind="completeness", column="reg",
                    description="every commune has a région"),
        expectation("ExpectColumnPairValuesToBeEqual", kind="keys", column_A="dep", column_B="departement_of_codgeo",
                    description="dep is the département of the commune code"),
        expectation("ExpectTableRowCountToBeBetween", kind="completeness", min_value=refs.min_communes,
                    description=f"the COG lists at least {refs.min_communes:,} communes"),
    ]
    return _suite("geography", e)


def geography_metrics(df, context):
    return {"row_count": {"communes": int(len(df))},
            "communes_by_departement": _sum_by(df, df["dep"].astype(str), pd.Series(1, index=df.index))}


# --------------------------------------------------------------------------- sirene_stock
SIRENE_REQUIRED = ("codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche",
                   "n_etab")
SIRENE_KEYS = ["codgeo", "nomenclature", "naf", "division", "is_industrial", "etat", "employer", "tranche"]


def prepare_sirene_stock(df, refs, context):
    return _with_departement(df)


def sirene_stock_suite(refs: References, columns=()):
    ind = col("is_industrial") == True  # noqa: E712 - a GX row condition, not a Python comparison
    e = _exist(SIRENE_REQUIRED, "SIRENE commune x activity aggregate")
    e += [_dtype_exp("codgeo", "string"), _dtype_exp("naf", "string"), _dtype_exp("n_etab", "integer"),
          _dtype_exp("is_industrial", "bool")]
    e += _commune_keys("codgeo", refs)
    e += [
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="naf", regex=NAF_PATTERN, row_condition=ind,
                    description="naf: industrial rows carry a NAF rév. 2 sous-classe like 25.62B"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="naf", reference="naf_sous_classes",
                    row_condition=ind, description="naf: the sous-classe exists in the NAF rév. 2 table (732 codes)"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="division", row_condition=ind,
                    value_set=list(refs.industrial_divisions),
                    description="division: industrial rows are in divisions 05-39"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="etat", value_set=["A", "F"],
                    description="etat: administrative state is A (active) or F (closed)"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="employer", value_set=["O", "N", ""],
                    description="employer: caractereEmployeur is O, N or empty"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="tranche", value_set=[*TRANCHES, ""],
                    description="tranche: size band is one of the 16 INSEE codes (or empty)"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="nomenclature",
                    value_set=list(SIRENE_NOMENCLATURES), severity=SOFT,
                    description="nomenclature: a known activity nomenclature (a new one, e.g. NAF 2025, is reported)"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys", column_list=SIRENE_KEYS,
                    description="one aggregate row per commune x activity x state x employer x band"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="n_etab", min_value=1,
                    description="n_etab: every aggregate row counts at least one establishment"),
        *_counts(["n_etab"], CEILING_ESTABLISHMENTS),
        _departements_complete(refs, "establishments"),
    ]
    return _suite("sirene_stock", e)


def sirene_stock_metrics(df, context):
    rep = (context or {}).get("report") or {}
    rows = int(rep.get("rows") or 0) or int(len(df))
    ind = df[df["is_industrial"].astype(bool) & (df["etat"] == "A")]
    return {"row_count": {"stock_rows": rows},
            "industrial_active_establishments_by_departement":
                _sum_by(ind, codes.departement_of(ind["codgeo"]).astype(str), ind["n_etab"])}


# --------------------------------------------------------------------------- sirene_history
HISTORY_REQUIRED = ("siret", "year", "etat", "employer", "naf", "nomenclature")


def prepare_sirene_history(df, refs, context):
    return df


def sirene_history_suite(refs: References, columns=()):
    rev2 = col("nomenclature") == "NAFRev2"
    years = [int(y) for y in (refs.extra.get("history_years") or [])]
    e = _exist(HISTORY_REQUIRED, "states of the industrial units at 31/12")
    e += [_dtype_exp("siret", "string"), _dtype_exp("year", "integer")]
    e += [
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="siret", regex=r"^\d{14}$",
                    description="siret: 14 digits"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys", column_list=["siret", "year"],
                    description="one state per SIRET and year end"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="etat", value_set=["A", "F"],
                    description="etat: A (active) or F (closed) at 31/12"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="employer", value_set=["O", "N", ""],
                    description="employer: O, N or empty"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="naf", regex=NAF_PATTERN, row_condition=rev2,
                    description="naf: NAFRev2 periods carry a sous-classe like 25.62B"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="naf", reference="naf_sous_classes",
                    row_condition=rev2, description="naf: the sous-classe exists in the NAF rév. 2 table"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="nomenclature",
                    value_set=list(SIRENE_NOMENCLATURES), severity=SOFT,
                    description="nomenclature: a known activity nomenclature (a new one is reported)"),
    ]
    if years:
        e += [
            expectation("ExpectColumnValuesToBeInSet", kind="keys", column="year", value_set=years,
                        description=f"year: one of the requested year ends {years}"),
            expectation("ExpectColumnDistinctValuesToContainSet", kind="completeness", column="year", value_set=years,
                        description="every requested year end has states"),
        ]
    else:
        e.append(expectation("ExpectColumnValuesToBeBetween", kind="range", column="year", min_value=1973,
                             max_value=2100, description="year: a plausible year end"))
    return _suite("sirene_history", e)


def sirene_history_metrics(df, context):
    # on the year column only: the national states are ~13M rows (no frame copy, no strings)
    active = (df["etat"] == "A").to_numpy(dtype=bool)
    years, counts = np.unique(df["year"].to_numpy()[active], return_counts=True)
    return {"row_count": {"rows": int(len(df))},
            "active_units_by_year": {str(int(y)): float(c) for y, c in zip(years, counts)}}


# --------------------------------------------------------------------------- sirene_updates (live)
def prepare_sirene_updates(df, refs, context):
    return df


def sirene_updates_suite(refs: References, columns=()):
    rev2 = col("nomenclatureActivitePrincipaleEtablissement") == "NAFRev2"
    has_commune = col("codeCommuneEtablissement") != ""
    e = _exist(("siret", "codeCommuneEtablissement", "etatAdministratifEtablissement",
                "activitePrincipaleEtablissement", "nomenclatureActivitePrincipaleEtablissement",
                "dateDernierTraitementEtablissement"), "API Sirene updates")
    e += [
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="siret", regex=r"^\d{14}$",
                    description="siret: 14 digits"),
        expectation("ExpectColumnValuesToBeUnique", kind="keys", column="siret",
                    description="one row per SIRET (latest treatment wins)"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="codeCommuneEtablissement",
                    regex=COMMUNE_PATTERN, row_condition=has_commune,
                    description="a non-empty commune code is 5 characters (digits, or 2A/2B + 3 digits)"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="etatAdministratifEtablissement",
                    value_set=["A", "F"], description="administrative state is A or F"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="activitePrincipaleEtablissement",
                    regex=NAF_PATTERN, row_condition=rev2, description="NAFRev2 rows carry a sous-classe like 25.62B"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="trancheEffectifsEtablissement",
                    value_set=[*TRANCHES, ""], description="size band is one of the INSEE codes (or empty)"),
    ]
    return _suite("sirene_updates", e)


def sirene_updates_metrics(df, context):
    return {"row_count": {"rows": int(len(df))}}


# --------------------------------------------------------------------------- urssaf
URSSAF_REQUIRED = ("codgeo", "division", "year", "n_etab", "jobs", "is_industrial")


def prepare_urssaf(df, refs, context):
    return _with_departement(df)


def urssaf_suite(refs: References, columns=()):
    ind = col("is_industrial") == True  # noqa: E712
    e = _exist(URSSAF_REQUIRED, "URSSAF commune x division x year")
    e += [_dtype_exp("codgeo", "string"), _dtype_exp("division", "string"), _dtype_exp("year", "integer"),
          _dtype_exp("n_etab", "numeric"), _dtype_exp("jobs", "numeric"), _dtype_exp("is_industrial", "bool")]
    e += _commune_keys("codgeo", refs)
    e += [
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="division", regex=r"^\d{2}$",
                    description="division: NAF division is 2 digits"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="division", reference="naf_divisions",
                    description="division: exists in the NAF rév. 2 table (88 divisions)"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="division", row_condition=ind,
                    value_set=list(refs.industrial_divisions),
                    description="is_industrial is true only for divisions 05-39"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys", column_list=["codgeo", "division", "year"],
                    description="one row per commune x division x year"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="year", min_value=1990, max_value=2100,
                    description="year: a plausible year (1990-2100)"),
        *_non_negative(["jobs", "n_etab"]),
        *_counts(["jobs"], CEILING_JOBS),
        *_counts(["n_etab"], CEILING_ESTABLISHMENTS),
        _departements_complete(refs, "URSSAF rows"),
    ]
    return _suite("urssaf", e)


def urssaf_metrics(df, context):
    years = df["year"].to_numpy()[df["jobs"].notna().to_numpy()]  # no copy of the (national: 9M-row) frame
    latest = int(years.max()) if len(years) else None
    ind = df.loc[df["is_industrial"].astype(bool) & (df["year"] == latest), ["codgeo", "jobs"]]
    return {"row_count": {"rows": int(len(df))},
            "industrial_jobs_by_departement": _sum_by(ind, codes.departement_of(ind["codgeo"]).astype(str), ind["jobs"]),
            "latest_year": {"year": latest}}


# --------------------------------------------------------------------------- chomage_ze
def prepare_chomage_ze(df, refs, context):
    if not {"ze2020", "quarter"} <= set(df.columns) or df.empty:
        return df
    latest = df["quarter"].max()
    return df.assign(ze_in_latest_quarter=df["ze2020"].where(df["quarter"] == latest))


def chomage_ze_suite(refs: References, columns=()):
    e = _exist(("ze2020", "quarter", "rate"), "localised unemployment by ZE")
    e += [_dtype_exp("ze2020", "string"), _dtype_exp("quarter", "string"), _dtype_exp("rate", "numeric")]
    e += [
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="ze2020", regex=ZE_PATTERN,
                    description="ze2020: zone d'emploi code is 4 digits"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="ze2020", reference="ze",
                    description=f"ze2020: the zone d'emploi exists in the ZE2020 list ({len(refs.ze)} ZE)"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="quarter", regex=QUARTER_PATTERN,
                    description="quarter: like 2026-T2"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys", column_list=["ze2020", "quarter"],
                    description="one rate per ZE and quarter"),
        expectation("ExpectColumnValuesToNotBeNull", kind="range", column="rate",
                    description="rate: every row has a rate"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="rate", min_value=0, max_value=100,
                    strict_min=True, description="rate: an unemployment rate in percent, in (0, 100]"),
        expectation("ExpectColumnDistinctValuesToContainSet", kind="completeness", column="ze_in_latest_quarter",
                    value_set=list(refs.expected_ze),
                    description=f"every ZE (except Guyane and Mayotte: {len(refs.expected_ze)}) has a rate "
                                "for the latest quarter"),
    ]
    return _suite("chomage_ze", e)


def chomage_ze_metrics(df, context):
    latest = df["quarter"].max() if len(df) else None
    last = df[df["quarter"] == latest]
    return {"row_count": {"rows": int(len(df))},
            "latest_rate_by_ze": _sum_by(last, last["ze2020"].astype(str), last["rate"]),
            "latest_quarter": {"quarter": latest}}


# --------------------------------------------------------------------------- chomage_bdm
def prepare_chomage_bdm(df, refs, context):
    return df


def chomage_bdm_suite(refs: References, columns=()):
    e = _exist(("idbank", "ref_area", "time_period", "quarter", "rate"), "BDM unemployment series")
    e += [_dtype_exp("idbank", "string"), _dtype_exp("rate", "numeric")]
    e += [
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="idbank", regex=r"^\d{9}$",
                    description="idbank: 9 digits"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys", column_list=["idbank", "time_period"],
                    description="one observation per series and quarter"),
        expectation("ExpectColumnValuesToMatchRegex", kind="keys", column="quarter", regex=QUARTER_PATTERN,
                    description="quarter: like 2026-T2"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="rate", min_value=0, max_value=100,
                    strict_min=True, strict_max=True, description="rate: an unemployment rate in percent, in (0, 100)"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="niveau",
                    value_set=["national", "region", "departement"], description="niveau: national, region, departement"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="code_insee", reference="departements",
                    row_condition=col("niveau") == "departement",
                    description=f"code_insee of a département series exists in the COG {refs.cog_vintage}"),
        expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="code_insee", reference="regions",
                    row_condition=col("niveau") == "region",
                    description=f"code_insee of a région series exists in the COG {refs.cog_vintage}"),
    ]
    return _suite("chomage_bdm", e)


def chomage_bdm_metrics(df, context):
    d = df.dropna(subset=["rate"])
    latest = d["time_period"].max() if len(d) else None
    last = d[d["time_period"] == latest]
    return {"row_count": {"rows": int(len(df))},
            "latest_rate_by_area": _sum_by(last, last["ref_area"].astype(str), last["rate"])}


# --------------------------------------------------------------------------- census
CENSUS_COUNTS = ("rp1_pop", "rp0_pop", "rp1_pop2554", "rp1_act1564", "rp1_actocc1564", "rp1_chom1564", "rp1_act2554",
                 "rp1_actocc2554", "rp1_emplt", "rp0_emplt")


def prepare_census(df, refs, context):
    return _with_departement(df)


def _pair_ge(a: str, b: str, description: str):
    return expectation("ExpectColumnPairValuesAToBeGreaterThanB", kind="range", column_A=a, column_B=b, or_equal=True,
                       ignore_row_if="either_value_is_missing", description=description)


def census_suite(refs: References, columns=()):
    e = _exist(("codgeo", *CENSUS_COUNTS), "census by commune")
    e += [_dtype_exp("codgeo", "string")] + [_dtype_exp(c, "numeric") for c in CENSUS_COUNTS]
    e += _commune_keys("codgeo", refs, unique=True)
    e += _non_negative(CENSUS_COUNTS)
    e += _counts(CENSUS_COUNTS, CEILING_PERSONS, integer=False)  # census counts are weighted estimates
    e += [
        _pair_ge("rp1_pop", "rp1_act1564", "active population 15-64 <= population"),
        _pair_ge("rp1_pop", "rp1_pop2554", "population 25-54 <= population"),
        _pair_ge("rp1_act1564", "rp1_actocc1564", "employed actives 15-64 <= actives 15-64"),
        _pair_ge("rp1_act1564", "rp1_chom1564", "unemployed 15-64 <= actives 15-64"),
        _pair_ge("rp1_act2554", "rp1_actocc2554", "employed actives 25-54 <= actives 25-54"),
        _departements_complete(refs, "census communes"),
    ]
    return _suite("census", e)


def census_metrics(df, context):
    return {"row_count": {"rows": int(len(df))},
            "population_by_departement": _sum_by(df, codes.departement_of(df["codgeo"]).astype(str), df["rp1_pop"])}


# --------------------------------------------------------------------------- indicator_values
INDICATOR_REQUIRED = ("level", "territory_id", "indicator_id", "period", "value", "numerator", "denominator", "unit")
LEVEL_COLUMNS = {"epci": "epci", "ze": "ze2020", "departement": "dep", "region": "reg"}


def memberships(geo) -> pd.DataFrame:
    """(level, territory_id, codgeo) for every level built from communes, from the geography."""
    c = geo.communes
    parts = [pd.DataFrame({"level": lv, "territory_id": c[column].astype(str), "codgeo": c["codgeo"].astype(str)})
             for lv, column in LEVEL_COLUMNS.items() if column in c.columns]
    if getattr(geo, "ti", None) is not None and len(geo.ti):
        parts.append(pd.DataFrame({"level": "ti", "territory_id": geo.ti["ti_id"].astype(str),
                                   "codgeo": geo.ti["codgeo"].astype(str)}))
    m = pd.concat(parts, ignore_index=True)
    return m[m["territory_id"] != NO_EPCI].drop_duplicates().reset_index(drop=True)


def crosscheck_member_sums(df: pd.DataFrame, geo, extra_members: pd.DataFrame | None = None
                           ) -> tuple[pd.Series, pd.Series]:
    """For additive counts (unit in COUNT_UNITS): the sum of the member communes' values of
    every non-commune row, and the relative difference with the row's own value.

    A member commune without a row counts 0; a member with a NULL value (secret) makes the
    comparison impossible (NaN, not checked). Indicators published without commune rows are
    not checked either. ``value_raw`` is used when the table has it. Memberships come from the
    geography (EPCI, ZE, département, région, phase-1 TI) plus ``extra_members`` (e.g. the
    2023-2027 TI perimeters, passed as ``context["memberships"]``)."""
    nan = pd.Series(np.nan, index=df.index)
    needed = {"level", "territory_id", "indicator_id", "period", "unit", "value"}
    if geo is None or not needed <= set(df.columns):
        return nan, nan
    val = "value_raw" if "value_raw" in df.columns else "value"
    count = df["unit"].isin(COUNT_UNITS)
    com = df[count & (df["level"] == "commune")][["indicator_id", "period", "territory_id", val]]
    if com.empty:
        return nan, nan
    com = com.rename(columns={"territory_id": "codgeo", val: "v"}).assign(has_row=True)
    com["codgeo"] = com["codgeo"].astype(str)
    members = memberships(geo)
    if extra_members is not None and len(extra_members):
        extra = extra_members[["level", "territory_id", "codgeo"]].astype(str)
        members = pd.concat([members, extra], ignore_index=True).drop_duplicates()
    keys = ["level", "territory_id", "indicator_id", "period"]
    targets = df.loc[count & (df["level"] != "commune"), keys].drop_duplicates()
    m = targets.merge(members, on=["level", "territory_id"]).merge(
        com, on=["indicator_id", "period", "codgeo"], how="left")
    m["null_member"] = m["has_row"].notna() & m["v"].isna()
    g = m.groupby(keys, sort=False).agg(member_sum=("v", "sum"), null_members=("null_member", "sum")).reset_index()
    g.loc[g["null_members"] > 0, "member_sum"] = np.nan
    merged = df[keys].merge(g[keys + ["member_sum"]], on=keys, how="left")
    member_sum = pd.Series(merged["member_sum"].to_numpy(dtype="float64"), index=df.index)
    own = pd.to_numeric(df[val], errors="coerce").astype("float64")
    rel = (own - member_sum).abs() / np.maximum(1.0, member_sum.abs())
    return member_sum, rel


def prepare_indicator_values(df, refs, context):
    out = df
    if {"level", "territory_id"} <= set(df.columns):
        out = out.assign(
            territory_key=df["level"].astype(str) + ":" + df["territory_id"].astype(str),
            departement_territories=df["territory_id"].astype(str).where(df["level"] == "departement"),
        )
    member_sum, rel = crosscheck_member_sums(df, refs.geography, (context or {}).get("memberships"))
    return out.assign(member_communes_sum=member_sum, crosscheck_rel_diff=rel)


def _territory_ids(refs: References) -> list:
    per_level = [("commune", "communes"), ("epci", "epci"), ("ze", "ze"), ("departement", "departements"),
                 ("region", "regions")]
    return [expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="territory_id", reference=ref,
                        row_condition=col("level") == lv,
                        description=f"territory_id of level {lv} exists in the {ref} list of the COG {refs.cog_vintage}")
            for lv, ref in per_level]


def _optional_indicator_columns() -> list:
    return [
        _dtype_exp("value_raw", "numeric"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="shrink_weight", min_value=0, max_value=1,
                    description="shrink_weight: a weight in [0, 1]"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="secret_status", value_set=["V", "A", "B", "D"],
                    description="secret_status: V published, A frequency, B dominance, D secondary"),
        expectation("ExpectColumnValuesToBeNull", kind="keys", column="value",
                    row_condition=col("secret_status").is_in(["A", "B", "D"]),
                    description="value is NULL for secret cells (statistical secrecy applied)"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="n_units", min_value=0,
                    description="n_units: a count, >= 0"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="domain",
                    value_set=["A", "B", "C", "D", "G", "X"], description="domain: A-D, G gate or X count"),
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="direction", value_set=[-1, 1],
                    description="direction: +1 (higher = more difficulty) or -1"),
    ]


def indicator_values_suite(refs: References, columns=()):
    e = _exist(INDICATOR_REQUIRED, "long indicator table")
    e += [_dtype_exp(c, "string") for c in ("level", "territory_id", "indicator_id", "period")]
    e += [_dtype_exp(c, "numeric") for c in ("value", "numerator", "denominator")]
    e += [
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="level", value_set=list(refs.levels),
                    description="level: one of the published territorial levels"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys",
                    column_list=["level", "territory_id", "indicator_id", "period"],
                    description="one value per level x territory x indicator x period"),
        expectation("ExpectColumnValuesToNotBeNull", kind="keys", column="indicator_id",
                    description="indicator_id is set on every row"),
        expectation("ExpectColumnValuesToNotBeNull", kind="keys", column="territory_id",
                    description="territory_id is set on every row"),
        *_territory_ids(refs),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="value", min_value=0, max_value=100,
                    row_condition=col("indicator_id").is_in(list(PROPORTION_INDICATORS)),
                    description="rates and shares in percent lie in [0, 100]"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="value", min_value=0,
                    row_condition=col("unit").is_in(list(COUNT_UNITS)),
                    description="counts (establishments, jobs, persons) are >= 0"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="value", min_value=1, max_value=5,
                    row_condition=col("unit") == "classe 1-5", description="classes are 1 to 5"),
        expectation("ExpectColumnValuesToBeBetween", kind="range", column="denominator", min_value=0,
                    description="denominator: a count, >= 0"),
        expectation("ExpectColumnDistinctValuesToContainSet", kind="completeness", column="level",
                    value_set=list(REQUIRED_LEVELS), description="every level is published"),
        expectation("ExpectColumnDistinctValuesToContainSet", kind="completeness", column="departement_territories",
                    value_set=list(refs.expected_departements),
                    description=f"every expected département is published ({len(refs.expected_departements)})"),
        expectation("ExpectColumnValuesToBeBetween", kind="crosscheck", column="crosscheck_rel_diff",
                    min_value=0, max_value=CROSSCHECK_TOLERANCE,
                    description="counts add up: a territory's value equals the sum of its member communes "
                                "(so the EPCI, département and région totals equal the national total)"),
    ]
    if refs.territories is not None:
        e.append(expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="territory_key",
                             reference="territories",
                             description="every (level, territory_id) is in the territories table of the release"))
    e += _optional_indicator_columns()
    return _suite("indicator_values", e)


def indicator_values_metrics(df, context):
    d = df[(df["level"] == "departement") & df["unit"].isin(COUNT_UNITS)]
    val = "value_raw" if "value_raw" in d.columns else "value"
    return {"row_count": {"rows": int(len(df))},
            "counts_by_departement": _sum_by(d, d["indicator_id"].astype(str) + "|" + d["territory_id"].astype(str),
                                             d[val])}


# --------------------------------------------------------------------------- composite
def prepare_composite(df, refs, context):
    if {"level", "territory_id"} <= set(df.columns):
        return df.assign(territory_key=df["level"].astype(str) + ":" + df["territory_id"].astype(str))
    return df


def _between(column: str, lo, hi, description: str, kind: str = "range"):
    return expectation("ExpectColumnValuesToBeBetween", kind=kind, column=column, min_value=lo, max_value=hi,
                       description=description)


def composite_suite(refs: References, columns=()):
    e = _exist(("level", "territory_id", "score"), "composite index")
    e += [_dtype_exp("score", "numeric")]
    e += [
        expectation("ExpectColumnValuesToBeInSet", kind="keys", column="level", value_set=list(refs.levels),
                    description="level: one of the published territorial levels"),
        expectation("ExpectCompoundColumnsToBeUnique", kind="keys",
                    column_list=["level", "territory_id", *(["reference_set"] if "reference_set" in columns else [])],
                    description="one score per territory (and reference set)"),
        _between("score", 0, 100, "score: on the 0-100 scale"),
        *[_between(f"domain_{d}", 0, 100, f"domain_{d}: exponential-transformed score in [0, 100]") for d in "abcd"],
        _between("rank_national", 1, None, "rank_national: ranks start at 1"),
        _between("rank_regional", 1, None, "rank_regional: ranks start at 1"),
        _between("percentile_national", 0, 100, "percentile_national in [0, 100]"),
        _between("percentile_regional", 0, 100, "percentile_regional in [0, 100]"),
        _between("decile", 1, 10, "decile in 1..10"),
        _between("p_top10", 0, 1, "p_top10 is a probability in [0, 1]"),
        _between("p_top20", 0, 1, "p_top20 is a probability in [0, 1]"),
        _between("n_reference", 1, None, "n_reference: the ranking set is not empty"),
        _pair_ge("n_reference", "rank_national", "rank_national <= size of the ranking set"),
        _pair_ge("mc_rank_median", "mc_rank_p05", "Monte Carlo ranks: p05 <= median"),
        _pair_ge("mc_rank_p95", "mc_rank_median", "Monte Carlo ranks: median <= p95"),
    ]
    if refs.territories is not None:
        e.append(expectation("ExpectColumnValuesToBeInReferenceSet", kind="keys", column="territory_key",
                             reference="territories",
                             description="every (level, territory_id) is in the territories table of the release"))
    return _suite("composite", e)


def composite_metrics(df, context):
    return {"row_count": {"rows": int(len(df))}}


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    prepare: Callable
    suite: Callable
    metrics: Callable
    #: metric group -> minimum base (max of previous, current) for the drift comparison
    drift_min_base: dict = field(default_factory=dict)
    #: False when the suite checks no code against the COG (the gate then runs without it)
    needs_geography: bool = True
    #: column the batch is sorted by when it comes (checked, not trusted): its uniqueness
    #: expectations are then validated in row chunks that never split a key (see gates.run_suite)
    sorted_by: str | None = None


DATASETS: dict[str, DatasetSpec] = {
    "geography": DatasetSpec("geography", "Geography (COG communes -> EPCI, ZE, département, région)",
                             prepare_geography, geography_suite, geography_metrics,
                             {"communes_by_departement": 20}),
    "sirene_stock": DatasetSpec("sirene_stock", "SIRENE establishments stock (commune x activity aggregate)",
                                prepare_sirene_stock, sirene_stock_suite, sirene_stock_metrics,
                                {"industrial_active_establishments_by_departement": 20}, sorted_by="codgeo"),
    "sirene_history": DatasetSpec("sirene_history", "SIRENE history: states of the industrial units at 31/12",
                                  prepare_sirene_history, sirene_history_suite, sirene_history_metrics,
                                  {"active_units_by_year": 20}, sorted_by="siret"),
    "sirene_updates": DatasetSpec("sirene_updates", "API Sirene updates since the stock (live)", prepare_sirene_updates,
                                  sirene_updates_suite, sirene_updates_metrics, needs_geography=False),
    "urssaf": DatasetSpec("urssaf", "URSSAF salaried jobs by commune x division x year", prepare_urssaf,
                          urssaf_suite, urssaf_metrics, {"industrial_jobs_by_departement": 100},
                          sorted_by="codgeo"),
    "chomage_ze": DatasetSpec("chomage_ze", "Localised unemployment rates by zone d'emploi", prepare_chomage_ze,
                              chomage_ze_suite, chomage_ze_metrics, {"latest_rate_by_ze": 0}),
    "chomage_bdm": DatasetSpec("chomage_bdm", "BDM localised unemployment by département and région (live)",
                               prepare_chomage_bdm, chomage_bdm_suite, chomage_bdm_metrics, {"latest_rate_by_area": 0}),
    "census": DatasetSpec("census", "Census (RP) by commune", prepare_census, census_suite, census_metrics,
                          {"population_by_departement": 1000}),
    "indicator_values": DatasetSpec("indicator_values", "Indicator values (all levels) before publication",
                                    prepare_indicator_values, indicator_values_suite, indicator_values_metrics,
                                    {"counts_by_departement": 20}),
    "composite": DatasetSpec("composite", "Composite index before publication", prepare_composite, composite_suite,
                             composite_metrics),
}
