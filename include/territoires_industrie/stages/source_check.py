"""Source health: what each live source holds *now*, without downloading any data (issue 14).

A cheap, daily check (DAG ``ti_source_check``) asks every source for its metadata only:

| source | request (metadata only) | marker compared with the last check |
|---|---|---|
| ``sirene_stock``, ``sirene_history`` | data.gouv dataset API | resource ``last_modified``, ``filesize`` |
| ``sirene_updates`` | API Sirene ``/informations`` (needs the key) | ``dateDernierTraitementMaximum`` (établissements), ``versionService`` |
| ``urssaf`` | open.urssaf.fr catalog ``/catalog/datasets/{id}`` | ``metas.default.modified``; field names |
| ``census`` | Melodi ``/catalog/{id}`` and ``/range/{id}`` | ``modified`` of each dataset, census years, dimension codes |
| ``chomage_ze`` | insee.fr page 1893230 | newest ``chomage-zone-t1-2003-t{q}-{yyyy}.xlsx`` |
| ``chomage_bdm`` | BDM SDMX, one series, ``lastNObservations=1`` | ``LAST_UPDATE`` and last period |
| ``geography`` | insee.fr HEAD of the EPCI / ZE / passage / COG files | newest COG year with EPCI and ZE compositions, ``Last-Modified`` |
| ``ti_2023`` | data.gouv dataset API | newest 2023-2027 list file |

Each source gets one state:

- ``unchanged``: the marker equals the last check's;
- ``new vintage``: the marker moved (a new file, a new census set is *not* this: see drift), or first check;
- ``contract drift``: the service answers but no longer what the pipeline relies on: a resource,
  column, field or dimension code gone, a URL that now answers 404 (moved), a census set replaced
  (the column names change), an API version change;
- ``unreachable``: no usable answer (connection error, timeout, HTTP 5xx after retries);
- ``not checked``: nothing to ask (no INSEE key configured for API Sirene).

Rows go to the ``source_status`` table of the warehouse (one per source per check); drift and
unreachable sources are notified (as the warnings of the stage, by ``ops.tracking``). ``ti-indicators sources`` prints the latest state of each
source; the report has a "Sources" section built from the same table.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable

import sqlalchemy as sa

from ..config import Settings, cog_year, get_settings, insee_api_key
from ..errors import DataError
from ..source_status import DRIFT, NEW, NOT_CHECKED, STATES, UNCHANGED, UNREACHABLE, source_status_table

log = logging.getLogger(__name__)


class ContractDrift(DataError):
    """The service answered, but not what the pipeline relies on."""


@dataclass
class Probe:
    """What one source holds now: ``marker`` identifies the vintage; ``drift`` lists broken promises."""

    marker: dict
    url: str
    drift: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- probes (metadata only) ------------------------------------------------------------------
def _probe_sirene_bulk(client, source: str) -> Probe:
    from ..sources import datagouv

    rx = r"StockEtablissementHistorique" if source == "sirene_history" else \
        r"StockEtablissement(?!Historique|LiensSuccession)"
    url = client.url("datagouv", f"datasets/{datagouv.SIRENE_DATASET}/")
    data = datagouv.get_dataset(client, datagouv.SIRENE_DATASET)
    try:
        res = datagouv.resolve_resource(data, rx, ("zip", "parquet"))
    except datagouv.ResourceNotFound as exc:
        raise ContractDrift(f"data.gouv SIRENE dataset: no resource titled like {rx} any more ({exc})") from exc
    return Probe({"last_modified": res.last_modified, "filesize": res.filesize, "title": res.title}, url)


def _probe_ti(client, source: str) -> Probe:
    from ..sources import datagouv, ti_live

    url = client.url("datagouv", f"datasets/{datagouv.TI_DATASET}/")
    data = datagouv.get_dataset(client, datagouv.TI_DATASET)
    try:
        res, file_date = ti_live.newest(data, "com")
    except datagouv.ResourceNotFound as exc:
        raise ContractDrift(f"data.gouv TI dataset: no 2023-2027 commune list any more ({exc})") from exc
    return Probe({"file": res.url.rsplit("/", 1)[-1], "file_date": file_date, "last_modified": res.last_modified}, url)


def _probe_urssaf(client, source: str) -> Probe:
    from ..schemas import URSSAF
    from ..sources import urssaf

    url = client.url("urssaf", f"catalog/datasets/{urssaf.DATASET_ID}")
    meta = urssaf.dataset_metadata(client)
    probe = Probe({"modified": urssaf.modified_date(meta)}, url)
    fields = (meta.get("dataset", meta) or {}).get("fields")
    if isinstance(fields, list) and fields:
        names = {f.get("name") for f in fields if isinstance(f, dict)}
        missing = [c for c in URSSAF.required if c not in names]
        if missing:
            probe.drift.append(f"open.urssaf.fr {urssaf.DATASET_ID}: field(s) {missing} gone from the dataset")
        years = sorted({int(n.rsplit("_", 1)[1]) for n in names if n and n.startswith("effectifs_salaries_")
                        and n.rsplit("_", 1)[1].isdigit()})
        probe.marker["years"] = [years[0], years[-1]] if years else []
    else:
        probe.notes.append("the catalog answer lists no fields: column names checked at download only")
    return probe


def _probe_census(client, source: str) -> Probe:
    from ..sources import melodi

    datasets = sorted({s.dataset for s in melodi.CENSUS_SERIES})
    modified = {ds: melodi.catalog_modified(client, ds) for ds in datasets}
    ranges = {ds: melodi.fetch_range(client, ds) for ds in datasets}
    probe = Probe({"modified": modified}, client.url("melodi", "catalog"))
    try:
        t, t0 = melodi.plan_years(ranges)
        melodi.check_plan(ranges, melodi.CENSUS_SERIES, t, t0)
        probe.marker["census_years"] = [t0, t]
    except melodi.CensusPlanError as exc:
        probe.drift.append(str(exc))
    return probe


def _probe_chomage_ze(client, source: str) -> Probe:
    from ..sources import chomage

    try:
        url, name, quarter = chomage.discover_latest_ze(client)
    except FileNotFoundError as exc:
        raise ContractDrift(str(exc)) from exc
    return Probe({"file": name, "quarter": quarter}, client.url("insee_files", "fr/statistiques/1893230"))


def _probe_bdm(client, source: str) -> Probe:
    from ..sources import bdm

    idbank = str(bdm.load_idbanks()["idbank"].iloc[0])
    url = client.url("bdm", f"data/SERIES_BDM/{idbank}")
    _, body, _ = client.get_bytes(url, params={"lastNObservations": 1})
    series = _sdmx_series_attributes(body, url)
    return Probe({"idbank": idbank, "last_update": series.get("LAST_UPDATE"), "last_period": series.get("TIME_PERIOD")},
                 url)


def _sdmx_series_attributes(body: bytes, url: str) -> dict:
    import xml.etree.ElementTree as ET

    from ..http import UpstreamFormatError

    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise UpstreamFormatError(f"BDM {url}: not XML ({exc}); body starts {body[:60]!r}") from exc
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Series":
            out = dict(el.attrib)
            obs = [o for o in el if o.tag.rsplit("}", 1)[-1] == "Obs"]
            periods = [o.attrib.get("TIME_PERIOD") for o in obs if o.attrib.get("TIME_PERIOD")]
            if periods:  # INSEE lists the newest first; do not rely on the order
                out["TIME_PERIOD"] = max(periods)
            return out
    raise ContractDrift(f"BDM {url}: no Series element in the SDMX answer (series withdrawn?)")


def _probe_geography(client, source: str) -> Probe:
    from ..sources import geo_live

    ref = cog_year()
    probe = Probe({"reference_cog": ref}, client.url("insee_files", "fr/statistiques/fichier"))
    files = {}
    for key in ("geo_epci", "geo_ze", "geo_passage", "geo_appartenance"):
        url, name = geo_live.file_url(client, key, ref)
        resp = client.request("HEAD", url, allow_status=(404, 410))
        if resp.status_code in (404, 410):
            probe.drift.append(f"{name}: HTTP {resp.status_code} (moved or withdrawn) at {url}")
        else:
            files[name] = resp.headers.get("Last-Modified") or resp.headers.get("Content-Length")
        resp.close()
    probe.marker["files"] = files
    newest = ref
    for year in range(ref + 1, date.today().year + 2):
        if all(client.exists(geo_live.file_url(client, k, year)[0]) for k in ("geo_epci", "geo_ze")):
            newest = year
    probe.marker["newest_cog_with_compositions"] = newest
    if newest > ref:
        probe.notes.append(f"COG {newest} EPCI and zone d'emploi compositions are on offer; the pipeline's "
                           f"reference is COG {ref} (TI_COG_YEAR)")
    return probe


def _probe_sirene_api(client, source: str) -> Probe | None:
    from ..http import insee_credential

    key = insee_api_key()
    if not key:
        return None
    url = client.url("insee_api", "informations")
    _, data = client.get_json(url, credential=insee_credential(key), label="API Sirene /informations")
    if not isinstance(data, dict) or "versionService" not in data:
        raise ContractDrift(f"API Sirene {url}: no versionService in the answer (keys: {sorted(data)[:8] if isinstance(data, dict) else type(data).__name__})")
    dates = {str(d.get("collection")): d.get("dateDernierTraitementMaximum")
             for d in data.get("datesDernieresMisesAJourDesDonnees") or [] if isinstance(d, dict)}
    etab = next((v for k, v in dates.items() if k.lower().endswith("tablissements")), None)
    version = str(data["versionService"])
    probe = Probe({"version": ".".join(version.split(".")[:2]), "etablissements_max_treatment": etab}, url)
    if not version.startswith("3.11"):
        probe.drift.append(f"API Sirene now answers versionService {version}; the pipeline is written for 3.11")
    if data.get("etatService") not in (None, "UP"):
        probe.notes.append(f"etatService {data.get('etatService')}")
    return probe


PROBES: dict[str, Callable] = {
    "sirene_stock": _probe_sirene_bulk, "sirene_history": _probe_sirene_bulk, "sirene_updates": _probe_sirene_api,
    "urssaf": _probe_urssaf, "census": _probe_census, "chomage_ze": _probe_chomage_ze, "chomage_bdm": _probe_bdm,
    "geography": _probe_geography, "ti_2023": _probe_ti,
}


# --- states ----------------------------------------------------------------------------------
def _classify_error(exc: Exception) -> tuple[str, str]:
    from ..http import HttpError

    if isinstance(exc, ContractDrift):
        return DRIFT, str(exc)
    if isinstance(exc, HttpError) and exc.status in (404, 410):
        return DRIFT, f"HTTP {exc.status} from {exc.url}: the URL moved or was withdrawn"
    if isinstance(exc, DataError):  # malformed answer: not what the contract says
        return DRIFT, str(exc)
    if isinstance(exc, (HttpError, OSError)):
        return UNREACHABLE, f"{type(exc).__name__}: {exc}"
    raise exc


def _compare(source: str, marker: dict, previous: dict | None) -> tuple[str, str]:
    if previous is None:
        return NEW, "first check"
    if marker == previous:
        return UNCHANGED, ""
    prev_years, years = previous.get("census_years"), marker.get("census_years")
    if source == "census" and prev_years and years and prev_years != years:
        return DRIFT, (f"census set replaced: {prev_years} -> {years}; column names change "
                       f"(P{prev_years[1] % 100:02d}_* -> P{years[1] % 100:02d}_*)")
    changed = sorted(k for k in set(marker) | set(previous) if marker.get(k) != previous.get(k))
    return NEW, "; ".join(f"{k}: {previous.get(k)!r} -> {marker.get(k)!r}" for k in changed)


def check_source(client, source: str, previous: dict | None) -> dict:
    t = time.perf_counter()
    row = {"source": source, "checked_at": datetime.now(timezone.utc), "marker": None, "url": None}
    try:
        probe = PROBES[source](client, source)
    except Exception as exc:  # noqa: BLE001 - classified; anything else re-raised there
        state, details = _classify_error(exc)
        return {**row, "state": state, "details": details[:2000], "seconds": round(time.perf_counter() - t, 3)}
    if probe is None:
        return {**row, "state": NOT_CHECKED, "details": "no INSEE API key configured (TI_INSEE_API_KEY or the "
                "Airflow connection insee_api)", "seconds": round(time.perf_counter() - t, 3)}
    if probe.drift:
        state, details = DRIFT, "; ".join(probe.drift)
    else:
        state, details = _compare(source, probe.marker, previous)
    details = "; ".join([d for d in [details, *probe.notes] if d])
    return {**row, "state": state, "details": details[:2000], "marker": probe.marker, "url": probe.url,
            "seconds": round(time.perf_counter() - t, 3)}


# --- storage ---------------------------------------------------------------------------------
def _last_markers(engine: sa.Engine) -> dict[str, dict]:
    """The last *known* marker of each source (rows without a marker: unreachable, drift by error)."""
    t = source_status_table
    newest = (sa.select(t.c.source, sa.func.max(t.c.id).label("id")).where(t.c.marker.is_not(None))
              .group_by(t.c.source).subquery())
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.source, t.c.marker).join(newest, t.c.id == newest.c.id)).all()
    return {s: json.loads(m) for s, m in rows}


def run_source_check(settings: Settings | None = None, sources: list[str] | None = None) -> dict:
    """Check every live source (metadata only), record and notify; returns the states."""
    from ..http import client_from_env
    from ..warehouse import get_engine

    settings = settings or get_settings()
    if settings.source_mode != "live":
        return {"skipped": True, "reason": "sample mode: the inputs are the bundled SYNTHETIC sample, no live source"}
    engine = get_engine(settings.warehouse_url)
    try:
        source_status_table.create(engine, checkfirst=True)
        previous = _last_markers(engine)
        client = client_from_env(settings)
        rows = []
        for i, source in enumerate(sources or list(PROBES), 1):
            row = check_source(client, source, previous.get(source))
            log.info("source %d/%d %-15s %-15s (%.1f s) %s", i, len(sources or PROBES), source, row["state"],
                     row["seconds"], row["details"][:200])
            rows.append(row)
        with engine.begin() as conn:
            conn.execute(source_status_table.insert(),
                         [{**r, "marker": json.dumps(r["marker"], sort_keys=True) if r["marker"] is not None else None}
                          for r in rows])
    finally:
        engine.dispose()
    bad = [r for r in rows if r["state"] in (DRIFT, UNREACHABLE)]
    states = {r["source"]: r["state"] for r in rows}
    return {"checked": len(rows), "states": states,
            "counts": {s: sum(1 for v in states.values() if v == s) for s in STATES if s in states.values()},
            # notified by the stage wrapper (ops.tracking) like every stage's warnings
            "warnings": [f"{r['source']}: {r['state']} - {r['details'][:250]}" for r in bad]}
