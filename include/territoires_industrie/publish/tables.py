"""Tables for people, built from a PUBLISHED release (the warehouse), never from staging.

- :func:`load_release` reads every published table of one release (the current one by default).
- :func:`wide_table` gives one row per territory: identity, composite score with its rank
  interval, every indicator value (one column per indicator), secrecy / reliability lists.
  Machine column names (``territory_id``, ``score``, indicator ids).
- :func:`french_table` is the same table for spreadsheets: French headers, ``oui``/``non``.
- :func:`dictionary_table` documents every exported column (the XLSX "Dictionnaire" sheet).

Column order and headers are stable: a new indicator adds a column, nothing is renamed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from ..indicators.definitions import DOMAIN_LABELS

log = logging.getLogger(__name__)

LEVEL_ORDER = ("ti", "ze", "epci", "departement", "region", "commune")
LEVEL_LABELS_FR = {
    "ti": "Territoires d'industrie", "ze": "Zones d'emploi", "epci": "EPCI", "departement": "Départements",
    "region": "Régions", "commune": "Communes",
}
LEVEL_SINGULAR_FR = {
    "ti": "Territoire d'industrie", "ze": "Zone d'emploi", "epci": "EPCI", "departement": "Département",
    "region": "Région", "commune": "Commune",
}
DOMAIN_LABELS_FR = DOMAIN_LABELS  # one table of domain labels: indicators.definitions
DOMAIN_ORDER = ("A", "B", "C", "D", "G", "X")
SECRET_LABELS_FR = {
    "V": "publié", "A": "secret (règle de fréquence : moins de 3 établissements)",
    "B": "secret (règle de dominance : un établissement > 85 %)", "D": "secret (secret secondaire)",
}
REFERENCE_SET_LABELS_FR = {
    "epci": "EPCI", "ze": "zones d'emploi", "departement": "départements", "region": "régions",
    "ti_2018_2022": "Territoires d'industrie 2018-2022", "ti_2023_2027": "Territoires d'industrie 2023-2027",
}

#: Identity and composite columns of the wide table: machine name -> (French header, meaning).
BASE_COLUMNS = {
    "release_id": ("Version (release)", "release du entrepôt : AAAA-MM du stock SIRENE utilisé"),
    "level": ("Niveau", "commune, epci, ze (zone d'emploi), departement, region, ti (Territoire d'industrie)"),
    "territory_id": ("Code", "code officiel : commune INSEE, SIREN de l'EPCI, ZE2020, département, région, "
                             "identifiant du Territoire d'industrie"),
    "label": ("Libellé", "nom officiel (COG) ou nom du Territoire d'industrie"),
    "departement": ("Département", "département principal (celui du plus grand nombre de communes)"),
    "region": ("Région", "région principale"),
    "ti_phase": ("Phase TI", "phase du programme Territoires d'industrie (2018-2022 ou 2023-2027)"),
    "n_communes": ("Nombre de communes", "communes du territoire (COG de la release)"),
    "population": ("Population (habitants)", "population municipale du recensement"),
}
COMPOSITE_COLUMNS = {
    "reference_set": ("Ensemble de classement", "territoires comparés pour le rang et les percentiles"),
    "score": ("Indice composite de difficulté (0-100)",
              "moyenne pondérée des scores de domaine A-D ; plus élevé = plus en difficulté"),
    "rank_national": ("Rang national (1 = plus en difficulté)", "rang dans l'ensemble de classement"),
    "n_reference": ("Nombre de territoires classés", "taille de l'ensemble de classement"),
    "percentile_national": ("Percentile national", "0-100 ; plus élevé = plus en difficulté"),
    "rank_regional": ("Rang régional", "rang parmi les territoires de l'ensemble situés dans la même région"),
    "percentile_regional": ("Percentile régional", "0-100 dans la région"),
    "decile": ("Décile (10 = les plus en difficulté)", "décile national"),
    "mc_rank_median": ("Rang médian (simulations)", "rang médian sur les simulations Monte Carlo"),
    "mc_rank_p05": ("Rang, borne basse de l'intervalle à 90 %", "5e centile du rang simulé"),
    "mc_rank_p95": ("Rang, borne haute de l'intervalle à 90 %", "95e centile du rang simulé"),
    "p_top10": ("Probabilité d'être dans les 10 % les plus en difficulté", "part des simulations, 0-1"),
    "p_top20": ("Probabilité d'être dans les 20 % les plus en difficulté", "part des simulations, 0-1"),
    "uncertain": ("Classement incertain", "l'intervalle à 90 % du rang chevauche le seuil des 10 % ou des 20 %"),
    "gate_industrial": ("Territoire industriel", "quotient de localisation ≥ 1 et au moins 500 emplois industriels"),
    "domain_a": ("Domaine A : recul de l'emploi industriel (0-100)", "score du domaine A"),
    "domain_b": ("Domaine B : érosion du tissu industriel (0-100)", "score du domaine B"),
    "domain_c": ("Domaine C : éloignement de l'emploi (0-100)", "score du domaine C"),
    "domain_d": ("Domaine D : déprise territoriale (0-100)", "score du domaine D"),
}
FLAG_COLUMNS = {
    "secret_indicators": ("Indicateurs sous secret statistique",
                          "identifiants des indicateurs masqués, avec le motif (A fréquence, B dominance, D secondaire)"),
    "unreliable_indicators": ("Indicateurs de fiabilité limitée",
                              "identifiants des indicateurs dont le minimum d'effectifs n'est pas atteint"),
}
DATA_STATUS = ("data_status", ("Statut des données", "SYNTHETIC : données d'exemple générées, pas des statistiques "
                                                     "officielles ; official : sources officielles"))
BOOLEAN_COLUMNS = ("uncertain", "gate_industrial")
#: Decimals kept in every export (the same numbers in CSV, XLSX and Parquet).
ROUND_DECIMALS = 4


@dataclass
class ReleaseData:
    """Every published table of one release, read from the warehouse."""

    release_id: str
    meta: dict
    territories: pd.DataFrame
    indicator_values: pd.DataFrame
    indicator_dictionary: pd.DataFrame
    composite: pd.DataFrame
    extra: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic"))

    @property
    def levels(self) -> list[str]:
        have = set(self.territories["level"])
        return [lv for lv in LEVEL_ORDER if lv in have] + sorted(have - set(LEVEL_ORDER))

    def has_columns(self, table: str, *cols: str) -> bool:
        """True when the release carries non-empty values for these columns (an older
        release may predate them)."""
        df = getattr(self, table)
        return all(c in df.columns and df[c].notna().any() for c in cols)


def load_release(engine, release_id: str | None = None, *, staged_key: str | None = None) -> ReleaseData:
    """Read one published release (the current one when ``release_id`` is None).

    ``staged_key``: read the rows of a release still being built under that warehouse key,
    presented exactly as they will read once switched (release id, status): the exports and
    the report of a publication are built from them before the release becomes current."""
    from .. import warehouse

    if release_id is None:
        release_id = warehouse.current_release_id(engine)
        if release_id is None:
            raise LookupError("no release has been published in the warehouse yet: run the pipeline first (make run)")
    meta = warehouse.release_meta(engine, release_id, staged_key=staged_key)
    tables = {name: warehouse.read_release(engine, staged_key or release_id, name) for name in warehouse.RELEASE_TABLES}
    if staged_key is not None:
        tables = {name: df.assign(release_id=release_id) if "release_id" in df.columns else df
                  for name, df in tables.items()}
    return ReleaseData(release_id=release_id, meta=meta, **tables)


def indicator_order(rd: ReleaseData) -> list[str]:
    """Indicator ids in dictionary order, scored domains first."""
    d = rd.indicator_dictionary
    ids = list(d["indicator_id"])
    if "domain" in d.columns:
        rank = {dom: i for i, dom in enumerate(DOMAIN_ORDER)}
        doms = dict(zip(d["indicator_id"], d["domain"]))
        ids = sorted(ids, key=lambda i: (rank.get(doms.get(i), len(rank)), ids.index(i)))
    extra = sorted(set(rd.indicator_values["indicator_id"]) - set(ids))
    return ids + extra


def current_values(rd: ReleaseData) -> pd.DataFrame:
    """One row per level x territory x indicator: the value of the dictionary period (or
    the latest period when an indicator has several)."""
    iv = rd.indicator_values
    if iv.empty:
        return iv
    dic_period = dict(zip(rd.indicator_dictionary["indicator_id"], rd.indicator_dictionary["period"]))
    want = iv["indicator_id"].map(dic_period)
    iv = iv.assign(_match=(iv["period"] == want)).sort_values(["_match", "period"])
    out = iv.drop_duplicates(["level", "territory_id", "indicator_id"], keep="last").drop(columns="_match")
    return out.sort_values(["level", "territory_id", "indicator_id"]).reset_index(drop=True)


def _flag_lists(cv: pd.DataFrame) -> pd.DataFrame:
    keys = ["level", "territory_id"]
    out = cv[keys].drop_duplicates().set_index(keys)
    if "secret_status" in cv.columns:
        sec = cv[cv["secret_status"].notna() & (cv["secret_status"] != "V")]
        out["secret_indicators"] = (sec["indicator_id"] + ":" + sec["secret_status"]).groupby(
            [sec["level"], sec["territory_id"]]).agg("; ".join)
    if "reliable" in cv.columns:
        unrel = cv[cv["reliable"].fillna(True).eq(False)]
        out["unreliable_indicators"] = unrel["indicator_id"].groupby([unrel["level"], unrel["territory_id"]]).agg("; ".join)
    return out.reset_index()


def composite_one_row(rd: ReleaseData) -> pd.DataFrame:
    """The composite with one row per territory (a territory ranked in several sets keeps
    the set named after its level, or the first one)."""
    comp = rd.composite.drop(columns=["release_id"], errors="ignore")
    if comp.empty:
        return comp
    comp = comp.assign(_own=(comp["reference_set"] == comp["level"]) | comp["reference_set"].str.startswith("ti_"))
    comp = comp.sort_values(["level", "territory_id", "_own", "reference_set"], ascending=[True, True, False, True])
    dup = comp.duplicated(["level", "territory_id"])
    if dup.any():
        log.info("composite: %d territories ranked in several sets; the wide table keeps their own set", int(dup.sum()))
    return comp[~dup].drop(columns="_own")


def wide_table(rd: ReleaseData, levels: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per territory of ``levels`` (all by default), machine column names.

    Columns: :data:`BASE_COLUMNS`, :data:`COMPOSITE_COLUMNS` (when the release has a
    composite), one column per indicator id (the published value, empty when secret), then
    :data:`FLAG_COLUMNS`. Floats rounded to :data:`ROUND_DECIMALS` decimals.
    """
    levels = list(levels or rd.levels)
    terr = rd.territories[rd.territories["level"].isin(levels)].drop(columns=["release_id"], errors="ignore")
    out = terr.assign(release_id=rd.release_id)
    out = out.reindex(columns=list(BASE_COLUMNS))
    comp = composite_one_row(rd)
    comp_cols = [c for c in COMPOSITE_COLUMNS if c in comp.columns]
    if not comp.empty:
        out = out.merge(comp[["level", "territory_id", *comp_cols]], on=["level", "territory_id"], how="left")
    cv = current_values(rd)
    cv = cv[cv["level"].isin(levels)]
    # an indicator named like an identity column (``population``) is that column: not repeated
    ids = [i for i in indicator_order(rd) if i not in BASE_COLUMNS and i not in COMPOSITE_COLUMNS]
    if not cv.empty:
        piv = cv[cv["indicator_id"].isin(ids)].pivot(index=["level", "territory_id"], columns="indicator_id",
                                                     values="value")
        piv = piv.reindex(columns=ids).reset_index()
        piv.columns.name = None
        out = out.merge(piv, on=["level", "territory_id"], how="left")
        out = out.merge(_flag_lists(cv), on=["level", "territory_id"], how="left")
    for c in ids:
        if c not in out.columns:
            out[c] = float("nan")
    for c in FLAG_COLUMNS:
        if c not in out.columns:
            out[c] = pd.Series(pd.NA, index=out.index, dtype="str")
    cols = [*BASE_COLUMNS, *(comp_cols if not comp.empty else []), *ids, *FLAG_COLUMNS]
    out = out[cols]
    rank = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    out = out.sort_values(["level", "territory_id"], key=lambda s: s.map(rank).fillna(99) if s.name == "level" else s)
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = out[c].round(ROUND_DECIMALS)
    return out.reset_index(drop=True)


def headers_fr(rd: ReleaseData, columns) -> dict[str, str]:
    """Machine column -> French header, unique."""
    dic = rd.indicator_dictionary.set_index("indicator_id")
    out: dict[str, str] = {}
    for c in columns:
        if c in BASE_COLUMNS:
            h = BASE_COLUMNS[c][0]
        elif c in COMPOSITE_COLUMNS:
            h = COMPOSITE_COLUMNS[c][0]
        elif c in FLAG_COLUMNS:
            h = FLAG_COLUMNS[c][0]
        elif c == DATA_STATUS[0]:
            h = DATA_STATUS[1][0]
        elif c in dic.index:
            unit = dic.at[c, "unit"]
            h = f"{dic.at[c, 'label_fr']} ({unit})" if isinstance(unit, str) and unit else str(dic.at[c, "label_fr"])
        else:
            h = c
        if h in out.values():
            h = f"{h} [{c}]"
        out[c] = h
    return out


def french_table(rd: ReleaseData, wide: pd.DataFrame) -> pd.DataFrame:
    """``wide`` for spreadsheets: French headers, booleans as ``oui``/``non``, French level names."""
    df = wide.copy()
    for c in BOOLEAN_COLUMNS:
        if c in df.columns:
            df[c] = df[c].map({True: "oui", False: "non"}).astype("str")
    if "level" in df.columns:
        df["level"] = df["level"].map(lambda v: LEVEL_SINGULAR_FR.get(v, v)).astype("str")
    if "reference_set" in df.columns:
        df["reference_set"] = df["reference_set"].map(lambda v: REFERENCE_SET_LABELS_FR.get(v, v)).astype("str")
    return df.rename(columns=headers_fr(rd, df.columns))


def dictionary_table(rd: ReleaseData, columns) -> pd.DataFrame:
    """One row per exported column: French header, machine name, meaning, unit, period, source."""
    dic = rd.indicator_dictionary.set_index("indicator_id")
    heads = headers_fr(rd, columns)
    rows = []
    for c in columns:
        row = {"Colonne": heads[c], "Identifiant": c, "Domaine": None, "Sens": None, "Unité": None, "Période": None,
               "Définition / formule": None, "Source": None, "Fiabilité minimale": None}
        if c in dic.index:
            d = dic.loc[c]
            dom = d.get("domain")
            direction = d.get("direction")
            row.update({
                "Domaine": f"{dom} : {DOMAIN_LABELS_FR.get(dom, '')}" if isinstance(dom, str) else None,
                "Sens": (None if pd.isna(direction) else
                         "plus élevé = plus de difficulté" if int(direction) > 0 else "plus élevé = base plus solide"),
                "Unité": d.get("unit"), "Période": d.get("period"), "Définition / formule": d.get("formula"),
                "Source": d.get("source"),
                "Fiabilité minimale": (d.get("reliability_min") or None) if isinstance(d.get("reliability_min"), str) else None,
            })
        else:
            meaning = {**BASE_COLUMNS, **COMPOSITE_COLUMNS, **FLAG_COLUMNS, DATA_STATUS[0]: DATA_STATUS[1]}.get(c)
            row["Définition / formule"] = meaning[1] if meaning else None
        rows.append(row)
    return pd.DataFrame(rows).astype("str").replace({"None": pd.NA, "nan": pd.NA})


def readme_rows(rd: ReleaseData) -> list[tuple[str, str]]:
    """Key / value lines of the "Lisez-moi" sheet: release, sources, how to read."""
    m = rd.meta
    rows = []
    if rd.synthetic:
        rows.append(("ATTENTION", "DONNÉES SYNTHÉTIQUES (SYNTHETIC) : chiffres générés pour tester la chaîne, "
                                  "ce ne sont pas des statistiques officielles."))
    rows += [
        ("Release", rd.release_id),
        ("Version du pipeline", str(m.get("pipeline_version") or "")),
        ("Statut de la validation des entrées", str(m.get("validation_status") or "non renseigné")),
    ]
    for src, vintage in sorted((m.get("source_vintages") or {}).items()):
        rows.append((f"Millésime : {src}", str(vintage)))
    sources = sorted({s for s in rd.indicator_dictionary.get("source", pd.Series(dtype="str")).dropna()})
    for s in sources:
        rows.append(("Source", s))
    rows += [
        ("Lecture", "Une feuille par niveau territorial, une ligne par territoire ; la feuille « Dictionnaire » "
                    "décrit chaque colonne (unité, période, formule, source)."),
        ("Cellule vide", "valeur non publiée : secret statistique (voir la colonne « Indicateurs sous secret "
                         "statistique ») ou non calculable."),
        ("Secret statistique", "A : moins de 3 établissements ; B : un établissement pèse plus de 85 % ; "
                               "D : secret secondaire (pour empêcher de retrouver une cellule masquée par différence)."),
        ("Indice composite", "0-100, plus élevé = plus en difficulté ; rang 1 = le plus en difficulté de "
                             "l'ensemble de classement ; l'intervalle à 90 % du rang vient de simulations Monte Carlo."),
    ]
    return rows
