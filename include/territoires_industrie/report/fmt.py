"""French number formatting for the report (``1 234,5 %``), one place for every page."""

from __future__ import annotations

import math

NBSP = "\u00a0"  # before a unit
THOUSANDS = "\u202f"  # narrow no-break space, as Intl.NumberFormat("fr-FR") in the tables
#: Decimals shown per unit (the exports keep 4 decimals).
UNIT_DECIMALS = {"%": 1, "% sur 3 ans": 1, "points": 1, "ratio": 2, "emplois": 0, "établissements": 0,
                 "habitants": 0, "classe 1-5": 0}
UNIT_SUFFIX = {"%": f"{NBSP}%", "% sur 3 ans": f"{NBSP}% sur 3 ans", "points": f"{NBSP}pt", "ratio": "",
               "emplois": f"{NBSP}emplois", "établissements": f"{NBSP}établissements", "habitants": f"{NBSP}hab."}
MISSING = "–"


def is_missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v) or (isinstance(v, float) and math.isnan(v))
    except (TypeError, ValueError):
        return v is not None and str(v) in ("<NA>", "nan")


def fmt_number(v, decimals: int = 1) -> str:
    """``1234.56`` -> ``1 234,6`` (narrow no-break space for thousands, decimal comma)."""
    if is_missing(v):
        return MISSING
    s = f"{float(v):,.{decimals}f}"
    if s.startswith("-") and float(s.replace(",", "")) == 0:
        s = s[1:]  # no "-0,0"
    return s.replace(",", THOUSANDS).replace(".", ",")


def fmt_value(v, unit: str | None) -> str:
    """A published value with its unit: ``12,3 %``, ``1 250 emplois``, ``classe 3``."""
    if is_missing(v):
        return MISSING
    unit = unit or ""
    if unit == "classe 1-5":
        return f"classe{NBSP}{fmt_number(v, 0)}"
    return fmt_number(v, UNIT_DECIMALS.get(unit, 2)) + UNIT_SUFFIX.get(unit, f"{NBSP}{unit}" if unit else "")


def fmt_int(v) -> str:
    return fmt_number(v, 0)


def fmt_pct01(v) -> str:
    """A probability 0-1 as a percentage: ``0.185`` -> ``18,5 %``."""
    return MISSING if is_missing(v) else f"{fmt_number(100 * float(v), 1)}{NBSP}%"


def fmt_rank(v) -> str:
    return MISSING if is_missing(v) else fmt_number(round(float(v)), 0)
