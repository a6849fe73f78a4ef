"""A stand-in for INSEE's Melodi census datasets, built from what the real service holds, not from
the queries our code sends (the previous replay answered whatever series the library declared,
so it could not catch a code the service does not have).

What it reproduces, with its evidence (``../shared/data/real/README.md``, "recorded/"):

* ``GET /range/{DS}``: the recorded layout (``{"code", "label", "range": [{"concept": {"code"},
  "type", "values": [{"code", "label"}]}]}``, cassette ``melodi_vcr_get_range_geo_*.yml``);
* the ``DS_RP_*`` datasets hold **only the latest census set** (here 2011/2016/2022, as before the
  2023 set was published); ``DS_RP_SERIE_HISTORIQUE`` holds the historical years too;
* ``DS_RP_POPULATION_PRINC`` AGE codes ``_T, Y15T24, Y20T64, Y25T39, Y40T54, Y55T64, Y65T79,
  Y_GE65, Y_GE80, Y_LT15, Y_LT20`` (no Y15T64, no Y25T54); ``DS_RP_EMPLOI_LR_PRINC`` AGE codes
  ``Y15T64, Y15T24, Y25T54, Y55T64`` with ``EMPSTA_ENQ``, ``SEX``, ``EDUC`` (``_T`` = total);
* a query on a year or a code the dataset does not hold: HTTP 200 with ``observations: []``
  (cassette ``melodi_vcr_get_data_popref_empty.yml``);
* a dimension not given in the query: every code of it is returned (one observation per code);
* ``paging.next`` only when the request carries ``page``; ``paging.count`` = all observations;
* GEO codes carry their COG year (``2025-COM-21054``); a département row is mixed in.

Values are deterministic per commune; the age bands add up to the published totals.
"""

from __future__ import annotations

import itertools
import json

from werkzeug import Response

CENSUS_SET = (2011, 2016, 2022)
HISTORY = (1968, 1975, 1982, 1990, 1999, 2011, 2016, 2022)
POP_AGES = ("_T", "Y15T24", "Y20T64", "Y25T39", "Y40T54", "Y55T64", "Y65T79", "Y_GE65", "Y_GE80", "Y_LT15", "Y_LT20")
HELD = {
    "DS_RP_SERIE_HISTORIQUE": ({"RP_MEASURE": ("POP", "LOG", "RP")}, HISTORY),
    "DS_RP_POPULATION_PRINC": ({"RP_MEASURE": ("POP",), "SEX": ("F", "M", "_T"), "AGE": POP_AGES}, CENSUS_SET),
    "DS_RP_EMPLOI_LR_PRINC": ({"SEX": ("F", "M", "_T"), "EDUC": ("001T100_RP", "200_RP", "_T"),
                               "AGE": ("Y15T64", "Y15T24", "Y25T54", "Y55T64"), "EMPSTA_ENQ": ("1", "2", "1T2", "_T")},
                              CENSUS_SET),
    "DS_RP_EMPLOI_LT_PRINC": ({"RP_MEASURE": ("NBEMP",), "SEX": ("F", "M", "_T")}, CENSUS_SET),
}
GEO_YEAR = "2025"

#: commune -> (population, 15-24, 25-39, 40-54, 55-64, actives 15-64, employed 15-64, actives 25-54,
#: employed 25-54, jobs at the place of work), for the latest year; earlier years scaled down
COMMUNES = {
    "21054": (157000, 26000, 33000, 29000, 17000, 75000, 66000, 52000, 47000, 110000),
    "21231": (8900, 1000, 1700, 1600, 1200, 4200, 3900, 3000, 2850, 2100),
}
AGE_INDEX = {"Y15T24": 1, "Y25T39": 2, "Y40T54": 3, "Y55T64": 4}


def value(ds: str, code: str, dims: dict, year: int) -> float | None:
    """The figure the fake holds for one observation (None: not held)."""
    base = COMMUNES[code]
    scale = 1.0 - 0.01 * (2022 - year) / 6.0  # a slow growth
    pop = base[0] * scale
    if ds == "DS_RP_SERIE_HISTORIQUE":
        return {"POP": pop, "LOG": pop * 0.5, "RP": pop * 0.45}[dims["RP_MEASURE"]]
    sex = {"_T": 1.0, "F": 0.52, "M": 0.48}[dims.get("SEX", "_T")]
    if ds == "DS_RP_POPULATION_PRINC":
        age = dims["AGE"]
        if age == "_T":
            return pop * sex
        if age in AGE_INDEX:
            return base[AGE_INDEX[age]] * scale * sex
        return pop * 0.1 * sex  # other bands: not used by the pipeline
    if ds == "DS_RP_EMPLOI_LR_PRINC":
        educ = {"_T": 1.0, "001T100_RP": 0.3, "200_RP": 0.7}[dims["EDUC"]]
        act, occ, act2554, occ2554 = base[5:9]
        a = {"Y15T64": (act, occ), "Y25T54": (act2554, occ2554), "Y15T24": (act * 0.1, occ * 0.08),
             "Y55T64": (act * 0.15, occ * 0.14)}[dims["AGE"]]
        st = {"1T2": a[0], "1": a[1], "2": a[0] - a[1], "_T": a[0] * 1.3}[dims["EMPSTA_ENQ"]]
        return st * scale * sex * educ
    if ds == "DS_RP_EMPLOI_LT_PRINC":
        return base[9] * scale * sex
    return None


def expected(year: int, base_year: int) -> dict[str, dict[str, float]]:
    """What a correct client must land, in the census layout (P{yy}_ columns)."""
    y1, y0 = f"P{year % 100:02d}_", f"P{base_year % 100:02d}_"
    out = {}
    for code, b in COMMUNES.items():
        s1, s0 = 1.0 - 0.01 * (2022 - year) / 6.0, 1.0 - 0.01 * (2022 - base_year) / 6.0
        out[code] = {f"{y1}POP": b[0] * s1, f"{y0}POP": b[0] * s0, f"{y1}POP1564": sum(b[1:5]) * s1,
                     f"{y1}POP2554": (b[2] + b[3]) * s1, f"{y1}ACT1564": b[5] * s1, f"{y1}ACTOCC1564": b[6] * s1,
                     f"{y1}CHOM1564": (b[5] - b[6]) * s1, f"{y1}ACT2554": b[7] * s1, f"{y1}ACTOCC2554": b[8] * s1,
                     f"{y1}EMPLT": b[9] * s1, f"{y0}EMPLT": b[9] * s0}
    return out


def range_body(ds: str) -> dict:
    dims, years = HELD[ds]
    rng = [{"concept": {"code": "GEO", "label": {"fr": "Zone géographique"}}, "type": "geo",
            "values": [{"code": c, "id": f"{GEO_YEAR}-COM-{c}", "type": {"code": "COM"}} for c in COMMUNES]}]
    for dim, codes in dims.items():
        rng.append({"concept": {"code": dim, "label": {"fr": dim}}, "type": "modalites",
                    "values": [{"code": c, "label": {"fr": c}} for c in codes]})
    rng.append({"concept": {"code": "FREQ"}, "type": "modalites", "values": [{"code": "A", "iri": "A"}]})
    rng.append({"concept": {"code": "TIME_PERIOD"}, "type": "date",
                "values": [{"code": str(y), "label": {"fr": str(y)}} for y in sorted(years, reverse=True)]})
    rng.append({"concept": {"code": "MEASURE"}, "type": "mesures", "values": [{"code": "OBS_VALUE_NIVEAU"}]})
    return {"code": ds, "label": {"fr": ds}, "range": rng}


CONTROL = {"maxResult", "totalCount", "page", "TIME_PERIOD", "GEO", "FREQ", "idTerritoire"}


def handler(calls: list, page_size: int = 1000, history_page_size: int = 1):
    """``/melodi/range/{DS}`` and ``/melodi/data/{DS}``."""

    def handle(request):
        kind, ds = request.path.rstrip("/").split("/")[-2:]
        args = request.args.to_dict()
        calls.append((kind, ds, args))
        if ds not in HELD:
            return Response(json.dumps({"code": 404, "message": f"dataset {ds} not found"}), 404,
                            content_type="application/json")
        if kind == "range":
            return Response(json.dumps(range_body(ds)), 200, content_type="application/json")
        dims, years = HELD[ds]
        unknown = [k for k in args if k not in CONTROL and k not in dims]
        if unknown:
            return Response(json.dumps({"code": 400, "message": f"unknown parameter(s) {unknown}"}), 400,
                            content_type="application/json")
        want_years = [int(args["TIME_PERIOD"])] if "TIME_PERIOD" in args and args["TIME_PERIOD"].isdigit() else \
            ([] if "TIME_PERIOD" in args else list(years))
        axes = [[args[d]] if d in args else list(codes) for d, codes in dims.items()]
        obs = []
        for year in want_years:
            if year not in years:
                continue
            for combo in itertools.product(*axes):
                d = dict(zip(dims, combo, strict=True))
                if any(d[k] not in dims[k] for k in d):
                    continue
                for code in COMMUNES:
                    obs.append({"dimensions": {"GEO": f"{GEO_YEAR}-COM-{code}", "FREQ": "A", "TIME_PERIOD": str(year), **d},
                                "measures": {"OBS_VALUE_NIVEAU": {"value": value(ds, code, d, year)}}})
                obs.append({"dimensions": {"GEO": f"{GEO_YEAR}-DEP-21", "FREQ": "A", "TIME_PERIOD": str(year), **d},
                            "measures": {"OBS_VALUE_NIVEAU": {"value": 1.0}}})
        size = history_page_size if ds == "DS_RP_SERIE_HISTORIQUE" else page_size
        size = min(size, int(args.get("maxResult", size)))
        page = int(args.get("page", 1))
        chunk = obs[(page - 1) * size: page * size]
        more = page * size < len(obs)
        paging = {"count": len(obs), "isLast": not more}
        if more and "page" in args:  # as the real service: next only when the request names a page
            q = "&".join(f"{k}={v}" for k, v in args.items() if k != "page")
            paging["next"] = f"https://api.insee.fr/melodi/data/{ds}?{q}&page={page + 1}"
        body = {"identifier": ds, "title": {"fr": ds}, "observations": chunk, "paging": paging}
        return Response(json.dumps(body), 200, content_type="application/json")

    return handle
