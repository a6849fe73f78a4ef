"""Source acquisition, switchable between ``sample`` (bundled / generated files, the
default) and ``live`` (the official endpoints) by ``TI_SOURCE_MODE``.

Every stage obtains its input through :func:`acquire`, which lands the file in the
immutable raw zone ``raw/<source>/<vintage>/`` (with its manifest) and returns where it
is and which vintage it is, the vintage being read from the data or its publisher's
metadata, never from the wall clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import storage
from .config import Settings

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


@dataclass
class Acquired:
    source: str
    path: Path
    vintage: str
    changed: bool = True  # False when the upstream file was unchanged and the landed copy is reused
    manifest: dict = field(default_factory=dict)


def acquire(source: str, settings: Settings, geo=None) -> Acquired:
    if settings.source_mode == "sample":
        return _acquire_sample(source, settings, geo)
    return _acquire_live(source, settings)


def _acquire_sample(source: str, settings: Settings, geo) -> Acquired:
    from .stages.common import ensure_sample, sample_file

    if source not in SAMPLE_KEYS:
        raise KeyError(f"no sample file for source {source!r}; known: {sorted(SAMPLE_KEYS)}")
    manifest = ensure_sample(settings, geo)
    src = sample_file(settings, manifest, SAMPLE_KEYS[source])
    vintage = str(manifest["as_of"][SAMPLE_ASOF[source]])
    entry = manifest["files"][SAMPLE_KEYS[source]]
    raw = storage.land_file(src, settings.raw_dir, source, vintage,
                            {"origin": "sample (SYNTHETIC)", "rows": entry.get("rows"), "url": None})
    return Acquired(source, raw, vintage, True, storage.read_manifest(raw.parent)["files"][raw.name])


def _acquire_live(source: str, settings: Settings) -> Acquired:
    raise NotImplementedError(
        f"live acquisition of {source!r} is not implemented yet (set TI_SOURCE_MODE=sample)"
    )
