"""IGN ADMIN EXPRESS COG CARTO -> epci.geojson / ze.geojson, on a tiny archive built here with
pyshp + py7zr in the real layout (see ``admin_express_fixture``)."""

from __future__ import annotations

import json
import types

import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon, shape
from territoires_industrie.geography import SourceFormatError
from territoires_industrie.http import HttpClient, HttpConfig
from territoires_industrie.sources import admin_express as ax

from . import admin_express_fixture as fx

ED = "2023-05-03"


def vintage(communes=fx.COMMUNES, epci_names=fx.EPCI_NAMES, ze_names=fx.ZE_NAMES):
    """A staged geography (the frames the stage passes): communes, epci, ze."""
    return types.SimpleNamespace(
        vintage="2023",
        communes=pd.DataFrame({"codgeo": [c[0] for c in communes], "libgeo": [c[1] for c in communes],
                               "epci": [c[2] for c in communes], "ze2020": [c[3] for c in communes]}),
        epci=pd.DataFrame({"epci": list(epci_names), "libepci": list(epci_names.values())}),
        ze=pd.DataFrame({"ze2020": list(ze_names), "libze2020": list(ze_names.values())}),
    )


def write_archive(tmp_path, data: bytes | None = None, edition: str = ED, **kw):
    path = tmp_path / ax.archive_name(edition)
    path.write_bytes(fx.archive_bytes(edition, **kw) if data is None else data)
    return path


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def by_code(fc) -> dict:
    return {f["properties"]["code"]: f for f in fc["features"]}


def commune_square(code):
    c = next(c for c in fx.COMMUNES if c[0] == code)
    return Polygon(fx.square(fx.X0 + c[4] * fx.SIZE, fx.Y0 + c[5] * fx.SIZE))


# --- URL ----------------------------------------------------------------------------------------
def test_url_by_cog_year_and_overrides():
    client = HttpClient(HttpConfig(), redact_logs=False)
    base = "https://data.geopf.fr/telechargement/download/ADMIN-EXPRESS-COG-CARTO/"
    for year, ed in ((2023, "2023-05-03"), (2024, "2024-02-22"), (2025, "2025-04-02")):
        url, name, got = ax.archive_url(client, year, env={})
        stem = f"ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_{ed}"
        assert (url, name, got) == (f"{base}{stem}/{stem}.7z", f"{stem}.7z", ed)
    local = HttpClient(HttpConfig.from_env({"TI_URL_GEOPF": "http://127.0.0.1:9/dl/"}), redact_logs=False)
    assert ax.archive_url(local, 2023, env={})[0].startswith("http://127.0.0.1:9/dl/ADMIN-EXPRESS-COG-CARTO/")
    full = "https://mirror.example/ign/ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_2024-02-22.7z?sig=secret"
    url, name, ed = ax.archive_url(client, 2023, env={"TI_URL_ADMIN_EXPRESS": full})
    assert url == full and name == "ADMIN-EXPRESS-COG-CARTO_3-2__SHP_WGS84G_FRA_2024-02-22.7z" and ed == "2024-02-22"
    with pytest.raises(KeyError, match="TI_ADMIN_EXPRESS_EDITION"):
        ax.archive_url(client, 2031, env={})
    assert ax.archive_url(client, 2031, env={"TI_ADMIN_EXPRESS_EDITION": "2031-03-01"})[2] == "2031-03-01"


def test_switch_and_messages_without_query_strings():
    assert ax.enabled({}) and ax.enabled({"TI_FETCH_GEOMETRY": "1"})
    assert not ax.enabled({"TI_FETCH_GEOMETRY": "0"}) and not ax.enabled({"TI_FETCH_GEOMETRY": "false"})
    msg = ax.describe_error(RuntimeError("HTTP 404 from GET data.geopf.fr/x/y.7z?apikey=s3cr3t&x=1: not found"))
    assert "s3cr3t" not in msg and "data.geopf.fr/x/y.7z" in msg and "not found" in msg


# --- archive ------------------------------------------------------------------------------------
@pytest.mark.parametrize("edition", ["2023-05-03", "2024-02-22"])
def test_layers_found_anywhere_and_only_they_are_extracted(tmp_path, edition):
    archive = write_archive(tmp_path, edition=edition)
    layers = ax.extract_layers(archive, tmp_path / "x")
    assert set(layers) == {"EPCI", "COMMUNE"}
    assert layers["EPCI"].member == f"{fx.layer_dir(edition)}/EPCI.shp"
    assert set(layers["COMMUNE"].files) == {"shp", "shx", "dbf", "prj", "cpg"}
    extracted = sorted(p.name for p in (tmp_path / "x").rglob("*") if p.is_file())
    assert extracted == sorted(f"{lv}.{e}" for lv in ("EPCI", "COMMUNE") for e in ("shp", "shx", "dbf", "prj", "cpg"))
    ax.validate(archive)  # the pre-landing check accepts it


def test_read_layer_gives_properties_and_geometry(tmp_path):
    layers = ax.extract_layers(write_archive(tmp_path), tmp_path / "x")
    rows = ax.read_layer(layers["COMMUNE"], ax.COMMUNE_FIELDS)
    assert [p["INSEE_COM"] for p, _ in rows] == [c[0] for c in fx.COMMUNES]
    props, geom = rows[4]
    assert props["NOM"] == "Époisses" and props["SIREN_EPCI"] == "200000002"  # UTF-8 (.cpg)
    assert shape(geom).equals(commune_square("21005"))


# --- EPCI and ZE ----------------------------------------------------------------------------------
def test_epci_and_ze_collections(tmp_path):
    rep = ax.build_geometry(write_archive(tmp_path), vintage(), tmp_path / "geometry", edition=ED)
    assert rep["status"] == "ok" and rep["edition"] == ED and rep["file"] == ax.archive_name(ED)
    assert rep["epci"]["features"] == 2 and rep["ze"]["features"] == 2
    assert rep["files"]["epci.geojson"] == (tmp_path / "geometry" / "epci.geojson").stat().st_size

    epci = load(tmp_path / "geometry" / "epci.geojson")
    assert epci["type"] == "FeatureCollection"
    feats = by_code(epci)
    assert set(feats) == {"200000001", "200000002"}
    assert feats["200000002"]["properties"]["nom"] == "Communauté de communes du Châtillonnais"
    assert feats["200000001"]["properties"]["nature"] == "Communauté de communes"
    for code in feats:
        members = [commune_square(c[0]) for c in fx.COMMUNES if c[2] == code]
        assert shape(feats[code]["geometry"]).equals(shapely.union_all(members))

    ze = by_code(load(tmp_path / "geometry" / "ze.geojson"))
    assert set(ze) == {"2701", "2702"} and ze["2702"]["properties"]["nom"] == "Dijon"
    for code, f in ze.items():
        squares = [commune_square(c[0]) for c in fx.COMMUNES if c[3] == code]
        g = shape(f["geometry"])
        assert g.geom_type == "Polygon" and len(g.interiors) == 0  # one polygon per ZE
        assert g.area == pytest.approx(sum(s.area for s in squares), rel=1e-9)  # area = sum of its communes
        # no internal boundary: the outline is the 3 x 1 rectangle, not three squares
        assert g.boundary.length == pytest.approx(2 * (3 * fx.SIZE + fx.SIZE), rel=1e-9)
        assert g.boundary.length < sum(s.boundary.length for s in squares)
        assert f["properties"]["communes"] == 3
    # coordinates rounded to 5 decimals, longitude first
    pts = [p for f in epci["features"] for p in f["geometry"]["coordinates"][0]]
    assert all(round(x, 5) == x and round(y, 5) == y and 5 <= x <= 5.3 and 47 <= y <= 47.2 for x, y in pts)


def test_cross_check_against_the_vintage(tmp_path):
    """An EPCI of the vintage without shape, a shape outside the vintage, a commune of the
    vintage without shape, a commune shape outside the vintage, an EPCI disagreement."""
    extra_ring = [fx.square(6.0, 47.0)]
    archive = write_archive(tmp_path, extra_epci=[("249999999", "CC disparue", extra_ring)],
                            communes=fx.COMMUNES + [("21999", "Ancienne", "200000002", "2702", 3, 1)])
    communes = [c if c[0] != "21006" else (c[0], c[1], "200000001", c[3], c[4], c[5]) for c in fx.COMMUNES]
    communes += [("21007", "Sans forme", "200000003", "2702", 9, 9)]
    geo = vintage(communes, {**fx.EPCI_NAMES, "200000003": "CC sans forme"})
    rep = ax.build_geometry(archive, geo, tmp_path / "geometry", edition=ED)
    assert rep["epci"]["vintage_without_shape"] == ["200000003"] and rep["epci"]["vintage_without_shape_count"] == 1
    assert rep["epci"]["shapes_not_in_vintage"] == ["249999999"]
    assert rep["communes"]["vintage_without_shape"] == ["21007"]
    assert rep["communes"]["shapes_not_in_vintage"] == ["21999"]
    assert rep["communes"]["epci_disagreements"] == ["21006"]
    assert set(by_code(load(tmp_path / "geometry" / "epci.geojson"))) == {"200000001", "200000002"}  # vintage only
    ze = by_code(load(tmp_path / "geometry" / "ze.geojson"))
    assert ze["2702"]["properties"]["communes"] == 3  # 21999 is not in the vintage: not dissolved


# --- errors -------------------------------------------------------------------------------------
def test_lambert93_prj_is_refused_naming_the_member(tmp_path):
    archive = write_archive(tmp_path, prj=fx.LAMBERT93_PRJ)
    with pytest.raises(SourceFormatError) as err:
        ax.build_geometry(archive, vintage(), tmp_path / "geometry", edition=ED)
    msg = str(err.value)
    assert f"{fx.layer_dir(ED)}/EPCI.prj" in msg and "RGF93_Lambert_93" in msg and "WGS84G" in msg
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]  # no geometry, no extraction left behind


def test_projected_coordinates_behind_a_geographic_prj_are_refused(tmp_path):
    pos = {c[0]: (700000.0 + 1000 * c[4], 6600000.0 + 1000 * c[5]) for c in fx.COMMUNES}
    archive = write_archive(tmp_path, positions=pos, size=1000.0)
    with pytest.raises(SourceFormatError, match=r"EPCI\.shp: bounding box .* not longitude/latitude"):
        ax.build_geometry(archive, vintage(), tmp_path / "geometry", edition=ED)


def test_check_prj():
    assert ax.check_prj(fx.WGS84_PRJ, "x.prj") == "GCS_WGS_1984"
    with pytest.raises(SourceFormatError, match="x.prj: projected"):
        ax.check_prj(fx.LAMBERT93_PRJ, "x.prj")
    with pytest.raises(SourceFormatError, match="x.prj: unrecognised"):
        ax.check_prj("", "x.prj")


@pytest.mark.parametrize("omit,message", [
    (("COMMUNE.*",), r"layer COMMUNE not found"),
    (("EPCI.*",), r"layer EPCI not found"),
    (("EPCI.dbf",), r"layer EPCI in .*ADECOGC_3-2_SHP_WGS84G_FRA/ lacks \['EPCI\.dbf'\]"),
    (("COMMUNE.prj",), r"layer COMMUNE in .* lacks \['COMMUNE\.prj'\]"),
])
def test_missing_layer_or_member(tmp_path, omit, message):
    archive = write_archive(tmp_path, omit=omit)
    with pytest.raises(SourceFormatError, match=rf"{ax.archive_name(ED)}: {message}"):
        ax.validate(archive)
    with pytest.raises(SourceFormatError, match=message):
        ax.build_geometry(archive, vintage(), tmp_path / "geometry", edition=ED)


@pytest.mark.parametrize("layer,field", [("EPCI", "CODE_SIREN"), ("COMMUNE", "INSEE_COM")])
def test_missing_field_names_file_and_field(tmp_path, layer, field):
    archive = write_archive(tmp_path, drop_fields={layer: field})
    with pytest.raises(SourceFormatError, match=rf"{layer}\.dbf: required field\(s\) \['{field}'\] missing"):
        ax.build_geometry(archive, vintage(), tmp_path / "geometry", edition=ED)
    assert not (tmp_path / "geometry").exists()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "html"])
def test_corrupt_archive_names_the_file(tmp_path, damage):
    good = fx.archive_bytes(ED)
    data = {"truncated": good[: len(good) // 2],
            "flipped": good[:40] + bytes(b ^ 0xFF for b in good[40:240]) + good[240:],
            "html": b"<!doctype html><html><body>maintenance</body></html>"}[damage]
    archive = write_archive(tmp_path, data)
    with pytest.raises(SourceFormatError, match=rf"^{ax.archive_name(ED)}: .*(corrupt|not a 7z)"):
        ax.build_geometry(archive, vintage(), tmp_path / "geometry", edition=ED)
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]


# --- atomic output --------------------------------------------------------------------------------
def test_geometry_folder_is_replaced_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "geometry"
    good = {"type": "FeatureCollection", "features": []}
    ax.write_geometry_dir(dest, {"epci.geojson": good, "ze.geojson": good})
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    bad = {"type": "FeatureCollection", "features": [{"properties": {"code": object()}}]}  # not serialisable
    with pytest.raises(TypeError):
        ax.write_geometry_dir(dest, {"epci.geojson": {**good, "name": "new"}, "ze.geojson": bad})
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before  # previous files intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geometry"]  # no temporary folder left
    with pytest.raises(TypeError):
        ax.write_geometry_dir(tmp_path / "fresh", {"ze.geojson": bad})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geometry"]  # nothing half-written


def test_rebuild_replaces_the_previous_files(tmp_path):
    dest = tmp_path / "geometry"
    ax.write_geometry_dir(dest, {"epci.geojson": {"features": []}, "old.geojson": {"features": []}})
    ax.build_geometry(write_archive(tmp_path), vintage(), dest, edition=ED)
    assert sorted(p.name for p in dest.iterdir()) == ["epci.geojson", "ze.geojson"]
    assert len(load(dest / "epci.geojson")["features"]) == 2


def test_neighbours_keep_their_shared_border_after_simplification(tmp_path):
    """Two EPCI split by a meandering border (400 vertices: bends of ~300 m plus ~30 m
    zigzags): simplified together, the border is simplified once, so the output has no
    sliver or overlap between them (simplified one by one, they overlapped and left gaps)
    and the review's contiguity check (shared boundary points) still finds them adjacent."""
    import math

    from territoires_industrie.review.inputs import epci_adjacency

    n = 400
    border = [(5.1 + 0.004 * math.sin(i * 0.09) + 0.0003 * math.sin(i * 1.7), 47.0 + 0.1 * i / n) for i in range(n + 1)]
    west = Polygon([(5.0, 47.0), *border, (5.0, 47.1)])
    east = Polygon([(5.2, 47.0), (5.2, 47.1), *reversed(border)])
    assert west.is_valid and east.is_valid and west.intersection(east).area == 0
    records = [({"CODE_SIREN": "200000001", "NOM": "Ouest", "NATURE": "CC"}, west.__geo_interface__),
               ({"CODE_SIREN": "200000002", "NOM": "Est", "NATURE": "CC"}, east.__geo_interface__)]
    fc, check = ax.build_epci(records, None)
    a, b = (shape(f["geometry"]) for f in sorted(fc["features"], key=lambda f: f["properties"]["code"]))
    assert len(a.exterior.coords) < 200  # really simplified (from 404 points)
    assert a.intersection(b).area < 1e-12  # no overlap
    assert shapely.union_all([a, b]).area == pytest.approx(0.2 * 0.1, abs=1e-12)  # no gap
    path = tmp_path / "epci.geojson"
    path.write_text(json.dumps(fc))
    assert epci_adjacency(path, {"200000001", "200000002"})["pairs"] == [["200000001", "200000002"]]
