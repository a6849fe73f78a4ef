"""
### SIRENE establishments

Lands the monthly `StockEtablissement` file in the raw zone (immutable, with manifest),
streams it into commune × activity × state × size-band counts and updates the
`ti_staging_sirene_stock` Asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, GEOGRAPHY, SIRENE, START


@dag(dag_id="ti_sirene", schedule=[GEOGRAPHY], start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, dagrun_timeout=timedelta(hours=3), tags=["territoires-industrie", "sirene"],
     doc_md=__doc__)
def ti_sirene():
    @task(outlets=[SIRENE])
    def ingest_stock() -> dict:
        from territoires_industrie.pipeline import run_sirene

        return run_sirene()

    ingest_stock()


ti_sirene()
