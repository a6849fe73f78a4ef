"""INSEE localised unemployment rates by zone d'emploi (quarterly xlsx, sheet ``txcho_ze``).

The file name changes every quarter (``chomage-zone-t1-2003-t{q}-{yyyy}.xlsx``); the
machine header (``ZE2020, LIBZE2020, REG, LIBREG, 2003-T1 …``) is on row 6, found by name.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from .. import codes
from ..geography import SourceFormatError, read_insee_sheet
from ..schemas import CHOMAGE_QUARTER_RE, CHOMAGE_ZE

log = logging.getLogger(__name__)
PAGE_URL = "https://www.insee.fr/fr/statistiques/1893230"
FILE_URL = "https://www.insee.fr/fr/statistiques/fichier/1893230/chomage-zone-t1-2003-t{q}-{yyyy}.xlsx"


def parse_chomage_ze(path: Path, sheet: str = "txcho_ze") -> tuple[pd.DataFrame, dict]:
    """Return long (ze2020, quarter 'YYYY-Tq', rate) and a report with the latest quarter."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise SourceFormatError(f"{path.name}: empty or missing file")
    head = path.read_bytes()[:4]
    if head != b"PK\x03\x04":
        raise SourceFormatError(f"{path.name}: not an xlsx file (HTML error page or truncated download?)")
    df = read_insee_sheet(path, sheet, CHOMAGE_ZE.required)
    quarters = [c for c in df.columns if re.match(CHOMAGE_QUARTER_RE, c)]
    if not quarters:
        raise SourceFormatError(f"{path.name}, sheet {sheet!r}: no quarter columns like '2003-T1'")
    df["ze2020"] = codes.pad(df["ZE2020"], 4)
    long = df.melt(id_vars=["ze2020"], value_vars=quarters, var_name="quarter", value_name="rate")
    long["rate"] = pd.to_numeric(long["rate"], errors="coerce")
    long = long.dropna(subset=["rate"]).sort_values(["ze2020", "quarter"]).reset_index(drop=True)
    latest = long["quarter"].max()
    report = {"file": path.name, "ze": int(df["ze2020"].nunique()), "quarters": len(quarters), "latest_quarter": latest,
              "rows": int(len(long))}
    log.info("%s: %d ZE, %d quarters, latest %s", path.name, report["ze"], len(quarters), latest)
    return long, report


def last_quarters(latest: str, n: int, offset: int = 0) -> list[str]:
    """The ``n`` quarters ending ``offset`` quarters before ``latest`` ('2026-T2')."""
    y, q = int(latest[:4]), int(latest[-1])
    idx = y * 4 + (q - 1) - offset
    return [f"{i // 4}-T{i % 4 + 1}" for i in range(idx - n + 1, idx + 1)]
