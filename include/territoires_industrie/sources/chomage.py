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


# --- live fetch: the newest quarterly file ----------------------------------------------------
ZE_FILE_RE = re.compile(r"chomage-zone-t1-2003-t([1-4])-(\d{4})\.xlsx", re.IGNORECASE)
ZE_FOLDER = "fr/statistiques/fichier/1893230"


def _quarter_index(year: int, q: int) -> int:
    return year * 4 + (q - 1)


def expected_ze_names(today=None, lookback: int = 8) -> list[tuple[str, str]]:
    """(file name, 'YYYY-Tq') for the last ``lookback`` quarters before ``today``, newest first.

    The wall clock only chooses which names to try; the vintage is read from the file itself."""
    import datetime as dt

    today = today or dt.date.today()
    cur = _quarter_index(today.year, (today.month - 1) // 3 + 1) - 1  # the quarter just ended
    out = []
    for i in range(cur, cur - lookback, -1):
        y, q = divmod(i, 4)
        out.append((f"chomage-zone-t1-2003-t{q + 1}-{y}.xlsx", f"{y}-T{q + 1}"))
    return out


def discover_latest_ze(client, today=None, lookback: int = 8) -> tuple[str, str, str]:
    """Return (url, file name, quarter) of the newest ZE unemployment file.

    1. scrape the INSEE page (``/fr/statistiques/1893230``) for ``chomage-zone-t1-2003-t{q}-{yyyy}.xlsx``
       links and take the highest (year, quarter);
    2. if the page is unavailable or has no link, probe the expected names of the last
       ``lookback`` quarters (HEAD) and take the first that exists.
    Links are re-based on ``TI_URL_INSEE_FILES`` (the path is kept, the host is the configured one).
    """
    from urllib.parse import urljoin, urlsplit

    from ..http import HttpError, UpstreamFormatError

    page = client.url("insee_files", "fr/statistiques/1893230")
    found: dict[tuple[int, int], str] = {}
    try:
        _, body, _ = client.get_bytes(page)
        html = body.decode("utf-8", errors="replace")
        for m in re.finditer(r"""href=["']([^"']*?chomage-zone-t1-2003-t([1-4])-(\d{4})\.xlsx)["']""", html, re.I):
            path = urlsplit(urljoin(page, m.group(1))).path
            found[(int(m.group(3)), int(m.group(2)))] = client.url("insee_files", path)
    except (HttpError, UpstreamFormatError) as exc:
        log.warning("INSEE page %s unavailable (%s): trying the expected file names", page, exc)
    if found:
        (y, q), url = max(found.items())
        name = url.rsplit("/", 1)[-1]
        log.info("newest ZE unemployment file on the INSEE page: %s (%d links seen)", name, len(found))
        return url, name, f"{y}-T{q}"
    for name, quarter in expected_ze_names(today, lookback):
        url = client.url("insee_files", f"{ZE_FOLDER}/{name}")
        if client.exists(url):
            log.info("newest ZE unemployment file found by name: %s", name)
            return url, name, quarter
    raise FileNotFoundError(f"no chomage-zone-t1-2003-t?-????.xlsx found on {page} nor under the expected names "
                            f"of the last {lookback} quarters")


def acquire_ze(client, settings, today=None, **_):
    """Land the newest ZE xlsx in ``raw/chomage_ze/<YYYY-Tq>/``; the vintage is the latest quarter
    column of the data (checked against the file name)."""
    from ..landing import land_download

    url, name, quarter = discover_latest_ze(client, today)
    seen: dict = {}

    def validate(path: Path) -> int:
        _, rep = parse_chomage_ze(path)
        seen.update(rep)
        if rep["latest_quarter"] != quarter:
            log.warning("%s: the file name says %s but the latest data column is %s (the data wins)", name, quarter,
                        rep["latest_quarter"])
        return rep["ze"]

    return land_download(client, settings, source="chomage_ze", file_name=name, url=url,
                         vintage_from=lambda p: seen["latest_quarter"], expect="xlsx", validate=validate,
                         extra={"vintage_basis": "latest quarter column of sheet txcho_ze", "quarter_in_name": quarter})
