"""
### SIRENE establishments

Lands the monthly `StockEtablissement` file in the raw zone (immutable, with manifest),
streams it into commune × activity × state × size-band counts, then streams the
`StockEtablissementHistorique` file into the state of the industrial units at each year end
(establishment flows), and updates the `ti_staging_sirene_stock` Asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, GEOGRAPHY, ON_FAILURE, SIRENE, START, run_stage


@dag(dag_id="ti_sirene", schedule=[GEOGRAPHY], start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, dagrun_timeout=timedelta(hours=3), tags=["territoires-industrie", "sirene"],
     doc_md=__doc__)
def ti_sirene():
    @task
    def ingest_stock() -> dict:
        return run_stage("sirene")

    @task(outlets=[SIRENE])
    def ingest_history(stock: dict) -> dict:
        return run_stage("sirene_history")

    ingest_history(ingest_stock())


ti_sirene()
