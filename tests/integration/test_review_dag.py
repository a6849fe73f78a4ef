"""The ``ti_review`` DAG run with ``airflow dags test -c <conf>`` (the trigger form's params) on
a fixture release: a single candidacy and a batch file produce their outputs; a bad code
fails the run with the reviewer's message."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from territoires_industrie import warehouse

from ..unit.review_world import BEAUNE, CLUSES, DIJON, FAUCIGNY, RELEASE, publish_world, write_geometry
from .airflow_env import AIRFLOW, airflow_env, migrate

pytestmark = pytest.mark.slow


def _dags_test(env: dict, conf: dict) -> subprocess.CompletedProcess:
    return subprocess.run([AIRFLOW, "dags", "test", "ti_review", "-c", json.dumps(conf)], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review_dag")
    env = airflow_env(tmp)
    data = tmp / "data"
    data.mkdir()
    eng = warehouse.get_engine(f"sqlite:///{data}/warehouse.db")  # the default warehouse of TI_DATA_DIR
    publish_world(eng, write_geometry(tmp / "geo"))
    eng.dispose()
    migrate(env)
    return tmp, env, data


def test_single_candidacy_from_the_trigger_form(airflow):
    tmp, env, data = airflow
    out = _dags_test(env, {"name": "Dijon-Beaune", "epci_codes": [DIJON, BEAUNE]})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    (folder,) = [p for p in (data / "reviews" / RELEASE).iterdir() if p.name.startswith("dijon-beaune-")]
    assert sorted(p.name for p in folder.iterdir()) == ["review.csv", "review.html", "review.json", "review.xlsx"]
    doc = json.loads((folder / "review.json").read_text(encoding="utf-8"))
    jobs = next(r for r in doc["indicators"] if r["indicator_id"] == "jobs_ind")
    assert jobs["value"] == 1500.0 and doc["perimeter"]["checks"]["main_ze_share"] == 0.625
    # the same list typed as one comma string, and an explicit release
    out = _dags_test(env, {"name": "Arve", "epci_codes": f"{FAUCIGNY}, {CLUSES}", "release": RELEASE})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert any(p.name.startswith("arve-") for p in (data / "reviews" / RELEASE).iterdir())


def test_batch_file_and_bad_input(airflow):
    tmp, env, data = airflow
    path = tmp / "depot.csv"
    path.write_text(f"dossier;nom_candidature;siren_epci\n1;Dijon-Beaune;{DIJON}\n1;Dijon-Beaune;{BEAUNE}\n"
                    f"2;Arve;{FAUCIGNY}\n2;Arve;{CLUSES}\n3;Erreur;21003\n", encoding="utf-8")
    out = _dags_test(env, {"csv_path": str(path)})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    (batch,) = [p for p in (data / "reviews" / RELEASE).iterdir() if p.name.startswith("batch-depot-")]
    summary = pd.read_csv(batch / "summary.csv")
    assert summary["statut"].tolist() == ["examinée", "examinée", "rejetée"] and summary["rang"].tolist()[:2] == [1, 2]
    assert "est un code commune (Ahuy)" in summary["remarques"].iloc[2]
    out = _dags_test(env, {"name": "Coquille", "epci_codes": ["20000017"]})
    assert out.returncode != 0
    assert "« 20000017 » n'est pas un code valide (8 chiffres)" in out.stdout + out.stderr
