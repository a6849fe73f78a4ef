"""Operations: run metrics recorded in a queryable table, and failure/warning notifications."""

from .metrics import record_stage, run_metrics_table  # noqa: F401
from .notify import notifiers_configured  # noqa: F401
from .tracking import tracked  # noqa: F401
