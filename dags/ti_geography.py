"""
### Geography (COG vintage)

Builds the commune table of one COG vintage (commune → EPCI, zone d'emploi 2020,
département, région) and the Territoires d'industrie perimeters, then updates the
`ti_staging_geography` Asset, which starts the source DAGs.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, GEOGRAPHY, ON_FAILURE, START, run_stage


@dag(dag_id="ti_geography", schedule="@monthly", start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, tags=["territoires-industrie", "geography"], doc_md=__doc__)
def ti_geography():
    @task(outlets=[GEOGRAPHY])
    def build_geography() -> dict:
        return run_stage("geography")

    build_geography()


ti_geography()
