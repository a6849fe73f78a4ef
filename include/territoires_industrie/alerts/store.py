"""Versioned store of the industrial establishments and the events between their versions.

**Store** (one row per version of an establishment, type-2 history): ``siret``, ``etat`` (A/F),
``naf`` (APE, NAF rév. 2 with a dot), ``industrial`` (division 05-39), ``tranche`` and
``tranche_year`` (size band and its year), ``codgeo`` (commune of the reference COG, merged
communes mapped forward), ``diffusion`` (``statutDiffusionEtablissement``: O fully diffusible,
P partly; empty = not known yet, the stock extract does not carry it), ``valid_from`` /
``valid_to`` (treatment time of the version in API Sirene, ``dateDernierTraitementEtablissement``
with its milliseconds; ``valid_to`` empty = current) and ``batch`` (the batch that wrote it).

It is seeded from the stock's industrial extract and holds every establishment that is or was
industrial; an establishment that enters industry later comes in with the batch that says so.
A batch only writes a version when a tracked attribute (state, activity, size band, commune,
diffusion status) changed, so replaying a batch writes nothing (:func:`plan_batch` refuses a
batch wholly older than the watermark and recognises an already merged one by its fingerprint,
the checksum of the landed file).

**Events** (:data:`EVENT_TYPES`) compare the new version with the current one. The jobs at stake
are a band (``jobs_lo`` - ``jobs_hi``, from the INSEE size bands) and its geometric midpoint
``jobs_mid``, an *estimate*: SIRENE publishes bands, not headcounts.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ..errors import DataError
from ..indicators.secrecy import BAND_BOUNDS, BAND_MIDPOINT
from ..nomenclature import INDUSTRIAL_DIVISIONS

STORE_COLUMNS = ["siret", "etat", "naf", "industrial", "tranche", "tranche_year", "codgeo", "diffusion",
                 "valid_from", "valid_to", "batch"]
TRACKED = ("etat", "naf", "tranche", "codgeo", "diffusion")
EVENT_COLUMNS = ["event_id", "type", "siret", "effective_date", "treated", "codgeo", "codgeo_from", "naf", "naf_from",
                 "tranche", "tranche_to", "jobs_lo", "jobs_hi", "jobs_mid", "diffusible", "name", "batch"]
#: event type -> French label (reports, notification)
EVENT_TYPES = {
    "fermeture": "fermeture d'un établissement industriel",
    "reouverture": "réouverture d'un établissement industriel",
    "transfert": "transfert d'un établissement industriel vers une autre commune",
    "sortie_industrie": "changement d'activité hors de l'industrie",
    "entree_industrie": "changement d'activité vers l'industrie",
    "baisse_effectif": "baisse de tranche d'effectif",
    "creation": "création d'un établissement industriel",
}
#: flattened API Sirene / StockEtablissement column -> store name
BATCH_COLUMNS = {
    "siret": "siret", "etatAdministratifEtablissement": "etat", "activitePrincipaleEtablissement": "naf",
    "trancheEffectifsEtablissement": "tranche", "anneeEffectifsEtablissement": "tranche_year",
    "codeCommuneEtablissement": "commune", "statutDiffusionEtablissement": "diffusion",
    "dateDernierTraitementEtablissement": "treated", "dateDebut": "date_debut",
    "dateCreationEtablissement": "created", "denominationUsuelleEtablissement": "denomination",
    "enseigne1Etablissement": "enseigne",
}
_BAND_LO = {k: float(lo) for k, (lo, _) in BAND_BOUNDS.items()}
_BAND_HI = {k: float(hi) for k, (_, hi) in BAND_BOUNDS.items()}
_BAND_RANK = {k: i for i, k in enumerate(sorted(BAND_BOUNDS))}


class StaleBatch(DataError, ValueError):
    """A batch wholly older than the store's watermark (it would rewrite the past)."""


class BatchConflict(DataError, ValueError):
    """A batch id already merged with other content."""


def is_industrial(naf: pd.Series) -> np.ndarray:
    return naf.fillna("").astype(str).str[:2].isin(INDUSTRIAL_DIVISIONS).to_numpy()


def band(tranche: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, geometric midpoint) of size bands; NaN when unknown (NN, empty)."""
    t = tranche.fillna("").astype(str)
    return (t.map(_BAND_LO).to_numpy(dtype="float64"), t.map(_BAND_HI).to_numpy(dtype="float64"),
            t.map(BAND_MIDPOINT).to_numpy(dtype="float64"))


CATEGORICAL = ("etat", "naf", "tranche", "tranche_year", "codgeo", "diffusion", "batch")


def _ts(values) -> pd.Series:
    """Treatment times (``AAAA-MM-JJ[THH:MM:SS[.mmm]]``) as datetime64[ms]."""
    return pd.to_datetime(pd.Series(values, dtype="str"), format="ISO8601").astype("datetime64[ms]")


def _sirets(values, what: str) -> np.ndarray:
    """SIRETs as int64 (8 bytes instead of a 14-character string: the store holds millions)."""
    s = pd.Series(values, dtype="str")
    bad = ~s.str.fullmatch(r"\d{14}")
    if bad.any():
        raise DataError(f"{what}: SIRET not 14 digits at row {int(np.flatnonzero(bad.to_numpy())[0]) + 1}: "
                        f"{s[bad].iloc[0]!r}")
    return s.astype("int64").to_numpy()


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: "category" for c in CATEGORICAL})


def seed(extract: pd.DataFrame, map_commune, as_of: str) -> pd.DataFrame:
    """The store at the stock's as-of, from the stock's industrial extract
    (``industrial_establishments.parquet`` columns). Compact: SIRET as int64, codes as
    categoricals, times as datetime64[ms] (about 40 bytes per establishment)."""
    code, uniq = pd.factorize(extract["codeCommuneEtablissement"].fillna(""))
    mapped = map_commune(pd.Series(uniq, dtype="str")).to_numpy(dtype=object) if len(uniq) else np.array([], object)
    naf = extract["activitePrincipaleEtablissement"].fillna("").astype(str)
    n = len(extract)
    return _compact(pd.DataFrame({
        "siret": _sirets(extract["siret"], "stock industrial extract"),
        "etat": extract["etatAdministratifEtablissement"].to_numpy(), "naf": naf.to_numpy(),
        "industrial": is_industrial(naf), "tranche": extract["trancheEffectifsEtablissement"].fillna("").to_numpy(),
        "tranche_year": extract["anneeEffectifsEtablissement"].fillna("").to_numpy(),
        "codgeo": mapped[code] if len(mapped) else np.array([], object), "diffusion": "",
        "valid_from": np.repeat(_ts([as_of]).to_numpy(), n), "valid_to": pd.Series(pd.NaT, index=range(n)).astype(
            "datetime64[ms]").to_numpy(), "batch": f"stock {as_of}",
    }, columns=STORE_COLUMNS).astype({"industrial": bool}))


def plan_batch(state: dict, batch_id: str, fingerprint: str, max_treated: str | None) -> str:
    """``"merge"``, ``"replay"`` (already merged with the same content: nothing to do) or an
    error: :class:`BatchConflict` (same id, other content), :class:`StaleBatch` (every record
    older than the watermark)."""
    done = (state.get("batches") or {}).get(batch_id)
    if done is not None:
        if done["digest"] != fingerprint:
            raise BatchConflict(f"batch {batch_id}: already merged on {done.get('merged_at')} with other content "
                                f"({done['digest'][:12]} != {fingerprint[:12]}); a landed batch never changes — "
                                "re-land it under a new id or rebuild the store (ti-indicators alerts --rebuild)")
        return "replay"
    wm = state.get("watermark")
    if wm and max_treated and max_treated < wm:
        raise StaleBatch(f"batch {batch_id}: its latest treatment {max_treated} is older than the store's watermark "
                         f"{wm} (last batch {state.get('last_batch')}): merging it would rewrite history. Land the "
                         "missing days in order, or rebuild the store from the stock (ti-indicators alerts --rebuild)")
    return "merge"


def load_batch(path, store: pd.DataFrame, map_commune, block_size: int = 2 << 20) -> pd.DataFrame:
    """A landed flat batch (``StockEtablissement`` layout zip) -> the normalised rows that can
    matter to the store: industrial now, or already in the store. The file is read in blocks and
    the other rows (most of a day's updates: shops, offices...) are dropped in Arrow, block by
    block, before pandas sees them: memory follows the relevant rows, not the batch (blocks of
    2 MB: measured, 8 MB blocks keep about 250 MB more of Arrow buffers alive)."""
    import zipfile

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from ..sources.sirene import STOCK_MEMBER

    cols = list(BATCH_COLUMNS)
    known = np.sort(store["siret"].to_numpy())  # sorted: a binary search per key, no hash table per block
    divisions = pa.array(INDUSTRIAL_DIVISIONS)
    parts = []
    with zipfile.ZipFile(path) as zf, zf.open(STOCK_MEMBER) as f:
        reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
                                convert_options=pacsv.ConvertOptions(
                                    include_columns=cols, include_missing_columns=True,
                                    column_types={c: pa.string() for c in cols}, strings_can_be_null=False))
        for rb in reader:
            siret = pc.fill_null(rb.column("siret"), "")
            digits = pc.and_(pc.utf8_is_digit(siret), pc.equal(pc.utf8_length(siret), 14))
            key = pc.cast(pc.if_else(digits, siret, "0"), pa.int64()).to_numpy(zero_copy_only=False)
            pos = np.minimum(np.searchsorted(known, key), max(len(known) - 1, 0))
            in_store = known[pos] == key if len(known) else np.zeros(len(key), bool)
            division = pc.utf8_slice_codeunits(pc.fill_null(rb.column("activitePrincipaleEtablissement"), ""), 0, 2)
            industrial = pc.fill_null(pc.is_in(division, value_set=divisions), False).to_numpy(zero_copy_only=False)
            parts.append(pa.Table.from_batches([rb]).filter(pa.array(industrial | in_store)))
    table = pa.concat_tables(parts) if parts else pa.table({c: pa.array([], pa.string()) for c in cols})
    del parts
    out = normalise_batch(table.to_pandas(), map_commune)
    del table
    pa.default_memory_pool().release_unused()  # the blocks' buffers back to the system
    return out


def normalise_batch(batch: pd.DataFrame, map_commune) -> pd.DataFrame:
    """Flattened API rows -> store vocabulary, one row per SIRET (latest treatment wins), with
    ``key`` (the SIRET as int64) and ``treated_ts`` (datetime64[ms])."""
    missing = [c for c in ("siret", "etatAdministratifEtablissement", "activitePrincipaleEtablissement",
                           "dateDernierTraitementEtablissement") if c not in batch.columns]
    if missing:
        raise DataError(f"updates batch: missing column(s) {missing} (not the API Sirene / StockEtablissement layout)")
    b = batch[[c for c in BATCH_COLUMNS if c in batch.columns]].rename(columns=BATCH_COLUMNS)
    for c in BATCH_COLUMNS.values():
        if c not in b:
            b[c] = ""
    b = b.fillna("").astype(str)
    b = b.sort_values(["siret", "treated"], kind="stable").drop_duplicates("siret", keep="last")
    code, uniq = pd.factorize(b["commune"])
    mapped = map_commune(pd.Series(uniq, dtype="str")).to_numpy(dtype=object) if len(uniq) else np.array([], object)
    b["codgeo"] = mapped[code] if len(mapped) else None
    b["industrial"] = is_industrial(b["naf"])
    b["key"] = _sirets(b["siret"], "updates batch")
    b["treated_ts"] = _ts(b["treated"]).to_numpy()
    return b.reset_index(drop=True)


def read_store(path) -> pd.DataFrame:
    """The store Parquet as a compact frame (Arrow buffers released column by column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True)
    pa.default_memory_pool().release_unused()
    return out


def _append(store: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``store`` + ``new`` rows, categoricals kept categorical (their categories united)."""
    from pandas.api.types import union_categoricals

    out = {}
    for c in STORE_COLUMNS:
        if c in CATEGORICAL:
            out[c] = union_categoricals([store[c].array, pd.Categorical(new[c].to_numpy(dtype=object))],
                                        ignore_order=True)
        else:
            out[c] = np.concatenate([store[c].to_numpy(), new[c].to_numpy().astype(store[c].dtype)])
    return pd.DataFrame(out, columns=STORE_COLUMNS)


def merge_batch(store: pd.DataFrame, batch: pd.DataFrame, batch_id: str, seeded_as_of: str
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Merge one normalised batch (:func:`normalise_batch`): (new store, events, counts).
    Only the store rows of the batch's SIRETs are compared: the rest is never copied."""
    hit = store["siret"].isin(batch["key"]).to_numpy() & store["valid_to"].isna().to_numpy()
    cur = store.loc[hit, ["siret", *TRACKED, "industrial", "valid_from"]]
    cur = cur.astype({c: object for c in TRACKED}).assign(row=cur.index).rename(columns={"siret": "key"})
    m = batch.merge(cur, on="key", how="left", suffixes=("", "_old"))
    known = m["row"].notna().to_numpy()
    ind_new = m["industrial"].to_numpy(bool)
    fresh = ~known | (m["treated_ts"] > m["valid_from"]).to_numpy()
    changed = ~known.copy()
    for c in TRACKED:
        old = m[f"{c}_old"].fillna("").astype(str)
        diff = (m[c] != old).to_numpy()
        if c == "diffusion":  # the stock extract does not carry it: '' -> O is learning, not a change
            diff = diff & (old != "").to_numpy()
        changed |= known & diff
    keep = (ind_new | known) & fresh & changed & ~(~known & (m["etat"] != "A").to_numpy())
    m = m[keep].reset_index(drop=True)
    known = m["row"].notna().to_numpy()

    events = _events(m, known, seeded_as_of, batch_id)
    rows = m.loc[known, "row"].astype("int64").to_numpy()
    valid_to = store["valid_to"].to_numpy().copy()
    valid_to[rows] = m.loc[known, "treated_ts"].to_numpy()
    store = store.assign(valid_to=valid_to)
    new = pd.DataFrame({
        "siret": m["key"].to_numpy(), "etat": m["etat"], "naf": m["naf"], "industrial": m["industrial"].astype(bool),
        "tranche": m["tranche"], "tranche_year": m["tranche_year"], "codgeo": m["codgeo"],
        "diffusion": m["diffusion"], "valid_from": m["treated_ts"].to_numpy(),
        "valid_to": np.full(len(m), np.datetime64("NaT"), "datetime64[ms]"), "batch": batch_id,
    }, columns=STORE_COLUMNS)
    store = _append(store, new) if len(new) else store
    counts = {"records": int(len(batch)), "versions_written": int(len(new)), "versions_closed": int(len(rows)),
              "events": int(len(events)), **{f"events_{k}": int((events["type"] == k).sum()) for k in EVENT_TYPES}}
    return store, events, counts


def _events(m: pd.DataFrame, known: np.ndarray, seeded_as_of: str, batch_id: str) -> pd.DataFrame:
    etat, old_etat = m["etat"].to_numpy(), m["etat_old"].fillna("").to_numpy()
    ind_new, ind_old = m["industrial"].to_numpy(bool), m["industrial_old"].fillna(False).to_numpy(bool)
    active = etat == "A"
    lo_o, hi_o, mid_o = band(m["tranche_old"])
    lo_n, hi_n, mid_n = band(m["tranche"])
    rank_o = m["tranche_old"].fillna("").map(_BAND_RANK).to_numpy(dtype="float64")
    rank_n = m["tranche"].map(_BAND_RANK).to_numpy(dtype="float64")
    created_before = (m["created"].str[:10] < seeded_as_of[:10]).to_numpy()
    moved = known & (m["codgeo"].fillna("") != m["codgeo_old"].fillna("")).to_numpy() & m["codgeo"].notna().to_numpy()
    use_old = ~np.isnan(lo_o)
    masks = {
        "fermeture": (known & (old_etat == "A") & (etat == "F") & (ind_old | ind_new),
                      np.where(use_old, lo_o, lo_n), np.where(use_old, hi_o, hi_n), np.where(use_old, mid_o, mid_n)),
        "reouverture": (known & (old_etat == "F") & active & ind_new, lo_n, hi_n, mid_n),
        "transfert": (moved & active & (old_etat == "A") & (ind_old | ind_new), lo_n, hi_n, mid_n),
        "sortie_industrie": (known & ind_old & ~ind_new & active, lo_n, hi_n, mid_n),
        "entree_industrie": (((known & ~ind_old) | (~known & created_before)) & ind_new & active, lo_n, hi_n, mid_n),
        "baisse_effectif": (known & ind_old & ind_new & active & (old_etat == "A") & (rank_n < rank_o),
                            np.maximum(0.0, lo_o - hi_n), hi_o - lo_n, mid_o - mid_n),
        "creation": (~known & ind_new & active & ~created_before, lo_n, hi_n, mid_n),
    }
    parts = []
    for kind, (mask, lo, hi, mid) in masks.items():
        if not mask.any():
            continue
        s = m[mask]
        # closures and re-openings carry their effective date (start of the new period); other
        # events are dated by their treatment in SIRENE
        dates = s["date_debut"].str[:10] if kind in ("fermeture", "reouverture") else s["treated"].str[:10]
        eff = np.where(dates.str.len().to_numpy() == 10, dates.to_numpy(), s["treated"].str[:10].to_numpy())
        old_band = s["tranche_old"].fillna("")
        diffusible = (s["diffusion"] == "O").to_numpy()
        name = s["denomination"].where(s["denomination"] != "", s["enseigne"])
        parts.append(pd.DataFrame({
            "type": kind, "siret": s["siret"].to_numpy(), "effective_date": eff, "treated": s["treated"].to_numpy(),
            "codgeo": s["codgeo"].to_numpy(), "codgeo_from": s["codgeo_old"].to_numpy() if kind == "transfert" else None,
            "naf": s["naf"].to_numpy(), "naf_from": s["naf_old"].to_numpy(),
            "tranche": np.where(old_band.map(_BAND_RANK).notna(), old_band, s["tranche"])
            if kind in ("fermeture", "baisse_effectif") else s["tranche"].to_numpy(),
            "tranche_to": s["tranche"].to_numpy() if kind == "baisse_effectif" else None,
            "jobs_lo": lo[mask], "jobs_hi": hi[mask], "jobs_mid": mid[mask], "diffusible": diffusible,
            "name": np.where(diffusible, name.replace("", None).to_numpy(), None), "batch": batch_id,
        }))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})
    ev = pd.concat(parts, ignore_index=True)
    ev.insert(0, "event_id", [hashlib.sha1(f"{s}|{t}|{d}".encode()).hexdigest()[:16]
                              for s, t, d in zip(ev["siret"], ev["type"], ev["treated"])])
    for c in ("codgeo", "codgeo_from", "naf_from", "tranche_to", "name"):
        ev[c] = ev[c].astype(object).where(ev[c].notna() & (ev[c].astype(str) != ""), None)
    return ev[EVENT_COLUMNS].sort_values(["effective_date", "type", "siret"], kind="stable").reset_index(drop=True)
