"""
### SIRENE daily updates (API Sirene 3.11, live mode)

Pulls the establishments whose last treatment is after the watermark (the stock's as-of, or
the end of the last landed batch) from API Sirene, lands the pages and their flattened
`StockEtablissement` layout in the raw zone, and stages one row per SIRET treated since the
stock (`staging/sirene_updates/`). In sample mode it lands the SYNTHETIC daily feed derived from the
sample stock instead (same pages, same code).

Then **early warning**: the new batches are merged into the versioned store of industrial
establishments, their events (closures, re-openings, transfers, changes of activity, size drops,
creations) and the closure signals of every territory against its own history are written to the
warehouse (`establishment_events`, `territory_signals`) and one digest of the new alerts is sent,
the most difficult territories first. Read them with `ti-indicators alerts` or the report's
"Alertes" page.

Runs in the Airflow pool `insee_api` (create it once:
`airflow pools set insee_api 1 "INSEE API 30 req/min"`); the client also rate-limits itself
to 30 requests/minute. The key comes from `TI_INSEE_API_KEY` or the connection `insee_api`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, ON_FAILURE, START, run_stage


@dag(dag_id="ti_sirene_updates", schedule="@daily", start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, dagrun_timeout=timedelta(hours=6), tags=["territoires-industrie", "sirene"],
     doc_md=__doc__)
def ti_sirene_updates():
    @task(pool="insee_api", pool_slots=1)
    def pull_updates() -> dict:
        # same wrapper as every stage: run metrics, failure notification, bad data not retried
        return run_stage("sirene_updates")

    @task
    def early_warning(_pulled: dict) -> dict:
        # merge the new batches into the establishment store, events, territory signals, one digest
        return run_stage("early_warning")

    early_warning(pull_updates())


ti_sirene_updates()
