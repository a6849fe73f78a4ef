"""Indicator definitions: the single source of the data dictionary, the long table and the docs.

Domains: ``A`` industrial-employment decline, ``B`` erosion of the industrial fabric, ``C``
distance from employment, ``D`` territorial decline (the four scored domains); ``G`` context
gates (not scored); ``X`` counts and descriptive context. ``direction`` is +1 when a higher
value means more difficulty (every scored indicator, the unemployment rate), −1 when a higher
value means a larger or stronger economic base (industrial jobs, specialisation, growth,
establishment counts, population): context values are never scored, the sign only tells
maps and reports which way is "better".

``secrecy`` lists the secrecy *families* (magnitude cells) a value is derived from; its
published status is the most restrictive of theirs (see :mod:`.secrecy`). Values built on
persons (census, unemployment) or on the public SIRENE register only are not subject to
business secrecy and are always published (status ``V``), except establishment flows and
concentration, which follow the frequency rule on their own units.
"""

from __future__ import annotations

from dataclasses import dataclass

PERIOD_KEYS = {
    "t1": "URSSAF year t1 (31/12)",
    "a": "t0 = t1 − 5 → t1 (31/12)",
    "flows": "31/12 of t1f − 3 → 31/12 of t1f, t1f = last full year before the SIRENE stock date",
    "stock": "SIRENE stock date",
    "lfs": "mean of the last 4 quarters of the localised unemployment rates",
    "lfs_change": "last 4 quarters vs the same 4 quarters two years earlier",
    "rp": "census (RP) year",
    "rp_change": "base census year t0 → latest census year t1 (both read from the source, e.g. 2015 → 2021)",
}

SOURCES = {
    "urssaf": "URSSAF, salariés du secteur privé par commune x APE au 31/12 (open.urssaf.fr, ODbL)",
    "sirene": "INSEE, base Sirene des établissements (stock + historique), Licence Ouverte",
    "lfs": "INSEE, taux de chômage localisés par zone d'emploi (CVS) + recensement (actifs)",
    "rp": "INSEE, recensement de la population, bases communales emploi-population active",
}


@dataclass(frozen=True)
class IndicatorDef:
    id: str
    label_fr: str
    domain: str  # A B C D | G | X
    direction: int
    unit: str
    formula: str
    source: str
    period_key: str
    reliability_min: str = ""
    numerator: str | None = None  # count column in the wide table
    denominator: str | None = None
    secrecy: tuple[str, ...] = ()
    shrink: str | None = None  # logit | logratio | normal (small-area levels only)
    scored: bool = False


INDICATORS: tuple[IndicatorDef, ...] = (
    # ---- A. industrial-employment decline --------------------------------------------
    IndicatorDef("a1_ind_jobs_decline", "Recul de l'emploi salarié industriel sur 5 ans", "A", +1, "%",
                 "−100 × (E_ind,t1 − E_ind,t0) / E_ind,t0 ; E_ind = salariés URSSAF, APE divisions 05-39",
                 SOURCES["urssaf"], "a", "E_ind,t0 ≥ 200 salariés et ≥ 10 établissements industriels employeurs",
                 "jobs_ind_delta", "jobs_ind_t0", ("ind1", "ind0"), "logratio", True),
    IndicatorDef("a2_local_effect", "Effet local (résiduel) de l'analyse structurelle-résiduelle", "A", +1, "%",
                 "−100 × Σ_s E_is,t0 (g_is − g_Ns) / E_ind,t0 ; s = divisions A88 05-39, g = croissance t0→t1, "
                 "N = ensemble de référence",
                 SOURCES["urssaf"], "a", "E_ind,t0 ≥ 200 salariés et ≥ 10 établissements industriels employeurs",
                 "ss_local", "jobs_ind_t0", ("ind1", "ind0"), "normal", True),
    IndicatorDef("a3_industry_mix", "Effet de structure sectorielle (exposition aux secteurs en déclin)", "A", +1, "%",
                 "−100 × Σ_s E_is,t0 (g_Ns − g_N) / E_ind,t0 ; g_N = croissance nationale de l'emploi industriel",
                 SOURCES["urssaf"], "a", "E_ind,t0 ≥ 200 salariés et ≥ 10 établissements industriels employeurs",
                 "ss_mix", "jobs_ind_t0", ("ind1", "ind0"), "normal", True),
    # ---- B. erosion of the industrial fabric ---------------------------------------------
    IndicatorDef("b1_net_closure_rate", "Taux net de fermeture des établissements industriels employeurs (3 ans)", "B",
                 +1, "% sur 3 ans",
                 "100 × (C − K) / S_t0 ; S_t0 = établissements NAF 05-39 actifs et employeurs au 31/12/t0, "
                 "C = fermetures (actif employeur au 31/12/y−1, fermé au 31/12/y), K = créations (absent au "
                 "31/12/y−1, actif employeur au 31/12/y), y = t0+1..t1, flux cumulés sur 3 ans",
                 SOURCES["sirene"], "flows", "S_t0 ≥ 10 établissements", "flow_net_closures", "flow_stock_t0",
                 ("flow",), "normal", True),
    IndicatorDef("b2_large_estab_loss", "Perte d'établissements industriels de 20 salariés ou plus", "B", +1, "%",
                 "100 × (établissements de ≥ 20 salariés actifs employeurs au 31/12/t0 fermés ou non employeurs au "
                 "31/12/t1) / (établissements de ≥ 20 salariés actifs employeurs au 31/12/t0) ; taille = dernière "
                 "tranche d'effectif connue (non historisée dans Sirene)",
                 SOURCES["sirene"], "flows", "dénominateur ≥ 5 établissements", "large_lost", "large_t0",
                 ("large",), "logit", True),
    IndicatorDef("b3_concentration_class", "Dépendance à quelques établissements (classe de concentration 1-5)", "B",
                 +1, "classe 1-5",
                 "classe (quintile de l'ensemble de référence) de H = Σ_j ê_j² / max(Σ_j ê_j, E_ind,t1)² ; ê_j = "
                 "moyenne géométrique des bornes de la tranche d'effectif de l'établissement employeur j ; publié en "
                 "classes seulement (la valeur révélerait le poids du premier établissement)",
                 SOURCES["sirene"] + " ; " + SOURCES["urssaf"], "stock", "≥ 10 établissements employeurs avec tranche",
                 None, None, ("band",), None, True),
    # ---- C. distance from employment ------------------------------------------------------
    IndicatorDef("c1_unemployment_rate", "Taux de chômage localisé, ajusté par le recensement", "C", +1, "%",
                 "u = (Σ_z a_z u_z / Σ_z a_z) × clip(u_RP / u_RP,ZE, 0.5, 2) ; u_z = taux de chômage localisé de la "
                 "zone d'emploi (moyenne 4 trimestres), a_z = actifs 15-64 (RP) de la zone dans le territoire, "
                 "u_RP = chômeurs/actifs au recensement du territoire, u_RP,ZE = même ratio pour ses zones d'emploi",
                 SOURCES["lfs"], "lfs", "", "unemployed_adj", "active_rated", (), None, True),
    IndicatorDef("c2_non_employment_25_54", "Non-emploi des 25-54 ans", "C", +1, "%",
                 "100 × (1 − actifs occupés 25-54 / population 25-54)", SOURCES["rp"], "rp",
                 "population 25-54 ≥ 500", "nonemp_2554", "pop_2554", (), "logit", True),
    IndicatorDef("c3_unemployment_change_2y", "Hausse du chômage sur deux ans", "C", +1, "points",
                 "taux localisé mappé (4 derniers trimestres) − même taux 2 ans plus tôt, pondéré par les actifs",
                 SOURCES["lfs"], "lfs_change", "", "unemployed_change", "active_rated_prev", (), None, True),
    # ---- D. territorial decline -----------------------------------------------------------
    IndicatorDef("d1_population_decline", "Recul de la population", "D", +1, "%",
                 "−100 × (P_t1 − P_t0) / P_t0", SOURCES["rp"], "rp_change", "", "population_delta", "population_t0",
                 (), None, True),
    IndicatorDef("d2_employment_decline", "Recul de l'emploi total au lieu de travail", "D", +1, "%",
                 "−100 × (EMPLT_t1 − EMPLT_t0) / EMPLT_t0", SOURCES["rp"], "rp_change", "", "emplt_delta", "emplt_t0",
                 (), None, True),
    # ---- G. context gates (not scored) ----------------------------------------------------
    IndicatorDef("ind_lq", "Indice de spécificité industrielle (quotient de localisation)", "G", -1, "ratio",
                 "(E_ind,t1 / E_tot,t1) / (E_ind,N / E_tot,N) ; porte : ≥ 1", SOURCES["urssaf"], "t1", "",
                 "jobs_ind_t1", "jobs_total_t1", ("ind1", "tot")),
    IndicatorDef("jobs_ind", "Emplois salariés industriels (31/12)", "G", -1, "emplois",
                 "Σ salariés URSSAF, APE divisions 05-39, année t1 ; porte : ≥ 500", SOURCES["urssaf"], "t1", "",
                 "jobs_ind_t1", None, ("ind1",)),
    # ---- X. counts and descriptive context -----------------------------------------------
    IndicatorDef("estab_ind_active", "Établissements industriels actifs (NAF 05-39)", "X", -1, "établissements",
                 "nombre d'établissements Sirene, état A, NAF rév. 2 divisions 05-39", SOURCES["sirene"], "stock", "",
                 "estab_ind_active"),
    IndicatorDef("estab_ind_employer", "Établissements industriels employeurs", "X", -1, "établissements",
                 "idem, caractère employeur = O", SOURCES["sirene"], "stock", "", "estab_ind_employer"),
    IndicatorDef("jobs_total", "Emplois salariés privés (31/12)", "X", -1, "emplois",
                 "Σ salariés URSSAF, toutes APE, année t1", SOURCES["urssaf"], "t1", "", "jobs_total_t1", None,
                 ("tot",)),
    IndicatorDef("ind_share", "Part de l'industrie dans l'emploi salarié privé", "X", -1, "%",
                 "100 × E_ind,t1 / E_tot,t1", SOURCES["urssaf"], "t1", "", "jobs_ind_t1", "jobs_total_t1",
                 ("ind1", "tot")),
    IndicatorDef("jobs_ind_change_5y", "Évolution de l'emploi salarié industriel sur 5 ans", "X", -1, "%",
                 "100 × (E_ind,t1 − E_ind,t0) / E_ind,t0 (= −A1, non lissé)", SOURCES["urssaf"], "a", "",
                 "jobs_ind_delta", "jobs_ind_t0", ("ind1", "ind0")),
    IndicatorDef("unemployment_rate", "Taux de chômage localisé (moyenne des 4 derniers trimestres, non ajusté)", "X", +1,
                 "%", "100 × Σ_c actifs_c × u_ZE(c) / Σ_c actifs_c", SOURCES["lfs"], "lfs", "", "unemployed_est",
                 "active_rated"),
    IndicatorDef("population", "Population municipale (recensement)", "X", -1, "habitants", "P_t1", SOURCES["rp"],
                 "rp", "", "population"),
)
BY_ID = {d.id: d for d in INDICATORS}
INDICATOR_IDS = tuple(d.id for d in INDICATORS)
SCORED = tuple(d.id for d in INDICATORS if d.scored)
DOMAIN_OF = {d.id: d.domain for d in INDICATORS if d.scored}
DOMAIN_LABELS = {
    "A": "Recul de l'emploi industriel", "B": "Érosion du tissu industriel", "C": "Éloignement de l'emploi",
    "D": "Déprise territoriale", "G": "Portes de contexte (non notées)", "X": "Comptes et contexte",
}
#: Indicators whose published class/value must never show the underlying raw number.
CLASS_ONLY = ("b3_concentration_class",)


#: What each indicator measures and why it is there, in French for policy readers: shown on the
#: report's "Méthode" page next to the definition above and in the data dictionary (one source).
WHY_FR: dict[str, str] = {
    "a1_ind_jobs_decline": "La part des emplois salariés industriels perdus en cinq ans : le signal le plus direct d'un "
                           "territoire qui se désindustrialise. Un recul de 10 % se lit « 10 » ; une hausse donne une "
                           "valeur négative.",
    "a2_local_effect": "La part de l'évolution de l'emploi industriel qui tient au territoire lui-même, une fois retirées "
                       "la tendance nationale et sa spécialisation sectorielle. Elle distingue un territoire qui perd "
                       "des emplois parce que ses secteurs reculent partout de celui qui recule plus qu'eux.",
    "a3_industry_mix": "La part de l'évolution due à la spécialisation dans des secteurs qui reculent au niveau national : "
                       "une fragilité structurelle, même quand l'emploi local résiste encore.",
    "b1_net_closure_rate": "Fermetures moins créations d'établissements industriels employeurs sur trois ans, pour 100 "
                           "établissements : l'érosion du tissu productif, visible avant les pertes d'emplois.",
    "b2_large_estab_loss": "La part des établissements industriels de 20 salariés ou plus qui ont fermé ou cessé "
                           "d'employer : la perte des sites qui structurent un bassin d'emploi.",
    "b3_concentration_class": "La dépendance de l'emploi industriel à quelques établissements, en classes de 1 "
                              "(dispersé) à 5 (concentré) : un territoire de classe 5 est exposé à la fermeture d'un "
                              "seul site. Publié en classes seulement, la valeur révélerait le poids du premier site.",
    "c1_unemployment_rate": "Le taux de chômage localisé (INSEE) de la zone d'emploi, ramené au territoire par le "
                            "recensement : « plus loin de l'emploi » au sens du programme.",
    "c2_non_employment_25_54": "La part des 25-54 ans sans emploi, chômeurs ou non : mesure aussi ceux qui ont cessé de "
                               "chercher, que le taux de chômage ne voit pas.",
    "c3_unemployment_change_2y": "La hausse du chômage sur deux ans, en points : une dégradation récente, qui appelle "
                                 "une réponse rapide.",
    "d1_population_decline": "La population perdue entre deux recensements : le déclin démographique qui suit souvent "
                             "la perte d'activité et réduit les ressources du territoire.",
    "d2_employment_decline": "Les emplois perdus au lieu de travail, tous secteurs : l'effet d'entraînement sur "
                             "l'ensemble de l'économie locale.",
    "ind_lq": "La spécificité industrielle : la part de l'industrie dans l'emploi salarié privé rapportée à la part "
              "nationale. Un territoire n'est dit « industriel » qu'à partir de 1 ; l'indice de difficulté n'a de sens "
              "que pour lui. Non compté dans l'indice.",
    "jobs_ind": "Le nombre d'emplois salariés industriels : avec moins de 500, la difficulté industrielle ne concerne "
                "que peu de personnes. Non compté dans l'indice.",
    "estab_ind_active": "Le nombre d'établissements industriels actifs : l'ordre de grandeur du tissu productif.",
    "estab_ind_employer": "Le nombre d'établissements industriels qui emploient au moins un salarié.",
    "jobs_total": "L'emploi salarié privé total : l'ordre de grandeur du marché du travail local.",
    "ind_share": "La part de l'industrie dans l'emploi salarié privé.",
    "jobs_ind_change_5y": "L'évolution brute de l'emploi industriel (l'opposé de A1, sans lissage), pour lire le sens "
                          "habituel : négatif = recul.",
    "unemployment_rate": "Le taux de chômage localisé non ajusté (moyenne des quatre derniers trimestres), pour "
                         "comparaison avec les publications de l'INSEE.",
    "population": "La population municipale du dernier recensement.",
}
