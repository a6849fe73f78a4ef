"""SYNTHETIC sample inputs in the exact official layouts (see :mod:`.generate`).

Everything produced here is generated data, not official figures: no real extract of
SIRENE, URSSAF, localised unemployment, census or the ANCT 2023 Territoires d'industrie
list is bundled, so the default sample run uses these files instead.
"""

from .generate import DEFAULT_DEPARTEMENTS, DEFAULT_SEED, generate_sample

__all__ = ["DEFAULT_DEPARTEMENTS", "DEFAULT_SEED", "generate_sample"]
