"""Official geometries for the report map: IGN ADMIN EXPRESS COG CARTO (source key
``geo_admin_express``), fetched in live mode by the geography stage.

| COG year (``TI_COG_YEAR``) | edition | file |
|---|---|---|
| 2023 | ``2023-05-03`` | ``ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_2023-05-03.7z`` |
| 2024 | ``2024-02-22`` | ``ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_2024-02-22.7z`` |
| 2025 | ``2025-04-02`` | ``ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_2025-04-02.7z`` |

URL: ``{TI_URL_GEOPF}/ADMIN-EXPRESS-COG-CARTO/<file without .7z>/<file>`` with ``TI_URL_GEOPF``
defaulting to ``https://data.geopf.fr/telechargement/download`` (IGN Géoplateforme).
``TI_URL_ADMIN_EXPRESS`` (or ``TI_GEO_URL_GEO_ADMIN_EXPRESS``, as for the other geography files)
replaces the whole URL (absolute, or a path under ``TI_URL_GEOPF``); ``TI_ADMIN_EXPRESS_EDITION`` gives
the edition of a COG year missing from the table. ``TI_FETCH_GEOMETRY=0`` switches the fetch off.

The archive (7z, LZMA, ~400-600 MB) holds shapefiles in a folder such as
``…/1_DONNEES_LIVRAISON_2023-05-03/ADECOGC_3-2_SHP_WGS84G_FRA/``. Layers are found by file
basename anywhere in the archive and only their members are extracted:

- ``EPCI.shp/.shx/.dbf/.prj/.cpg``: ``ID, CODE_SIREN, NOM, NATURE``;
- ``COMMUNE.*``: ``ID, NOM, NOM_M, INSEE_COM, STATUT, POPULATION, INSEE_CAN, INSEE_ARR, INSEE_DEP,
  INSEE_REG, SIREN_EPCI``.

The WGS84G edition is EPSG:4326 (longitude, latitude) for the whole of France, DROM included;
a projected ``.prj`` (Lambert-93, UTM…) is refused with a message naming the member. Zones
d'emploi have no layer: they are built by dissolving the COMMUNE polygons with the commune ->
ZE2020 mapping of the staged vintage. Output, in ``staging/geography/<vintage>/geometry/``:
``epci.geojson``, ``ze.geojson``, ``departement.geojson`` and ``ti.geojson`` (FeatureCollections,
properties ``code``, ``nom``…, ``phase`` for the TI), simplified as coverages by ``SIMPLIFY_DEG`` and
rounded to ``DECIMALS`` decimals. :func:`build_levels` (the dissolve of commune polygons into every
level) also builds the embedded default's geometry from the bundled real commune boundaries.

shapely, pyshp and py7zr are imported inside the functions (never at DAG parse time).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from .. import storage
from ..config import env as setting
from ..geography import NO_EPCI, SourceFormatError

log = logging.getLogger(__name__)

SOURCE = "geo_admin_express"
PRODUCT = "ADMIN-EXPRESS-COG-CARTO"
VARIANT = "3-2__SHP_WGS84G_FRA"
#: COG year -> edition date of ADMIN EXPRESS COG CARTO (the one describing the COG of that year)
EDITIONS = {2023: "2023-05-03", 2024: "2024-02-22", 2025: "2025-04-02"}
SEVEN_Z_MAGIC = b"7z\xbc\xaf\x27\x1c"

LAYER_EXTS = ("shp", "shx", "dbf", "prj", "cpg")
REQUIRED_EXTS = ("shp", "shx", "dbf", "prj")
LAYERS = ("EPCI", "COMMUNE")
EPCI_FIELDS = ("CODE_SIREN", "NOM")
COMMUNE_FIELDS = ("INSEE_COM", "NOM")

GEOMETRY_DIR = "geometry"
EPCI_FILE = "epci.geojson"
ZE_FILE = "ze.geojson"
DEP_FILE = "departement.geojson"
TI_FILE = "ti.geojson"
SIMPLIFY_DEG = 0.0005  # ~50 m: invisible at the scale of the national map
DECIMALS = 5  # ~1 m
SAMPLE = 20  # codes listed in the report for each cross-check
LICENCE = "IGN ADMIN EXPRESS COG CARTO, Licence Ouverte Etalab 2.0"


# --- configuration -----------------------------------------------------------------------------
def enabled(env: dict | None = None) -> bool:
    """``TI_FETCH_GEOMETRY`` (default on); ``0``/``false``/``no``/``off`` switch the fetch off."""
    return setting("TI_FETCH_GEOMETRY", env).lower() not in ("0", "false", "no", "off")


def edition(year: int, env: dict | None = None) -> str:
    if setting("TI_ADMIN_EXPRESS_EDITION", env):
        return setting("TI_ADMIN_EXPRESS_EDITION", env)
    ed = EDITIONS.get(int(year))
    if ed is None:
        raise KeyError(f"ADMIN EXPRESS COG CARTO: no edition known for COG {year} (known: {sorted(EDITIONS)}); "
                       f"set TI_ADMIN_EXPRESS_EDITION=YYYY-MM-DD or TI_URL_ADMIN_EXPRESS to the .7z URL")
    return ed


def archive_name(ed: str) -> str:
    return f"{PRODUCT}_{VARIANT}_{ed}.7z"


def archive_path(ed: str) -> str:
    """Path of the archive under ``TI_URL_GEOPF`` (the IGN download service)."""
    stem = archive_name(ed)[:-3]
    return f"{PRODUCT}/{stem}/{stem}.7z"


def file_name(url: str) -> str:
    """Last path segment of a URL, without query string or fragment."""
    return url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def archive_url(client, year: int, env: dict | None = None) -> tuple[str, str, str]:
    """(url, file name, edition) of the archive for COG ``year``."""
    override = setting("TI_URL_ADMIN_EXPRESS", env) or setting("TI_GEO_URL_GEO_ADMIN_EXPRESS", env) or ""
    if override:
        name = file_name(override)
        m = re.search(r"_(\d{4}-\d{2}-\d{2})\.7z$", name)
        ed = m.group(1) if m else edition(year, env)
        url = override if override.startswith(("http://", "https://")) else client.url("geopf", override)
        return url, name, ed
    ed = edition(year, env)
    return client.url("geopf", archive_path(ed)), archive_name(ed), ed


def strip_queries(text: str) -> str:
    """Drop query strings from the URLs quoted in a message (reports and logs never carry them)."""
    return re.sub(r"((?:https?://)?[\w.-]+(?::\d+)?/[^\s?'\"]*)\?[^\s'\")]*", r"\1", str(text))


def describe_error(exc: BaseException) -> str:
    return strip_queries(f"{type(exc).__name__}: {exc}")[:500]


# --- archive -----------------------------------------------------------------------------------
@dataclass
class LayerFiles:
    """One shapefile layer extracted from the archive: ``files`` ext -> local path."""

    name: str
    member: str  # archive member of the .shp (for messages)
    archive: str  # archive file name
    files: dict[str, Path] = field(default_factory=dict)

    def label(self, ext: str) -> str:
        return f"{self.archive}:{str(PurePosixPath(self.member).with_suffix('.' + ext))}"


def _open(archive: Path):
    import py7zr

    archive = Path(archive)
    with open(archive, "rb") as f:
        head = f.read(6)
    if head != SEVEN_Z_MAGIC:
        raise SourceFormatError(f"{archive.name}: not a 7z archive (first bytes {head!r}): truncated or corrupt "
                                "download, or not the ADMIN EXPRESS COG CARTO file")
    try:
        return py7zr.SevenZipFile(archive, mode="r")
    except Exception as exc:  # py7zr: Bad7zFile, EOFError, LZMA errors on a damaged header...
        raise SourceFormatError(f"{archive.name}: unreadable 7z archive ({type(exc).__name__}: {exc}): "
                                "truncated or corrupt download?") from exc


def list_members(archive: Path) -> list[str]:
    with _open(archive) as z:
        return [i.filename for i in z.list() if not i.is_directory]


def locate_layers(names: Iterable[str], archive: str, layers: Iterable[str] = LAYERS) -> dict[str, dict[str, str]]:
    """{layer: {ext: member}} found by basename (``EPCI.shp``…) anywhere in the archive.

    Several folders holding the same layer: the one whose path says ``WGS84`` wins, else error."""
    by_dir: dict[str, dict[str, dict[str, str]]] = {}
    wanted = {lv.upper() for lv in layers}
    for n in names:
        p = PurePosixPath(n.replace("\\", "/"))
        stem, ext = p.stem.upper(), p.suffix.lower().lstrip(".")
        if stem in wanted and ext in LAYER_EXTS:
            by_dir.setdefault(stem, {}).setdefault(str(p.parent), {})[ext] = n
    out = {}
    for layer in layers:
        dirs = {d: m for d, m in by_dir.get(layer.upper(), {}).items() if "shp" in m}
        if len(dirs) > 1:
            dirs = {d: m for d, m in dirs.items() if "WGS84" in d.upper()} or dirs
        if not dirs:
            raise SourceFormatError(f"{archive}: layer {layer} not found (no {layer}.shp in the archive); "
                                    f"is it the ADMIN EXPRESS COG CARTO archive?")
        if len(dirs) > 1:
            raise SourceFormatError(f"{archive}: layer {layer} found in several folders {sorted(dirs)}")
        folder, members = next(iter(dirs.items()))
        missing = [f"{layer}.{e}" for e in REQUIRED_EXTS if e not in members]
        if missing:
            raise SourceFormatError(f"{archive}: layer {layer} in {folder}/ lacks {missing}")
        out[layer] = members
    return out


def extract_layers(archive: Path, dest: Path, layers: Iterable[str] = LAYERS) -> dict[str, LayerFiles]:
    """Extract only the members of ``layers`` into ``dest``; returns {layer: LayerFiles}."""
    archive, dest = Path(archive), Path(dest)
    layers = tuple(layers)
    t = time.perf_counter()
    with _open(archive) as z:
        try:
            infos = {i.filename: i for i in z.list()}
        except Exception as exc:
            raise SourceFormatError(f"{archive.name}: unreadable 7z index ({type(exc).__name__}: {exc})") from exc
        found = locate_layers([n for n, i in infos.items() if not i.is_directory], archive.name, layers)
        targets = sorted(m for members in found.values() for m in members.values())
        size = sum(int(infos[m].uncompressed or 0) for m in targets)
        log.info("%s: extracting %d members of layers %s (%.1f MiB)", archive.name, len(targets), list(layers),
                 size / (1 << 20))
        try:
            z.extract(path=dest, targets=targets)
        except Exception as exc:  # CrcError, Bad7zFile, DecompressionError, lzma.LZMAError, EOFError...
            raise SourceFormatError(f"{archive.name}: extraction failed ({type(exc).__name__}: {exc}): "
                                    "truncated or corrupt archive?") from exc
    root = dest.resolve()
    out = {}
    for layer, members in found.items():
        files = {}
        for ext, m in members.items():
            p = (dest / m).resolve()
            if root not in p.parents or not p.is_file():
                raise SourceFormatError(f"{archive.name}: member {m} was not extracted")
            files[ext] = p
        out[layer] = LayerFiles(layer, members["shp"], archive.name, files)
    log.info("%s: layers %s extracted in %.1f s", archive.name, list(layers), time.perf_counter() - t)
    return out


# --- shapefile layers --------------------------------------------------------------------------
WGS84_DATUMS = ("WGS_1984", "WGS 84", "WGS84", "WORLD GEODETIC SYSTEM 1984")


def check_prj(text: str, label: str) -> str:
    """The CRS name of a geographic WGS84 ``.prj``; a projected (or unknown) CRS raises."""
    wkt = (text or "").strip()
    kind = wkt.split("[", 1)[0].strip().upper()
    name = re.match(r'^\w+\[\s*"([^"]*)"', wkt)
    crs = name.group(1) if name else wkt[:60]
    if kind in ("PROJCS", "PROJCRS", "PROJECTEDCRS"):
        raise SourceFormatError(f"{label}: projected coordinate system {crs!r} (e.g. Lambert-93); the map needs "
                                f"longitude/latitude: use the WGS84G edition ({PRODUCT}_{VARIANT}_<edition>.7z)")
    if kind not in ("GEOGCS", "GEOGCRS", "GEODCRS", "GEOGRAPHICCRS"):
        raise SourceFormatError(f"{label}: unrecognised coordinate system {wkt[:80]!r}; expected geographic WGS84 "
                                f"(the WGS84G edition of ADMIN EXPRESS COG CARTO)")
    if not any(d in wkt.upper() for d in WGS84_DATUMS):
        log.warning("%s: geographic CRS %r is not WGS84 (coordinates used as WGS84: a few metres off)", label, crs)
    return crs


def _codec(cpg: Path | None) -> str:
    if cpg is None or not cpg.exists():
        return "utf-8"
    import codecs

    raw = cpg.read_text(encoding="ascii", errors="replace").strip()
    name = f"cp{raw}" if raw.isdigit() else (raw.lower() or "utf-8")
    try:
        return codecs.lookup(name).name
    except LookupError:
        log.warning("%s: unknown code page %r, read as UTF-8", cpg.name, raw)
        return "utf-8"


def _field_names(reader) -> list[str]:
    return [getattr(f, "name", None) or f[0] for f in reader.fields[1:]]  # [0] is DeletionFlag


def iter_layer(layer: LayerFiles, required: Iterable[str]) -> Iterator[tuple[dict, dict]]:
    """(properties with upper-case keys, GeoJSON geometry) of every non-null shape of a layer."""
    import shapefile

    label = layer.label("shp")
    check_prj(layer.files["prj"].read_text(encoding="utf-8", errors="replace"), layer.label("prj"))
    codec = _codec(layer.files.get("cpg"))
    try:
        with open(layer.files["shp"], "rb") as shp, open(layer.files["shx"], "rb") as shx, \
                open(layer.files["dbf"], "rb") as dbf:
            r = shapefile.Reader(shp=shp, shx=shx, dbf=dbf, encoding=codec, encodingErrors="replace")
            names = [n.upper() for n in _field_names(r)]
            missing = [f for f in required if f.upper() not in names]
            if missing:
                raise SourceFormatError(f"{layer.label('dbf')}: required field(s) {missing} missing "
                                        f"(found {names})")
            x0, y0, x1, y1 = r.bbox
            if not (-180.5 <= x0 <= x1 <= 180.5 and -90.5 <= y0 <= y1 <= 90.5):
                raise SourceFormatError(f"{label}: bounding box {tuple(r.bbox)} is not longitude/latitude although "
                                        "the .prj says geographic: use the WGS84G edition")
            for sr in r.iterShapeRecords():
                if sr.shape.shapeType == shapefile.NULL or not sr.shape.points:
                    continue
                props = {k.upper(): v for k, v in sr.record.as_dict().items()}
                yield props, sr.shape.__geo_interface__
    except SourceFormatError:
        raise
    except (shapefile.ShapefileException, OSError, ValueError, IndexError, KeyError) as exc:
        raise SourceFormatError(f"{label}: unreadable shapefile ({type(exc).__name__}: {exc})") from exc


def read_layer(layer: LayerFiles, required: Iterable[str]) -> list[tuple[dict, dict]]:
    return list(iter_layer(layer, required))


# --- building the collections ------------------------------------------------------------------
def _text(v) -> str:
    return "" if v is None else str(v).strip()


def _round(coords, nd: int):
    if coords and isinstance(coords[0], (int, float)):
        return [round(float(coords[0]), nd), round(float(coords[1]), nd)]
    return [_round(c, nd) for c in coords]


def _simplify_coverage(geoms: list, tolerance: float) -> list:
    """Simplify neighbouring polygons together (``coverage_simplify``): a shared boundary is
    simplified once, so neighbours keep sharing its vertices - no slivers on the map, and the
    review's contiguity check (shared boundary points) still sees them as neighbours. Falls
    back to one-by-one simplification when the shapes are not a clean coverage."""
    import numpy as np
    import shapely

    if not tolerance or not geoms:
        return geoms
    try:
        return list(shapely.coverage_simplify(np.asarray(geoms, dtype=object), tolerance))
    except (shapely.errors.GEOSException, AttributeError, ValueError) as exc:
        log.warning("geometry: shapes are not a clean coverage (%s): simplified one by one", exc)
        return [shapely.simplify(g, tolerance, preserve_topology=True) for g in geoms]


def _finish(geom, decimals: int) -> dict | None:
    """Snap to the output precision; GeoJSON dict with rounded coordinates (None if empty)."""
    import shapely
    from shapely.geometry import mapping

    try:
        geom = shapely.set_precision(geom, 10 ** -decimals)
    except shapely.errors.GEOSException:  # pragma: no cover - keep the unsnapped geometry
        pass
    geom = _polygonal(geom)
    if geom is None or geom.is_empty:
        return None
    geom = shapely.orient_polygons(geom)  # RFC 7946: exterior rings counter-clockwise
    m = mapping(geom)
    return {"type": m["type"], "coordinates": _round(m["coordinates"], decimals)}


def _union(parts: list):
    """Dissolve polygons that form a coverage (communes): fast coverage union, checked; a
    result that is invalid or loses area (overlapping parts) is recomputed by a full union."""
    import shapely

    if len(parts) == 1:
        return parts[0]
    total = float(sum(p.area for p in parts))
    try:
        out = shapely.coverage_union_all(parts)
        if shapely.is_valid(out) and abs(out.area - total) <= 1e-6 * max(total, 1e-12) + 1e-12:
            return out
    except shapely.errors.GEOSException:
        pass
    return _polygonal(shapely.union_all([_valid(p) for p in parts]))


def _valid(g):
    """A valid polygonal geometry: rings that touch or overlap (a MultiPolygon whose parts share
    an edge, a self-intersecting ring) are repaired by unioning their areas."""
    import shapely

    if g.is_valid:
        return g
    return _polygonal(shapely.make_valid(g, method="structure", keep_collapsed=False))


def _polygonal(g):
    """Only the polygonal parts of a geometry (a repair or an overlay may add lines or points)."""
    import shapely

    if g is None or g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _shape(geometry: dict):
    from shapely.geometry import shape

    return _valid(shape(geometry))


def _layer(groups: dict[str, list], properties, tolerance: float, decimals: int) -> tuple[list[dict], list[str]]:
    """Features of one layer: each code's parts dissolved, all shapes simplified together as a
    coverage, then snapped; returns (features sorted by code, codes left empty)."""
    codes = sorted(groups)
    features, empty = [], []
    for code, geom in zip(codes, _simplify_coverage([_union(groups[c]) for c in codes], tolerance)):
        g = _finish(geom, decimals)
        if g is None:
            empty.append(code)
        else:
            features.append({"type": "Feature", "properties": properties(code), "geometry": g})
    return features, empty


def _fc(name: str, features: list[dict], meta: dict) -> dict:
    return {"type": "FeatureCollection", "name": name, "metadata": meta, "features": features}


def build_epci(records: Iterable[tuple[dict, dict]], vintage: dict[str, str] | None, *,
               tolerance: float = SIMPLIFY_DEG, decimals: int = DECIMALS, meta: dict | None = None) -> tuple[dict, dict]:
    """EPCI FeatureCollection (``code`` = SIREN, ``nom``, ``nature``) and its cross-check.

    ``vintage``: {siren: name} of the staged geography; only its EPCI are written (``None``: all)."""
    shapes: dict[str, list] = {}
    props: dict[str, dict] = {}
    for p, geom in records:
        code = _text(p.get("CODE_SIREN"))
        if not code:
            continue
        code = code.zfill(9)
        shapes.setdefault(code, []).append(_shape(geom))
        props.setdefault(code, {"nom": _text(p.get("NOM")), "nature": _text(p.get("NATURE"))})
    wanted = set(shapes) if vintage is None else {c for c in vintage if c != NO_EPCI}
    features, empty = _layer(
        {c: shapes[c] for c in set(shapes) & wanted},
        lambda c: {"code": c, "nom": props[c]["nom"] or (vintage or {}).get(c, ""), "nature": props[c]["nature"]},
        tolerance, decimals)
    missing = sorted(wanted - set(shapes))
    extra = sorted(set(shapes) - wanted)
    check = {"features": len(features), "shapes": len(shapes),
             "vintage_without_shape_count": len(missing), "vintage_without_shape": missing[:SAMPLE],
             "shapes_not_in_vintage_count": len(extra), "shapes_not_in_vintage": extra[:SAMPLE],
             "empty_after_simplification": empty[:SAMPLE]}
    return _fc("epci", features, {**(meta or {}), "level": "epci", "code": "SIREN de l'EPCI"}), check


def build_ze(communes: Iterable[tuple[dict, dict]], commune_ze: dict[str, str], ze_names: dict[str, str],
             commune_epci: dict[str, str] | None = None, *, tolerance: float = SIMPLIFY_DEG,
             decimals: int = DECIMALS, meta: dict | None = None) -> tuple[dict, dict]:
    """Zones d'emploi 2020 by dissolving the commune polygons with the vintage's commune -> ZE
    mapping; returns the FeatureCollection (``code`` = ZE2020, ``nom``, ``communes``) and the
    cross-check of the commune layer against the vintage."""
    by_ze: dict[str, list] = {}
    seen: set[str] = set()
    not_in_vintage: set[str] = set()
    epci_disagree: list[str] = []
    for p, geom in communes:
        code = _text(p.get("INSEE_COM"))
        if code not in commune_ze:
            not_in_vintage.add(code)
            continue
        seen.add(code)
        by_ze.setdefault(commune_ze[code], []).append(_shape(geom))
        if commune_epci is not None and "SIREN_EPCI" in p:
            want = commune_epci.get(code)
            got = {s.strip() for s in _text(p.get("SIREN_EPCI")).split("/") if s.strip()}
            if want and want != NO_EPCI and want not in got:
                epci_disagree.append(code)
    features, empty = _layer(by_ze, lambda z: {"code": z, "nom": ze_names.get(z, ""), "communes": len(by_ze[z])},
                             tolerance, decimals)
    no_shape = sorted(set(commune_ze) - seen)
    ze_missing = sorted(set(ze_names) - set(by_ze))
    check = {
        "features": len(features),
        "without_shape_count": len(ze_missing), "without_shape": ze_missing[:SAMPLE],
        "empty_after_simplification": empty[:SAMPLE],
        "communes": {
            "shapes": len(seen) + len(not_in_vintage),
            "vintage_without_shape_count": len(no_shape), "vintage_without_shape": no_shape[:SAMPLE],
            "shapes_not_in_vintage_count": len(not_in_vintage), "shapes_not_in_vintage": sorted(not_in_vintage)[:SAMPLE],
            "epci_disagreements_count": len(epci_disagree), "epci_disagreements": sorted(epci_disagree)[:SAMPLE],
        },
    }
    return _fc("ze", features, {**(meta or {}), "level": "ze", "code": "ZE2020"}), check


# --- every level from the commune polygons (both modes) ----------------------------------------
def _reference_communes(records: Iterable[tuple[dict, dict]], known: set[str], passage) -> tuple[dict, dict]:
    """Commune polygons of any COG year -> the reference year's communes: a former commune is
    dissolved into the commune nouvelle that absorbed it (``geography.map_to_vintage``)."""
    import pandas as pd

    from ..geography import map_to_vintage

    codes, shapes = [], []
    for p, geom in records:
        code = _text(p.get("INSEE_COM") or p.get("code"))
        if code:
            codes.append(code)
            shapes.append(_shape(geom))
    mapped, rep = map_to_vintage(pd.Series(codes, dtype="string"), passage, known)
    parts: dict[str, list] = {}
    for code, shp in zip(mapped.tolist(), shapes):
        if code in known:
            parts.setdefault(code, []).append(shp)
    merged = {c: v for c, v in parts.items() if len(v) > 1}
    check = {"shapes": len(codes), "communes": len(parts), "dissolved_into_commune_nouvelle": len(merged),
             "mapped": len(rep["mapped"]) + len(rep["newer"]), "unmappable_count": rep["unmappable_count"],
             "unmappable": rep["unmappable"][:SAMPLE]}
    return {c: (v[0] if len(v) == 1 else _union(v)) for c, v in parts.items()}, check


def build_levels(records: Iterable[tuple[dict, dict]], geo, passage=None, *, levels=("epci", "ze", "departement", "ti"),
                 tolerance: float = SIMPLIFY_DEG, decimals: int = DECIMALS, meta: dict | None = None) -> tuple[dict, dict]:
    """EPCI, zones d'emploi, départements and Territoires d'industrie (both phases) as unions of
    the reference year's communes, each layer simplified as a coverage (shared borders once, so
    neighbours still touch). ``records``: (properties with ``INSEE_COM`` or ``code``, GeoJSON
    geometry) of communes of any COG year. Returns ({file name: FeatureCollection}, check)."""
    com = geo.communes
    known = set(_col(com, "codgeo"))
    communes, check = _reference_communes(records, known, passage)
    cols = {"epci": "epci", "ze": "ze2020", "departement": "dep"}
    names = {"epci": dict(zip(_col(geo.epci, "epci"), _col(geo.epci, "libepci"))),
             "ze": dict(zip(_col(geo.ze, "ze2020"), _col(geo.ze, "libze2020"))), "departement": {}}
    files = {"epci": EPCI_FILE, "ze": ZE_FILE, "departement": DEP_FILE, "ti": TI_FILE}
    out: dict[str, dict] = {}
    for level in levels:
        if (level == "ti" and getattr(geo, "ti", None) is None) or (level in cols and cols[level] not in com.columns):
            check[level] = {"features": 0, "skipped": "no such column in the geography"}
            continue
        t = time.perf_counter()
        if level == "ti":
            features = []
            for phase, g in geo.ti.groupby("ti_phase"):
                groups: dict[str, list] = {}
                for tid, code in zip(_col(g, "ti_id"), _col(g, "codgeo")):
                    if code in communes:
                        groups.setdefault(tid, []).append(communes[code])
                label = dict(zip(_col(g, "ti_id"), _col(g, "ti_label")))
                feats, _ = _layer(groups, lambda c, ph=phase, lab=label: {"code": c, "nom": lab.get(c, ""), "phase": ph},
                                  tolerance, decimals)
                features += feats
        else:
            groups = {}
            for code, key in zip(_col(com, "codgeo"), _col(com, cols[level])):
                if code in communes and key and key != NO_EPCI:
                    groups.setdefault(key, []).append(communes[code])
            features, _ = _layer(groups, lambda c, lv=level: {"code": c, "nom": names[lv].get(c, "")}, tolerance, decimals)
        out[files[level]] = _fc(level, features, {**(meta or {}), "level": level})
        check[level] = {"features": len(features), "seconds": round(time.perf_counter() - t, 2)}
    return out, check


def read_geojson_communes(paths: Iterable[Path]) -> Iterator[tuple[dict, dict]]:
    """(properties, geometry) of the communes of GeoJSON files (``code`` = INSEE commune code)."""
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SourceFormatError(f"{Path(path).name}: not a readable GeoJSON file ({exc})") from exc
        for i, f in enumerate(data.get("features") or []):
            props, geom = f.get("properties") or {}, f.get("geometry")
            if not props.get("code") or not geom:
                raise SourceFormatError(f"{Path(path).name}: feature {i} has no 'code' property or no geometry")
            yield props, geom


# --- writing -----------------------------------------------------------------------------------
def write_collection(dest: Path, fc: dict) -> int:
    """Atomic, compact GeoJSON write; returns the size in bytes."""
    with storage.atomic_path(dest) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(fc, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
    return Path(dest).stat().st_size


def write_geometry_dir(dest_dir: Path, collections: dict[str, dict]) -> dict[str, int]:
    """Write every collection into a fresh folder next to ``dest_dir`` and swap it into place:
    readers see the previous complete folder or the new one, never a half-written file."""
    dest_dir = Path(dest_dir)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".part", dir=dest_dir.parent))
    try:
        sizes = {name: write_collection(tmp / name, fc) for name, fc in collections.items()}
        storage.swap_dir_into_place(tmp, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sizes


# --- the whole build -----------------------------------------------------------------------------
def _col(df, name: str) -> list[str]:
    return [_text(v) for v in df[name].tolist()]


def build_geometry(archive: Path, geo, dest_dir: Path, *, edition: str | None = None, passage=None,
                   tolerance: float = SIMPLIFY_DEG, decimals: int = DECIMALS) -> dict:
    """Extract the EPCI and COMMUNE layers of ``archive``, build ``epci.geojson`` and
    ``ze.geojson`` for the vintage of ``geo`` (an object with ``communes`` (codgeo, epci,
    ze2020), ``epci`` (epci, libepci), ``ze`` (ze2020, libze2020) frames and ``vintage``) and
    write them into ``dest_dir``. Returns the report (status ok, counts, cross-checks, timings)."""
    archive = Path(archive)
    t0 = time.perf_counter()
    meta = {"source": LICENCE, "edition": edition, "file": archive.name, "cog": getattr(geo, "vintage", None),
            "crs": "EPSG:4326 (longitude, latitude)", "simplified_deg": tolerance, "decimals": decimals}
    Path(dest_dir).parent.mkdir(parents=True, exist_ok=True)
    # extracted layers (hundreds of MB for the whole of France) go on the data volume, not /tmp
    with tempfile.TemporaryDirectory(prefix=".admin-express-", dir=Path(dest_dir).parent) as tmp:
        layers = extract_layers(archive, Path(tmp))
        t_extract = time.perf_counter() - t0
        vintage_epci = dict(zip(_col(geo.epci, "epci"), _col(geo.epci, "libepci")))
        t = time.perf_counter()
        epci_fc, epci_check = build_epci(iter_layer(layers["EPCI"], EPCI_FIELDS), vintage_epci,
                                         tolerance=tolerance, decimals=decimals, meta=meta)
        t_epci = time.perf_counter() - t
        log.info("%s: %d EPCI shapes built in %.1f s (%d of the vintage without shape, %d shapes not in it)",
                 archive.name, epci_check["features"], t_epci, epci_check["vintage_without_shape_count"],
                 epci_check["shapes_not_in_vintage_count"])
        com = geo.communes
        commune_ze = dict(zip(_col(com, "codgeo"), _col(com, "ze2020")))
        commune_epci = dict(zip(_col(com, "codgeo"), _col(com, "epci"))) if "epci" in com.columns else None
        ze_names = dict(zip(_col(geo.ze, "ze2020"), _col(geo.ze, "libze2020")))
        t = time.perf_counter()
        ze_fc, ze_check = build_ze(iter_layer(layers["COMMUNE"], COMMUNE_FIELDS), commune_ze, ze_names, commune_epci,
                                   tolerance=tolerance, decimals=decimals, meta=meta)
        t_ze = time.perf_counter() - t
        communes = ze_check.pop("communes")
        log.info("%s: %d zones d'emploi dissolved from %d commune shapes in %.1f s (%d communes of the vintage "
                 "without shape, %d shapes not in it, %d EPCI disagreements)", archive.name, ze_check["features"],
                 communes["shapes"], t_ze, communes["vintage_without_shape_count"],
                 communes["shapes_not_in_vintage_count"], communes["epci_disagreements_count"])
        members = {lv: lf.member for lv, lf in layers.items()}
        # départements and Territoires d'industrie: the same dissolve as the embedded default
        t = time.perf_counter()
        more, more_check = build_levels(iter_layer(layers["COMMUNE"], COMMUNE_FIELDS), geo, passage,
                                        levels=("departement", "ti"), tolerance=tolerance, decimals=decimals, meta=meta)
        log.info("%s: %d départements and %d Territoires d'industrie dissolved in %.1f s", archive.name,
                 more_check["departement"]["features"], more_check["ti"]["features"], time.perf_counter() - t)
    sizes = write_geometry_dir(dest_dir, {EPCI_FILE: epci_fc, ZE_FILE: ze_fc, **more})
    for what, n in (("EPCI", epci_check["vintage_without_shape_count"]), ("zones d'emploi", ze_check["without_shape_count"]),
                    ("communes", communes["vintage_without_shape_count"])):
        if n:
            log.warning("%s: %d %s of COG %s without a shape (not drawn on the map)", archive.name, n, what,
                        meta["cog"])
    total = time.perf_counter() - t0
    log.info("geometry written to %s (%s) in %.1f s", dest_dir,
             ", ".join(f"{k} {v / (1 << 20):.1f} MiB" for k, v in sizes.items()), total)
    return {
        "status": "ok", "source": "IGN ADMIN EXPRESS COG CARTO", "edition": edition, "file": archive.name,
        "archive_bytes": archive.stat().st_size, "layers": members, "epci": epci_check, "ze": ze_check,
        "communes": communes, "departement": more_check["departement"], "ti": more_check["ti"], "files": sizes, "simplified_deg": tolerance, "decimals": decimals,
        "seconds": {"extract": round(t_extract, 2), "epci": round(t_epci, 2), "ze": round(t_ze, 2),
                    "total": round(total, 2)},
    }


# --- acquisition -------------------------------------------------------------------------------
def validate(path: Path) -> None:
    """Before landing: a 7z whose index lists the EPCI and COMMUNE layers (else SourceFormatError)."""
    locate_layers(list_members(path), Path(path).name)


def acquire(client, settings, year: int | None = None, **_):
    """Land the archive of COG ``year`` in ``raw/geo_admin_express/<edition>/`` (conditional GET,
    manifest, progress logged by the HTTP client)."""
    from ..config import cog_year
    from ..landing import land_download

    y = int(year or cog_year())
    url, name, ed = archive_url(client, y)
    return land_download(client, settings, source=SOURCE, file_name=name, url=url, vintage=ed, expect="7z",
                         validate=validate, extra={"edition": ed, "cog_year": y, "format": "7z",
                                                   "vintage_basis": "ADMIN EXPRESS COG CARTO edition (file name)"})
