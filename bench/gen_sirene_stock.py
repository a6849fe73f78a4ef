"""Deterministic SYNTHETIC generator of the SIRENE ``StockEtablissement`` at any size.

Writes ``StockEtablissement_utf8.csv`` inside a zip exactly like the official file: the
54 columns in the real order (since 16/12/2025), ``,`` separator, quotes only where a
value needs them, UTF-8, one header line, deflate (level 6), ZIP64 (the national member is
> 4 GB). Distributions follow the real stock: ~45 % closed establishments, ~9 % industrial
(NAF rév. 2 divisions 05-39), old nomenclatures (NAFRev1 / NAF1993 / NAP) on establishments
closed before 2008, size bands concentrated on small units, partial diffusion ``[ND]``,
arrondissement codes for Paris/Lyon/Marseille, foreign addresses, a few commune codes outside
the COG vintage, Luhn-valid SIREN/SIRET sorted ascending.

Fast: rows are drawn with numpy in chunks of 1M (chunk ``i`` uses ``default_rng([seed, i])``,
so the output does not depend on the number of worker processes), strings are assembled
by pyarrow kernels, the CSV text is written by polars, and every chunk is compressed on its
own as a raw deflate stream ending on a sync flush; the pieces are concatenated (like pigz)
into one member with a final empty block, and CRC-32s are combined. Output is byte-for-byte
deterministic for a given (rows, seed, chunk_rows, level).

    .venv/bin/python bench/gen_sirene_stock.py --rows 4M --out bench/out/stock_4M.zip
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import struct
import sys
import time
import unicodedata
import zlib
from pathlib import Path

import numpy as np

log = logging.getLogger("gen_sirene_stock")

MEMBER = "StockEtablissement_utf8.csv"
CHUNK_ROWS = 1_000_000
AS_OF = np.datetime64("2026-10-31")
DAY0 = np.datetime64("1900-01-01")
ZIP_DOS_TIME = (0, (2026 - 1980) << 9 | 11 << 5 | 1)  # 2026-11-01 00:00:00

FOREIGN = [("99109", "ALLEMAGNE", "BERLIN"), ("99131", "BELGIQUE", "BRUXELLES"), ("99140", "SUISSE", "GENEVE"),
           ("99134", "ESPAGNE", "MADRID"), ("99127", "ITALIE", "MILAN"), ("99132", "ROYAUME-UNI", "LONDRES"),
           ("99404", "ETATS-UNIS", "NEW YORK"), ("99137", "LUXEMBOURG", "LUXEMBOURG"), ("99350", "MAROC", "CASABLANCA")]
OLD_COMMUNE_CODES = ["25134", "01039", "26219", "56049", "45287", "51063", "16010", "24089"]
TYPES_VOIE = ["RUE", "AV", "BD", "PL", "CHE", "RTE", "ALL", "IMP", "ZI", "ZA", "LD", "QUA", "CRS", "PAS", "SQ", "HAM"]
TYPES_VOIE_P = [40, 12, 6, 4, 8, 7, 3, 3, 2, 2, 5, 2, 1, 1, 1, 3]
STREET_HEADS = ["DE LA REPUBLIQUE", "VICTOR HUGO", "JEAN JAURES", "DU GENERAL DE GAULLE", "PASTEUR", "DE LA GARE",
                "DE L EGLISE", "DES ECOLES", "DU MOULIN", "DE PARIS", "NATIONALE", "DU STADE", "DES LILAS",
                "DU CHATEAU", "DE LA MAIRIE", "GAMBETTA", "FOCH", "DE VERDUN", "DES PRES", "DU PORT", "DU COMMERCE",
                "DE L INDUSTRIE", "DES ARTISANS", "DE LA FORGE", "DES USINES", "DU CANAL", "DES VIGNES", "DU LAVOIR",
                "DE LA LIBERATION", "DU 8 MAI 1945", "DU 11 NOVEMBRE", "JULES FERRY", "ANATOLE FRANCE", "DES ROSES",
                "DES PEUPLIERS", "DU BOIS", "DES CHAMPS", "DE LA FONTAINE", "DU MARCHE", "DE LA PAIX", "DES FLEURS"]
STREET_TAILS = ["", "", "", "", "", "", "", " NORD", " SUD", " HAUTE", " BASSE"]
COMPLEMENTS = ["BATIMENT A", "BATIMENT B", "ZONE INDUSTRIELLE", "ZONE ARTISANALE DES PRES", "LIEU DIT LES CHAMPS",
               "RESIDENCE LES PINS", "CENTRE COMMERCIAL", "BAT C, 2EME ETAGE", "PARC D ACTIVITES", "IMMEUBLE LE PHENIX",
               "ESCALIER 3", "LOCAL 12, REZ DE CHAUSSEE"]
ENSEIGNE_A = ["BOULANGERIE", "GARAGE", "PHARMACIE", "CAFE", "ATELIER", "SALON", "TABAC PRESSE", "BOUCHERIE", "AGENCE",
              "CABINET", "RESTAURANT", "MENUISERIE", "EPICERIE", "FERRONNERIE", "TRANSPORTS", "AMBULANCES"]
ENSEIGNE_B = ["DU CENTRE", "DE LA PLACE", "MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT",
              "DURAND", "LEROY", "MOREAU", "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "DES AMIS", "DU MARCHE", "LE DELICE"]
NAF25_LETTERS = list("GHJKLMNPQRSTVWXY")


def parse_size(s: str) -> int:
    s = s.strip().upper().replace("_", "")
    mult = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in "KMG" else s) * mult)


def _ascii_upper(s: str) -> str:
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return s.upper().replace("'", " ").replace("-", " ")


# --------------------------------------------------------------------------------------------
# Static tables (built once, deterministic from the seed, shipped to worker processes)
# --------------------------------------------------------------------------------------------
def build_tables(seed: int, geography=None) -> dict:
    import pandas as pd
    from territoires_industrie.codes import ARM_PARENT
    from territoires_industrie.geography import build_geography
    from territoires_industrie.nomenclature import INDUSTRIAL_DIVISIONS, NOMENCLATURE_DIR

    rng = np.random.default_rng([seed, 10**9])
    geo = geography if geography is not None else build_geography()
    com = geo.communes[["codgeo", "libgeo", "dep"]].astype(str)
    # the stock uses arrondissement codes for Paris, Lyon, Marseille
    parents = set(ARM_PARENT.values())
    arms = pd.DataFrame({"codgeo": list(ARM_PARENT), "parent": list(ARM_PARENT.values())})
    arms = arms.merge(com.rename(columns={"codgeo": "parent"}), on="parent")
    arms["libgeo"] = arms["libgeo"] + " " + arms["codgeo"].str[-2:].str.lstrip("0")
    com = pd.concat([com[~com["codgeo"].isin(parents)], arms[["codgeo", "libgeo", "dep"]]], ignore_index=True)
    w = rng.lognormal(0.0, 1.4, len(com))
    w[com["codgeo"].isin(list(ARM_PARENT)).to_numpy()] *= 40.0
    w[com["dep"].isin(["92", "93", "94", "69", "13", "31", "33", "59", "06"]).to_numpy()] *= 2.5
    codes = com["codgeo"].tolist() + OLD_COMMUNE_CODES
    libs = [_ascii_upper(s) for s in com["libgeo"]] + ["ANCIENNE COMMUNE"] * len(OLD_COMMUNE_CODES)
    w = np.concatenate([w / w.sum() * 0.9995, np.full(len(OLD_COMMUNE_CODES), 0.0005 / len(OLD_COMMUNE_CODES))])
    k = rng.integers(0, 100, len(codes))
    postal = [("20" + c[2:]) if c[:2] in ("2A", "2B") else (c[:3] + f"{kk % 100:02d}") if c.startswith("97")
              else (c[:2] + f"{kk * 10 % 1000:03d}") for c, kk in zip(codes, k)]
    cx = rng.uniform(120_000, 1_180_000, len(codes)).round(0)
    cy = rng.uniform(6_100_000, 7_080_000, len(codes)).round(0)

    naf = pd.read_csv(NOMENCLATURE_DIR / "naf2008_5_niveaux.csv", sep=";", dtype=str, encoding="cp1252")
    naf_codes = naf["NIV5"].tolist()
    ind = naf["NIV2"].isin(INDUSTRIAL_DIVISIONS).to_numpy()
    nw = rng.gamma(0.5, 1.0, len(naf_codes))
    p_ind = 0.105  # of NAFRev2 rows -> ~9 % of the whole stock
    nw = np.where(ind, nw / nw[ind].sum() * p_ind, nw / nw[~ind].sum() * (1 - p_ind))
    old = sorted({c[:4] + L for c in naf_codes for L in "AB"})
    nap = sorted({c[:2] + f".{int(c[3:5]) % 50:02d}" for c in naf_codes})
    artisan = (naf["NIV1"].isin(["C", "F", "S"]) | naf["NIV2"].isin(["45", "47", "56", "95"])).to_numpy()

    streets = [f"{h}{t}" for h in STREET_HEADS for t in STREET_TAILS]
    enseignes = [f"{a} {b}" for a in ENSEIGNE_A for b in ENSEIGNE_B]
    days = np.arange(DAY0, np.datetime64("2027-01-01")).astype(str).tolist()
    times = [f"T{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(0, 60, 7)]
    return {
        "com_code": codes, "com_lib": libs, "com_w": w, "com_postal": postal, "com_x": cx, "com_y": cy,
        "naf": naf_codes, "naf_w": nw, "naf_ind": ind, "naf_artisan": artisan,
        "naf_nodot": [c.replace(".", "") for c in naf_codes], "old_codes": old, "nap_codes": nap,
        "streets": streets, "enseignes": enseignes, "days": days, "times": times,
    }


_T: dict | None = None  # per-process tables (pyarrow arrays)


def _init_worker(tables: dict) -> None:
    import pyarrow as pa

    global _T
    t = dict(tables)
    for k in ("com_code", "com_lib", "com_postal", "naf", "naf_nodot", "old_codes", "nap_codes", "streets",
              "enseignes", "days", "times"):
        t[k + "_pa"] = pa.array(t[k], pa.string())
    t["com_cum"] = np.cumsum(t["com_w"])
    t["naf_cum"] = np.cumsum(t["naf_w"])
    t["com_x"] = np.asarray(t["com_x"])
    t["com_y"] = np.asarray(t["com_y"])
    t["naf_ind"] = np.asarray(t["naf_ind"])
    t["naf_artisan"] = np.asarray(t["naf_artisan"])
    _T = t


def _luhn_check(digits: list[np.ndarray]) -> np.ndarray:
    """Check digit making ``digits + [check]`` Luhn-valid (digits most significant first)."""
    total = np.zeros(len(digits[0]), dtype=np.int64)
    for pos, d in enumerate(reversed(digits)):  # pos 0 is right next to the check digit: doubled
        if pos % 2 == 0:
            dd = d * 2
            total += np.where(dd > 9, dd - 9, dd)
        else:
            total += d
    return (10 - total % 10) % 10


def _digits(v: np.ndarray, width: int) -> list[np.ndarray]:
    return [(v // 10 ** (width - 1 - i)) % 10 for i in range(width)]


def _draw(rng, cum: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(cum) - 1)


def make_chunk(index: int, n: int, seed: int, chunk_rows: int = CHUNK_ROWS):
    """The ``index``-th chunk of ``n`` rows as a pyarrow Table of the 54 string columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from territoires_industrie.schemas import SIRENE_STOCK_ALL_COLUMNS

    T = _T
    rng = np.random.default_rng([seed, index])

    def take(dict_arr, idx, mask=None):
        return dict_arr.take(pa.array(idx, pa.int32(), mask=None if mask is None else ~mask))

    def s_int(v, mask=None, width=None):
        a = pc.cast(pa.array(v, pa.int64(), mask=None if mask is None else ~mask), pa.string())
        return pc.utf8_lpad(a, width, "0") if width else a

    def const(value, mask):
        return pc.if_else(pa.array(mask), pa.scalar(value, pa.string()), pa.scalar(None, pa.string()))

    null = pa.nulls(n, pa.string())
    r = rng.random

    # identifiers: SIREN ascending across chunks, ~1.45 establishments per SIREN
    new = r(n) < 0.69
    new[0] = True
    body = 1_000_000 + index * 2 * chunk_rows + np.cumsum(np.where(new, rng.integers(1, 3, n), 0))
    siren = body * 10 + _luhn_check(_digits(body, 8))
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    pos = np.arange(n) - start
    step = np.where(new, 0, rng.integers(1, 4, n))
    cs = np.cumsum(step)
    nic4 = (1 + cs - cs[start]) % 10_000  # strictly increasing within a SIREN: unique SIRETs
    nic = nic4 * 10 + _luhn_check(_digits(siren, 9) + _digits(nic4, 4))
    siege = (pos == 0) & (r(n) < 0.9) | (pos > 0) & (r(n) < 0.03)

    # state and dates (days since 1900-01-01)
    as_of = int((AS_OF - DAY0).astype(int))
    closed = r(n) < 0.45
    creation = np.where(closed, 0, as_of - rng.exponential(9 * 365.25, n)).astype(np.int64)
    closure = (as_of - rng.exponential(15 * 365.25, n)).astype(np.int64)
    creation = np.where(closed, closure - rng.exponential(8 * 365.25, n).astype(np.int64), creation)
    creation = np.clip(creation, 0, as_of)
    closure = np.clip(np.maximum(closure, creation), 0, as_of)
    debut = np.where(closed, closure, np.minimum(as_of, creation + np.where(r(n) < 0.3, rng.exponential(3000, n), 0).astype(np.int64)))
    no_creation = r(n) < 0.01
    d2008 = int((np.datetime64("2008-01-01") - DAY0).astype(int))
    d1993 = int((np.datetime64("1993-01-01") - DAY0).astype(int))
    d1983 = int((np.datetime64("1983-01-01") - DAY0).astype(int))

    # activity: NAF rév. 2 for current units, older nomenclatures for units closed before 2008
    code = _draw(rng, T["naf_cum"], n)
    old = closed & (debut < d2008)
    nom_idx = np.where(~old, 0, np.where(debut >= d1993, 1, np.where(debut >= d1983, 2, 3)))
    nom_idx[r(n) < 0.0005] = 4
    nomen = pa.array(["NAFRev2", "NAFRev1", "NAF1993", "NAP", None], pa.string()).take(pa.array(nom_idx, pa.int8()))
    ape = pc.if_else(pa.array(nom_idx == 0), take(T["naf_pa"], code),
                     pc.if_else(pa.array(nom_idx == 3), take(T["nap_codes_pa"], rng.integers(0, len(T["nap_codes"]), n)),
                                take(T["old_codes_pa"], rng.integers(0, len(T["old_codes"]), n))))
    ape = pc.if_else(pa.array(nom_idx == 4), null, ape)
    industrial = (nom_idx == 0) & T["naf_ind"][code]

    # employer status and size bands
    emp_draw = r(n)
    employer = np.where(~closed, np.where(emp_draw < (0.12 + 0.25 * industrial), 0, np.where(emp_draw < 0.97, 1, 2)),
                        np.where(emp_draw < 0.05, 0, np.where(emp_draw < 0.75, 1, 2)))
    bands = np.array(["00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53"])
    bp = np.array([14, 30, 18, 12, 11, 8, 3.2, 1.7, 0.4, 0.5, 0.25, 0.1, 0.04, 0.01, 0.005])
    band = np.minimum(np.searchsorted(np.cumsum(bp) / bp.sum(), r(n)), len(bands) - 1)
    has_band = ((employer == 0) & ~closed) | ((r(n) < 0.1) & closed & (employer == 0))
    tranche_idx = np.where(has_band, band, np.where(r(n) < 0.55, 15, 16))
    tranche = pa.array(list(bands) + ["NN", None], pa.string()).take(pa.array(tranche_idx, pa.int8()))
    annee = pc.if_else(pa.array(has_band), s_int(2021 + np.minimum(rng.geometric(0.55, n), 3) * (r(n) < 0.9)),
                       pa.scalar(None, pa.string()))

    # address
    com = _draw(rng, T["com_cum"], n)
    foreign = r(n) < 0.004
    fsel = rng.integers(0, len(FOREIGN), n)
    nd = (r(n) < np.where(employer == 0, 0.004, 0.03)) & ~foreign
    has_num = (r(n) < 0.8) & ~foreign
    num = np.minimum(np.floor(rng.pareto(1.2, n) * 6 + 1), 999).astype(np.int64)
    numero = s_int(num, has_num & ~nd)
    numero = pc.if_else(pa.array(nd), pa.scalar("[ND]"), numero)
    indice = const("B", has_num & ~nd & (r(n) < 0.035))
    dernier = s_int(num + rng.integers(2, 20, n), has_num & ~nd & (r(n) < 0.01))
    tv = np.minimum(np.searchsorted(np.cumsum(TYPES_VOIE_P) / sum(TYPES_VOIE_P), r(n)), len(TYPES_VOIE) - 1)
    tv_null = (r(n) < 0.03) | foreign
    type_voie = pa.array(TYPES_VOIE, pa.string()).take(pa.array(tv, pa.int8(), mask=tv_null))
    type_voie = pc.if_else(pa.array(nd), pa.scalar("[ND]"), type_voie)
    libvoie = take(T["streets_pa"], rng.integers(0, len(T["streets"]), n), (r(n) > 0.12) | has_num)
    libvoie = pc.if_else(pa.array(nd), pa.scalar("[ND]"), libvoie)
    complement = take(pa.array(COMPLEMENTS, pa.string()), rng.integers(0, len(COMPLEMENTS), n), r(n) < 0.06)
    distrib_m = r(n) < 0.02
    distrib = pc.binary_join_element_wise(pa.array(np.where(r(n) < 0.5, "BP ", "CS ")), s_int(rng.integers(1, 90_000, n)), "")
    distrib = pc.if_else(pa.array(distrib_m), distrib, pa.scalar(None, pa.string()))
    code_commune = take(T["com_code_pa"], com, ~foreign)
    postal = take(T["com_postal_pa"], com, ~foreign)
    libcom = take(T["com_lib_pa"], com, ~foreign)
    cedex_m = distrib_m & ~foreign & (r(n) < 0.5)
    cedex = take(T["com_postal_pa"], com, cedex_m)
    lib_cedex = pc.binary_join_element_wise(libcom, pa.scalar(" CEDEX"), "")
    lib_cedex = pc.if_else(pa.array(cedex_m), lib_cedex, pa.scalar(None, pa.string()))
    pays = take(pa.array([f[0] for f in FOREIGN]), fsel, foreign)
    libpays = take(pa.array([f[1] for f in FOREIGN]), fsel, foreign)
    libcom_etr = take(pa.array([f[2] for f in FOREIGN]), fsel, foreign)
    geocoded = ~foreign & has_num & (r(n) < np.where(closed, 0.25, 0.85))
    ident = pc.binary_join_element_wise(code_commune, s_int(rng.integers(0, 10_000, n), width=4), s_int(num, width=5), "_")
    ident = pc.if_else(pa.array(geocoded), ident, pa.scalar(None, pa.string()))
    ident = pc.if_else(pa.array(nd & ~foreign), pa.scalar("[ND]"), ident)
    lx = T["com_x"][com] + rng.normal(0, 1_800, n).round(1)
    ly = T["com_y"][com] + rng.normal(0, 1_800, n).round(1)
    lx = pc.cast(pa.array(np.round(lx, 1), mask=~geocoded), pa.string())
    ly = pc.cast(pa.array(np.round(ly, 1), mask=~geocoded), pa.string())
    lx = pc.if_else(pa.array(nd & ~foreign), pa.scalar("[ND]"), lx)
    ly = pc.if_else(pa.array(nd & ~foreign), pa.scalar("[ND]"), ly)

    # dates as text
    days = T["days_pa"]
    ddt_day = np.minimum(as_of, np.maximum(debut, creation) + (r(n) ** 0.6 * (as_of - np.maximum(debut, creation) + 1)).astype(np.int64))
    ddt_day[(~closed) & (r(n) < 0.01)] = as_of
    if index == 0:
        ddt_day[0] = as_of
    ddt = pc.binary_join_element_wise(take(days, ddt_day), take(T["times_pa"], rng.integers(0, len(T["times"]), n)), "")
    # most updates come from INSEE mass treatments: a few hundred distinct timestamps
    batch = pc.binary_join_element_wise(take(days, as_of - (rng.integers(0, 400, n) * 23) % 9000),
                                        take(T["times_pa"], rng.integers(0, 50, n)), "")
    ddt = pc.if_else(pa.array((r(n) < 0.6) & (as_of - (rng.integers(0, 400, n) * 23) % 9000 >= np.maximum(debut, creation))), batch, ddt)
    creation_s = take(days, creation, ~no_creation)
    debut_s = take(days, debut)

    # names, registre des métiers, NAF 2025
    ens1 = take(T["enseignes_pa"], rng.integers(0, len(T["enseignes"]), n), r(n) < 0.16)
    ens1 = pc.if_else(pa.array(nd & (r(n) < 0.5)), pa.scalar("[ND]"), ens1)
    ens2 = take(T["enseignes_pa"], rng.integers(0, len(T["enseignes"]), n), r(n) < 0.01)
    denom = take(T["enseignes_pa"], rng.integers(0, len(T["enseignes"]), n), r(n) < 0.1)
    rm = (nom_idx == 0) & ~closed & T["naf_artisan"][code] & (r(n) < 0.3)
    rm_code = pc.binary_join_element_wise(take(T["naf_nodot_pa"], code), take(pa.array(list("AABCZ")), rng.integers(0, 5, n)), "")
    rm_code = pc.if_else(pa.array(rm), rm_code, pa.scalar(None, pa.string()))
    naf25_m = (nom_idx == 0) & ~closed
    alt = naf25_m & (r(n) < 0.06)
    naf25 = pc.if_else(pa.array(alt), pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(take(T["naf_pa"], code), 0, 5), take(pa.array(NAF25_LETTERS), rng.integers(0, len(NAF25_LETTERS), n)), ""),
        take(T["naf_pa"], code))
    naf25 = pc.if_else(pa.array(naf25_m), naf25, pa.scalar(None, pa.string()))
    periods = np.where(closed, 1 + rng.geometric(0.5, n), np.where(r(n) < 0.7, 1, 1 + rng.geometric(0.5, n)))
    statut = pa.array(["O", "P"]).take(pa.array(nd.astype(np.int8)))
    etat = pa.array(["A", "F"]).take(pa.array(closed.astype(np.int8)))
    emp = pa.array(["O", "N", None], pa.string()).take(pa.array(employer.astype(np.int8)))

    cols = {
        "siren": s_int(siren, width=9), "nic": s_int(nic, width=5),
        "siret": pc.binary_join_element_wise(s_int(siren, width=9), s_int(nic, width=5), ""),
        "statutDiffusionEtablissement": statut, "dateCreationEtablissement": creation_s,
        "trancheEffectifsEtablissement": tranche, "anneeEffectifsEtablissement": annee,
        "activitePrincipaleRegistreMetiersEtablissement": rm_code, "dateDernierTraitementEtablissement": ddt,
        "etablissementSiege": pa.array(["false", "true"]).take(pa.array(siege.astype(np.int8))),
        "nombrePeriodesEtablissement": s_int(periods), "complementAdresseEtablissement": complement,
        "numeroVoieEtablissement": numero, "indiceRepetitionEtablissement": indice,
        "dernierNumeroVoieEtablissement": dernier, "indiceRepetitionDernierNumeroVoieEtablissement": null,
        "typeVoieEtablissement": type_voie, "libelleVoieEtablissement": libvoie,
        "codePostalEtablissement": postal, "libelleCommuneEtablissement": libcom,
        "libelleCommuneEtrangerEtablissement": libcom_etr, "distributionSpecialeEtablissement": distrib,
        "codeCommuneEtablissement": code_commune, "codeCedexEtablissement": cedex,
        "libelleCedexEtablissement": lib_cedex, "codePaysEtrangerEtablissement": pays,
        "libellePaysEtrangerEtablissement": libpays, "identifiantAdresseEtablissement": ident,
        "coordonneeLambertAbscisseEtablissement": lx, "coordonneeLambertOrdonneeEtablissement": ly,
        "dateDebut": debut_s, "etatAdministratifEtablissement": etat, "enseigne1Etablissement": ens1,
        "enseigne2Etablissement": ens2, "enseigne3Etablissement": null, "denominationUsuelleEtablissement": denom,
        "activitePrincipaleEtablissement": ape, "nomenclatureActivitePrincipaleEtablissement": nomen,
        "caractereEmployeurEtablissement": emp, "activitePrincipaleNAF25Etablissement": naf25,
    }
    return pa.table({c: cols.get(c, null) for c in SIRENE_STOCK_ALL_COLUMNS})


def _deflate_csv(table, header: bool, level: int) -> tuple[bytes, int, int, int]:
    """A table as CSV text -> (raw deflate bytes ending on a sync flush, crc32, raw size, rows)."""
    import io

    import polars as pl

    rows = table.num_rows
    buf = io.BytesIO()
    pl.from_arrow(table).write_csv(buf, include_header=header, line_terminator="\n", quote_style="necessary")
    raw = buf.getvalue()
    del buf, table
    comp = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return comp.compress(raw) + comp.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(raw), len(raw), rows


def chunk_bytes(args) -> tuple[bytes, int, int, int]:
    """Worker: stock chunk ``index`` -> its compressed piece (see :func:`_deflate_csv`)."""
    index, n, seed, chunk_rows, level = args
    return _deflate_csv(make_chunk(index, n, seed, chunk_rows), index == 0, level)


def _write_zip(path: Path, pieces, member: str = MEMBER) -> dict:
    """Concatenate raw deflate pieces into a single ZIP64 member (stdlib-readable)."""
    from isal import isal_zlib

    name = member.encode()
    tmp = path.with_name(path.name + ".part")
    crc = 0
    usize = csize = rows = 0
    t0 = time.perf_counter()
    with open(tmp, "wb") as fh:
        # local header; sizes in the ZIP64 extra field are patched at the end
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, *ZIP_DOS_TIME, 0, 0xFFFFFFFF, 0xFFFFFFFF, len(name), 20)
        fh.write(local + name + struct.pack("<HHQQ", 0x0001, 16, 0, 0))
        data_start = fh.tell()
        for comp, c, u, r in pieces:
            fh.write(comp)
            crc = isal_zlib.crc32_combine(crc, c, u)
            usize += u
            csize += len(comp)
            rows += r
            el = time.perf_counter() - t0
            log.info("%s: %s rows, %.2f GB csv, %.2f GB zip, %.0f rows/s", path.name, f"{rows:,}", usize / 1e9, csize / 1e9, rows / el)
        fh.write(b"\x03\x00")  # final empty fixed-Huffman block
        csize += 2
        cd_start = fh.tell()
        z64 = struct.pack("<HHQQ", 0x0001, 16, usize, csize)
        central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 3 << 8 | 45, 45, 0, 8, *ZIP_DOS_TIME, crc,
                              0xFFFFFFFF, 0xFFFFFFFF, len(name), len(z64), 0, 0, 0, 0o644 << 16, 0)
        fh.write(central + name + z64)
        cd_size = fh.tell() - cd_start
        eocd64_at = fh.tell()
        fh.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 3 << 8 | 45, 45, 0, 0, 1, 1, cd_size, cd_start))
        fh.write(struct.pack("<IIQI", 0x07064B50, 0, eocd64_at, 1))
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, min(cd_size, 0xFFFFFFFF),
                             0xFFFFFFFF if cd_start >= 0xFFFFFFFF else cd_start, 0))
        fh.seek(14)
        fh.write(struct.pack("<I", crc))
        fh.seek(data_start - 16)
        fh.write(struct.pack("<QQ", usize, csize))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return {"rows": rows, "csv_bytes": usize, "zip_bytes": path.stat().st_size, "crc32": f"{crc:08x}"}


def generate_stock(out: Path, rows: int, seed: int = 42, workers: int = 2, level: int = 6,
                   chunk_rows: int = CHUNK_ROWS, geography=None) -> dict:
    """Write the synthetic stock zip at ``out``; returns rows, sizes, CRC and seconds."""
    return _generate(out, rows, seed, workers, level, chunk_rows, geography, chunk_bytes, MEMBER)


def _generate(out: Path, rows: int, seed: int, workers: int, level: int, chunk_rows: int, geography,
              worker, member: str) -> dict:
    """Chunks of the ``rows``-row stock through ``worker`` (in ``workers`` processes) into one
    zip member; the history has one chunk per stock chunk, so both share the SIRETs."""
    import multiprocessing as mp

    if rows <= 0:
        raise ValueError("rows must be positive")
    if (rows // chunk_rows + 1) * 2 * chunk_rows + 1_000_000 >= 100_000_000:
        raise ValueError("at most ~49M rows (the 8-digit SIREN space of the generator)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tables = build_tables(seed, geography)
    tasks = [(i, min(chunk_rows, rows - i * chunk_rows), seed, chunk_rows, level) for i in range(-(-rows // chunk_rows))]
    if workers <= 1:
        _init_worker(tables)
        info = _write_zip(out, map(worker, tasks), member=member)
    else:
        # spawn, not fork: polars/pyarrow thread pools of the parent would deadlock a forked child
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(tables,)) as pool:
            info = _write_zip(out, pool.imap(worker, tasks), member=member)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["seed"] = seed
    log.info("%s: %s rows, %.2f GB csv -> %.2f GB zip in %.1f s", out.name, f"{info['rows']:,}",
             info["csv_bytes"] / 1e9, info["zip_bytes"] / 1e9, info["seconds"])
    return info


HISTORY_MEMBER = "StockEtablissementHistorique_utf8.csv"


def make_history_chunk(index: int, n: int, seed: int, chunk_rows: int = CHUNK_ROWS):
    """The periods of the establishments of stock chunk ``index``, in the 18 columns of
    ``StockEtablissementHistorique`` (most recent period first within a SIRET, SIRETs
    ascending): one row per period, ``nombrePeriodesEtablissement`` of the stock (mean ~2.2,
    so 44M stock rows give ~98M history rows, like the real file). The last period carries
    the stock state from ``dateDebut`` on (empty ``dateFin``); earlier periods split
    [creation, dateDebut) evenly, active, with the employer flag redrawn."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from territoires_industrie.sample.generate import HISTORY_COLUMNS

    stock = make_chunk(index, n, seed, chunk_rows)
    rng = np.random.default_rng([seed, index, 7])
    k = pc.cast(stock["nombrePeriodesEtablissement"], pa.int64()).to_numpy()
    rows = int(k.sum())
    est = np.repeat(np.arange(n), k)
    first = np.concatenate([[0], np.cumsum(k)[:-1]])
    j = np.arange(rows) - np.repeat(first, k)  # 0 = most recent period
    last = j == 0

    def days(col):
        a = pc.strptime(pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col), "%Y-%m-%d", "s")
        v = pc.cast(pc.cast(a, pa.int64()), pa.float64()).to_numpy(zero_copy_only=False) / 86400.0
        return np.nan_to_num(v, nan=0.0).astype(np.int64)

    debut = days(stock["dateDebut"])
    creation = np.minimum(days(stock["dateCreationEtablissement"]), debut)
    kk = np.maximum(k[est] - 1, 1)
    span = (debut - creation)[est]
    start = np.where(last, debut[est], creation[est] + (span * (k[est] - 1 - j)) // kk)
    # an older period ends the day before the next (more recent) one starts
    nxt = np.empty(rows, dtype=np.int64)
    nxt[1:] = start[:-1]
    nxt[0] = 0
    end = np.where(last, 0, np.maximum(nxt - 1, start))  # days since 1970: negative before 1970

    def day_str(v, mask):
        a = pa.array(v * 86400, pa.timestamp("s"), mask=mask)
        return pc.strftime(a, "%Y-%m-%d")

    take = pa.array(est)
    closed = pc.equal(stock["etatAdministratifEtablissement"], "F").to_numpy(zero_copy_only=False)[est]
    etat = np.where(last & closed, "F", "A")
    ch_etat = np.where(last & closed, "true", "false")
    emp_stock = stock["caractereEmployeurEtablissement"].take(take)
    emp_old = pa.array(np.where(rng.random(rows) < 0.6, "O", "N"))
    emp = pc.if_else(pa.array(last), emp_stock, emp_old)
    prev_emp = np.empty(rows, dtype=object)
    emp_np = emp.to_numpy(zero_copy_only=False)
    prev_emp[:-1] = emp_np[1:]
    prev_emp[-1] = None
    older = j < (k[est] - 1)  # a previous period exists
    ch_emp = np.where(older & (emp_np != prev_emp), "true", "false")
    false = pa.array(np.full(rows, "false"))
    null = pa.nulls(rows, pa.string())
    cols = {
        "siren": stock["siren"].take(take), "nic": stock["nic"].take(take), "siret": stock["siret"].take(take),
        "dateFin": day_str(end, last), "dateDebut": day_str(start, None),
        "etatAdministratifEtablissement": pa.array(etat), "changementEtatAdministratifEtablissement": pa.array(ch_etat),
        "enseigne1Etablissement": stock["enseigne1Etablissement"].take(take), "enseigne2Etablissement": null,
        "enseigne3Etablissement": null, "changementEnseigneEtablissement": false,
        "denominationUsuelleEtablissement": stock["denominationUsuelleEtablissement"].take(take),
        "changementDenominationUsuelleEtablissement": false,
        "activitePrincipaleEtablissement": stock["activitePrincipaleEtablissement"].take(take),
        "nomenclatureActivitePrincipaleEtablissement": stock["nomenclatureActivitePrincipaleEtablissement"].take(take),
        "changementActivitePrincipaleEtablissement": false,
        "caractereEmployeurEtablissement": emp, "changementCaractereEmployeurEtablissement": pa.array(ch_emp),
    }
    return pa.table({c: cols[c] for c in HISTORY_COLUMNS})


def history_chunk_bytes(args) -> tuple[bytes, int, int, int]:
    """Worker: the history rows of stock chunk ``index`` -> their compressed piece."""
    index, n, seed, chunk_rows, level = args
    return _deflate_csv(make_history_chunk(index, n, seed, chunk_rows), index == 0, level)


def generate_history(out: Path, stock_rows: int, seed: int = 42, workers: int = 2, level: int = 6,
                     chunk_rows: int = CHUNK_ROWS, geography=None) -> dict:
    """Write the synthetic ``StockEtablissementHistorique`` zip matching the stock of
    (``stock_rows``, ``seed``): same SIRETs, ~2.2 periods each."""
    return _generate(out, stock_rows, seed, workers, level, chunk_rows, geography, history_chunk_bytes, HISTORY_MEMBER)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while b := fh.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1M", help="number of rows: 1M, 4M, 16M, 44M, 250k...")
    ap.add_argument("--out", type=Path, help="zip to write (default bench/out/StockEtablissement_<rows>.zip)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--level", type=int, default=6, help="deflate level (6 = zip default)")
    ap.add_argument("--history", type=Path, default=None,
                    help="also write the matching StockEtablissementHistorique zip there (same SIRETs)")
    ap.add_argument("--history-only", action="store_true", help="write only the history zip")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    rows = parse_size(a.rows)
    out = a.out or Path(__file__).parent / "out" / f"StockEtablissement_{a.rows}.zip"
    if not a.history_only:
        print(generate_stock(out, rows, seed=a.seed, workers=a.workers, level=a.level))
    if a.history or a.history_only:
        hist = a.history or Path(__file__).parent / "out" / f"StockEtablissementHistorique_{a.rows}.zip"
        print(generate_history(hist, rows, seed=a.seed, workers=a.workers, level=a.level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
