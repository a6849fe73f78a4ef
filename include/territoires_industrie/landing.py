"""Landing of acquired files in the immutable raw zone (used by every source and by
:mod:`.fetch`, the dispatcher; sources import this module, never the dispatcher).

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

log = logging.getLogger(__name__)

STATE_FILE = "_state.json"


@dataclass
class Acquired:
    source: str
    path: Path
    vintage: str
    changed: bool = True  # False when the upstream file was unchanged and the landed copy is reused
    manifest: dict = field(default_factory=dict)


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
