"""Candidacy review: a defensible one-page answer for a group of EPCI, from a published release.

* :func:`run_review` — entry point of ``ti-indicators review`` and of the ``ti_review`` DAG;
* :func:`review_candidacy` / :func:`review_batch` — the library functions behind it;
* :func:`load_review_context` / :func:`load_group_inputs_from_warehouse` — a published release
  as the review sees it (warehouse only, never staging or raw files);
* :mod:`.candidacy` — input parsing and validation (arguments, Démarches-simplifiées-like CSV).

See ``docs/review.md``.
"""

from .candidacy import Candidacy, CandidacyFileError, Problem, from_args, read_batch  # noqa: F401
from .inputs import (  # noqa: F401
    ReviewContext,
    ReviewInputsError,
    load_group_inputs_from_warehouse,
    load_review_context,
    restricted_inputs,
    review_inputs_from_staging,
)
from .review import CandidacyRejected, ReviewResult, review_batch, review_candidacy, run_review, short_text  # noqa: F401
