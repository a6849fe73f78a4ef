"""
### Candidacy review

Reviews a candidacy for the *Territoires d'industrie* programme — a name and a list of EPCI
SIREN codes (or commune codes, or an existing Territoire d'industrie id) — or a whole batch
file (export of the Démarches simplifiées form: one row per candidacy x EPCI), against a
**published** release of the warehouse.

Outputs, under `<TI_DATA_DIR>/reviews/<release>/`: for each candidacy an HTML page
(printable on one or two A4 pages), a JSON document and a CSV/XLSX row, stamped with the data
vintages; for a batch, a summary table ranking the candidacies. Flags and their thresholds
follow the review protocol (methodology §3.4). Triggered by hand (trigger form); the same
library function is behind `ti-indicators review`. See `docs/review.md`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from ti_common import DEFAULT_ARGS, ON_FAILURE, RELEASE_ID_PATTERN, START

PARAMS = {
    "name": Param("", type="string", maxLength=200, title="Nom de la candidature",
                  description="Nom de la candidature examinée (ignoré avec un fichier de lot)."),
    "epci_codes": Param([], type=["array", "string"], items={"type": "string"}, title="SIREN des EPCI",
                        description="Un SIREN par ligne, ou une chaîne séparée par des virgules "
                                    "(ex. 200000172,200069193)."),
    "commune_codes": Param(None, type=["null", "array", "string"], items={"type": "string"},
                           title="Codes commune (facultatif)",
                           description="À la place des EPCI : codes INSEE des communes, convertis en leurs EPCI."),
    "ti_id": Param(None, type=["null", "string"], title="Territoire d'industrie existant (facultatif)",
                   description="À la place des EPCI : identifiant d'un Territoire d'industrie (ex. ti-2701)."),
    "csv_path": Param(None, type=["null", "string"], title="Fichier de lot (facultatif)",
                      description="Chemin d'un CSV (une ligne par candidature x EPCI : dossier;nom_candidature;"
                                  "siren_epci) lisible par le worker ; remplace les champs ci-dessus."),
    "release": Param(None, type=["null", "string"], pattern=RELEASE_ID_PATTERN,
                     title="Release (facultatif)", description="Release publiée, ex. 2026-11 ; par défaut la plus récente."),
}


@dag(dag_id="ti_review", schedule=None, start_date=START, catchup=False, max_active_runs=1, params=PARAMS,
     default_args=DEFAULT_ARGS, on_failure_callback=ON_FAILURE, tags=["territoires-industrie", "review"],
     doc_md=__doc__)
def ti_review():
    @task(retries=0)  # a rejected candidacy is an input problem: retrying would not help
    def review_candidacies(**context) -> dict:
        from territoires_industrie.review import run_review

        p = context["params"]
        out = run_review(name=p.get("name"), epci=p.get("epci_codes"), communes=p.get("commune_codes"),
                         ti=p.get("ti_id"), csv_path=p.get("csv_path"), release=p.get("release"))
        print(out.pop("text"))
        return out

    review_candidacies()


ti_review()
