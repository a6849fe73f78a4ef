"""Source acquisition, switchable between ``sample`` (bundled / generated files, the
default) and ``live`` (the official endpoints) by ``TI_SOURCE_MODE``.

Every stage obtains its input through :func:`acquire`, which lands the file in the
immutable raw zone ``raw/<source>/<vintage>/`` (with its manifest) and returns where it
is and which vintage it is, the vintage being read from the data or its publisher's
metadata, never from the wall clock.

The landing machinery itself (raw zone, manifests, upstream state) is :mod:`.landing`.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Callable

from . import storage
from .config import Settings
from .config import env as setting
from .errors import DataError
from .landing import ROW_COUNT_MAX_BYTES, Acquired, count_rows, land_download

log = logging.getLogger(__name__)

#: source key -> key of the file in the sample manifest
SAMPLE_KEYS = {
    "sirene_stock": "sirene_stock",
    "sirene_history": "sirene_history",
    "urssaf": "urssaf",
    "chomage_ze": "chomage_ze",
    "census": "census",
    "ti_2023": "ti_2023",
    "ti_2023_grpt": "ti_2023_grpt",
}
#: source key -> key of the as-of date in the sample manifest
SAMPLE_ASOF = {
    "sirene_stock": "sirene_stock", "sirene_history": "sirene_stock", "urssaf": "urssaf",
    "chomage_ze": "chomage_ze", "census": "census", "ti_2023": "sirene_stock", "ti_2023_grpt": "sirene_stock",
}
#: every source key that live mode knows how to fetch
LIVE_SOURCES = (
    "sirene_stock", "sirene_history", "sirene_updates", "urssaf", "chomage_ze", "chomage_bdm", "census",
    "geo_cog", "geo_appartenance", "geo_epci", "geo_ze", "geo_passage", "geo_admin_express", "ti_2023", "ti_2023_grpt",
)


def acquire(source: str, settings: Settings, geo=None, **options) -> Acquired:
    """Land ``source`` in the raw zone and say where it is and which vintage it is.

    ``options`` are passed to live fetchers (e.g. ``since=`` for ``sirene_updates``,
    ``client=`` to reuse an :class:`~territoires_industrie.http.HttpClient`).
    """
    if settings.source_mode == "sample":
        if source == "sirene_updates":
            return _sample_updates(settings, geo, **options)
        return _acquire_sample(source, settings, geo)
    return _acquire_live(source, settings, **options)


class SampleFileAltered(DataError, RuntimeError):
    """A generated sample file no longer matches the sha256 recorded when it was generated."""


def _acquire_sample(source: str, settings: Settings, geo) -> Acquired:
    from .sample.bootstrap import ensure_sample, sample_file

    if source not in SAMPLE_KEYS:
        raise KeyError(f"no sample file for source {source!r}; known: {sorted(SAMPLE_KEYS)}")
    manifest = ensure_sample(settings, geo)
    src = sample_file(settings, manifest, SAMPLE_KEYS[source])
    vintage = str(manifest["as_of"][SAMPLE_ASOF[source]])
    entry = manifest["files"][SAMPLE_KEYS[source]]
    # checked BEFORE landing: a sample file altered since it was generated must not enter the
    # immutable raw zone (it would block every later run with a LandingConflict)
    if entry.get("sha256") and storage.sha256_file(src) != entry["sha256"]:
        raise SampleFileAltered(
            f"{src}: the SYNTHETIC sample file differs from the one generated (sha256 in "
            f"{settings.sample_dir / 'SAMPLE_MANIFEST.json'}); nothing was landed. Delete {settings.sample_dir} to "
            f"regenerate the sample, or restore the file")
    raw = storage.land_file(src, settings.raw_dir, source, vintage,
                            {"origin": "sample (SYNTHETIC)", "rows": entry.get("rows"), "url": None})
    return Acquired(source, raw, vintage, True, storage.read_manifest(raw.parent)["files"][raw.name])


def _sample_updates(settings: Settings, geo, stock_as_of: str | None = None, **_) -> Acquired:
    """Sample mode has no API Sirene: land the SYNTHETIC daily feed derived from the sample stock
    (:mod:`.sample.updates_feed`), one batch per day after the watermark, through the same
    flattening and landing code as the API pull. Returns the last batch landed (``changed``
    False when every day of the feed is already landed)."""
    import shutil

    from .landing import Acquired, work_dir
    from .sample.updates_feed import write_feed
    from .sources import sirene_api

    stock = _acquire_sample("sirene_stock", settings, geo)
    as_of = stock_as_of or stock.vintage
    feed_dir = work_dir(settings, sirene_api.SOURCE, "sample_feed")
    got = Acquired(sirene_api.SOURCE, feed_dir, sirene_api.watermark(settings, as_of), False, {})
    try:
        for day in write_feed(stock.path, as_of, feed_dir / "pages"):
            since = sirene_api.watermark(settings, as_of)
            if day["day"] < since[:10]:
                continue
            out = sirene_api.land_pages(settings, day["pages"], since, feed_dir / f"land-{day['day']}",
                                        q=sirene_api.q_updated_since(since),
                                        url="sample: SYNTHETIC API Sirene 3.11 feed (no network)",
                                        total=day["records"])
            got = out if out.changed else got
    finally:
        shutil.rmtree(feed_dir, ignore_errors=True)
    return got


# --- live ------------------------------------------------------------------------------------
def _acquire_live(source: str, settings: Settings, **options) -> Acquired:
    from .sources import bdm, chomage, datagouv, geo_live, melodi, sirene_api, ti_live, urssaf

    client = options.pop("client", None)
    if client is None:
        from .http import client_from_env

        client = client_from_env(settings)
    if source in ("sirene_stock", "sirene_history"):
        return _sirene_bulk(source, settings, client, datagouv)
    handlers = {
        "sirene_updates": lambda: sirene_api.acquire_updates(client, settings, **options),
        "urssaf": lambda: urssaf.acquire_export(client, settings),
        "chomage_ze": lambda: chomage.acquire_ze(client, settings, **options),
        "chomage_bdm": lambda: bdm.acquire_taux_chomage(client, settings),
        "census": lambda: melodi.acquire_census(client, settings, **options),
        "ti_2023": lambda: ti_live.acquire(client, settings, "com"),
        "ti_2023_grpt": lambda: ti_live.acquire(client, settings, "grpt"),
    }
    if source.startswith("geo_") and source in LIVE_SOURCES:
        return geo_live.acquire(client, settings, source, **options)
    if source not in handlers:
        raise KeyError(f"no live fetcher for source {source!r}; known: {list(LIVE_SOURCES)}")
    return handlers[source]()


def _sirene_bulk(source: str, settings: Settings, client, datagouv) -> Acquired:
    """SIRENE stock / history: resolved through the data.gouv dataset API by resource title.

    ``TI_SIRENE_FORMAT=parquet`` prefers the official Parquet twin (falls back to the zip)."""
    pref = setting("TI_SIRENE_FORMAT").lower()
    formats = ("parquet", "zip") if pref == "parquet" else ("zip", "parquet")
    base = "StockEtablissementHistorique" if source == "sirene_history" else "StockEtablissement"
    rx = r"StockEtablissementHistorique" if source == "sirene_history" else \
        r"StockEtablissement(?!Historique|LiensSuccession)"
    data = datagouv.get_dataset(client, datagouv.SIRENE_DATASET)
    res = datagouv.resolve_resource(data, rx, formats)
    kind = "parquet" if (res.format == "parquet" or res.url.lower().endswith(".parquet")) else "zip"
    file_name = f"{base}_utf8.{kind}"
    validate = _sirene_validator(source, kind)
    return land_download(client, settings, source=source, file_name=file_name, url=res.url, vintage=res.vintage,
                         upstream=res.marker, expected_size=res.filesize, checksum=res.checksum, expect=kind,
                         validate=validate, extra={"title": res.title, "vintage_basis": "data.gouv last_modified",
                                                   "format": kind})


def _sirene_validator(source: str, kind: str) -> Callable[[Path], int | None]:
    """Header check by column name before landing (missing required column -> error naming it)."""
    from .schemas import SIRENE_HISTORY, SIRENE_STOCK

    schema = SIRENE_HISTORY if source == "sirene_history" else SIRENE_STOCK

    def check(path: Path) -> int | None:
        if kind == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            schema.check_header(pf.schema_arrow.names, path)
            return pf.metadata.num_rows
        with zipfile.ZipFile(path) as zf:
            csvs = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
            if len(csvs) != 1:
                from .http import DownloadError

                raise DownloadError(f"{path.name}: expected one CSV member, found {[i.filename for i in zf.infolist()]}")
            with zf.open(csvs[0]) as f:
                header = f.readline().decode("utf-8-sig").strip().split(",")
            schema.check_header([h.strip().strip('"') for h in header], path)
            return count_rows(path) if csvs[0].compress_size < ROW_COUNT_MAX_BYTES else None

    return check


