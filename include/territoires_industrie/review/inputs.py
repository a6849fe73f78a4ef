"""What a candidacy review needs, read from ONE PUBLISHED RELEASE of the warehouse.

The review never reads staging or raw files (architecture rule): a reviewer must be able to
check a candidacy against the release that was published, last month's included. So each
release carries, next to its published tables, a few **restricted** documents in the
``review_inputs`` table (one JSON document per name, written in the same transaction as the
release by :func:`territoires_industrie.warehouse.publish_release`):

| name | content | why it is restricted |
|---|---|---|
| ``counts`` | unmasked additive counts of every EPCI (jobs, establishments, active people, unemployed, shift-share sums, size-band sums...) and the secrecy status of each of its cells | confidential business information (jobs of 1-2 establishments) — needed to recompute any group of EPCI and apply secrecy to the group |
| ``reference_models`` | the fitted reference sets (robust z parameters, sorted domain and composite scores, per région) | internal; lets a group be placed in a set without changing it |
| ``meta`` | national totals and growth rates, periods, weights, Monte Carlo settings, source vintages | internal |
| ``membership`` | commune -> EPCI, commune -> zone d'emploi, Territoire d'industrie x commune | perimeters used by the release |
| ``passage`` (optional) | old commune code -> code(s) of the release's COG (INSEE passage table, live mode) | suggestions for merged communes |
| ``adjacency`` (optional) | pairs of EPCI sharing a boundary point, computed from the official geometry at publication | contiguity check |

The table is never exported, never shown in the report and has no ``latest_*`` view.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..storage import jsonable

log = logging.getLogger(__name__)

PAYLOADS = ("counts", "reference_models", "meta", "membership", "passage", "adjacency")
REQUIRED_PAYLOADS = ("counts", "reference_models", "meta", "membership")
#: Release ids are period keys (``2026-11``); anything else is refused before any query.
#: Keys of the indicators stage's ``release_meta.json`` kept in the restricted ``meta`` document.
META_KEYS = ("release_id", "national", "periods", "weights", "mc_draws", "mc_seed", "source_vintages", "synthetic",
             "t1", "quarters", "ti_2023")


class ReviewInputsError(DataError, LookupError):
    """The release cannot be reviewed (unknown, or published without its review inputs)."""


# --- writing (publication) -------------------------------------------------------------------

def _frame_doc(df: pd.DataFrame) -> dict:
    return {"columns": [str(c) for c in df.columns],
            "data": [[jsonable(v) for v in row] for row in df.itertuples(index=False, name=None)]}


def _doc_frame(doc: dict) -> pd.DataFrame:
    df = pd.DataFrame(doc["data"], columns=doc["columns"])
    for c in df.columns:
        if c in ("level", "territory_id") or c.startswith("secret__"):
            df[c] = df[c].astype("str")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


def restricted_inputs(*, counts: pd.DataFrame, models: dict, meta: dict, membership: pd.DataFrame,
                      passage: pd.DataFrame | None = None, adjacency: dict | None = None) -> pd.DataFrame:
    """The ``review_inputs`` rows (name, payload) of one release.

    ``counts``: the indicators stage's internal counts (every level; only EPCI rows are kept);
    ``models``: reference set -> :class:`ReferenceModel` or its ``to_dict()``; ``meta``: the
    stage's ``release_meta.json``; ``membership``: (level, territory_id, codgeo) for at least the
    levels epci, ze, ti; ``passage``: (codgeo_ini, codgeo); ``adjacency``: ``{"source", "pairs"}``.
    """
    from ..indicators.base import COUNT_COLUMNS, MAX_COLUMNS

    epci = counts[counts["level"] == "epci"]
    cols = ["level", "territory_id", *[c for c in ("n_communes", *COUNT_COLUMNS, *MAX_COLUMNS) if c in epci.columns],
            *sorted(c for c in epci.columns if str(c).startswith("secret__"))]
    epci = epci[cols].sort_values("territory_id").reset_index(drop=True)
    m = membership[membership["level"].isin(["epci", "ze", "ti"])]
    docs = {
        "counts": _frame_doc(epci),
        "reference_models": {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in sorted(models.items())},
        "meta": {k: meta.get(k) for k in META_KEYS if k in meta},
        "membership": {
            "epci": dict(sorted(zip(m.loc[m["level"] == "epci", "codgeo"].astype(str),
                                    m.loc[m["level"] == "epci", "territory_id"].astype(str)))),
            "ze": dict(sorted(zip(m.loc[m["level"] == "ze", "codgeo"].astype(str),
                                  m.loc[m["level"] == "ze", "territory_id"].astype(str)))),
            "ti": sorted([t, c] for t, c in zip(m.loc[m["level"] == "ti", "territory_id"].astype(str),
                                                 m.loc[m["level"] == "ti", "codgeo"].astype(str))),
        },
    }
    if passage is not None and len(passage):
        p = passage[passage["codgeo_ini"].astype(str) != passage["codgeo"].astype(str)]
        docs["passage"] = {k: sorted(set(g.astype(str))) for k, g in p.groupby(p["codgeo_ini"].astype(str))["codgeo"]}
    if adjacency is not None:
        docs["adjacency"] = {"source": adjacency.get("source"), "pairs": sorted(sorted(p) for p in adjacency["pairs"])}
    rows = [{"name": k, "payload": json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))}
            for k, v in docs.items()]
    log.info("review inputs: %d EPCI count rows, %d reference sets, %d communes, %d TI x commune, passage %s, "
             "adjacency %s (%d kB)", len(epci), len(docs["reference_models"]), len(docs["membership"]["epci"]),
             len(docs["membership"]["ti"]), "yes" if "passage" in docs else "no",
             f"{len(docs['adjacency']['pairs'])} pairs" if "adjacency" in docs else "no",
             sum(len(r["payload"]) for r in rows) // 1024)
    return pd.DataFrame(rows, columns=["name", "payload"])


def epci_adjacency(path: Path, codes: set[str], decimals: int = 6) -> dict:
    """EPCI sharing at least one boundary point (queen contiguity) in a GeoJSON file of the
    official EPCI geometry (ADMIN EXPRESS: neighbouring polygons share their vertices).
    Coordinates are compared after rounding to ``decimals`` (1e-6° ≈ 0.1 m)."""
    from ..report.geometry import CODE_KEYS

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    feats = data.get("features", [])
    key = next((k for k in CODE_KEYS["epci"] if {str((f.get("properties") or {}).get(k)) for f in feats} & codes), None)
    if key is None:
        raise ValueError(f"{Path(path).name}: no feature property holds the release's EPCI codes "
                         f"(tried {', '.join(CODE_KEYS['epci'])})")
    owners: dict[tuple[float, float], set[str]] = {}

    def rings(geom):
        t = (geom or {}).get("type")
        if t == "Polygon":
            yield from geom["coordinates"]
        elif t == "MultiPolygon":
            for poly in geom["coordinates"]:
                yield from poly
        elif t == "GeometryCollection":
            for g in geom.get("geometries", []):
                yield from rings(g)

    n = 0
    for f in feats:
        code = str((f.get("properties") or {}).get(key))
        if code not in codes:
            continue
        n += 1
        for ring in rings(f.get("geometry")):
            for pt in ring:
                owners.setdefault((round(float(pt[0]), decimals), round(float(pt[1]), decimals)), set()).add(code)
    pairs = set()
    for own in owners.values():
        if len(own) > 1:
            s = sorted(own)
            pairs.update((a, b) for i, a in enumerate(s) for b in s[i + 1:])
    log.info("EPCI adjacency from %s: %d EPCI, %d adjacent pairs", Path(path).name, n, len(pairs))
    return {"source": Path(path).name, "pairs": sorted([a, b] for a, b in pairs), "n_epci": n}


def review_inputs_from_staging(settings, folder: Path, geometry_dir: Path | None = None) -> pd.DataFrame:
    """``review_inputs`` rows of the indicators staging partition ``folder`` (publication stage)."""
    from ..indicators.base import memberships

    folder = Path(folder)
    counts = pd.read_parquet(folder / "counts_internal.parquet")
    models = json.loads((folder / "reference_models.json").read_text())
    meta = json.loads((folder / "release_meta.json").read_text())
    passage = None
    mpath = folder / "membership_internal.parquet"
    if mpath.exists():
        membership = pd.read_parquet(mpath)
    else:  # partition built before the indicators stage wrote its memberships
        from ..staged import load_geography, with_ti_2023

        log.warning("%s missing: memberships rebuilt from the current geography staging partition", mpath.name)
        geo = load_geography(settings)
        ti, _ = with_ti_2023(settings, geo)
        membership = memberships(geo.communes, ti)
    try:
        from ..staged import load_passage

        passage = load_passage(settings)
    except (ImportError, FileNotFoundError) as exc:
        log.info("no passage table for the review (%s)", exc)
    adjacency = None
    try:
        from ..report.geometry import find_files, geometry_dirs

        path = find_files(geometry_dirs(settings, geometry_dir)).get("epci")
        if path is not None:
            codes = set(counts.loc[counts["level"] == "epci", "territory_id"].astype(str))
            adjacency = epci_adjacency(path, codes)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("EPCI geometry unreadable, contiguity will not be checked by reviews: %s", exc)
    return restricted_inputs(counts=counts, models=models, meta=meta, membership=membership, passage=passage,
                             adjacency=adjacency)


# --- reading (review) ------------------------------------------------------------------------

def check_release_id(release_id: str) -> str:
    from ..arguments import InvalidArgument
    from ..arguments import release_id as checked

    try:
        return checked(release_id)
    except InvalidArgument as exc:
        raise ReviewInputsError(str(exc)) from None


def read_payloads(engine, release_id: str) -> dict:
    """The restricted documents of ``release_id`` (bound parameters only: no SQL is built from
    user strings)."""
    import sqlalchemy as sa

    from .. import warehouse

    t = warehouse.review_inputs
    if not sa.inspect(engine).has_table(t.name):
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.name, t.c.payload).where(t.c.release_id == release_id)).all()
    return {name: json.loads(payload) for name, payload in rows}


@dataclass
class ReviewContext:
    """One published release, as the review sees it."""

    release_id: str
    release: dict  # ``releases`` row: pipeline_version, source_vintages, synthetic, validation_status
    inputs: object  # indicators.groups.GroupInputs
    territories: pd.DataFrame  # published territories (every level)
    composite: pd.DataFrame  # published composite (every reference set)
    epci_values: pd.DataFrame  # published indicator values of the EPCI level
    commune_epci: dict[str, str]
    commune_ze: dict[str, str]
    ti_members: pd.DataFrame  # ti_id, codgeo
    meta: dict  # restricted meta: national totals, periods, weights, Monte Carlo settings
    passage: dict[str, list[str]] = field(default_factory=dict)
    adjacency: set | None = None  # frozenset({a, b}) pairs; None = no geometry in the release
    adjacency_source: str | None = None

    # convenient indexed views (built once)
    def __post_init__(self):
        t = self.territories
        self.by_level = {lv: g.set_index("territory_id") for lv, g in t.groupby("level")}
        self.epci_communes = pd.Series(self.commune_epci, dtype="str").rename_axis("codgeo").reset_index(name="epci")
        self.ti_of_commune = self.ti_members.groupby("codgeo")["ti_id"].agg(list).to_dict()
        self.communes_of_ti = self.ti_members.groupby("ti_id")["codgeo"].agg(list).to_dict()
        self.communes_of_epci = self.epci_communes.groupby("epci")["codgeo"].agg(list).to_dict()
        self.counted_epci = set(self.inputs.counts["territory_id"])

    @property
    def synthetic(self) -> bool:
        return bool(self.release.get("synthetic"))

    @property
    def geography_vintage(self) -> str:
        return str((self.release.get("source_vintages") or {}).get("geography") or "2023")

    def label(self, level: str, code: str) -> str | None:
        t = self.by_level.get(level)
        if t is None or code not in t.index:
            return None
        v = t.at[code, "label"]
        return None if v is None or (isinstance(v, float) and v != v) or str(v) in ("None", "nan") else str(v)

    def population(self, level: str, code: str) -> float:
        t = self.by_level.get(level)
        if t is None or code not in t.index:
            return float("nan")
        return float(t.at[code, "population"])


def load_review_context(engine, release_id: str | None = None) -> ReviewContext:
    """Everything a review needs from release ``release_id`` (the current release by default).
    Raises :class:`ReviewInputsError` with a readable message when the release is unknown or was
    published without its review inputs."""
    import sqlalchemy as sa

    from .. import warehouse
    from ..indicators.composite import ReferenceModel
    from ..indicators.groups import GroupInputs

    if release_id is None:
        release_id = warehouse.current_release_id(engine)
        if release_id is None:
            raise ReviewInputsError("no release is published in the warehouse yet: run the pipeline first (make run)")
    release_id = check_release_id(release_id)
    try:
        release = warehouse.release_meta(engine, release_id)
    except KeyError as exc:
        raise ReviewInputsError(exc.args[0]) from None
    docs = read_payloads(engine, release_id)
    missing = [n for n in REQUIRED_PAYLOADS if n not in docs]
    if missing:
        raise ReviewInputsError(
            f"release {release_id} was published without its review inputs ({', '.join(missing)} missing in "
            "table review_inputs): re-publish it with the current pipeline (ti-indicators stage publish)")
    meta = docs["meta"]
    models = {k: ReferenceModel.from_dict(v) for k, v in docs["reference_models"].items()}
    terr = warehouse.read_release(engine, release_id, "territories")
    comp = warehouse.read_release(engine, release_id, "composite")
    iv = warehouse.indicator_values
    cols = [iv.c.territory_id, iv.c.indicator_id, iv.c.value, iv.c.shrink_weight, iv.c.reliable, iv.c.secret_status]
    with engine.connect() as conn:
        epci_values = pd.read_sql(sa.select(*cols).where(iv.c.release_id == release_id, iv.c.level == "epci"), conn)
    epci_values["territory_id"] = epci_values["territory_id"].astype("str")
    counts = _doc_frame(docs["counts"])
    inputs = GroupInputs(counts=counts, territories=terr, models=models, national=meta["national"],
                         periods=meta.get("periods") or {}, epci_composite=comp[comp["reference_set"] == "epci"],
                         release_id=release_id)
    mem = docs["membership"]
    ti_members = pd.DataFrame(mem.get("ti") or [], columns=["ti_id", "codgeo"]).astype("str")
    adj = docs.get("adjacency")
    ctx = ReviewContext(
        release_id=release_id, release=release, inputs=inputs, territories=terr, composite=comp,
        epci_values=epci_values, commune_epci=mem["epci"], commune_ze=mem["ze"], ti_members=ti_members, meta=meta,
        passage=docs.get("passage") or {},
        adjacency=None if adj is None else {frozenset(p) for p in adj["pairs"]},
        adjacency_source=None if adj is None else adj.get("source"))
    log.info("review context of release %s: %d EPCI with counts, %d reference sets, %d communes, geometry %s",
             release_id, len(counts), len(models), len(mem["epci"]), ctx.adjacency_source or "none")
    return ctx


def load_group_inputs_from_warehouse(engine, release_id: str | None = None):
    """Inputs of :func:`territoires_industrie.indicators.groups.compute_group` for one PUBLISHED
    release (the current one by default), read from the warehouse only."""
    return load_review_context(engine, release_id).inputs
