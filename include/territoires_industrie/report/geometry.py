"""Official geometries for the report map (GeoJSON), optional.

Looked up, first match wins: the ``geometry_dir`` argument, the ``TI_GEOMETRY_DIR``
environment variable, then ``geometry/`` in the current geography staging partition (written
by the geography stage in live mode from IGN ADMIN EXPRESS COG CARTO). Files:
``epci*.geojson`` (feature property ``code`` / ``CODE_SIREN`` / ``SIREN`` …) and
``ze*.geojson`` (``code`` / ``ZE2020`` …), WGS84 longitude/latitude. Without a file the
report says so and keeps its charts.

Only outer rings are drawn; coordinates are rounded to 0.001° (about 100 m) and thinned
to keep the page light.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..config import env as setting

log = logging.getLogger(__name__)

CODE_KEYS = {
    "epci": ("code", "CODE_SIREN", "code_siren", "SIREN_EPCI", "siren_epci", "SIREN", "siren", "EPCI", "epci", "id"),
    "ze": ("code", "ZE2020", "ze2020", "CODE_ZE", "code_ze", "ZE", "ze", "id"),
    "departement": ("code", "INSEE_DEP", "DEP", "dep", "id"),
    "ti": ("code", "ti_id", "id"),
}
#: Metropolitan France bounding box (lon, lat); other features are listed, not drawn.
METRO_BBOX = (-5.5, 41.2, 10.0, 51.3)
TOLERANCE = 0.004  # degrees between kept points


@dataclass
class LevelGeometry:
    level: str
    path: Path
    shapes: dict[str, list[list[tuple[float, float]]]]  # code -> outer rings (lon, lat)
    outside: list[str]  # codes not drawn (overseas)
    unmatched_features: int
    phases: dict[str, str] = field(default_factory=dict)  # ti: code -> "2018-2022" / "2023-2027"
    source: str = ""  # what the file says it is made from (shown under the maps)

    def bbox(self, code: str) -> tuple[float, float, float, float]:
        if code not in self._boxes:
            pts = [p for r in self.shapes[code] for p in r]
            self._boxes[code] = (min(p[0] for p in pts), min(p[1] for p in pts),
                                 max(p[0] for p in pts), max(p[1] for p in pts))
        return self._boxes[code]

    def __post_init__(self):
        self._boxes: dict[str, tuple] = {}


def geometry_dirs(settings=None, geometry_dir: Path | None = None) -> list[Path]:
    dirs = []
    if geometry_dir:
        dirs.append(Path(geometry_dir))
    if setting("TI_GEOMETRY_DIR"):
        dirs.append(Path(setting("TI_GEOMETRY_DIR")))
    if settings is not None:
        pointer = Path(settings.staging_dir) / "geography" / "CURRENT"
        if pointer.exists():
            dirs.append(Path(settings.staging_dir) / "geography" / pointer.read_text().strip() / "geometry")
    return dirs


def find_files(dirs: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            name = p.name.lower()
            if not name.endswith((".geojson", ".json")):
                continue
            for level in CODE_KEYS:
                if name.startswith(level) and level not in found:
                    found[level] = p
    return found


def _thin(ring: list) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for pt in ring:
        x, y = round(float(pt[0]), 3), round(float(pt[1]), 3)
        if out and abs(x - out[-1][0]) < TOLERANCE and abs(y - out[-1][1]) < TOLERANCE:
            continue
        out.append((x, y))
    if len(out) < 4:  # tiny ring: keep its rounded original points
        out = [(round(float(p[0]), 3), round(float(p[1]), 3)) for p in ring]
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def _outer_rings(geom: dict) -> list[list]:
    if not geom:
        return []
    if geom.get("type") == "Polygon":
        return [geom["coordinates"][0]] if geom.get("coordinates") else []
    if geom.get("type") == "MultiPolygon":
        return [poly[0] for poly in geom.get("coordinates", []) if poly]
    if geom.get("type") == "GeometryCollection":
        return [r for g in geom.get("geometries", []) for r in _outer_rings(g)]
    return []


def load_level(path: Path, level: str, codes: set[str] | None) -> LevelGeometry:
    """The shapes of ``level`` in ``path`` whose code is in ``codes`` (None: every feature)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    features = data.get("features", [])
    key = None
    for k in CODE_KEYS[level]:
        vals = {str((f.get("properties") or {}).get(k)) for f in features if k in (f.get("properties") or {})}
        if vals & codes if codes is not None else vals:
            key = k
            break
    shapes: dict[str, list] = {}
    phases: dict[str, str] = {}
    outside, unmatched = [], 0
    for f in features:
        code = str((f.get("properties") or {}).get(key)) if key else None
        if code is None or (codes is not None and code not in codes):
            unmatched += 1
            continue
        rings = [_thin(r) for r in _outer_rings(f.get("geometry") or {})]
        rings = [r for r in rings if len(r) >= 4]
        if not rings:
            continue
        xs = [p[0] for r in rings for p in r]
        ys = [p[1] for r in rings for p in r]
        cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
        x0, y0, x1, y1 = METRO_BBOX
        if not (x0 <= cx <= x1 and y0 <= cy <= y1):
            outside.append(code)
            continue
        shapes.setdefault(code, []).extend(rings)
        if (f.get("properties") or {}).get("phase"):
            phases[code] = str(f["properties"]["phase"])
    meta = data.get("metadata") or {}
    source = f"{meta.get('source') or path.name}" + (f", COG {meta['cog']}" if meta.get("cog") else "") + \
        (f", édition {meta['edition']}" if meta.get("edition") else "")
    log.info("geometry %s: %d of %d features drawn from %s (code property %r; %d overseas, %d not in the release)",
             level, len(shapes), len(features), path, key, len(outside), unmatched)
    return LevelGeometry(level=level, path=Path(path), shapes=shapes, outside=sorted(outside),
                         unmatched_features=unmatched, phases=phases, source=source)


def load_geometries(codes_by_level: dict[str, set[str]], settings=None,
                    geometry_dir: Path | None = None) -> dict[str, LevelGeometry]:
    """{level: LevelGeometry} for the levels with a geometry file; unreadable files are
    logged and skipped (the map section then says the geometry is unavailable)."""
    files = find_files(geometry_dirs(settings, geometry_dir))
    out = {}
    for level, path in files.items():
        if level not in codes_by_level:
            continue
        try:
            g = load_level(path, level, codes_by_level[level])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("geometry file %s unreadable (%s): map of %s skipped", path, exc, level)
            continue
        if g.shapes:
            out[level] = g
    return out
