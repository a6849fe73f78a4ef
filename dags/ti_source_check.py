"""
### Source health check (daily, metadata only)

Asks every live source what it holds now, without downloading any data: data.gouv resource
dates and sizes (SIRENE stock and history, Territoires d'industrie lists), API Sirene
`/informations`, open.urssaf.fr dataset `modified` and fields, Melodi catalog `modified`,
census years and dimension codes (`range`), the newest zone d'emploi unemployment file, the
BDM last update, the insee.fr geography files (HEAD) and the newest COG year on offer.

Each source gets a state (`unchanged`, `new vintage`, `contract drift`, `unreachable`, or
`not checked` when no INSEE key is configured), written to the `source_status` table of the
warehouse; drift and unreachable sources are notified. Read it with `ti-indicators sources`
or in the "Sources" section of the report. In sample mode it does nothing and says so.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, ON_FAILURE, START, run_stage


@dag(dag_id="ti_source_check", schedule="@daily", start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, dagrun_timeout=timedelta(minutes=30),
     tags=["territoires-industrie", "sources"], doc_md=__doc__)
def ti_source_check():
    @task(pool="insee_api", pool_slots=1)
    def check_sources() -> dict:
        return run_stage("source_check")

    check_sources()


ti_source_check()
