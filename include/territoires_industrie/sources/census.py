"""Census (RP) by commune: population, active population, employment.

Embedded default reads the "bases communales du recensement" CSV layout (``;``,
``CODGEO;P21_POP;…``); live mode fetches the same variables through the Melodi API and writes
them in that layout, with the census years the service holds (``P22_POP;P16_POP;…`` for the
2022 set). The years are read from the header, never assumed: the latest census year ``t1`` is
the one with the 25-54 population, the base year ``t0`` the latest earlier year with a
population column (its other columns are then required by the schema). Columns are staged under year-free names: ``rp1_*`` (t1) and ``rp0_*``
(t0); the years go to the parse report (``census_years``) and name the periods in the release.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from .. import codes
from ..schemas import census_schema
from .tabular import TabularFileError, sniff_header

log = logging.getLogger(__name__)

_YEAR_COLUMN = re.compile(r"^P(\d{2})_([A-Z0-9]+)$")


def census_years(header: list[str], file: str | Path) -> tuple[int, int]:
    """(t1, t0) from a header of ``P{yy}_*`` columns (see the module docstring)."""
    by_year: dict[int, set[str]] = {}
    for c in header:
        m = _YEAR_COLUMN.match(c)
        if m:
            by_year.setdefault(2000 + int(m.group(1)), set()).add(m.group(2))
    latest = [y for y, v in by_year.items() if "POP2554" in v]
    if not latest:
        raise TabularFileError(f"{Path(str(file)).name}: no P<yy>_POP2554 column: cannot tell the census year "
                               f"(found {header[:8]})")
    t1 = max(latest)
    base = [y for y, v in by_year.items() if y < t1 and "POP" in v]
    if not base:
        raise TabularFileError(f"{Path(str(file)).name}: no base census year before {t1} (no earlier P<yy>_POP "
                               f"column; years found: {sorted(by_year)})")
    return t1, max(base)


def parse_census(path: Path, known_communes: set[str]) -> tuple[pd.DataFrame, dict]:
    path = Path(path)
    header, sep = sniff_header(path, ";")
    t1, t0 = census_years(header, path)
    cols = census_schema(t1, t0).check_header(header, path)
    df = pd.read_csv(path, sep=sep, dtype=str, usecols=cols)
    if df.empty:
        raise TabularFileError(f"{path.name}: header only, no data rows")
    for c in cols:
        if c != "CODGEO":
            df[c] = pd.to_numeric(df[c].str.replace(",", ".", regex=False), errors="coerce")
    df["codgeo"] = codes.arm_to_commune(codes.normalise_commune(df["CODGEO"]))
    num = [c for c in cols if c != "CODGEO"]
    df = df.groupby("codgeo", as_index=False)[num].sum(min_count=1)
    unknown = ~df["codgeo"].isin(known_communes)
    report = {"file": path.name, "rows": int(len(df)), "census_years": {"t1": t1, "t0": t0},
              "unknown_commune_codes": int(unknown.sum()),
              "unknown_communes_sample": df.loc[unknown, "codgeo"].head(20).tolist()}
    p1, p0 = f"P{t1 % 100:02d}_", f"P{t0 % 100:02d}_"
    names = {c: ("rp1_" + c[len(p1):] if c.startswith(p1) else "rp0_" + c[len(p0):]).lower() for c in num}
    df = df[~unknown].rename(columns=names).reset_index(drop=True)
    log.info("%s: %d communes", path.name, len(df))
    return df, report
