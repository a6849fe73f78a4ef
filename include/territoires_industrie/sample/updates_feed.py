"""SYNTHETIC daily API Sirene updates for the embedded default (issue 15).

API Sirene cannot be reached offline, so sample mode replays a generated feed: every day after
the sample stock's as-of, the establishments "treated" that day, written as the pages the
``/siret?q=dateDernierTraitementEtablissement:[...]&curseur=...`` search returns in version 3.11
(``header`` with ``total``, ``debut``, ``nombre``, ``curseur``, ``curseurSuivant``; each
establishment with its nested ``adresseEtablissement`` / ``adresse2Etablissement`` and its
``periodesEtablissement`` newest first; treatment times with milliseconds, as recorded in
``tests/fixtures/recorded/sirene_api``). The pages go through the same flattening, landing and
merging code as the real pull.

Deterministic (seeded) and derived from the sample stock only. What happens in it:
closures of four large industrial plants (50+ employees) in different départements, a cluster of
small closures in one commune within a week (improbably many for it), ordinary closures,
creations, re-openings, transfers between communes, changes of activity into and out of
industry, size-band drops, closures of non-diffusible establishments, and unchanged non-
industrial updates (noise the merge must ignore). Every figure is SYNTHETIC.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..nomenclature import INDUSTRIAL_DIVISIONS
from .generate import STOCK_COLUMNS, STOCK_MEMBER, _digits, _join_digits, _luhn_check_digit

DAYS = 30
PAGE_SIZE = 100
SEED = 15
_TOP = ["siren", "nic", "siret", "statutDiffusionEtablissement", "dateCreationEtablissement",
        "trancheEffectifsEtablissement", "anneeEffectifsEtablissement", "activitePrincipaleRegistreMetiersEtablissement",
        "dateDernierTraitementEtablissement", "etablissementSiege", "nombrePeriodesEtablissement"]
_ADDRESS = STOCK_COLUMNS[STOCK_COLUMNS.index("complementAdresseEtablissement"):
                         STOCK_COLUMNS.index("complementAdresse2Etablissement")]
_ADDRESS2 = STOCK_COLUMNS[STOCK_COLUMNS.index("complementAdresse2Etablissement"):STOCK_COLUMNS.index("dateDebut")]
_PERIOD = ["etatAdministratifEtablissement", "enseigne1Etablissement", "enseigne2Etablissement",
           "enseigne3Etablissement", "denominationUsuelleEtablissement", "activitePrincipaleEtablissement",
           "nomenclatureActivitePrincipaleEtablissement", "caractereEmployeurEtablissement"]
_BANDS = ["00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53"]


def _v(x):
    return None if x is None or x == "" else x


def api_record(row: dict, new: dict, treated: str, debut: str) -> dict:
    """One establishment as API Sirene 3.11 returns it: ``row`` is its stock row (before),
    ``new`` the attributes that changed, ``debut`` the start of the new period when the state or
    the activity changed."""
    cur = {**row, **new}
    period_changed = any(k in new for k in _PERIOD)
    rec = {k: _v(cur[k]) for k in _TOP}
    rec["dateDernierTraitementEtablissement"] = treated
    rec["etablissementSiege"] = cur["etablissementSiege"] == "true"
    rec["nombrePeriodesEtablissement"] = int(row["nombrePeriodesEtablissement"] or 1) + int(period_changed)
    rec["uniteLegale"] = {"statutDiffusionUniteLegale": cur["statutDiffusionEtablissement"],
                          "denominationUniteLegale": _v(cur["denominationUsuelleEtablissement"])}
    rec["adresseEtablissement"] = {k: _v(cur[k]) for k in _ADDRESS}
    rec["adresse2Etablissement"] = {k: _v(cur[k]) for k in _ADDRESS2}
    current = {"dateFin": None, "dateDebut": debut if period_changed else _v(row["dateDebut"]),
               **{k: _v(cur[k]) for k in _PERIOD},
               "changementEtatAdministratifEtablissement": new.get("etatAdministratifEtablissement",
                                                                  row["etatAdministratifEtablissement"])
               != row["etatAdministratifEtablissement"],
               "changementActivitePrincipaleEtablissement": "activitePrincipaleEtablissement" in new,
               "changementCaractereEmployeurEtablissement": False}
    periods = [current]
    if period_changed:
        end = (dt.date.fromisoformat(debut) - dt.timedelta(days=1)).isoformat()
        periods.append({"dateFin": end, "dateDebut": _v(row["dateDebut"]), **{k: _v(row[k]) for k in _PERIOD}})
    rec["periodesEtablissement"] = periods
    return rec


def _industrial(df: pd.DataFrame) -> np.ndarray:
    return df["activitePrincipaleEtablissement"].str[:2].isin(INDUSTRIAL_DIVISIONS).to_numpy()


def _plan(stock: pd.DataFrame, rng: np.random.Generator) -> list[tuple[int, int, dict, str]]:
    """(day offset 1..DAYS, stock row position, changed attributes, new period start) events."""
    ind = _industrial(stock)
    active = (stock["etatAdministratifEtablissement"] == "A").to_numpy()
    diff = (stock["statutDiffusionEtablissement"] == "O").to_numpy()
    band = stock["trancheEffectifsEtablissement"].map({b: i for i, b in enumerate(_BANDS)}).to_numpy(dtype="float64")
    dep = stock["codeCommuneEtablissement"].str[:2].to_numpy()
    used: set[int] = set()
    plan: list[tuple[int, int, dict, str]] = []

    def pick(mask: np.ndarray, n: int) -> list[int]:
        idx = [i for i in np.flatnonzero(mask) if i not in used]
        got = [int(i) for i in rng.permutation(idx)[:n]] if idx else []
        used.update(got)
        return got

    day = lambda: int(rng.integers(1, DAYS + 1))  # noqa: E731
    # four large industrial plants, in four départements
    large = ind & active & diff & (band >= _BANDS.index("21"))
    for d in list(dict.fromkeys(rng.permutation(sorted(set(dep[large])))))[:4]:
        for i in pick(large & (dep == d), 1):
            plan.append((int(rng.integers(5, DAYS + 1)), i, {"etatAdministratifEtablissement": "F"}, ""))
    small = ind & active & diff & (band < _BANDS.index("21"))
    com = stock["codeCommuneEtablissement"].to_numpy()
    counts = pd.Series(com[small]).value_counts()
    towns = counts[(counts >= 6) & (counts <= 15)]  # a small industrial town: six closures are improbable there
    cluster = towns.index[0] if len(towns) else (counts.index[0] if len(counts) else None)
    for k, i in enumerate(pick(small & (com == cluster), 6)):  # an improbable last week in one town
        plan.append((DAYS - 5 + k % 5, i, {"etatAdministratifEtablissement": "F"}, ""))
    plan += [(day(), i, {"etatAdministratifEtablissement": "F"}, "") for i in pick(small, 35)]
    plan += [(day(), i, {"etatAdministratifEtablissement": "F"}, "") for i in pick(ind & active & ~diff, 5)]
    plan += [(day(), i, {"etatAdministratifEtablissement": "A"}, "") for i in pick(ind & ~active & diff, 4)]
    communes = sorted(set(com))
    plan += [(day(), i, {"codeCommuneEtablissement": communes[int(rng.integers(len(communes)))]}, "")
             for i in pick(ind & active & diff, 5)]
    plan += [(day(), i, {"activitePrincipaleEtablissement": "46.69B"}, "") for i in pick(ind & active & diff, 4)]
    plan += [(day(), i, {"activitePrincipaleEtablissement": "25.62B"}, "") for i in pick(~ind & active & diff, 4)]
    drops = pick(ind & active & diff & (band >= _BANDS.index("12")), 5)
    plan += [(day(), i, {"trancheEffectifsEtablissement": _BANDS[int(band[i]) - 1]}, "") for i in drops]
    for d in range(1, DAYS + 1):  # unchanged non-industrial updates: noise the merge ignores
        plan += [(d, i, {}, "") for i in pick(~ind & active, 15)]
    return plan


def _creations(stock: pd.DataFrame, rng: np.random.Generator, n: int) -> list[tuple[int, dict]]:
    """New industrial establishments (new SIREN, valid Luhn keys), copied from existing ones' addresses."""
    ind_active = np.flatnonzero(_industrial(stock) & (stock["etatAdministratifEtablissement"] == "A").to_numpy())
    base = rng.choice(ind_active, size=n, replace=False)
    payload = _digits(rng.integers(90_000_000, 99_999_999, size=n), 8)
    siren = _join_digits(np.column_stack([payload, _luhn_check_digit(payload)]))
    out = []
    for k in range(n):
        s9 = siren[k]
        body = _digits(np.array([int(s9 + "0001")]), 13)
        siret = s9 + "0001" + str(int(_luhn_check_digit(body)[0]))
        row = stock.iloc[int(base[k])].to_dict()
        out.append((int(rng.integers(1, DAYS + 1)), {**row, "siren": s9, "nic": siret[9:], "siret": siret,
                                                     "trancheEffectifsEtablissement": "01"}))
    return out


def write_feed(stock_zip: Path, as_of: str, out_dir: Path, *, days: int = DAYS, seed: int = SEED) -> list[dict]:
    """Write the pages of every day into ``out_dir/<day>/page-NNN.json``; returns one entry per
    day: ``{"day", "pages": [paths], "records"}`` (days in order)."""
    with zipfile.ZipFile(stock_zip) as zf, zf.open(STOCK_MEMBER) as f:
        stock = pd.read_csv(f, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    start = dt.date.fromisoformat(as_of[:10])
    by_day: dict[int, list[dict]] = {d: [] for d in range(1, days + 1)}
    for d, i, new, _ in _plan(stock, rng):
        by_day[d].append((stock.iloc[i].to_dict(), new))
    for d, row in _creations(stock, rng, 30):  # one period, started on the creation day
        created = (start + dt.timedelta(days=d)).isoformat()
        by_day[d].append(({**row, "dateCreationEtablissement": created, "dateDebut": created,
                           "nombrePeriodesEtablissement": "1"}, {}))
    out = []
    for d in range(1, days + 1):
        day = start + dt.timedelta(days=d)
        recs = []
        for k, (row, new) in enumerate(by_day[d]):
            treated = f"{day.isoformat()}T{6 + k // 3600 % 12:02d}:{k // 60 % 60:02d}:{k % 60:02d}.{(k * 37) % 1000:03d}"
            debut = day.isoformat()
            if new.get("etatAdministratifEtablissement") == "F":  # closures are dated a few days back
                debut = (day - dt.timedelta(days=int(rng.integers(0, 4)))).isoformat()
            recs.append(api_record(row, new, treated, debut))
        recs.sort(key=lambda r: r["siret"])
        folder = Path(out_dir) / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        pages = []
        for p, lo in enumerate(range(0, max(len(recs), 1), PAGE_SIZE)):
            chunk = recs[lo:lo + PAGE_SIZE]
            last = lo + PAGE_SIZE >= len(recs)
            cursor = "*" if p == 0 else f"AoE{day:%m%d}{p:04d}"
            header = {"statut": 200, "message": "OK", "total": len(recs), "debut": lo, "nombre": len(chunk),
                      "curseur": cursor, "curseurSuivant": cursor if last else f"AoE{day:%m%d}{p + 1:04d}"}
            path = folder / f"page-{p + 1:03d}.json"
            path.write_text(json.dumps({"header": header, "etablissements": chunk}, ensure_ascii=False), encoding="utf-8")
            pages.append(path)
        out.append({"day": day.isoformat(), "pages": pages, "records": len(recs)})
    return out
