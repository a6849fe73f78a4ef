"""The SYNTHETIC sample of the embedded default: generated once per data directory, on demand of
the acquisition dispatcher (:mod:`..fetch`), idempotent and safe under concurrency."""

from __future__ import annotations

import fcntl
import json
import logging
from contextlib import contextmanager
from pathlib import Path

from ..config import Settings
from ..geography import Geography

log = logging.getLogger(__name__)
SYNTHETIC_BANNER = "SYNTHETIC SAMPLE DATA — generated figures, not official statistics"


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_sample(settings: Settings, geo: Geography) -> dict:
    """Generate the deterministic SYNTHETIC sample once (idempotent, safe under concurrency)."""
    from . import generate_sample

    manifest_path = settings.sample_dir / "SAMPLE_MANIFEST.json"
    with _lock(settings.data_dir / ".sample.lock"):
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if sorted(manifest.get("departements", [])) == sorted(settings.sample_departements) and float(
                manifest.get("scale", 1.0)
            ) == settings.sample_scale:
                return manifest
        log.info("generating SYNTHETIC sample data for départements %s", ",".join(settings.sample_departements))
        generate_sample(settings.sample_dir, geo, departements=settings.sample_departements, scale=settings.sample_scale)
        return json.loads(manifest_path.read_text())


def sample_file(settings: Settings, manifest: dict, key: str) -> Path:
    return settings.sample_dir / manifest["files"][key]["path"]
