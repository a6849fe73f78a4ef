"""French labels shared by the review document and its renderers (HTML, CSV, Excel)."""

DOMAIN_LABELS_FR = {"A": "Recul de l'emploi industriel", "B": "Érosion du tissu industriel",
                    "C": "Éloignement de l'emploi", "D": "Déprise territoriale"}
SECRET_FR = {"V": "publié", "A": "secret (moins de 3 établissements)", "B": "secret (un établissement > 85 %)",
             "D": "secret secondaire (un EPCI membre est masqué : le chiffre du groupe le révélerait par "
                  "différence)"}
