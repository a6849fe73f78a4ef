"""Validation gates (Great Expectations 1.x) run on every batch before it is staged and on
every indicator table before publication.

``gate(dataset, df, settings=..., vintage=..., context=...)`` is the single entry point the
stages call. A hard-gate failure raises :class:`HardGateFailed` (nothing is staged or
published); soft-gate failures are recorded and returned. Results live under
``<TI_DATA_DIR>/validation/``: per dataset and vintage ``result.json``, ``report.html``,
``metrics.json``, ``quarantine.parquet``/``.csv``; ``index.html`` shows the latest status.

Modules: :mod:`.suites` (one suite per dataset, as code), :mod:`.gates` (runner),
:mod:`.stream` (SIRENE file-level checks on the stream), :mod:`.drift` (soft gates),
:mod:`.quarantine`, :mod:`.render` (HTML), :mod:`.status` (latest status, CLI summary),
:mod:`.gx_custom` (two project expectations). Great Expectations is imported only inside
functions, never when this package is imported.
"""

from __future__ import annotations

from .gates import GateResult, HardGateFailed, ValidationSetupError, describe_failure, gate  # noqa: F401
from .status import format_summary, latest_status, overall_status  # noqa: F401
from .stream import SireneStreamChecker  # noqa: F401

DATASETS = ("geography", "sirene_stock", "sirene_history", "sirene_updates", "urssaf", "chomage_ze", "chomage_bdm", "census", "indicator_values", "composite")
