"""One failure policy (issue 18 item 3, issue 21): bad data fails the Airflow task at once,
without retries; transient faults keep their retries. Checked through the real task wrapper."""

from __future__ import annotations

import pytest


def test_bad_argument_fails_the_task_without_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from ti_common import run_stage

    monkeypatch.setenv("TI_DATA_DIR", str(tmp_path))
    with pytest.raises(AirflowFailException, match="not a release id; expected YYYY-MM"):
        run_stage("publish", release="../2026-11")
    assert not (tmp_path / "exports").exists()


def test_incomplete_staging_fails_the_task_without_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from ti_common import run_stage

    monkeypatch.setenv("TI_DATA_DIR", str(tmp_path))
    folder = tmp_path / "staging" / "indicators" / "2026-11"
    folder.mkdir(parents=True)
    (folder / "release_meta.json").write_text('{"release_id": "2026-11"}')
    with pytest.raises(AirflowFailException, match="lacks territories.parquet"):
        run_stage("publish", release="2026-11")


def test_transient_errors_keep_their_retries(monkeypatch):
    from territoires_industrie import pipeline
    from ti_common import run_stage

    def down(*a, **k):
        raise ConnectionError("warehouse unreachable")

    monkeypatch.setattr(pipeline, "run_geography", down)
    with pytest.raises(ConnectionError):  # not AirflowFailException: Airflow retries it
        run_stage("geography")


def test_every_bad_data_exception_is_a_data_error():
    from territoires_industrie.arguments import InvalidArgument
    from territoires_industrie.errors import DataError
    from territoires_industrie.fetch import SampleFileAltered
    from territoires_industrie.geography import SourceFormatError
    from territoires_industrie.http import HttpError, UpstreamFormatError
    from territoires_industrie.review.candidacy import CandidacyFileError
    from territoires_industrie.schemas import MissingColumnError
    from territoires_industrie.sources.sirene import SireneFileError
    from territoires_industrie.sources.tabular import TabularFileError
    from territoires_industrie.stages.publish import StagingIncomplete
    from territoires_industrie.stages.sirene_history import HistoryStatesError
    from territoires_industrie.storage import LandingConflict
    from territoires_industrie.validation.gates import HardGateFailed

    for cls in (InvalidArgument, SampleFileAltered, SourceFormatError, UpstreamFormatError, CandidacyFileError,
                MissingColumnError, SireneFileError, TabularFileError, StagingIncomplete, HistoryStatesError,
                LandingConflict, HardGateFailed):
        assert issubclass(cls, DataError), cls
    assert not issubclass(HttpError, DataError)  # network: retried
    assert issubclass(TabularFileError, ValueError)  # historical bases kept for callers
