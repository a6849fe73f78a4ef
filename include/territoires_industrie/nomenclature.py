"""NAF rév. 2: which activities are "industry" (sections B–E = divisions 05–39, INSEE A10 "BE")."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

NOMENCLATURE_DIR = Path(__file__).parent / "data" / "real" / "nomenclatures"
INDUSTRIAL_DIVISIONS = tuple(f"{d:02d}" for d in range(5, 40))
MANUFACTURING_DIVISIONS = tuple(f"{d:02d}" for d in range(10, 34))


@lru_cache(maxsize=1)
def naf_sous_classes() -> pd.DataFrame:
    """732 sous-classes: NIV5 (``25.62B``), NIV4, NIV3, NIV2 (division), NIV1 (section)."""
    return pd.read_csv(NOMENCLATURE_DIR / "naf2008_5_niveaux.csv", sep=";", dtype=str, encoding="cp1252")


@lru_cache(maxsize=1)
def a88_labels() -> pd.DataFrame:
    """Division (A88) code -> French label."""
    df = pd.read_csv(NOMENCLATURE_DIR / "int_eng_na_2008_a88.csv", sep=";", dtype=str, encoding="cp1252")
    df.columns = ["section", "section_label", "division", "label_en", "label_fr"]
    df["section"] = df["section"].ffill()
    return df[["division", "section", "label_fr", "label_en"]].dropna(subset=["division"])


def is_industrial_division(division: pd.Series) -> pd.Series:
    return division.astype("string").isin(INDUSTRIAL_DIVISIONS).fillna(False).astype(bool)
