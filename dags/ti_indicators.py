"""
### Indicators

Runs when both the SIRENE and the employment staging Assets are updated: builds commune
counts, sums them to every level (EPCI, zone d'emploi, département, région, Territoire
d'industrie) and derives the indicators.
"""

from __future__ import annotations

from airflow.sdk import dag, task
from ti_common import DEFAULT_ARGS, EMPLOYMENT, INDICATORS, ON_FAILURE, SIRENE, START, run_stage


@dag(dag_id="ti_indicators", schedule=(SIRENE & EMPLOYMENT), start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, tags=["territoires-industrie", "indicators"], doc_md=__doc__)
def ti_indicators():
    @task(outlets=[INDICATORS])
    def compute_indicators() -> dict:
        return run_stage("indicators")

    compute_indicators()


ti_indicators()
