"""INSEE Melodi API (``https://api.insee.fr/melodi``, no key, 30 requests/minute): census (RP)
population, active population and jobs by commune, written in the column layout of the
"bases communales" CSV that :func:`territoires_industrie.sources.census.parse_census` reads
(``CODGEO;P21_POP;P15_POP;...``).

Endpoints: ``GET /data/{DS}?DIM=CODE&...&TIME_PERIOD=YYYY&maxResult=N&totalCount=true`` returns
``{"observations": [{"dimensions": {"GEO": "2024-COM-44109", "TIME_PERIOD": ...}, "measures":
{"OBS_VALUE_NIVEAU": {"value": ...}}}], "paging": {"next": ..., "isLast": ..., "count": ...}}``;
``GET /catalog/{DS}`` gives the dataset's ``modified`` date (used to skip unchanged datasets).

Mapping of each census column to a Melodi query (``t`` = census year, default 2021; ``t0`` =
``t`` - 6). **Dimension codes marked "[?]" are not verified against the live ``/range/{DS}``
endpoint**; those marked "[3P]" are used by third-party code against the live API. A query that
returns no commune observation fails with a message naming the dataset and the codes to check.

| column | dataset | filters | year | status |
|---|---|---|---|---|
| P{t}_POP | DS_RP_SERIE_HISTORIQUE | RP_MEASURE=POP | t | [3P] |
| P{t0}_POP | DS_RP_SERIE_HISTORIQUE | RP_MEASURE=POP | t0 | [3P] |
| P{t}_POP1564 | DS_RP_POPULATION_PRINC | RP_MEASURE=POP, SEX=_T, AGE=Y15T64 | t | [?] AGE code |
| P{t}_POP2554 | DS_RP_POPULATION_PRINC | RP_MEASURE=POP, SEX=_T, AGE=Y25T54 | t | [?] AGE code |
| P{t}_ACT1564 | DS_RP_EMPLOI_LR_PRINC | SEX=_T, EDUC=_T, AGE=Y15T64, EMPSTA_ENQ=1T2 | t | [3P] |
| P{t}_ACTOCC1564 | DS_RP_EMPLOI_LR_PRINC | ... EMPSTA_ENQ=1 | t | [3P] |
| P{t}_CHOM1564 | DS_RP_EMPLOI_LR_PRINC | ... EMPSTA_ENQ=2 | t | [3P] |
| P{t}_ACT2554 | DS_RP_EMPLOI_LR_PRINC | ... AGE=Y25T54, EMPSTA_ENQ=1T2 | t | [?] AGE code |
| P{t}_ACTOCC2554 | DS_RP_EMPLOI_LR_PRINC | ... AGE=Y25T54, EMPSTA_ENQ=1 | t | [?] AGE code |
| P{t}_EMPLT | DS_RP_EMPLOI_LT_PRINC | RP_MEASURE=NBEMP (other dims total) | t | [?] |
| P{t0}_EMPLT | DS_RP_EMPLOI_LT_PRINC | RP_MEASURE=NBEMP | t0 | [?] |

Only ``GEO`` objects of type ``COM`` are kept (arrondissements are already inside their
commune's total). Where a filtered query still returns several observations per commune, the
one whose remaining dimensions are all totals (``_T``) is kept; otherwise the query fails.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..http import UpstreamFormatError, decode_json

log = logging.getLogger(__name__)

MAX_RESULT = 100_000  # Melodi's maximum page size
NON_DIMS = {"GEO", "TIME_PERIOD", "FREQ"}


@dataclass(frozen=True)
class MelodiSeries:
    suffix: str        # column suffix: POP, ACT1564...
    dataset: str
    filters: tuple     # ((dimension, code), ...)
    year: str          # "t" or "t0"
    status: str        # "3P" (used live by third parties) or "?" (unverified)


_LR = (("SEX", "_T"), ("EDUC", "_T"))
CENSUS_SERIES: tuple[MelodiSeries, ...] = (
    MelodiSeries("POP", "DS_RP_SERIE_HISTORIQUE", (("RP_MEASURE", "POP"),), "t", "3P"),
    MelodiSeries("POP", "DS_RP_SERIE_HISTORIQUE", (("RP_MEASURE", "POP"),), "t0", "3P"),
    MelodiSeries("POP1564", "DS_RP_POPULATION_PRINC", (("RP_MEASURE", "POP"), ("SEX", "_T"), ("AGE", "Y15T64")), "t", "?"),
    MelodiSeries("POP2554", "DS_RP_POPULATION_PRINC", (("RP_MEASURE", "POP"), ("SEX", "_T"), ("AGE", "Y25T54")), "t", "?"),
    MelodiSeries("ACT1564", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y15T64"), ("EMPSTA_ENQ", "1T2")), "t", "3P"),
    MelodiSeries("ACTOCC1564", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y15T64"), ("EMPSTA_ENQ", "1")), "t", "3P"),
    MelodiSeries("CHOM1564", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y15T64"), ("EMPSTA_ENQ", "2")), "t", "3P"),
    MelodiSeries("ACT2554", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y25T54"), ("EMPSTA_ENQ", "1T2")), "t", "?"),
    MelodiSeries("ACTOCC2554", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y25T54"), ("EMPSTA_ENQ", "1")), "t", "?"),
    MelodiSeries("EMPLT", "DS_RP_EMPLOI_LT_PRINC", (("RP_MEASURE", "NBEMP"),), "t", "?"),
    MelodiSeries("EMPLT", "DS_RP_EMPLOI_LT_PRINC", (("RP_MEASURE", "NBEMP"),), "t0", "?"),
)


def column_name(s: MelodiSeries, t: int, t0: int) -> str:
    year = t if s.year == "t" else t0
    return f"P{year % 100:02d}_{s.suffix}"


def split_geo(value: str) -> tuple[str | None, str, str]:
    """``2024-COM-44109`` -> ('2024', 'COM', '44109'); ``COM-44109`` -> (None, 'COM', '44109')."""
    parts = str(value).split("-")
    if len(parts) >= 3:
        return parts[0], parts[1], "-".join(parts[2:])
    if len(parts) == 2:
        return None, parts[0], parts[1]
    return None, "", str(value)


def catalog_modified(client, dataset: str) -> str | None:
    _, data = client.get_json(client.url("melodi", f"catalog/{dataset}"), label=f"Melodi catalog {dataset}")
    if not isinstance(data, dict):
        raise UpstreamFormatError(f"Melodi catalog {dataset}: unexpected response type {type(data).__name__}")
    return data.get("modified") or data.get("issued")


def fetch_pages(client, dataset: str, params: dict, out_dir: Path, max_result: int = MAX_RESULT,
                max_pages: int = 10_000) -> list[Path]:
    """Follow ``paging.next`` until it is absent or ``isLast``; each page is written to ``out_dir`` as it
    comes (never accumulated in memory). ``next`` links are re-based on ``TI_URL_MELODI``."""
    from ..storage import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = client.url("melodi", f"data/{dataset}")
    # page=1: Melodi returns paging.next only when the request names a page (recorded: the
    # InseeFrLab/melodi cassettes, ../shared/data/real/README.md); without it a result longer than
    # maxResult is cut silently
    query = {**params, "maxResult": max_result, "totalCount": "true", "page": 1}
    pages: list[Path] = []
    seen = 0
    count = None
    while url and len(pages) < max_pages:
        status, body, _ = client.get_bytes(url, params=query, headers={"Accept": "application/json"})
        label = f"Melodi {dataset} page {len(pages) + 1}"
        data = decode_json(body, label)
        if not isinstance(data, dict) or not isinstance(data.get("observations"), list):
            raise UpstreamFormatError(f"{label}: no 'observations' list in the response")
        p = out_dir / f"{dataset}-page-{len(pages) + 1:04d}.json"
        with atomic_path(p) as tmp:
            tmp.write_bytes(body)
        pages.append(p)
        paging = data.get("paging") or {}
        seen += len(data["observations"])
        count = paging.get("count", count)
        log.info("%s: %d observations (%d%s so far)", label, len(data["observations"]), seen,
                 f" of {count}" if count is not None else "")
        nxt = paging.get("next")
        if not nxt or paging.get("isLast") or not data["observations"]:
            break
        parts = urlsplit(nxt)
        path = parts.path.split("/data/", 1)[-1]
        url = client.url("melodi", f"data/{path}")
        query = dict(parse_qsl(parts.query))
    if count is not None and seen < int(count):
        raise UpstreamFormatError(f"Melodi {dataset}: received {seen} observations of the {count} announced "
                                  f"(paging.count) in {len(pages)} page(s); the result was cut, nothing is used")
    return pages


def _observations(pages: list[Path]):
    for p in pages:
        try:  # a clear error naming the page file (issue 9 corpus: malformed JSON, error document)
            data = json.loads(Path(p).read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UpstreamFormatError(f"{Path(p).name}: malformed JSON ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("observations"), list):
            keys = sorted(data)[:10] if isinstance(data, dict) else type(data).__name__
            raise UpstreamFormatError(f"{Path(p).name}: no 'observations' list in the Melodi response (found {keys})")
        yield from data["observations"]


def collect_series(pages: list[Path], s: MelodiSeries, year: int) -> dict[str, float]:
    """commune code -> value for one series, checking one observation per commune."""
    by_geo: dict[str, list[tuple[dict, float | None]]] = {}
    periods = set()
    for obs in _observations(pages):
        dims = obs.get("dimensions") or {}
        _, obj, code = split_geo(dims.get("GEO", ""))
        if obj != "COM":
            continue
        periods.add(str(dims.get("TIME_PERIOD")))
        val = ((obs.get("measures") or {}).get("OBS_VALUE_NIVEAU") or {}).get("value")
        by_geo.setdefault(code, []).append((dims, None if val is None else float(val)))
    if not by_geo:
        raise UpstreamFormatError(
            f"Melodi {s.dataset} {dict(s.filters)} TIME_PERIOD={year}: no commune (GEO *-COM-*) observation; "
            f"the dimension codes{' (unverified [?])' if s.status == '?' else ''} may be wrong: check "
            f"/range/{s.dataset}")
    if periods != {str(year)}:
        raise UpstreamFormatError(f"Melodi {s.dataset}: TIME_PERIOD {sorted(periods)} returned for a query on {year}")
    out = {}
    filt = {k for k, _ in s.filters}
    for code, items in by_geo.items():
        if len(items) > 1:
            totals = [it for it in items if all(v == "_T" for k, v in it[0].items() if k not in NON_DIMS | filt)]
            if len(totals) != 1:
                extra = sorted({k for it in items for k in it[0] if k not in NON_DIMS | filt})
                raise UpstreamFormatError(
                    f"Melodi {s.dataset} {dict(s.filters)}: {len(items)} observations for commune {code} and no "
                    f"single all-total row; add filters on {extra}")
            items = totals
        out[code] = items[0][1]
    return out


def fetch_census(client, out_dir: Path, year: int = 2021, base_year: int | None = None,
                 series: tuple[MelodiSeries, ...] | None = None, geo: str | None = None) -> tuple[Path, Path, dict]:
    """Query every census series, write the pages, then the CSV ``census_melodi_<year>.csv``
    (``;``, CODGEO + P{yy}_* columns). Returns (csv path, zip of the raw pages, report)."""
    series = CENSUS_SERIES if series is None else series
    t, t0 = int(year), int(base_year or int(year) - 6)
    out_dir = Path(out_dir)
    pages_dir = out_dir / "pages"
    values: dict[str, dict[str, float | None]] = {}
    columns: list[str] = []
    all_pages: list[Path] = []
    requests_before = client.requests_made
    for s in series:
        col = column_name(s, t, t0)
        yr = t if s.year == "t" else t0
        params = {**dict(s.filters), "TIME_PERIOD": str(yr)}
        if geo:
            params["GEO"] = geo
        pages = fetch_pages(client, s.dataset, params, pages_dir / col)
        all_pages.extend(pages)
        got = collect_series(pages, s, yr)
        columns.append(col)
        for code, v in got.items():
            values.setdefault(code, {})[col] = v
        log.info("Melodi census %s (%s%s): %d communes", col, s.dataset, ", unverified codes" if s.status == "?" else "",
                 len(got))
    from ..storage import atomic_path

    csv_path = out_dir / f"census_melodi_{t}.csv"
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=";", lineterminator="\n")
            w.writerow(["CODGEO", *columns])
            for code in sorted(values):
                row = values[code]
                w.writerow([code, *("" if row.get(c) is None else repr(row[c]) for c in columns)])
    zip_path = out_dir / f"melodi_pages_{t}.zip"
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in all_pages:  # fixed timestamps: same responses -> same bytes -> "unchanged"
                info = zipfile.ZipInfo(f"{p.parent.name}/{p.name}", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())
    report = {"year": t, "base_year": t0, "communes": len(values), "columns": columns,
              "requests": client.requests_made - requests_before, "pages": len(all_pages),
              "unverified_columns": [column_name(s, t, t0) for s in series if s.status == "?"]}
    return csv_path, zip_path, report


def acquire_census(client, settings, year: int | None = None, base_year: int | None = None, **_):
    """Land ``census_melodi_<t>.csv`` (+ the raw pages zip) in ``raw/census/<t>/``; the vintage is the
    census year read back from the observations' TIME_PERIOD. Skips every data request when the
    catalog ``modified`` dates of the datasets are unchanged since the last landing."""
    import shutil

    from ..fetch import land_generated, reuse_if_upstream_unchanged, work_dir

    t = int(year or os.environ.get("TI_CENSUS_YEAR") or 2021)
    t0 = int(base_year or os.environ.get("TI_CENSUS_BASE_YEAR") or t - 6)
    datasets = sorted({s.dataset for s in CENSUS_SERIES})
    upstream = {"year": t, "base_year": t0, **{ds: catalog_modified(client, ds) for ds in datasets}}
    hit = reuse_if_upstream_unchanged(settings, "census", f"melodi_{t}", upstream)
    if hit is not None:
        return hit
    work = work_dir(settings, "census", f"melodi_{t}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        csv_path, zip_path, report = fetch_census(client, work, t, t0)
        entries = {csv_path.name: {"url": client.url("melodi", "data/"), "rows": report["communes"],
                                   "vintage_basis": "TIME_PERIOD of the observations", "report": report},
                   zip_path.name: {"url": client.url("melodi", "data/"), "rows": None, "content": "raw JSON pages"}}
        return land_generated(settings, source="census", files=[(csv_path, csv_path.name), (zip_path, zip_path.name)],
                              vintage=str(t), entries=entries, state_key=f"melodi_{t}", upstream=upstream,
                              primary=csv_path.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
