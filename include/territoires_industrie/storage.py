"""Files on disk: atomic writes, the immutable raw landing zone, staging partitions.

- ``raw/<source>/<vintage>/<file>`` + ``manifest.json``: immutable once landed.
- ``staging/<dataset>/<vintage>/*.parquet`` + ``staging/<dataset>/CURRENT`` (the vintage in use).
Every write goes to a temporary file in the same folder and is renamed when complete, so a
crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import DataError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; rename onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(dest: Path, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def swap_dir_into_place(tmp: Path, final: Path) -> None:
    """Rename a finished folder ``tmp`` onto ``final``. An older copy is renamed away first and
    deleted after: a reader sees the old folder or the new one, never a half-written one."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def write_json(dest: Path, obj) -> Path:
    return atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class LandingConflict(DataError, RuntimeError):
    pass


def land_file(src: Path, raw_dir: Path, source: str, vintage: str, manifest_extra: dict | None = None) -> Path:
    """Copy ``src`` into the immutable raw zone ``raw/<source>/<vintage>/``.

    Landing the same bytes twice is a no-op; different bytes under an existing vintage
    is refused (a vintage is immutable: upstream republished -> new vintage).
    """
    src = Path(src)
    folder = Path(raw_dir) / source / vintage
    dest = folder / src.name
    digest = sha256_file(src)
    if dest.exists():
        if sha256_file(dest) == digest:
            log.info("raw/%s/%s/%s already landed (sha256 %s…), skipped", source, vintage, src.name, digest[:12])
            return dest
        raise LandingConflict(
            f"raw/{source}/{vintage}/{src.name} already exists with different content; a landed vintage is immutable"
        )
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    update_manifest(folder, src.name, {"sha256": digest, "bytes": dest.stat().st_size, **(manifest_extra or {})})
    log.info("landed raw/%s/%s/%s (%d bytes)", source, vintage, src.name, dest.stat().st_size)
    return dest


def update_manifest(folder: Path, file_name: str, entry: dict) -> Path:
    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"files": {}}
    manifest["files"][file_name] = entry
    return write_json(path, manifest)


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {"files": {}}


def staging_partition(staging_dir: Path, dataset: str, vintage: str) -> Path:
    p = Path(staging_dir) / dataset / vintage
    p.mkdir(parents=True, exist_ok=True)
    return p


def set_current(staging_dir: Path, dataset: str, vintage: str) -> None:
    atomic_write_text(Path(staging_dir) / dataset / "CURRENT", vintage + "\n")


def current(staging_dir: Path, dataset: str) -> tuple[str, Path]:
    """The vintage of ``dataset`` in use and its folder; clear error if never built."""
    pointer = Path(staging_dir) / dataset / "CURRENT"
    if not pointer.exists():
        raise FileNotFoundError(f"staging dataset {dataset!r} has not been built yet ({pointer} missing): run its DAG first")
    vintage = pointer.read_text().strip()
    return vintage, Path(staging_dir) / dataset / vintage


def write_parquet(df, dest: Path) -> Path:
    """Atomic, deterministic parquet write of a pandas DataFrame."""
    with atomic_path(dest) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(dest)


def jsonable(v):
    """Plain JSON, one rule for every document the platform writes (review, validation, status):
    containers recursively (keys as text), numpy scalars as Python numbers, NaN, infinities,
    ``pd.NA`` and ``NaT`` as null (JSON has no infinity), any other object as its text."""
    import math

    import pandas as pd

    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)
