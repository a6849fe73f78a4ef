"""Helpers the stages share. Reading staged data lives in :mod:`..staged` and the sample
bootstrap in :mod:`..sample.bootstrap` (lower layers use them too); they are re-exported here
for the stages."""

from __future__ import annotations

from ..sample.bootstrap import SYNTHETIC_BANNER, ensure_sample, sample_file
from ..staged import load_geography, read_current, source_vintages

__all__ = ["SYNTHETIC_BANNER", "ensure_sample", "load_geography", "read_current", "redact_url", "sample_file",
           "source_vintages"]


def redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
