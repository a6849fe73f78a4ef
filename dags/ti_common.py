"""Shared Airflow objects for the Territoires d'industrie DAGs: Assets and defaults.

Assets carry names only (no paths, no credentials): the data behind them lives in the
staging area configured by ``TI_DATA_DIR``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset
from ti_notifier import TiRunNotifier

START = pendulum.datetime(2026, 1, 1, tz="Europe/Paris")
# Retries default to 1 in production; `make run` and the tests set TI_TASK_RETRIES=0 so a
# failure surfaces at once instead of after the retry delay.
DEFAULT_ARGS = {
    "owner": "ti-data",
    "retries": int(os.environ.get("TI_TASK_RETRIES", "1")),
    "retry_delay": timedelta(minutes=5),
}
#: DAG-level failure callback (run timeouts, killed tasks); in-task failures are notified by
#: the stage tracking with more detail. Sends nothing unless a channel is configured.
ON_FAILURE = [TiRunNotifier()]

GEOGRAPHY = Asset("ti_staging_geography")
SIRENE = Asset("ti_staging_sirene_stock")
EMPLOYMENT = Asset("ti_staging_employment")
INDICATORS = Asset("ti_staging_indicators")
PUBLISHED = Asset("ti_warehouse_release")
#: Release ids in trigger forms: ``YYYY-MM`` only. Equal to
#: ``territoires_industrie.arguments.RELEASE_ID_PATTERN`` (tested; not imported: DAG files parse
#: without the library).
RELEASE_ID_PATTERN = r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"


def run_stage(name: str, **kwargs) -> dict:
    """Run ``territoires_industrie.pipeline.run_<name>`` inside a task.

    Bad *data* (any ``territoires_industrie.errors.DataError``: a corrupt file, a missing
    column, a failed hard validation gate, a bad argument) is not a transient fault: it fails
    the task without retries (AirflowFailException) instead of failing the same way 5 minutes
    later. Network and database errors keep the task's retries.
    """
    from airflow.sdk.exceptions import AirflowFailException
    from territoires_industrie import pipeline
    from territoires_industrie.errors import DataError

    try:
        return getattr(pipeline, f"run_{name}")(**kwargs)
    except DataError as exc:  # corrupt file, missing column, failed hard gate, bad argument...
        raise AirflowFailException(str(exc)) from exc
