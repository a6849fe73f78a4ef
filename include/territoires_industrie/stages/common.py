"""Helpers shared by the stages: sample generation, staging reads, vintages."""

from __future__ import annotations

import fcntl
import json
import logging
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .. import storage
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
    from ..sample import generate_sample

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


def load_geography(settings: Settings) -> Geography:
    _, folder = storage.current(settings.staging_dir, "geography")
    return Geography.load(folder)



def read_current(settings: Settings, dataset: str, file: str) -> tuple[str, pd.DataFrame]:
    vintage, folder = storage.current(settings.staging_dir, dataset)
    return vintage, pd.read_parquet(folder / file)


def source_vintages(settings: Settings) -> dict:
    return {d: storage.current(settings.staging_dir, d)[0]
            for d in ("geography", "sirene_stock", "urssaf", "chomage_ze", "census")}


def redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
