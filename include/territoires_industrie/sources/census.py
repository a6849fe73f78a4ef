"""Census (RP) by commune: population, active population, employment.

Embedded default reads the "bases communales du recensement" CSV layout (``;``,
``CODGEO;P21_POP;…``); live mode fetches the same variables through the Melodi API.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import codes
from ..schemas import CENSUS
from .tabular import TabularFileError, sniff_header

log = logging.getLogger(__name__)


def parse_census(path: Path, known_communes: set[str]) -> tuple[pd.DataFrame, dict]:
    path = Path(path)
    header, sep = sniff_header(path, ";")
    cols = CENSUS.check_header(header, path)
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
    report = {"file": path.name, "rows": int(len(df)), "unknown_commune_codes": int(unknown.sum()),
              "unknown_communes_sample": df.loc[unknown, "codgeo"].head(20).tolist()}
    df = df[~unknown].rename(columns={c: c.lower() for c in num}).reset_index(drop=True)
    log.info("%s: %d communes", path.name, len(df))
    return df, report
