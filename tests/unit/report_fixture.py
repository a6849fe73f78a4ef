"""A small hand-made release (two releases, in fact) with every contract column, for the
export and report tests. Numbers are chosen so that expected outputs can be worked out by hand.

Release 2026-11 (current) and 2026-10 (previous). Territoires d'industrie of phase 2018-2022:

| id | label | pop | score | rank 2026-11 | rank 2026-10 | a1 (%) |
|---|---|---|---|---|---|---|
| TI1-0001 | Vallée de l'Arve | 45 678 | 61.5 | 1 | 2 | 12.4949 (raw 14.0, w 0.8, unreliable) |
| TI1-0003 | Bassin minier | 250 000 | 40.0 | 2 | 1 | 20.0 |
| TI1-0002 | <script>alert(1)</script> | 12 000 | 20.0 | 3 | 3 | 5.0 |
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

SCRIPT_LABEL = "<script>alert(1)</script>"
EPCI_CODES = ("200000172", "242100410", "242500361")

TERRITORIES = [
    # level, id, label, dep, reg, n_communes, population, phase
    ("commune", "01001", "L'Abergement-Clémenciat", "01", "84", 1, 832.0, None),
    ("commune", "21231", "Dijon", "21", "27", 1, 156920.0, None),
    ("epci", "200000172", "CC Faucigny-Glières", "74", "84", 7, 27000.0, None),
    ("epci", "242100410", "Dijon Métropole", "21", "27", 23, 255000.0, None),
    ("epci", "242500361", "Grand Besançon Métropole", "25", "27", 68, 197000.0, None),
    ("ze", "8405", "Vallée de l'Arve", "74", "84", 41, 180000.0, None),
    ("ze", "2701", "Dijon", "21", "27", 250, 380000.0, None),
    ("departement", "74", "Haute-Savoie", "74", "84", 270, 840000.0, None),
    ("departement", "21", "Côte-d'Or", "21", "27", 698, 534000.0, None),
    ("region", "84", "Auvergne-Rhône-Alpes", "69", "84", 4000, 8100000.0, None),
    ("region", "27", "Bourgogne-Franche-Comté", "21", "27", 3700, 2800000.0, None),
    ("ti", "TI1-0001", "Vallée de l'Arve", "74", "84", 12, 45678.0, "2018-2022"),
    ("ti", "TI1-0002", SCRIPT_LABEL, "21", "27", 5, 12000.0, "2018-2022"),
    ("ti", "TI1-0003", "Bassin minier", "62", "32", 40, 250000.0, "2018-2022"),
]

DICTIONARY = [
    # id, label, domain, direction, unit, period, reliability_min
    ("a1_ind_jobs_decline", "Recul de l'emploi salarié industriel sur 5 ans", "A", 1, "%", "2020-2025",
     "E_ind,t0 ≥ 200 salariés"),
    ("b1_net_closure_rate", "Taux net de fermeture des établissements industriels employeurs (3 ans)", "B", 1,
     "% sur 3 ans", "2022-2025", "S_t0 ≥ 10 établissements"),
    ("jobs_ind", "Emplois salariés industriels (31/12)", "G", -1, "emplois", "2025", ""),
    ("jobs_ind_change_5y", "Évolution de l'emploi salarié industriel sur 5 ans", "X", -1, "%", "2020-2025", ""),
    ("population", "Population municipale (recensement)", "X", -1, "habitants", "2021", ""),
]


def _iv_rows(release: str) -> list[dict]:
    shift = 0.0 if release == "2026-11" else 1.0
    rows = []

    def add(level, tid, ind, value, *, raw=None, w=1.0, reliable=True, secret="V", n=20.0, num=None, den=None):
        d = next(x for x in DICTIONARY if x[0] == ind)
        rows.append({"level": level, "territory_id": tid, "indicator_id": ind, "period": d[5],
                     "value": None if secret != "V" else value,
                     "value_raw": None if secret != "V" else (value if raw is None else raw),
                     "shrink_weight": w, "reliable": reliable, "secret_status": secret, "n_units": n,
                     "numerator": None if secret != "V" else num, "denominator": None if secret != "V" else den,
                     "unit": d[4], "domain": d[2], "direction": d[3]})

    # Territoires d'industrie
    add("ti", "TI1-0001", "a1_ind_jobs_decline", 12.4949 - shift, raw=14.0, w=0.8, reliable=False, num=-617.0,
        den=4938.0)
    add("ti", "TI1-0001", "b1_net_closure_rate", 3.25, num=13.0, den=400.0)
    add("ti", "TI1-0001", "jobs_ind", 4321.0, num=4321.0)
    add("ti", "TI1-0001", "jobs_ind_change_5y", -12.4949, num=-617.0, den=4938.0)
    add("ti", "TI1-0001", "population", 45678.0, num=45678.0)
    add("ti", "TI1-0002", "a1_ind_jobs_decline", 5.0, num=-10.0, den=200.0)
    add("ti", "TI1-0002", "b1_net_closure_rate", 1.0, num=1.0, den=100.0)
    add("ti", "TI1-0002", "jobs_ind", None, secret="B" if release == "2026-11" else "V", n=4.0)
    add("ti", "TI1-0002", "jobs_ind_change_5y", -5.0, num=-10.0, den=200.0)
    add("ti", "TI1-0002", "population", 12000.0, num=12000.0)
    add("ti", "TI1-0003", "a1_ind_jobs_decline", 20.0, num=-2000.0, den=10000.0)
    add("ti", "TI1-0003", "b1_net_closure_rate", None, secret="A", n=2.0)
    add("ti", "TI1-0003", "jobs_ind", 8000.0, num=8000.0)
    add("ti", "TI1-0003", "jobs_ind_change_5y", -20.0, num=-2000.0, den=10000.0)
    add("ti", "TI1-0003", "population", 250000.0, num=250000.0)
    # other levels: a few values
    for lv, tid, a1, jobs in (("ze", "8405", 8.5, 21000.0), ("ze", "2701", 2.5, 15000.0),
                              ("epci", "200000172", 10.0, 3000.0), ("epci", "242100410", 1.5, 9000.0),
                              ("epci", "242500361", 4.0, 7000.0), ("departement", "74", 6.0, 60000.0),
                              ("departement", "21", 3.0, 30000.0), ("region", "84", 2.0, 500000.0),
                              ("region", "27", 4.0, 240000.0), ("commune", "01001", 0.0, 12.0),
                              ("commune", "21231", 1.25, 8000.0)):
        add(lv, tid, "a1_ind_jobs_decline", a1, num=-a1, den=100.0)
        add(lv, tid, "jobs_ind", jobs, num=jobs)
    return rows


def _composite_rows(release: str) -> list[dict]:
    base = {"rank_regional": 1.0, "percentile_regional": 100.0, "mc_mean_rank_shift": 0.5, "n_indicators_missing": 0}
    if release == "2026-11":
        ti = [("TI1-0001", "84", 61.5, 1, 1.0, 2.0, 0.7, False), ("TI1-0003", "32", 40.0, 2, 1.0, 3.0, 0.3, True),
              ("TI1-0002", "27", 20.0, 3, 2.0, 3.0, 0.0, False)]
    else:
        ti = [("TI1-0001", "84", 45.0, 2, 1.0, 3.0, 0.3, True), ("TI1-0003", "32", 50.0, 1, 1.0, 2.0, 0.7, True),
              ("TI1-0002", "27", 20.0, 3, 2.0, 3.0, 0.0, False)]
    rows = []
    for tid, reg, score, rank, p05, p95, p10, unc in ti:
        rows.append({**base, "level": "ti", "territory_id": tid, "reference_set": "ti_2018_2022", "score": score,
                     "domain_a": score + 10, "domain_b": score - 10, "domain_c": score, "domain_d": 5.0,
                     "rank_national": rank, "percentile_national": 100.0 * (3 - rank) / 2, "decile": 11 - 3 * rank,
                     "mc_rank_median": float(rank), "mc_rank_p05": p05, "mc_rank_p95": p95, "p_top10": p10,
                     "p_top20": min(1.0, p10 + 0.2), "uncertain": unc, "gate_industrial": tid != "TI1-0002",
                     "n_reference": 3, "region": reg})
    for lv, rs, items in (("ze", "ze", [("8405", "84", 70.0, 1), ("2701", "27", 30.0, 2)]),
                          ("epci", "epci", [("200000172", "84", 55.0, 1), ("242500361", "27", 35.0, 2),
                                            ("242100410", "27", 15.0, 3)])):
        n = len(items)
        for tid, reg, score, rank in items:
            rows.append({**base, "level": lv, "territory_id": tid, "reference_set": rs, "score": score,
                         "domain_a": score, "domain_b": score, "domain_c": score, "domain_d": score,
                         "rank_national": rank, "percentile_national": 100.0 * (n - rank) / (n - 1),
                         "decile": 10 if rank == 1 else 2, "mc_rank_median": float(rank),
                         "mc_rank_p05": float(rank), "mc_rank_p95": float(min(n, rank + 1)), "p_top10": 0.5,
                         "p_top20": 0.6, "uncertain": False, "gate_industrial": True, "n_reference": n,
                         "region": reg})
    return rows


def fixture_tables(release: str = "2026-11") -> dict[str, pd.DataFrame]:
    terr = pd.DataFrame(TERRITORIES, columns=["level", "territory_id", "label", "departement", "region", "n_communes",
                                              "population", "ti_phase"])
    dic = pd.DataFrame([{"indicator_id": i, "label_fr": lab, "domain": dom, "direction": d, "unit": u, "period": p,
                         "formula": f"formule de {i}", "source": "URSSAF" if i != "population" else "INSEE, RP",
                         "reliability_min": rel} for i, lab, dom, d, u, p, rel in DICTIONARY])
    return {"territories": terr, "indicator_values": pd.DataFrame(_iv_rows(release)),
            "indicator_dictionary": dic, "composite": pd.DataFrame(_composite_rows(release))}


META = {"source_vintages": {"sirene_stock": "2026-11-01", "urssaf": "2025", "census": "2021"}, "synthetic": True}


def publish_fixture(engine, releases=("2026-10", "2026-11")) -> None:
    from territoires_industrie import warehouse

    for r in releases:
        warehouse.publish_release(engine, r, fixture_tables(r),
                                  {**META, "validation_status": "passed" if r == "2026-10" else "warnings"})


def write_geometry(folder: Path) -> Path:
    """Three squares with real EPCI SIREN codes (ADMIN EXPRESS property name CODE_SIREN),
    plus one feature outside the release."""
    folder.mkdir(parents=True, exist_ok=True)
    feats = []
    for i, code in enumerate((*EPCI_CODES, "200023414")):
        x, y = 4.0 + 0.5 * i, 46.0 + 0.3 * (i % 2)
        feats.append({"type": "Feature", "properties": {"CODE_SIREN": code, "NOM": f"EPCI {code}"},
                      "geometry": {"type": "Polygon",
                                   "coordinates": [[[x, y], [x + 0.45, y], [x + 0.45, y + 0.4], [x, y + 0.4], [x, y]]]}})
    path = folder / "epci_admin_express_fixture.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    return path
