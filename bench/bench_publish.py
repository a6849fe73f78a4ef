"""Benchmark: publication of a national-scale release (not a test).

Builds a SYNTHETIC release with the real COG 2023 codes and names (34,945 communes, 1,256
EPCI, 306 zones d'emploi, départements, régions, 148 + 183 Territoires d'industrie), 20
indicators each, a composite per ranking set, random values; then measures, on a fresh SQLite
(or ``--url`` PostgreSQL) warehouse:

1. ``warehouse.publish_release`` (one transaction; COPY on PostgreSQL) — twice, two releases;
2. ``publish.build_exports`` (CSV ``,`` / ``;``, XLSX with a communes sheet, Parquet);
3. ``report.build_report`` (one page per TI and ZE, tables, changes vs the previous release),
   with a generated square-grid EPCI geometry to include the map.

    .venv/bin/python bench/bench_publish.py [--url postgresql+psycopg2://postgres@127.0.0.1/bench]

Targets (2 cores): publication < 60 s per release on SQLite, exports < 60 s, report < 120 s,
site < 50 MB. Results are appended to ``bench/out/last_results.json`` under ``publish``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
INDICATORS = [
    ("a1_ind_jobs_decline", "A", 1, "%"), ("a2_local_effect", "A", 1, "%"), ("a3_industry_mix", "A", 1, "%"),
    ("b1_net_closure_rate", "B", 1, "% sur 3 ans"), ("b2_large_estab_loss", "B", 1, "%"),
    ("b3_concentration_class", "B", 1, "classe 1-5"), ("c1_unemployment_rate", "C", 1, "%"),
    ("c2_non_employment_25_54", "C", 1, "%"), ("c3_unemployment_change_2y", "C", 1, "points"),
    ("d1_population_decline", "D", 1, "%"), ("d2_employment_decline", "D", 1, "%"), ("ind_lq", "G", -1, "ratio"),
    ("jobs_ind", "G", -1, "emplois"), ("estab_ind_active", "X", -1, "établissements"),
    ("estab_ind_employer", "X", -1, "établissements"), ("jobs_total", "X", -1, "emplois"),
    ("ind_share", "X", -1, "%"), ("jobs_ind_change_5y", "X", -1, "%"), ("unemployment_rate", "X", 1, "%"),
    ("population", "X", -1, "habitants"),
]
PERIODS = {"A": "2020-2025", "B": "2022-2025", "C": "2025-T3..2026-T2", "D": "2015-2021", "G": "2025", "X": "2025"}


def national_release(seed: int):
    import numpy as np
    import pandas as pd
    from territoires_industrie.geography import build_geography
    from territoires_industrie.labels import DEPARTEMENTS, REGIONS

    rng = np.random.default_rng(seed)
    geo = build_geography()
    c = geo.communes
    terr = [pd.DataFrame({"level": "commune", "territory_id": c["codgeo"], "label": c["libgeo"],
                          "departement": c["dep"], "region": c["reg"], "n_communes": 1, "ti_phase": None})]
    for level, key, lab in (("epci", "epci", geo.epci.set_index("epci")["libepci"]),
                            ("ze", "ze2020", geo.ze.set_index("ze2020")["libze2020"]),
                            ("departement", "dep", pd.Series(DEPARTEMENTS)), ("region", "reg", pd.Series(REGIONS))):
        g = c.groupby(key).agg(departement=("dep", lambda s: s.mode().iloc[0]), region=("reg", lambda s: s.mode().iloc[0]),
                               n_communes=("codgeo", "size")).reset_index().rename(columns={key: "territory_id"})
        g["label"] = g["territory_id"].map(lab).fillna(g["territory_id"])
        terr.append(g.assign(level=level, ti_phase=None))
    ti = geo.ti.drop_duplicates("ti_id")
    ti2 = pd.DataFrame({"ti_id": [f"ti-{i:03d}" for i in range(183)],
                        "ti_label": [f"Territoire d'industrie 2023 n°{i}" for i in range(183)], "ti_phase": "2023-2027"})
    tis = pd.concat([ti[["ti_id", "ti_label"]].assign(ti_phase="2018-2022"), ti2], ignore_index=True)
    deps = c["dep"].drop_duplicates().sample(len(tis), replace=True, random_state=seed).to_numpy()
    terr.append(pd.DataFrame({"level": "ti", "territory_id": tis["ti_id"], "label": tis["ti_label"], "departement": deps,
                              "region": c.drop_duplicates("dep").set_index("dep")["reg"].reindex(deps).to_numpy(),
                              "n_communes": rng.integers(5, 200, len(tis)), "ti_phase": tis["ti_phase"]}))
    terr = pd.concat(terr, ignore_index=True)
    terr["population"] = rng.lognormal(8, 1.5, len(terr)).round(1)
    n = len(terr)
    rows = []
    for ind, dom, direction, unit in INDICATORS:
        v = rng.normal(5, 10, n).round(4)
        secret = np.where(rng.random(n) < 0.08, rng.choice(["A", "B", "D"], n), "V")
        rows.append(pd.DataFrame({
            "level": terr["level"], "territory_id": terr["territory_id"], "indicator_id": ind, "period": PERIODS[dom],
            "value": np.where(secret == "V", v, np.nan), "value_raw": np.where(secret == "V", v * 1.1, np.nan),
            "shrink_weight": rng.random(n).round(3), "reliable": rng.random(n) > 0.2, "secret_status": secret,
            "n_units": rng.integers(0, 500, n).astype(float),
            "numerator": np.where(secret == "V", rng.normal(-100, 50, n).round(), np.nan),
            "denominator": np.where(secret == "V", rng.integers(200, 20000, n).astype(float), np.nan),
            "unit": unit, "domain": dom, "direction": direction}))
    iv = pd.concat(rows, ignore_index=True)
    comp = []
    for rs, level, phase in (("epci", "epci", None), ("ze", "ze", None), ("departement", "departement", None),
                             ("region", "region", None), ("ti_2018_2022", "ti", "2018-2022"),
                             ("ti_2023_2027", "ti", "2023-2027")):
        t = terr[(terr["level"] == level) & ((terr["ti_phase"] == phase) if phase else True)]
        m = len(t)
        score = rng.uniform(0, 100, m)
        rank = (-score).argsort().argsort() + 1
        comp.append(pd.DataFrame({
            "level": level, "territory_id": t["territory_id"].to_numpy(), "reference_set": rs, "score": score,
            **{f"domain_{d}": rng.uniform(0, 100, m) for d in "abcd"}, "rank_national": rank,
            "rank_regional": rank.astype(float), "percentile_national": 100 * (m - rank) / max(m - 1, 1),
            "percentile_regional": 50.0, "decile": np.ceil(10 * (m - rank + 1) / m).astype(int),
            "mc_rank_median": rank.astype(float), "mc_rank_p05": np.maximum(1, rank - 5).astype(float),
            "mc_rank_p95": np.minimum(m, rank + 5).astype(float), "p_top10": rng.random(m), "p_top20": rng.random(m),
            "uncertain": rng.random(m) < 0.3, "gate_industrial": rng.random(m) < 0.5, "n_reference": m,
            "region": t["region"].to_numpy(), "n_indicators_missing": 0, "mc_mean_rank_shift": 3.0}))
    dic = pd.DataFrame([{"indicator_id": i, "label_fr": f"Indicateur {i}", "unit": u, "formula": "f", "source": "s",
                         "period": PERIODS[d], "domain": d, "direction": dr, "reliability_min": ""}
                        for i, d, dr, u in INDICATORS])
    tables = {"territories": terr, "indicator_values": iv, "indicator_dictionary": dic,
              "composite": pd.concat(comp, ignore_index=True)}
    return tables, geo


def grid_geometry(codes, folder: Path) -> Path:
    """Squares on a grid over France, one per EPCI code (stands in for ADMIN EXPRESS)."""
    folder.mkdir(parents=True, exist_ok=True)
    feats = []
    for i, code in enumerate(sorted(codes)):
        x, y = -4.5 + (i % 40) * 0.35, 42.5 + (i // 40) * 0.27
        ring = [[x + dx, y + dy] for dx, dy in ((0, 0), (0.1, -0.02), (0.33, 0), (0.34, 0.13), (0.33, 0.26),
                                                  (0.15, 0.27), (0, 0.26), (-0.01, 0.1), (0, 0))]
        feats.append({"type": "Feature", "properties": {"CODE_SIREN": code}, "geometry": {"type": "Polygon",
                                                                                          "coordinates": [ring]}})
    p = folder / "epci_grid.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="warehouse URL (default: SQLite in a temp folder)")
    args = ap.parse_args()
    from territoires_industrie import warehouse
    from territoires_industrie.publish import build_exports, load_release
    from territoires_industrie.report import build_report

    tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    res: dict = {}
    try:
        t = time.perf_counter()
        prev, _ = national_release(1)
        cur, geo = national_release(2)
        res["generate_s"] = round(time.perf_counter() - t, 1)
        res["indicator_values_rows"] = len(cur["indicator_values"])
        engine = warehouse.get_engine(args.url or f"sqlite:///{tmp}/warehouse.db")
        res["dialect"] = engine.dialect.name
        meta = {"synthetic": True, "source_vintages": {"sirene_stock": "2026-11-01"}, "validation_status": "passed"}
        for rel, tables in (("2026-10", prev), ("2026-11", cur)):
            t = time.perf_counter()
            warehouse.publish_release(engine, rel, tables, meta)
            s = time.perf_counter() - t
            res[f"publish_{rel}_s"] = round(s, 1)
            res[f"publish_{rel}_rows_per_s"] = round(len(tables["indicator_values"]) / s)
        t = time.perf_counter()
        rd = load_release(engine)
        res["load_release_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        out = build_exports(rd, tmp / "exports" / rd.release_id)
        res["exports_s"] = round(time.perf_counter() - t, 1)
        res["exports_mb"] = {Path(v).name: round(Path(v).stat().st_size / 1e6, 1) for k, v in out.items()
                             if k not in ("manifest", "seconds")}
        geo_dir = grid_geometry(set(cur["territories"].query("level == 'epci'")["territory_id"]), tmp / "geo").parent
        t = time.perf_counter()
        rep = build_report(engine, tmp / "reports", geometry_dir=geo_dir, exports_dir=tmp / "exports" / rd.release_id)
        s = time.perf_counter() - t
        site = Path(rep["path"])
        res.update({"report_s": round(s, 1), "report_pages": rep["pages"], "report_pages_per_s": round(rep["pages"] / s, 1),
                    "site_mb": round(sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 1e6, 1),
                    "site_mb_without_downloads": round(sum(p.stat().st_size for p in site.rglob("*")
                                                           if p.is_file() and "downloads" not in p.parts) / 1e6, 1),
                    "index_html_mb": round((site / "index.html").stat().st_size / 1e6, 2),
                    "tables_html_mb": round((site / "tableaux.html").stat().st_size / 1e6, 2)})
        res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res, indent=2, ensure_ascii=False))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "last_results.json"
    allres = json.loads(path.read_text()) if path.exists() else {}
    allres["publish" if not args.url else "publish_postgres"] = res
    path.write_text(json.dumps(allres, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
