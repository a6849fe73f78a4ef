"""INSEE Melodi API (``https://api.insee.fr/melodi``, no key, 30 requests/minute): census (RP)
population, active population and jobs by commune, written in the column layout of the
"bases communales" CSV that :func:`territoires_industrie.sources.census.parse_census` reads
(``CODGEO;P21_POP;P15_POP;...``).

Endpoints: ``GET /data/{DS}?DIM=CODE&...&TIME_PERIOD=YYYY&maxResult=N&totalCount=true`` returns
``{"observations": [{"dimensions": {"GEO": "2024-COM-44109", "TIME_PERIOD": ...}, "measures":
{"OBS_VALUE_NIVEAU": {"value": ...}}}], "paging": {"next": ..., "isLast": ..., "count": ...}}``;
``GET /catalog/{DS}`` gives the dataset's ``modified`` date (used to skip unchanged datasets).

``GET /range/{DS}`` lists, per concept (dimension), the codes the dataset holds, ``TIME_PERIOD``
included (format: ``{"code", "label", "range": [{"concept": {"code"}, "type", "values": [{"code"}]}]}``,
recorded in the InseeFrLab/melodi cassettes).

**Census years are read from the service, never assumed.** The ``DS_RP_*`` datasets hold only
the latest census set (e.g. 2011/2016/2022, then 2012/2017/2023); a query on a year that is not
there answers HTTP 200 with zero observations. So, before any data query, the ``range`` of
each dataset is read: the census year ``t`` is the latest ``TIME_PERIOD`` common to the
"PRINC" datasets, the base year ``t0`` the latest earlier one held by the datasets that need
it; every dimension code the queries send is checked against the ranges (an absent code fails
before any data request, naming the dataset, the dimension and the codes available); every
other dimension that has a total (``_T``) is filtered on it so the answers stay small.
``TI_CENSUS_YEAR`` / ``TI_CENSUS_BASE_YEAR`` force the years (still checked).

Mapping of each census column to Melodi queries (``P{yy}`` = the census year's two digits).
Evidence: [R] code listed in the recorded facts of ``../shared/data/real/README.md`` (AGE codes
of ``DS_RP_POPULATION_PRINC`` and ``DS_RP_EMPLOI_LR_PRINC``), [3P] used by third-party code
against the live API, [?] not documented: checked against ``range`` at run time.

| column | dataset | filters | year | evidence |
|---|---|---|---|---|
| P{t}_POP, P{t0}_POP | DS_RP_SERIE_HISTORIQUE | RP_MEASURE=POP | t, t0 | [3P] |
| P{t}_POP1564 | DS_RP_POPULATION_PRINC | RP_MEASURE=POP, SEX=_T, AGE = sum of Y15T24, Y25T39, Y40T54, Y55T64 | t | [R] (no Y15T64 code) |
| P{t}_POP2554 | DS_RP_POPULATION_PRINC | RP_MEASURE=POP, SEX=_T, AGE = sum of Y25T39, Y40T54 | t | [R] (no Y25T54 code) |
| P{t}_ACT1564 | DS_RP_EMPLOI_LR_PRINC | SEX=_T, EDUC=_T, AGE=Y15T64, EMPSTA_ENQ=1T2 | t | [R] AGE, [3P] EMPSTA_ENQ |
| P{t}_ACTOCC1564 | DS_RP_EMPLOI_LR_PRINC | ... EMPSTA_ENQ=1 | t | [R] / [3P] |
| P{t}_CHOM1564 | DS_RP_EMPLOI_LR_PRINC | ... EMPSTA_ENQ=2 | t | [R] / [3P] |
| P{t}_ACT2554 | DS_RP_EMPLOI_LR_PRINC | ... AGE=Y25T54, EMPSTA_ENQ=1T2 | t | [R] |
| P{t}_ACTOCC2554 | DS_RP_EMPLOI_LR_PRINC | ... AGE=Y25T54, EMPSTA_ENQ=1 | t | [R] |
| P{t}_EMPLT, P{t0}_EMPLT | DS_RP_EMPLOI_LT_PRINC | RP_MEASURE=NBEMP | t, t0 | [?] |

A column summed over several codes is missing for a commune absent from one of them (counted
in the report, never filled with a partial sum). Only ``GEO`` objects of type ``COM`` are kept
(arrondissements are already inside their commune's total); their COG year (``2025-COM-…``) is
counted and reported. Where a filtered query still returns several observations per commune,
the one whose remaining dimensions are all totals (``_T``) is kept; otherwise the query fails.
"""

from __future__ import annotations

import csv
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..config import env as setting
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
_POP = (("RP_MEASURE", "POP"), ("SEX", "_T"))
CENSUS_SERIES: tuple[MelodiSeries, ...] = (
    MelodiSeries("POP", "DS_RP_SERIE_HISTORIQUE", (("RP_MEASURE", "POP"),), "t", "3P"),
    MelodiSeries("POP", "DS_RP_SERIE_HISTORIQUE", (("RP_MEASURE", "POP"),), "t0", "3P"),
    MelodiSeries("POP1564", "DS_RP_POPULATION_PRINC", _POP + (("AGE", ("Y15T24", "Y25T39", "Y40T54", "Y55T64")),),
                 "t", "R"),
    MelodiSeries("POP2554", "DS_RP_POPULATION_PRINC", _POP + (("AGE", ("Y25T39", "Y40T54")),), "t", "R"),
    MelodiSeries("ACT1564", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y15T64"), ("EMPSTA_ENQ", "1T2")), "t", "3P"),
    MelodiSeries("ACTOCC1564", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y15T64"), ("EMPSTA_ENQ", "1")), "t", "3P"),
    MelodiSeries("CHOM1564", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y15T64"), ("EMPSTA_ENQ", "2")), "t", "3P"),
    MelodiSeries("ACT2554", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y25T54"), ("EMPSTA_ENQ", "1T2")), "t", "R"),
    MelodiSeries("ACTOCC2554", "DS_RP_EMPLOI_LR_PRINC", _LR + (("AGE", "Y25T54"), ("EMPSTA_ENQ", "1")), "t", "R"),
    MelodiSeries("EMPLT", "DS_RP_EMPLOI_LT_PRINC", (("RP_MEASURE", "NBEMP"),), "t", "?"),
    MelodiSeries("EMPLT", "DS_RP_EMPLOI_LT_PRINC", (("RP_MEASURE", "NBEMP"),), "t0", "?"),
)
#: datasets whose latest TIME_PERIOD is the census year (the base year comes from the others)
YEAR_DATASETS = ("DS_RP_POPULATION_PRINC", "DS_RP_EMPLOI_LR_PRINC")


class CensusPlanError(UpstreamFormatError):
    """The service does not hold what the census queries need (years, dimension codes)."""


def fetch_range(client, dataset: str) -> dict[str, list[str]]:
    """``/range/{DS}``: concept code -> codes held (``TIME_PERIOD`` included)."""
    _, data = client.get_json(client.url("melodi", f"range/{dataset}"), label=f"Melodi range {dataset}")
    if not isinstance(data, dict) or not isinstance(data.get("range"), list):
        raise UpstreamFormatError(f"Melodi range {dataset}: no 'range' list in the response")
    out: dict[str, list[str]] = {}
    for item in data["range"]:
        concept = ((item or {}).get("concept") or {}).get("code")
        values = (item or {}).get("values")
        if not concept or not isinstance(values, list):
            raise UpstreamFormatError(f"Melodi range {dataset}: an entry without concept code or values list")
        out[str(concept)] = [str(v.get("code")) for v in values if isinstance(v, dict) and v.get("code") is not None]
    return out


def _years(ranges: dict, ds: str) -> set[int]:
    return {int(y) for y in ranges.get(ds, {}).get("TIME_PERIOD", []) if str(y).isdigit()}


def plan_years(ranges: dict, year: int | None = None, base_year: int | None = None,
               series: tuple[MelodiSeries, ...] | None = None) -> tuple[int, int]:
    """(t, t0) from the ranges: t = latest year common to the PRINC datasets, t0 = latest earlier
    year held by every dataset queried at t0. Forced years must be held too."""
    series = CENSUS_SERIES if series is None else series
    yds = [ds for ds in YEAR_DATASETS if any(s.dataset == ds for s in series)] or \
        sorted({s.dataset for s in series if s.year == "t"})
    common = set.intersection(*[_years(ranges, ds) for ds in yds])
    if not common:
        raise CensusPlanError(f"Melodi: no census year common to {yds} "
                              f"({ {ds: sorted(_years(ranges, ds)) for ds in yds} })")
    t = int(year) if year else max(common)
    base_ds = sorted({s.dataset for s in series if s.year == "t0"})
    held0 = set.intersection(*[_years(ranges, ds) for ds in base_ds]) if base_ds else set()
    earlier = [y for y in held0 if y < t]
    t0 = int(base_year) if base_year else (max(earlier) if earlier else None)
    if t0 is None:
        raise CensusPlanError(f"Melodi: no base census year before {t} held by {base_ds} "
                              f"({ {ds: sorted(_years(ranges, ds)) for ds in base_ds} })")
    return t, t0


def check_plan(ranges: dict, series: tuple[MelodiSeries, ...], t: int, t0: int) -> None:
    """Every dataset, year and dimension code the queries send is held by the service."""
    problems = []
    for s in series:
        r = ranges.get(s.dataset)
        yr = t if s.year == "t" else t0
        if r is None:
            problems.append(f"{s.dataset}: no range")
            continue
        if yr not in _years(ranges, s.dataset):
            problems.append(f"{s.dataset}: TIME_PERIOD {yr} not held (held: {sorted(_years(ranges, s.dataset))})")
        for dim, code in s.filters:
            held = r.get(dim)
            if held is None:
                problems.append(f"{s.dataset}: no dimension {dim} (dimensions: {sorted(r)})")
                continue
            for c in (code if isinstance(code, tuple) else (code,)):
                if c not in held:
                    problems.append(f"{s.dataset}: {dim}={c} not held (codes: {sorted(held)})")
    if problems:
        raise CensusPlanError("Melodi census queries do not match the service: " + "; ".join(sorted(set(problems))))


def totals_filter(ranges: dict, s: MelodiSeries) -> dict[str, str]:
    """``_T`` on every other dimension of the dataset that has a total (smaller answers)."""
    used = {d for d, _ in s.filters} | NON_DIMS
    return {dim: "_T" for dim, codes in ranges.get(s.dataset, {}).items() if dim not in used and "_T" in codes}


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


def collect_series(pages: list[Path], s: MelodiSeries, year: int, geo_years: dict | None = None) -> dict[str, float]:
    """commune code -> value for one series, checking one observation per commune.
    ``geo_years``: filled with the COG year of the GEO codes -> observation count."""
    by_geo: dict[str, list[tuple[dict, float | None]]] = {}
    periods = set()
    for obs in _observations(pages):
        dims = obs.get("dimensions") or {}
        gy, obj, code = split_geo(dims.get("GEO", ""))
        if obj != "COM":
            continue
        if geo_years is not None:
            geo_years[gy] = geo_years.get(gy, 0) + 1
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


def fetch_census(client, out_dir: Path, year: int | None = None, base_year: int | None = None,
                 series: tuple[MelodiSeries, ...] | None = None, geo: str | None = None,
                 ranges: dict | None = None) -> tuple[Path, Path, dict]:
    """Read the datasets' ranges, plan the years, query every census series, write the pages,
    then the CSV ``census_melodi_<t>.csv`` (``;``, CODGEO + P{yy}_* columns). Returns (csv path,
    zip of the raw pages, report)."""
    series = CENSUS_SERIES if series is None else series
    requests_before = client.requests_made
    if ranges is None:
        ranges = {ds: fetch_range(client, ds) for ds in sorted({s.dataset for s in series})}
    t, t0 = plan_years(ranges, year, base_year, series)
    check_plan(ranges, series, t, t0)
    out_dir = Path(out_dir)
    pages_dir = out_dir / "pages"
    values: dict[str, dict[str, float | None]] = {}
    columns: list[str] = []
    all_pages: list[Path] = []
    geo_years: dict = {}
    partial: dict[str, int] = {}
    for s in series:
        col = column_name(s, t, t0)
        yr = t if s.year == "t" else t0
        summed = [(d, c) for d, c in s.filters if isinstance(c, tuple)]
        fixed = {d: c for d, c in s.filters if not isinstance(c, tuple)}
        variants = [{}] if not summed else [{summed[0][0]: c} for c in summed[0][1]]
        parts = []
        for v in variants:
            one = MelodiSeries(s.suffix, s.dataset, tuple({**fixed, **v}.items()), s.year, s.status)
            params = {**totals_filter(ranges, one), **dict(one.filters), "TIME_PERIOD": str(yr)}
            if geo:
                params["GEO"] = geo
            tag = col if not v else f"{col}-{next(iter(v.values()))}"
            pages = fetch_pages(client, s.dataset, params, pages_dir / tag)
            all_pages.extend(pages)
            parts.append(collect_series(pages, one, yr, geo_years))
        got = parts[0]
        if len(parts) > 1:
            codes = set().union(*parts)
            got = {c: (sum(p[c] for p in parts) if all(c in p and p[c] is not None for p in parts) else None)
                   for c in codes}
            partial[col] = sum(1 for v in got.values() if v is None)
        columns.append(col)
        for code, v in got.items():
            values.setdefault(code, {})[col] = v
        log.info("Melodi census %s (%s, %d quer%s): %d communes", col, s.dataset, len(variants),
                 "y" if len(variants) == 1 else "ies", len(got))
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
              "held_years": {ds: sorted(_years(ranges, ds)) for ds in sorted(ranges)},
              "geo_years": {str(k): v for k, v in sorted(geo_years.items(), key=lambda kv: str(kv[0]))},
              "missing_in_a_summed_code": partial,
              "unverified_columns": [column_name(s, t, t0) for s in series if s.status == "?"]}
    return csv_path, zip_path, report


def acquire_census(client, settings, year: int | None = None, base_year: int | None = None, **_):
    """Land ``census_melodi_<t>.csv`` (+ the raw pages zip) in ``raw/census/<t>/``, ``t`` being the
    latest census year the service holds (``range``), unless ``TI_CENSUS_YEAR`` forces one. Skips
    every data request when the ranges' years and the catalog ``modified`` dates are unchanged
    since the last landing. A new census set is a new vintage, landed beside the old one."""
    import shutil

    from ..landing import land_generated, reuse_if_upstream_unchanged, work_dir

    forced = year or setting("TI_CENSUS_YEAR")
    forced0 = base_year or setting("TI_CENSUS_BASE_YEAR")
    datasets = sorted({s.dataset for s in CENSUS_SERIES})
    ranges = {ds: fetch_range(client, ds) for ds in datasets}
    t, t0 = plan_years(ranges, int(forced) if forced else None, int(forced0) if forced0 else None, CENSUS_SERIES)
    check_plan(ranges, CENSUS_SERIES, t, t0)
    log.info("Melodi census: year %s, base year %s (held: %s)", t, t0,
             {ds: sorted(_years(ranges, ds)) for ds in datasets})
    upstream = {"year": t, "base_year": t0, **{ds: catalog_modified(client, ds) for ds in datasets}}
    hit = reuse_if_upstream_unchanged(settings, "census", f"melodi_{t}", upstream)
    if hit is not None:
        return hit
    work = work_dir(settings, "census", f"melodi_{t}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        csv_path, zip_path, report = fetch_census(client, work, t, t0, ranges=ranges)
        entries = {csv_path.name: {"url": client.url("melodi", "data/"), "rows": report["communes"],
                                   "vintage_basis": "latest TIME_PERIOD held (range)", "report": report},
                   zip_path.name: {"url": client.url("melodi", "data/"), "rows": None, "content": "raw JSON pages"}}
        return land_generated(settings, source="census", files=[(csv_path, csv_path.name), (zip_path, zip_path.name)],
                              vintage=str(t), entries=entries, state_key=f"melodi_{t}", upstream=upstream,
                              primary=csv_path.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
