"""Official code normalisation: communes, départements, régions, ZE, EPCI, SIRET.

Codes are strings everywhere. Leading zeros are restored only where the code's length is
known (commune 5, ZE 4, région 2, département 2/3, EPCI SIREN 9). Corsica (2A/2B) and
overseas (97x) are handled; municipal arrondissements of Paris/Lyon/Marseille map to
their parent commune.
"""

from __future__ import annotations

import re

import pandas as pd

COMMUNE_RE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
ZE_RE = re.compile(r"^\d{4}$")
EPCI_RE = re.compile(r"^\d{9}$")
SIRET_RE = re.compile(r"^\d{14}$")
NAF_REV2_RE = re.compile(r"^\d{2}\.\d{2}[A-Z]$")

#: Arrondissements municipaux -> parent commune (COG ``COMPARENT``).
ARM_PARENT = {
    **{f"751{i:02d}": "75056" for i in range(1, 21)},
    **{f"6938{i}": "69123" for i in range(1, 10)},
    **{f"132{i:02d}": "13055" for i in range(1, 17)},
}

#: Collectivités d'outre-mer: outside EPCI / ZE / TI perimeters (reported, not scored).
COM_PREFIXES = ("975", "977", "978", "98")


def pad(series: pd.Series, width: int) -> pd.Series:
    """Left-pad purely numeric codes shorter than ``width`` with zeros; leave others as they are."""
    s = series.astype("string").str.strip()
    numeric_short = s.str.fullmatch(r"\d+") & (s.str.len() < width)
    return s.where(~numeric_short.fillna(False), s.str.zfill(width))


def normalise_commune(series: pd.Series) -> pd.Series:
    """Commune codes as 5-char strings: restore stripped zeros (``1001`` -> ``01001``),
    upper-case Corsica (``2a004`` -> ``2A004``). Invalid codes are kept as-is for reporting."""
    s = series.astype("string").str.strip().str.upper()
    s = s.str.replace(r"\.0$", "", regex=True)  # '1001.0' from a spreadsheet float
    four_digits = s.str.fullmatch(r"\d{4}").fillna(False)
    return s.where(~four_digits, "0" + s)


def arm_to_commune(series: pd.Series) -> pd.Series:
    """Map Paris/Lyon/Marseille arrondissement codes to the parent commune code."""
    return series.map(lambda c: ARM_PARENT.get(c, c) if isinstance(c, str) else c).astype("string")


def departement_of(series: pd.Series) -> pd.Series:
    """Département of a commune code: 3 chars for 97x/98x, else 2 (``2A``/``2B`` included)."""
    def of(u: pd.Series) -> pd.Series:
        overseas = (u.str.startswith("97") | u.str.startswith("98")).fillna(False)
        return u.str[:3].where(overseas, u.str[:2])

    return per_distinct(series.astype("string"), of)


def per_distinct(series: pd.Series, fn, dtype: str = "string") -> pd.Series:
    """``fn`` (a Series of the distinct values -> as many results) computed once per distinct
    value and taken back to the rows, as ``dtype``; a missing value stays missing. Nationally a
    commune code repeats over millions of rows."""
    row_code, uniq = pd.factorize(series)
    done = pd.array(list(fn(pd.Series(uniq, dtype=series.dtype))), dtype=dtype)
    return pd.Series(done.take(row_code, allow_fill=True), index=series.index, name=series.name, dtype=dtype)


def is_valid_commune(series: pd.Series) -> pd.Series:
    return series.astype("string").str.fullmatch(COMMUNE_RE.pattern).fillna(False).astype(bool)


def naf_with_dot(series: pd.Series) -> pd.Series:
    """URSSAF/APE codes without dot (``2562B``) -> NAF rév. 2 with dot (``25.62B``)."""
    s = series.astype("string").str.strip().str.upper()
    nodot = s.str.fullmatch(r"\d{4}[A-Z]").fillna(False)
    return s.where(~nodot, s.str[:2] + "." + s.str[2:])


def naf_division(series: pd.Series) -> pd.Series:
    return series.astype("string").str[:2]


def luhn_ok(code: str) -> bool:
    """Luhn check of SIREN/SIRET (La Poste SIRETs, SIREN 356000000, are the known exception)."""
    if not code.isdigit():
        return False
    if code.startswith("356000000"):
        return sum(int(c) for c in code) % 5 == 0
    total = 0
    for i, ch in enumerate(reversed(code)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
