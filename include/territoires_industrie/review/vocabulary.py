"""French labels shared by the review document and its renderers (HTML, CSV, Excel)."""

from ..indicators.definitions import DOMAIN_LABELS

DOMAIN_LABELS_FR = {d: DOMAIN_LABELS[d] for d in "ABCD"}  # the scored domains
SECRET_FR = {"V": "publié", "A": "secret (moins de 3 établissements)", "B": "secret (un établissement > 85 %)",
             "D": "secret secondaire (un EPCI membre est masqué : le chiffre du groupe le révélerait par "
                  "différence)"}
