"""Stage functions called by the DAG tasks (and by the CLI). Each returns a small,
JSON-serialisable summary (paths and counts, never data and never secrets) for XCom.

    geography -> sirene -> employment -> indicators -> publish

Every stage reads the previous stage's *current* staging partition and writes its own
partition keyed by the vintage read from the data, then moves its ``CURRENT`` pointer.
The implementations live in :mod:`territoires_industrie.stages`, one module per stage.
"""

from __future__ import annotations

from .stages.common import SYNTHETIC_BANNER, redact_url  # noqa: F401
from .stages.employment import run_employment  # noqa: F401
from .stages.geography import run_geography  # noqa: F401
from .stages.indicators import run_indicators  # noqa: F401
from .stages.publish import run_publish  # noqa: F401
from .stages.sirene import run_sirene  # noqa: F401
