"""Shared Airflow objects for the Territoires d'industrie DAGs: Assets and defaults.

Assets carry names only (no paths, no credentials): the data behind them lives in the
staging area configured by ``TI_DATA_DIR``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset

START = pendulum.datetime(2026, 1, 1, tz="Europe/Paris")
DEFAULT_ARGS = {"owner": "ti-data", "retries": 1, "retry_delay": timedelta(minutes=5)}

GEOGRAPHY = Asset("ti_staging_geography")
SIRENE = Asset("ti_staging_sirene_stock")
EMPLOYMENT = Asset("ti_staging_employment")
INDICATORS = Asset("ti_staging_indicators")
PUBLISHED = Asset("ti_warehouse_release")
