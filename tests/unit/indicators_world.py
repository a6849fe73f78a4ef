"""A small deterministic world (48 communes, 8 EPCI, 4 ZE, 3 départements, 2 régions, TI of
both phases) with every input table of the indicators, for release-level tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from territoires_industrie.indicators.base import Periods

QUARTERS = [f"{y}-T{q}" for y in (2023, 2024, 2025, 2026) for q in (1, 2, 3, 4)]
PERIODS = Periods(t1=2025, quarters=("2025-T3", "2025-T4", "2026-T1", "2026-T2"),
                  quarters_prev=("2023-T3", "2023-T4", "2024-T1", "2024-T2"), alt_t0=2019, flow_t1=2025,
                  stock="2026-11-01")


def make_world(seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    n = 48
    codgeo = [f"{d}{i:03d}" for d, k in (("01", 16), ("02", 16), ("03", 16)) for i in range(1, k + 1)]
    epci = [f"2000000{(i // 6) + 10:02d}" for i in range(n)]  # 8 EPCI of 6 communes
    dep = [c[:2] for c in codgeo]
    reg = ["11" if d in ("01", "02") else "84" for d in dep]
    ze = [{0: "0001", 1: "0001", 2: "0002", 3: "0002", 4: "0003", 5: "0003", 6: "0004", 7: "0004"}[i // 6] for i in range(n)]
    communes = pd.DataFrame({"codgeo": codgeo, "libgeo": [f"C{c}" for c in codgeo], "epci": epci, "dep": dep, "reg": reg,
                             "ze2020": ze})
    ti = pd.concat([
        pd.DataFrame({"ti_id": "TI1-0001", "ti_phase": "2018-2022", "ti_label": "T1", "codgeo": codgeo[0:12]}),
        pd.DataFrame({"ti_id": "TI1-0002", "ti_phase": "2018-2022", "ti_label": "T2", "codgeo": codgeo[24:36]}),
        pd.DataFrame({"ti_id": "ti-1101", "ti_phase": "2023-2027", "ti_label": "N1", "codgeo": codgeo[6:18]}),
        pd.DataFrame({"ti_id": "ti-8401", "ti_phase": "2023-2027", "ti_label": "N2", "codgeo": codgeo[36:48]}),
    ], ignore_index=True)

    decl = np.repeat(rng.random(8) < 0.4, 6)  # declining EPCI
    rows, agg, ind_rows, states = [], [], [], []
    sid = 0
    for i, c in enumerate(codgeo):
        for div, base in (("10", 40), ("25", 60), ("29", 30), ("47", 150)):
            j25 = float(rng.poisson(base * (1 + 2 * (i % 5 == 0))))
            change = rng.normal(-0.25 if decl[i] and div != "47" else 0.02, 0.1)
            j20 = float(max(0, round(j25 / max(0.2, 1 + change))))
            j19 = float(max(0, round(j20 * (1 + rng.normal(0, 0.05)))))
            ne = float(max(1, rng.poisson(3)))
            for y, j in ((2019, j19), (2020, j20), (2025, j25)):
                rows.append({"codgeo": c, "division": div, "year": y, "jobs": j, "n_etab": ne if j > 0 else 0.0,
                             "is_industrial": div != "47"})
        k = int(rng.integers(2, 12)) if i % 7 else 1  # every 7th commune: one establishment only
        for _ in range(k):
            sid += 1
            siret = f"{sid:014d}"
            band = str(rng.choice(["01", "02", "03", "11", "12", "21", "NN"]))
            if i == 8 and _ == 0:
                band = "41"  # a dominant plant
            created = int(rng.integers(2015, 2025))
            closed = int(rng.integers(created + 1, 2031)) if rng.random() < (0.5 if decl[i] else 0.2) else 9999
            emp = "O" if band != "NN" else "N"
            etat_now = "F" if closed <= 2026 else "A"
            ind_rows.append({"siret": siret, "codgeo": c, "etat": etat_now, "employer": emp if etat_now == "A" else "N",
                             "tranche": band if etat_now == "A" else "NN"})
            for y in range(2020, 2026):
                if y < created:
                    continue
                st = "F" if y >= closed else "A"
                states.append({"siret": siret, "year": y, "etat": st, "employer": emp if st == "A" else "N",
                               "naf": "25.62B", "nomenclature": "NAFRev2"})
        agg.append({"codgeo": c, "is_industrial": False, "etat": "A", "employer": "O", "tranche": "12", "n_etab": 5})
    industrial = pd.DataFrame(ind_rows)
    ia = industrial.groupby(["codgeo", "etat", "employer", "tranche"]).size().rename("n_etab").reset_index()
    ia["is_industrial"] = True
    sirene = pd.concat([pd.DataFrame(agg), ia], ignore_index=True)
    urssaf = pd.DataFrame(rows)
    chom = pd.DataFrame([{"ze2020": z, "quarter": q, "rate": 6.0 + k + 0.1 * QUARTERS.index(q) * (k % 2)}
                         for k, z in enumerate(["0001", "0002", "0003", "0004"]) for q in QUARTERS])
    pop = rng.integers(300, 20000, n).astype(float)
    act = pop * 0.45
    census = pd.DataFrame({
        "codgeo": codgeo, "rp1_pop": pop, "rp0_pop": pop * (1 + rng.normal(0.02, 0.03, n) + 0.05 * decl),
        "rp1_act1564": act, "rp1_chom1564": act * rng.uniform(0.05, 0.15, n), "rp1_pop2554": pop * 0.38,
        "rp1_actocc2554": pop * 0.38 * rng.uniform(0.75, 0.9, n), "rp1_emplt": pop * 0.4,
        "rp0_emplt": pop * 0.4 * (1 + rng.normal(0.0, 0.05, n)),
    })
    return {"communes": communes, "ti": ti, "sirene": sirene, "urssaf": urssaf, "chomage": chom, "census": census,
            "industrial": industrial, "states": pd.DataFrame(states)}
