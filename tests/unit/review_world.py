"""A small hand-made world for the candidacy review, published as a real release.

12 EPCI (real SIREN codes and names, 2 real communes each), 9 zones d'emploi, 2 régions,
5 Territoires d'industrie 2023-2027 and 1 of phase 1. Every input table of the indicators is
built by hand, then the real :func:`compute_release` and :func:`warehouse.publish_release`
run on it, with the restricted review inputs of :func:`review.restricted_inputs`.

The two EPCI of the candidacy used for hand-worked numbers ("Dijon-Beaune"):

| | Dijon Métropole 242100410 | CA Beaune 200006682 | group |
|---|---|---|---|
| communes | 21003 Ahuy, 21105 Bressey-sur-Tille | 21010 Aloxe-Corton, 21032 Aubigny-la-Ronce | |
| zone d'emploi | 2711 Dijon | 2704 Beaune | |
| industrial jobs 2025 (div. 25 + 10) | 600+100, 200 = 900 | 300+200, 100 = 600 | **1 500** |
| industrial jobs 2020 | 700+100, 250 = 1 050 | 300+250, 150 = 700 | **1 750** -> A1 = 14.2857 % |
| private jobs 2025 (+ div. 47) | 900 + 2 000 + 1 000 | 600 + 1 500 + 500 | **6 500** -> industry share 23.08 % |
| active 15-64 (census) | 4 000 + 2 000 | 2 000 + 1 000 | 9 000 |
| ZE unemployment rate, last 4 quarters / 2 years earlier | 8 % / 7 % | 6 % / 6 % | |
| estimated unemployed (act x rate) | 480 | 180 | **660 / 9 000 = 7.3333 %** |
| census unemployment (uniform per ZE) | 10 % | 12 % | adjustment ratio 1 -> C1 = 7.3333 % |
| C3 (act x change) | 6 000 x 1 pt = 60 | 0 | **60 / 9 000 = 0.6667 pt** |
| population 25-54 / employed | 3 000/2 400 + 1 500/1 200 | 1 600/1 200 + 900/600 | **non-employment 1 600 / 7 000 = 22.857 %** |
| population 2021 / 2015 | 10 000 + 5 000 / 10 500 + 5 000 | 6 000 + 3 000 / 6 000 + 3 500 | **24 000 / 25 000 -> D1 = 4 %** |
| jobs at place of work 2021 / 2015 | 5 000 + 1 000 / 5 400 + 1 000 | 2 000 + 1 000 / 2 100 + 1 000 | **9 000 / 9 500 -> D2 = 5.2632 %** |
| employer industrial establishments 31/12/2022, closures, creations 2023-2025 | 10, 2, 1 | 6, 1, 0 | **(3 − 1) / 16 = 12.5 %** |

CC Bugey Sud (200040350) has only 2 industrial establishments: its industrial-jobs cell is
secret (frequency rule A).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from territoires_industrie.indicators.base import Periods

PERIODS = Periods(t1=2025, quarters=("2025-T3", "2025-T4", "2026-T1", "2026-T2"),
                  quarters_prev=("2023-T3", "2023-T4", "2024-T1", "2024-T2"), alt_t0=2019, flow_t1=2025,
                  stock="2026-11-01")
RELEASE = "2026-11"
DIJON, BEAUNE, PLAINE, OUCHE = "242100410", "200006682", "200000925", "200039055"
BESANCON, MONTBELIARD, DOLE, STCLAUDE = "242500361", "200065647", "200010650", "200026573"
FAUCIGNY, CLUSES, ANNEMASSE, BUGEY = "200000172", "200033116", "200011773", "200040350"

# epci: (label, dep, reg, ze, [(codgeo, libgeo), (codgeo, libgeo)])
EPCI = {
    DIJON: ("Dijon Métropole", "21", "27", "2711", [("21003", "Ahuy"), ("21105", "Bressey-sur-Tille")]),
    BEAUNE: ("CA Beaune, Côte et Sud - Communauté Beaune-Chagny-Nolay", "21", "27", "2704",
             [("21010", "Aloxe-Corton"), ("21032", "Aubigny-la-Ronce")]),
    PLAINE: ("CC de la Plaine Dijonnaise", "21", "27", "2711", [("21005", "Aiserey"), ("21057", "Beire-le-Fort")]),
    OUCHE: ("CC Ouche et Montagne", "21", "27", "2711", [("21002", "Agey"), ("21013", "Ancey")]),
    BESANCON: ("CU Grand Besançon Métropole", "25", "27", "2706", [("25014", "Amagney"), ("25030", "Audeux")]),
    MONTBELIARD: ("CA Pays de Montbéliard Agglomération", "25", "27", "2714",
                  [("25004", "Abbévillers"), ("25011", "Allenjoie")]),
    DOLE: ("CA du Grand Dole", "39", "27", "2712", [("39001", "Abergement-la-Ronce"), ("39008", "Amange")]),
    STCLAUDE: ("CC Haut-Jura Saint-Claude", "39", "27", "2716",
               [("39032", "Avignon-lès-Saint-Claude"), ("39046", "Bellecombe")]),
    FAUCIGNY: ("CC Faucigny-Glières", "74", "84", "8414", [("74024", "Ayse"), ("74042", "Bonneville")]),
    CLUSES: ("CC Cluses-Arve et Montagnes", "74", "84", "8414", [("74014", "Arâches-la-Frasse"), ("74081", "Cluses")]),
    ANNEMASSE: ("CA Annemasse-Les Voirons-Agglomération", "74", "84", "8416", [("74008", "Ambilly"),
                                                                              ("74012", "Annemasse")]),
    BUGEY: ("CC Bugey Sud", "01", "84", "8404", [("01006", "Ambléon"), ("01009", "Andert-et-Condon")]),
}
ZE_LABELS = {"2711": "Dijon", "2704": "Beaune", "2706": "Besançon", "2714": "Montbéliard", "2712": "Dole",
             "2716": "Saint-Claude", "8414": "La Vallée de l'Arve", "8416": "Le Genevois Français", "8404": "Belley"}
ZE_ORDER = list(ZE_LABELS)
#: ZE -> (localised rate last 4 quarters, 2 years earlier, census unemployment ratio of the ZE)
ZE_RATES = {"2711": (8.0, 7.0, 0.10), "2704": (6.0, 6.0, 0.12), "2706": (7.5, 7.0, 0.11), "2714": (9.5, 8.0, 0.14),
            "2712": (7.0, 7.2, 0.10), "2716": (6.5, 6.0, 0.09), "8414": (5.5, 5.0, 0.08), "8416": (6.0, 6.2, 0.09),
            "8404": (6.8, 6.0, 0.10)}
TI_2023 = {"ti-2701": ("Dijon-Plaine", [DIJON, PLAINE]), "ti-2702": ("Nord Franche-Comté", [MONTBELIARD, BESANCON]),
           "ti-2703": ("Jura", [DOLE, STCLAUDE]), "ti-8401": ("Vallée de l'Arve", [FAUCIGNY, CLUSES]),
           "ti-8402": ("Genevois-Bugey", [ANNEMASSE, BUGEY])}
LABELS_REGION = {"27": "Bourgogne-Franche-Comté", "84": "Auvergne-Rhône-Alpes"}

# hand-chosen communes of the candidacy (see the docstring)
HAND = {
    # codgeo: (div25 t1, div10 t1, div25 t0, div10 t0, div47 t1, act, pop2554, actocc, pop21, pop15, emp21, emp15)
    "21003": (600, 100, 700, 100, 2000, 4000, 3000, 2400, 10000, 10500, 5000, 5400),
    "21105": (200, 0, 250, 0, 1000, 2000, 1500, 1200, 5000, 5000, 1000, 1000),
    "21010": (300, 200, 300, 250, 1500, 2000, 1600, 1200, 6000, 6000, 2000, 2100),
    "21032": (100, 0, 150, 0, 500, 1000, 900, 600, 3000, 3500, 1000, 1000),
}
# establishments: codgeo -> list of (created year, closed year or None, size band)
HAND_UNITS = {
    "21003": [(2015, None, "11")] * 4 + [(2015, 2024, "11")] * 2,
    "21105": [(2015, None, "11")] * 3 + [(2015, None, "12"), (2023, None, "11")],
    "21010": [(2015, None, "11")] * 3 + [(2015, 2025, "11")],
    "21032": [(2015, None, "11")] * 2,
}


def _filler(j: int) -> tuple:
    """Deterministic values of the other communes (j = commune index)."""
    d25 = 150 + (j * 73) % 500
    d10 = 40 + (j * 41) % 200
    change = ((j * 29) % 40 - 15) / 100.0
    pop = 3000 + (j * 613) % 9000
    return (d25, d10, round(d25 / (1 + change)), round(d10 / (1 - change / 2)), 1500 + (j * 97) % 1500,
            round(pop * 0.45), round(pop * 0.38), round(pop * 0.38 * (0.72 + ((j * 11) % 15) / 100)), pop,
            round(pop * (1 + ((j * 7) % 9 - 3) / 100)), round(pop * 0.4), round(pop * 0.4 * (1 + ((j * 5) % 7 - 3) / 100)))


def make_world() -> dict:
    communes, ti_rows = [], []
    for e, (lab, dep, reg, ze, coms) in EPCI.items():
        for c, name in coms:
            communes.append({"codgeo": c, "libgeo": name, "epci": e, "dep": dep, "reg": reg, "ze2020": ze})
    communes = pd.DataFrame(communes)
    for tid, (lab, members) in TI_2023.items():
        for e in members:
            for c, _ in EPCI[e][4]:
                ti_rows.append({"ti_id": tid, "ti_phase": "2023-2027", "ti_label": lab, "codgeo": c})
    for c in ("21010", "21032", "21003"):  # phase 1: Beaune + one commune of Dijon Métropole
        ti_rows.append({"ti_id": "TI1-0042", "ti_phase": "2018-2022", "ti_label": "Beaune-Côte", "codgeo": c})
    ti = pd.DataFrame(ti_rows)

    urssaf, census, units = [], [], []
    for j, row in enumerate(communes.itertuples(index=False)):
        c = row.codgeo
        v = HAND.get(c) or _filler(j)
        d25, d10, d25_0, d10_0, d47, act, p2554, occ, pop21, pop15, emp21, emp15 = v
        if row.epci == BUGEY:  # 2 industrial establishments in the whole EPCI: secret
            d25, d10, d25_0, d10_0 = 40 + 30 * (j % 2), 0, 45 + 30 * (j % 2), 0
        n_ind = 1 if row.epci == BUGEY else 4
        for div, jobs1, jobs0 in (("25", d25, d25_0), ("10", d10, d10_0), ("47", d47, d47)):
            for year, jobs in ((2019, jobs0), (2020, jobs0), (2025, jobs1)):
                urssaf.append({"codgeo": c, "division": div, "year": year, "jobs": float(jobs),
                               "n_etab": float((n_ind if div != "47" else 30) if jobs > 0 else 0),
                               "is_industrial": div != "47"})
        _, _, cen_ratio = ZE_RATES[row.ze2020]
        census.append({"codgeo": c, "rp1_pop": float(pop21), "rp0_pop": float(pop15), "rp1_act1564": float(act),
                       "rp1_chom1564": float(act) * cen_ratio, "rp1_pop2554": float(p2554),
                       "rp1_actocc2554": float(occ), "rp1_emplt": float(emp21), "rp0_emplt": float(emp15)})
        if c in HAND_UNITS:
            specs = HAND_UNITS[c]
        elif row.epci == BUGEY:
            specs = [(2015, None, "11")]
        else:
            specs = [(2015, None, "11")] * (3 + j % 4) + [(2015, 2023 + j % 3, "12")] * (j % 2) + [(2023, None, "11")]
        for k, (created, closed, band) in enumerate(specs):
            units.append({"siret": f"{int(c.replace('A', '0').replace('B', '0')):05d}{k:09d}", "codgeo": c,
                          "created": created, "closed": closed, "band": band})
    industrial, states = [], []
    for u in units:
        closed = u["closed"] or 9999
        etat_now = "F" if closed <= 2026 else "A"
        industrial.append({"siret": u["siret"], "codgeo": u["codgeo"], "etat": etat_now,
                           "employer": "O" if etat_now == "A" else "N", "tranche": u["band"] if etat_now == "A" else "NN"})
        for y in range(2020, 2026):
            if y < u["created"]:
                continue
            st = "F" if y >= closed else "A"
            states.append({"siret": u["siret"], "year": y, "etat": st, "employer": "O" if st == "A" else "N",
                           "naf": "25.62B", "nomenclature": "NAFRev2"})
    industrial = pd.DataFrame(industrial)
    ia = industrial.groupby(["codgeo", "etat", "employer", "tranche"]).size().rename("n_etab").reset_index()
    ia["is_industrial"] = True
    other = pd.DataFrame({"codgeo": communes["codgeo"], "is_industrial": False, "etat": "A", "employer": "O",
                          "tranche": "03", "n_etab": 20})
    quarters = [f"{y}-T{q}" for y in (2023, 2024, 2025, 2026) for q in (1, 2, 3, 4)]
    chom = pd.DataFrame([{"ze2020": z, "quarter": q, "rate": (now if q in PERIODS.quarters else prev)}
                         for z, (now, prev, _) in ZE_RATES.items() for q in quarters])
    return {"communes": communes, "ti": ti, "sirene": pd.concat([other, ia], ignore_index=True),
            "urssaf": pd.DataFrame(urssaf), "chomage": chom, "census": pd.DataFrame(census), "industrial": industrial,
            "states": pd.DataFrame(states)}


def write_geometry(folder: Path) -> Path:
    """Unit squares on a grid (ADMIN EXPRESS property CODE_SIREN): neighbours share an edge.

    Row 0: Beaune, Dijon, Plaine, Ouche ; row 1: Besançon, Montbéliard, Dole, Saint-Claude ;
    row 3 (not touching row 1): Faucigny, Cluses, Annemasse, Bugey."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = [[BEAUNE, DIJON, PLAINE, OUCHE], [BESANCON, MONTBELIARD, DOLE, STCLAUDE], [],
            [FAUCIGNY, CLUSES, ANNEMASSE, BUGEY]]
    feats = []
    for r, codes in enumerate(grid):
        for i, code in enumerate(codes):
            x, y = 4.0 + 0.5 * i, 47.0 - 0.5 * r
            ring = [[x, y], [x + 0.5, y], [x + 0.5, y + 0.5], [x, y + 0.5], [x, y]]
            feats.append({"type": "Feature", "properties": {"CODE_SIREN": code, "NOM": EPCI[code][0]},
                          "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path = folder / "epci_fixture.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    return path


def release_tables(geometry: Path | None = None, draws: int = 200):
    """(tables for publish_release, the ReleaseResult) of the world."""
    from territoires_industrie.indicators import release as rel
    from territoires_industrie.indicators.base import memberships
    from territoires_industrie.indicators.uncertainty import MCConfig
    from territoires_industrie.review import restricted_inputs
    from territoires_industrie.review.inputs import epci_adjacency

    w = make_world()
    res = rel.compute_release(w["communes"], w["ti"], w["sirene"], w["urssaf"], w["chomage"], w["census"], PERIODS,
                              industrial=w["industrial"], states=w["states"],
                              config=rel.ReleaseConfig(mc=MCConfig(draws=draws, seed=11)))
    c = w["communes"]
    lab = {"commune": c.set_index("codgeo")["libgeo"], "epci": pd.Series({k: v[0] for k, v in EPCI.items()}),
           "ze": pd.Series(ZE_LABELS), "departement": pd.Series({"21": "Côte-d'Or", "25": "Doubs", "39": "Jura",
                                                                "74": "Haute-Savoie", "01": "Ain"}),
           "region": pd.Series(LABELS_REGION), "ti": w["ti"].drop_duplicates("ti_id").set_index("ti_id")["ti_label"]}
    terr = res.territories.copy()
    terr["label"] = [lab[lv].get(t) for lv, t in zip(terr["level"], terr["territory_id"])]
    terr = terr[["level", "territory_id", "label", "departement", "region", "n_communes", "population", "ti_phase"]]
    meta = {"release_id": RELEASE, "national": res.national, "periods": PERIODS.as_dict(), "weights": res.mc_summary["weights"],
            "mc_draws": draws, "mc_seed": 11, "synthetic": True,
            "source_vintages": {"geography": "2023", "sirene_stock": "2026-11-01", "urssaf": "2025", "census": "2021",
                                "chomage_ze": "2026-T2"}}
    adjacency = None
    if geometry is not None:
        adjacency = epci_adjacency(geometry, set(EPCI))
    passage = pd.DataFrame({"codgeo_ini": ["21999", "21003"], "codgeo": ["21105", "21003"]})  # 21999 merged into 21105
    review = restricted_inputs(counts=res.counts, models=res.models, meta=meta,
                               membership=memberships(w["communes"], w["ti"]), passage=passage, adjacency=adjacency)
    tables = {"territories": terr, "indicator_values": res.long, "indicator_dictionary": res.dictionary,
              "composite": res.composite, "review_inputs": review}
    return tables, meta, res


def publish_world(engine, geometry: Path | None = None, release_id: str = RELEASE, draws: int = 200):
    from territoires_industrie import warehouse

    tables, meta, res = release_tables(geometry, draws)
    warehouse.publish_release(engine, release_id, tables, {**meta, "validation_status": "passed"})
    return res
