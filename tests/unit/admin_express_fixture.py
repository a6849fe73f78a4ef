"""A tiny IGN ADMIN EXPRESS COG CARTO archive, built with pyshp + py7zr in the real layout:

``ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_<ed>/ADMIN-EXPRESS-COG-CARTO/1_DONNEES_LIVRAISON_<ed>/
ADECOGC_3-2_SHP_WGS84G_FRA/{EPCI,COMMUNE,REGION}.{shp,shx,dbf,prj,cpg}`` + a notice, with the real
field names. Communes are squares; an EPCI polygon is the union of its communes.
"""

from __future__ import annotations

import io

WGS84_PRJ = ('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
             'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')
LAMBERT93_PRJ = ('PROJCS["RGF93_Lambert_93",GEOGCS["GCS_RGF_1993",DATUM["D_RGF_1993",SPHEROID["GRS_1980",6378137.0,'
                 '298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
                 'PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",700000.0],'
                 'PARAMETER["False_Northing",6600000.0],PARAMETER["Central_Meridian",3.0],'
                 'PARAMETER["Standard_Parallel_1",44.0],PARAMETER["Standard_Parallel_2",49.0],'
                 'PARAMETER["Latitude_Of_Origin",46.5],UNIT["Meter",1.0]]')

EPCI_FIELDS = [("ID", "C", 24), ("CODE_SIREN", "C", 9), ("NOM", "C", 200), ("NATURE", "C", 80)]
COMMUNE_FIELDS = [("ID", "C", 24), ("NOM", "C", 80), ("NOM_M", "C", 80), ("INSEE_COM", "C", 5), ("STATUT", "C", 30),
                  ("POPULATION", "N", 10), ("INSEE_CAN", "C", 5), ("INSEE_ARR", "C", 2), ("INSEE_DEP", "C", 3),
                  ("INSEE_REG", "C", 2), ("SIREN_EPCI", "C", 20)]

# unit-test world: 6 squares of 0.1° in two rows near Dijon; EPCI by column block, ZE by row
#   row 1 (lat 47.1-47.2): 21004 | 21005 | 21006     ZE 2702 (top row)
#   row 0 (lat 47.0-47.1): 21001 | 21002 | 21003     ZE 2701 (bottom row)
#   EPCI 200000001 = 21001, 21002, 21004; EPCI 200000002 = 21003, 21005, 21006
SIZE = 0.1
X0, Y0 = 5.0, 47.0
COMMUNES = [
    # codgeo, nom, epci, ze2020, column, row
    ("21001", "Aubigny-lès-Sombernon", "200000001", "2701", 0, 0),
    ("21002", "Beaune", "200000001", "2701", 1, 0),
    ("21003", "Châtillon-sur-Seine", "200000002", "2701", 2, 0),
    ("21004", "Dijon", "200000001", "2702", 0, 1),
    ("21005", "Époisses", "200000002", "2702", 1, 1),
    ("21006", "Fontaine-Française", "200000002", "2702", 2, 1),
]
EPCI_NAMES = {"200000001": "CC de l'Auxois Sud", "200000002": "Communauté de communes du Châtillonnais"}
EPCI_NATURE = {"200000001": "Communauté de communes", "200000002": "Communauté de communes"}
ZE_NAMES = {"2701": "Beaune", "2702": "Dijon"}


def layer_dir(edition: str) -> str:
    root = f"ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_{edition}/ADMIN-EXPRESS-COG-CARTO"
    if edition < "2024":
        return f"{root}/1_DONNEES_LIVRAISON_{edition}/ADECOGC_3-2_SHP_WGS84G_FRA"
    return f"{root}/1_DONNEES_LIVRAISON_{edition[:7]}-00171/ADECOGC_3-2_SHP_WGS84G_FRA-ED{edition}"


def square(x: float, y: float, size: float = SIZE) -> list[tuple[float, float]]:
    """Clockwise ring (an outer ring in the shapefile convention)."""
    x, y, x1, y1 = (round(v, 9) for v in (x, y, x + size, y + size))  # neighbours share exact edges
    return [(x, y), (x, y1), (x1, y1), (x1, y), (x, y)]


def shapefile_members(fields, rows, prj: str = WGS84_PRJ, cpg: str | None = "UTF-8") -> dict[str, bytes]:
    """{ext: bytes} of a polygon shapefile; ``rows``: (record values, list of rings)."""
    import shapefile

    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    w = shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding="utf-8")
    for name, kind, size in fields:
        w.field(name, kind, size)
    for values, rings in rows:
        w.poly(rings)
        w.record(*values)
    w.close()
    out = {"shp": shp.getvalue(), "shx": shx.getvalue(), "dbf": dbf.getvalue(), "prj": prj.encode()}
    if cpg is not None:
        out["cpg"] = cpg.encode()
    return out


def _clockwise(coords) -> list[tuple[float, float]]:
    pts = [(round(x, 9), round(y, 9)) for x, y in coords]
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:]))
    return pts if area2 < 0 else pts[::-1]


def layers(communes=COMMUNES, epci_names=EPCI_NAMES, *, x0=X0, y0=Y0, size=SIZE, positions=None,
           extra_epci=(), skip_epci=(), prj=WGS84_PRJ, drop_fields=None) -> dict[str, dict[str, bytes]]:
    """{layer: {ext: bytes}} for EPCI and COMMUNE (+ a decoy REGION layer).

    ``positions``: {codgeo: (lon, lat)} instead of the grid; ``extra_epci``: (code, name, rings)
    shapes outside the vintage; ``skip_epci``: codes left without a shape; ``drop_fields``:
    {layer: field name} removed from the layer."""
    import shapely
    from shapely.geometry import Polygon

    drop_fields = drop_fields or {}

    def where(c):
        if positions:
            return positions[c[0]]
        return x0 + c[4] * size, y0 + c[5] * size

    def fields_rows(fields, rows, layer):
        drop = drop_fields.get(layer)
        keep = [i for i, f in enumerate(fields) if f[0] != drop]
        return [fields[i] for i in keep], [([v[i] for i in keep], r) for v, r in rows]

    com_rows = []
    for i, c in enumerate(communes):
        x, y = where(c)
        com_rows.append(((f"COMMUNE_{i:07d}", c[1], c[1].upper(), c[0], "Commune simple", 1000 + i, "2101", "1", c[0][:2],
                          "27", c[2]), [square(x, y, size)]))
    epci_rows = []
    for j, (code, name) in enumerate(epci_names.items()):
        if code in skip_epci:
            continue
        polys = [Polygon(square(*where(c), size)) for c in communes if c[2] == code]
        u = shapely.union_all(polys)
        rings = [_clockwise(g.exterior.coords) for g in getattr(u, "geoms", [u])]
        epci_rows.append(((f"EPCI_{j:07d}", code, name, EPCI_NATURE.get(code, "Communauté de communes")), rings))
    for k, (code, name, rings) in enumerate(extra_epci):
        epci_rows.append(((f"EPCI_X{k:06d}", code, name, "Communauté de communes"), rings))
    ef, er = fields_rows(EPCI_FIELDS, epci_rows, "EPCI")
    cf, cr = fields_rows(COMMUNE_FIELDS, com_rows, "COMMUNE")
    region = shapefile_members([("ID", "C", 24), ("NOM", "C", 80), ("INSEE_REG", "C", 2)],
                               [(("REGION_1", "Bourgogne-Franche-Comté", "27"), [square(x0, y0, 1.0)])])
    return {"EPCI": shapefile_members(ef, er, prj), "COMMUNE": shapefile_members(cf, cr, prj), "REGION": region}


def archive_bytes(edition: str = "2023-05-03", *, layer_files: dict[str, dict[str, bytes]] | None = None,
                  omit: tuple[str, ...] = (), **kw) -> bytes:
    """The .7z (LZMA2) in the real folder layout. ``omit``: members to leave out, e.g.
    ``("COMMUNE.dbf",)`` or ``("EPCI.*",)``."""
    import fnmatch

    import py7zr

    layer_files = layer_files or layers(**kw)
    folder = layer_dir(edition)
    root = folder.split("/", 1)[0]
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.writestr(b"ADMIN EXPRESS COG CARTO - notice (fixture)\n",
                   f"{root}/ADMIN-EXPRESS-COG-CARTO/LISEZ-MOI.txt")
        for layer, files in layer_files.items():
            for ext, data in files.items():
                name = f"{layer}.{ext}"
                if any(fnmatch.fnmatch(name, o) for o in omit):
                    continue
                z.writestr(data, f"{folder}/{name}")
    return buf.getvalue()
