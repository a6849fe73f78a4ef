"""
### Publish

Publishes the current indicator release to the warehouse in one transaction (readers see
the previous release or the new one, never a mix), then builds the exports (CSV, `;` CSV for
French Excel, XLSX, Parquet) and the offline HTML report from that published release.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from ti_common import DEFAULT_ARGS, INDICATORS, ON_FAILURE, PUBLISHED, RELEASE_ID_PATTERN, START, run_stage


@dag(dag_id="ti_publish", schedule=[INDICATORS], start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, tags=["territoires-industrie", "publish"], doc_md=__doc__,
     params={"release": Param(None, type=["null", "string"], pattern=RELEASE_ID_PATTERN,
                              title="Release (facultatif)", description="re-publish this staged past period (YYYY-MM); "
                                                                            "empty = the current indicators partition")})
def ti_publish():
    @task(outlets=[PUBLISHED])
    def publish_release(params=None) -> dict:
        release = (params or {}).get("release")
        return run_stage("publish", **({"release": release} if release else {}))

    publish_release()


ti_publish()
