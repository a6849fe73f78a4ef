"""Validation gates run on every batch before it is staged and on every indicator table
before publication.

``gate(dataset, df, settings=..., vintage=..., context=...)`` is the single entry point the
stages call. A hard-gate failure raises :class:`HardGateFailed` (nothing is staged or
published); soft-gate failures are recorded and returned.
"""

from __future__ import annotations

from .gates import GateResult, HardGateFailed, gate  # noqa: F401
