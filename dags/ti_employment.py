"""
### Employment and unemployment

URSSAF salaried jobs by commune × APE, INSEE localised unemployment by zone d'emploi and
census (RP) active population by commune; updates the `ti_staging_employment` Asset.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, EMPLOYMENT, GEOGRAPHY, ON_FAILURE, START, run_stage


@dag(dag_id="ti_employment", schedule=[GEOGRAPHY], start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, tags=["territoires-industrie", "employment"], doc_md=__doc__)
def ti_employment():
    @task(outlets=[EMPLOYMENT])
    def ingest_employment() -> dict:
        return run_stage("employment")

    ingest_employment()


ti_employment()
