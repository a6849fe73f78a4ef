"""Source acquisition, switchable between ``sample`` (bundled / generated files, the
default) and ``live`` (the official endpoints) by ``TI_SOURCE_MODE``.

Every stage obtains its input through :func:`acquire`, which lands the file in the
immutable raw zone ``raw/<source>/<vintage>/`` (with its manifest) and returns where it
is and which vintage it is, the vintage being read from the data or its publisher's
metadata, never from the wall clock.

Live landing (``land_download`` / ``land_local``):

- downloads go to ``raw/<source>/.incoming/<random>/<file>`` and are moved into
  ``raw/<source>/<vintage>/<file>`` only once complete and checked (size, checksum, zip CRC,
  required columns): a truncated or corrupt download never lands;
- a landed file is read-only and never overwritten (same bytes: no-op; different bytes under
  the same vintage: :class:`storage.LandingConflict`);
- ``raw/<source>/_state.json`` remembers, per file, the upstream marker (publisher metadata),
  ETag / Last-Modified and sha256 of the last landed copy, so an unchanged upstream file is
  not fetched again (``Acquired.changed`` is False and the landed copy is reused);
- ``manifest.json`` in each vintage folder records URL, fetch time, size, sha256, the HTTP
  headers of interest and the row count.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import storage
from .config import Settings
from .errors import DataError

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
STATE_FILE = "_state.json"


@dataclass
class Acquired:
    source: str
    path: Path
    vintage: str
    changed: bool = True  # False when the upstream file was unchanged and the landed copy is reused
    manifest: dict = field(default_factory=dict)


def acquire(source: str, settings: Settings, geo=None, **options) -> Acquired:
    """Land ``source`` in the raw zone and say where it is and which vintage it is.

    ``options`` are passed to live fetchers (e.g. ``since=`` for ``sirene_updates``,
    ``client=`` to reuse an :class:`~territoires_industrie.http.HttpClient`).
    """
    if settings.source_mode == "sample":
        return _acquire_sample(source, settings, geo)
    return _acquire_live(source, settings, **options)


class SampleFileAltered(DataError, RuntimeError):
    """A generated sample file no longer matches the sha256 recorded when it was generated."""


def _acquire_sample(source: str, settings: Settings, geo) -> Acquired:
    from .stages.common import ensure_sample, sample_file

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
    pref = (os.environ.get("TI_SIRENE_FORMAT") or "zip").strip().lower()
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


# --- landing machinery -----------------------------------------------------------------------
ROW_COUNT_MAX_BYTES = 256 << 20  # above this, rows are counted by the parse stage (one pass, not two)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def state_path(settings: Settings, source: str) -> Path:
    return settings.raw_dir / source / STATE_FILE


def read_state(settings: Settings, source: str) -> dict:
    p = state_path(settings, source)
    return json.loads(p.read_text()) if p.exists() else {}


def write_state(settings: Settings, source: str, file_name: str, entry: dict) -> None:
    state = read_state(settings, source)
    state[file_name] = entry
    storage.write_json(state_path(settings, source), state)


def count_rows(path: Path) -> int | None:
    """Data rows of a CSV (or of the single CSV member of a zip): newline count minus the header."""
    path = Path(path)

    def _count(f) -> int:
        n, last = 0, b"\n"
        while block := f.read(1 << 22):
            n += block.count(b"\n")
            last = block[-1:]
        return n + (0 if last == b"\n" else 1) - 1

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            csvs = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(csvs) != 1:
                return None
            with zf.open(csvs[0]) as f:
                return _count(f)
    with open(path, "rb") as f:
        return _count(f)


def _incoming(settings: Settings, source: str) -> Path:
    folder = settings.raw_dir / source / ".incoming"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="dl-", dir=folder))


def land_local(tmp: Path, settings: Settings, source: str, vintage: str, file_name: str, entry: dict) -> Path:
    """Move a complete, checked file into ``raw/<source>/<vintage>/<file_name>`` (read-only) and
    record it in the manifest. Same bytes already there: no-op; different bytes: LandingConflict."""
    tmp = Path(tmp)
    sha = entry.get("sha256") or storage.sha256_file(tmp)
    folder = settings.raw_dir / source / vintage
    dest = folder / file_name
    if dest.exists():
        if storage.sha256_file(dest) == sha:
            tmp.unlink(missing_ok=True)
            log.info("raw/%s/%s/%s already landed with the same sha256 (%s…)", source, vintage, file_name, sha[:12])
            return dest
        tmp.unlink(missing_ok=True)
        raise storage.LandingConflict(
            f"raw/{source}/{vintage}/{file_name} already exists with different content; a landed vintage is "
            f"immutable (upstream republished under the same vintage? investigate before deleting anything)")
    folder.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    storage.update_manifest(folder, file_name, {**entry, "sha256": sha, "bytes": dest.stat().st_size})
    log.info("landed raw/%s/%s/%s (%d bytes, sha256 %s…)", source, vintage, file_name, dest.stat().st_size, sha[:12])
    return dest


def _reuse(settings: Settings, source: str, file_name: str, state: dict, why: str) -> Acquired | None:
    rel = state.get("path")
    if not rel:
        return None
    path = settings.raw_dir / rel
    if not path.exists():
        return None
    log.info("%s/%s: %s; landed copy reused: raw/%s (vintage %s)", source, file_name, why, rel, state["vintage"])
    entry = storage.read_manifest(path.parent)["files"].get(path.name, {})
    return Acquired(source, path, state["vintage"], False, entry)


def land_download(client, settings: Settings, *, source: str, file_name: str, url: str, vintage: str | None = None,
                  vintage_from: Callable[[Path], str] | None = None, upstream: dict | None = None,
                  expected_size: int | None = None, checksum: tuple[str, str] | None = None,
                  expect: str | None = None, validate: Callable[[Path], int | None] | None = None,
                  extra: dict | None = None, params=None) -> Acquired:
    """Fetch ``url`` (conditionally) and land it. ``validate(tmp_path)`` raises on bad content and may
    return the row count; ``vintage_from(tmp_path)`` reads the vintage from the data when
    ``vintage`` is not known from metadata."""
    state = read_state(settings, source).get(file_name, {})
    if upstream is not None and state.get("upstream") == upstream:
        hit = _reuse(settings, source, file_name, state, "upstream metadata unchanged")
        if hit is not None:
            return hit
    landed = state.get("path") and (settings.raw_dir / state["path"]).exists()
    cond = {"etag": state.get("etag"), "last_modified": state.get("last_modified")} if landed else None
    work = _incoming(settings, source)
    tmp = work / file_name
    try:
        res = client.download(url, tmp, conditional=cond, expected_size=expected_size, checksum=checksum,
                              expect=expect, label=f"{source}/{file_name}", params=params)
        if res.not_modified:
            hit = _reuse(settings, source, file_name, state, f"not modified upstream (HTTP {res.status})")
            if hit is not None:
                write_state(settings, source, file_name, {**state, "upstream": upstream, "checked_at": _now()})
                return hit
            raise RuntimeError(f"{source}/{file_name}: server says not modified but no landed copy exists")
        if landed and res.sha256 == state.get("sha256"):
            hit = _reuse(settings, source, file_name, state, "downloaded bytes identical to the landed copy")
            write_state(settings, source, file_name, {**state, "upstream": upstream, "etag": res.headers.get("ETag"),
                                                      "last_modified": res.headers.get("Last-Modified"),
                                                      "checked_at": _now()})
            return hit
        rows = validate(tmp) if validate else None
        v = vintage or (vintage_from(tmp) if vintage_from else None)
        if not v:
            raise ValueError(f"{source}/{file_name}: no vintage (neither publisher metadata nor data gave one)")
        entry = {"url": url, "fetched_at": _now(), "http_status": res.status, "headers": res.headers,
                 "sha256": res.sha256, "rows": rows, "vintage": v, "attempts": res.attempts,
                 "upstream": upstream, **(extra or {})}
        dest = land_local(tmp, settings, source, v, file_name, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_state(settings, source, file_name, {
        "url": url, "path": str(dest.relative_to(settings.raw_dir)), "vintage": v, "sha256": res.sha256,
        "etag": res.headers.get("ETag"), "last_modified": res.headers.get("Last-Modified"),
        "upstream": upstream, "fetched_at": entry["fetched_at"],
    })
    return Acquired(source, dest, v, True, storage.read_manifest(dest.parent)["files"][file_name])


def land_generated(settings: Settings, *, source: str, files: list[tuple[Path, str]], vintage: str,
                   entries: dict[str, dict], state_key: str, upstream: dict | None, primary: str,
                   state_extra: dict | None = None) -> Acquired:
    """Land files assembled from several API responses (pages, chunks): all or nothing.

    ``files``: (temp path, final name). If the combined content equals the last landed one, nothing
    is landed and ``changed`` is False."""
    import hashlib

    digest = hashlib.sha256()
    for tmp, name in sorted(files, key=lambda x: x[1]):
        digest.update(name.encode())
        digest.update(storage.sha256_file(tmp).encode())
    combined = digest.hexdigest()
    state = read_state(settings, source).get(state_key, {})
    if state.get("combined_sha256") == combined:
        hit = _reuse(settings, source, primary, state, "responses identical to the landed copy")
        if hit is not None:
            write_state(settings, source, state_key, {**state, "upstream": upstream, "checked_at": _now()})
            for tmp, _ in files:
                Path(tmp).unlink(missing_ok=True)
            return hit
    landed = {}
    for tmp, name in files:
        landed[name] = land_local(tmp, settings, source, vintage, name,
                                  {"fetched_at": _now(), "vintage": vintage, "upstream": upstream, **entries.get(name, {})})
    dest = landed[primary]
    write_state(settings, source, state_key, {
        "path": str(dest.relative_to(settings.raw_dir)), "vintage": vintage, "combined_sha256": combined,
        "upstream": upstream, "fetched_at": _now(), "files": sorted(landed), **(state_extra or {}),
    })
    return Acquired(source, dest, vintage, True, storage.read_manifest(dest.parent)["files"][primary])


def reuse_if_upstream_unchanged(settings: Settings, source: str, state_key: str, upstream: dict | None) -> Acquired | None:
    """For multi-request sources: skip every data request when the publisher's metadata is unchanged."""
    state = read_state(settings, source).get(state_key, {})
    if upstream is not None and state.get("upstream") == upstream and state.get("path"):
        return _reuse(settings, source, Path(state["path"]).name, state, "upstream metadata unchanged")
    return None


def work_dir(settings: Settings, source: str, key: str) -> Path:
    """Persistent working folder for resumable multi-request pulls (pages + cursor state)."""
    p = settings.raw_dir / source / ".work" / key
    p.mkdir(parents=True, exist_ok=True)
    return p
