"""Stage functions called by the DAG tasks (and by the CLI). Each returns a small,
JSON-serialisable summary (paths and counts, never data and never secrets) for XCom.

    geography -> sirene (stock, history) -> employment -> indicators -> publish
    sirene_updates (daily) -> early_warning (store, events, signals, alerts digest)

Every stage reads the previous stage's *current* staging partition and writes its own
partition keyed by the vintage read from the data, then moves its ``CURRENT`` pointer.
The implementations live in :mod:`territoires_industrie.stages`, one module per stage.
"""

from __future__ import annotations

from .ops.tracking import tracked
from .stages import early_warning, employment, geography, indicators, publish, sirene, sirene_history, source_check
from .stages.common import SYNTHETIC_BANNER, redact_url  # noqa: F401

# Every stage run is timed, its summary recorded in the ``run_metrics`` table, and a
# notification sent (when configured) on failure or validation warnings.
run_geography = tracked("geography", geography.run_geography)
run_sirene = tracked("sirene", sirene.run_sirene)
run_sirene_updates = tracked("sirene_updates", sirene.run_sirene_updates)
run_early_warning = tracked("early_warning", early_warning.run_early_warning)
run_sirene_history = tracked("sirene_history", sirene_history.run_sirene_history)
run_employment = tracked("employment", employment.run_employment)
run_indicators = tracked("indicators", indicators.run_indicators)
run_publish = tracked("publish", publish.run_publish)
run_source_check = tracked("source_check", source_check.run_source_check)
