"""Benchmark: indicators + composite + Monte Carlo at national scale (not a test).

Target (issue 5): ~35,000 communes, ~1,250 EPCI, 306 zones d'emploi, 1,000 Monte Carlo
draws in under 30 s and 2 GB on 2 cores.

    .venv/bin/python bench/bench_indicators.py                 # generate (once) + run
    .venv/bin/python bench/bench_indicators.py --draws 1000 --units 1000000 --regenerate

Step 1 generates a SYNTHETIC national-scale input set with numpy (communes nested in
départements and régions; EPCI and zones d'emploi as overlapping blocks; 148 + 183
Territoires d'industrie; URSSAF commune x division x 3 years; SIRENE stock aggregate, industrial
units and their states at six year ends; census; unemployment by ZE) and writes it as Parquet
under ``bench/out/indicators/`` (git-ignored), like the staging partitions the stage reads.
Step 2 runs, in a fresh child process, exactly what ``stages.indicators.run_indicators`` does
between reading and writing: read the Parquet files, ``indicators.release.compute_release``
(counts, all levels, shrinkage, secrecy, long table, composite for 6 reference sets, Monte Carlo),
and prints the wall time per step and the peak resident memory of that process (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "indicators"


def generate(out: Path, n_communes: int = 35_000, n_epci: int = 1_250, n_ze: int = 306, n_units: int = 1_000_000,
             seed: int = 1) -> dict:
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_dep, n_reg = 100, 18
    i = np.arange(n_communes)
    dep_i = (i * n_dep) // n_communes
    reg_i = (dep_i * n_reg) // n_dep
    epci_i = (i * n_epci) // n_communes  # contiguous blocks (mostly within one département)
    ze_i = ((i + n_communes // (2 * n_ze)) * n_ze // n_communes) % n_ze  # shifted blocks: overlap EPCI edges
    codgeo = np.array([f"{d + 1:02d}{k:03d}" for d, k in zip(dep_i, np.arange(n_communes) - np.searchsorted(dep_i, dep_i))],
                      dtype=object)
    communes = pd.DataFrame({
        "codgeo": codgeo, "libgeo": codgeo, "epci": [f"2{e:08d}" for e in epci_i], "dep": [f"{d + 1:02d}" for d in dep_i],
        "reg": [f"{r + 11:02d}" for r in reg_i], "ze2020": [f"{z + 1:04d}" for z in ze_i],
    })
    # Territoires d'industrie: 148 (phase 1) and 183 (2023-2027) groups of 1-4 whole EPCI
    ti = []
    for phase, n_ti, prefix in (("2018-2022", 148, "TI1-"), ("2023-2027", 183, "ti-")):
        starts = np.sort(rng.choice(n_epci - 4, n_ti, replace=False))
        for k, s in enumerate(starts):
            members = np.arange(s, s + rng.integers(1, 5))
            sel = np.isin(epci_i, members)
            ti.append(pd.DataFrame({"ti_id": f"{prefix}{k:04d}", "ti_phase": phase, "ti_label": f"TI {k}",
                                    "codgeo": codgeo[sel]}))
    ti = pd.concat(ti, ignore_index=True)

    # commune size: lognormal population; jobs proportional
    pop = np.maximum(20, rng.lognormal(6.3, 1.2, n_communes)).round()
    ind_div = [f"{d:02d}" for d in (10, 11, 16, 20, 22, 23, 24, 25, 27, 28, 29, 30, 33, 35, 38)]
    oth_div = [f"{d:02d}" for d in (41, 43, 45, 46, 47, 49, 55, 56, 62, 68, 70, 71, 78, 81, 82, 85, 86, 87, 88, 96)]
    urssaf = []
    decline = rng.normal(0.0, 0.12, n_epci)[epci_i]
    for divs, share, k_present in ((ind_div, 0.12, 4), (oth_div, 0.88, 8)):
        for _ in range(k_present):
            d = rng.choice(divs, n_communes)
            j25 = rng.poisson(np.maximum(pop * 0.35 * share / k_present, 0.2)).astype(float)
            j20 = np.maximum(0, np.round(j25 / np.clip(1 + decline + rng.normal(0, 0.15, n_communes), 0.3, 3)))
            j19 = np.maximum(0, np.round(j20 * (1 + rng.normal(0, 0.05, n_communes))))
            ne = np.maximum(1, rng.poisson(np.maximum(j25, 1) / 8))
            for y, j in ((2019, j19), (2020, j20), (2025, j25)):
                urssaf.append(pd.DataFrame({"codgeo": codgeo, "division": d, "year": y, "jobs": j,
                                            "n_etab": np.where(j > 0, ne, 0.0).astype(float)}))
    urssaf = pd.concat(urssaf).groupby(["codgeo", "division", "year"], as_index=False)[["jobs", "n_etab"]].sum()
    urssaf = urssaf[urssaf["jobs"] > 0].reset_index(drop=True)
    urssaf["is_industrial"] = urssaf["division"].isin(ind_div)

    # industrial units (stock extract) and their states at 31/12/2020..2025
    com_of = rng.choice(n_communes, n_units, p=pop / pop.sum())
    bands = np.array(["NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41"], dtype=object)
    band = rng.choice(bands, n_units, p=[.45, .04, .15, .11, .08, .07, .055, .025, .012, .003, .003, .002])
    created = rng.integers(1990, 2026, n_units)
    closed = np.where(rng.random(n_units) < 0.3, rng.integers(2020, 2030, n_units), 9999)
    closed = np.maximum(closed, created + 1)
    employer = np.where(band == "NN", "N", "O").astype(object)
    etat_now = np.where(closed <= 2026, "F", "A").astype(object)
    sirets = np.char.zfill(np.arange(1, n_units + 1).astype(str), 14).astype(object)
    industrial = pd.DataFrame({"siret": sirets, "codeCommuneEtablissement": codgeo[com_of],
                               "activitePrincipaleEtablissement": "25.62B", "etatAdministratifEtablissement": etat_now,
                               "caractereEmployeurEtablissement": np.where(etat_now == "A", employer, "N"),
                               "trancheEffectifsEtablissement": np.where(etat_now == "A", band, "NN"),
                               "anneeEffectifsEtablissement": "2023", "dateCreationEtablissement": "2000-01-01",
                               "dateDebut": "2000-01-01"})
    states = []
    for y in range(2020, 2026):
        ex = created <= y
        states.append(pd.DataFrame({"siret": sirets[ex], "year": y,
                                    "etat": np.where(closed[ex] <= y, "F", "A").astype(object),
                                    "employer": np.where(closed[ex] <= y, "N", employer[ex]).astype(object),
                                    "naf": "25.62B", "nomenclature": "NAFRev2"}))
    states = pd.concat(states, ignore_index=True)
    ia = pd.DataFrame({"codgeo": codgeo[com_of], "etat": etat_now, "employer": industrial["caractereEmployeurEtablissement"],
                       "tranche": industrial["trancheEffectifsEtablissement"]})
    sirene = ia.groupby(["codgeo", "etat", "employer", "tranche"]).size().rename("n_etab").reset_index()
    sirene["is_industrial"] = True
    other = pd.DataFrame({"codgeo": np.repeat(codgeo, 3), "etat": "A", "employer": "O",
                          "tranche": np.tile(["01", "03", "12"], n_communes),
                          "n_etab": rng.poisson(np.repeat(pop / 60, 3)) + 1, "is_industrial": False})
    sirene = pd.concat([sirene, other], ignore_index=True)

    act = pop * 0.46
    u = np.clip(rng.normal(0.1, 0.03, n_communes), 0.02, 0.4)
    census = pd.DataFrame({"codgeo": codgeo, "p21_pop": pop, "p15_pop": pop * (1 + rng.normal(0.01, 0.04, n_communes)),
                           "p21_act1564": act, "p21_chom1564": act * u, "p21_pop2554": pop * 0.37,
                           "p21_actocc2554": pop * 0.37 * (1 - u) * 0.92, "p21_emplt": pop * 0.35,
                           "p15_emplt": pop * 0.35 * (1 + rng.normal(0, 0.06, n_communes))})
    quarters = [f"{y}-T{q}" for y in range(2023, 2027) for q in range(1, 5)]
    zrate = rng.uniform(4, 13, n_ze)
    chom = pd.DataFrame([{"ze2020": f"{z + 1:04d}", "quarter": q, "rate": round(zrate[z] + 0.05 * k, 1)}
                         for z in range(n_ze) for k, q in enumerate(quarters)])
    files = {"communes": communes, "ti": ti, "urssaf": urssaf, "sirene": sirene, "industrial": industrial,
             "states": states, "census": census, "chomage": chom}
    for name, df in files.items():
        df.to_parquet(out / f"{name}.parquet", index=False)
    meta = {name: len(df) for name, df in files.items()}
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(folder: Path, draws: int) -> dict:
    import pandas as pd
    from territoires_industrie.codes import arm_to_commune, normalise_commune
    from territoires_industrie.indicators import release
    from territoires_industrie.indicators.base import Periods
    from territoires_industrie.indicators.uncertainty import MCConfig

    t = time.perf_counter()
    d = {n: pd.read_parquet(folder / f"{n}.parquet") for n in
         ("communes", "ti", "urssaf", "sirene", "industrial", "states", "census", "chomage")}
    ext = d["industrial"]
    industrial = pd.DataFrame({"siret": ext["siret"],
                               "codgeo": arm_to_commune(normalise_commune(ext["codeCommuneEtablissement"])),
                               "etat": ext["etatAdministratifEtablissement"],
                               "employer": ext["caractereEmployeurEtablissement"],
                               "tranche": ext["trancheEffectifsEtablissement"]})
    t_read = time.perf_counter() - t
    periods = Periods(t1=2025, quarters=("2025-T3", "2025-T4", "2026-T1", "2026-T2"),
                      quarters_prev=("2023-T3", "2023-T4", "2024-T1", "2024-T2"), alt_t0=2019, flow_t1=2025,
                      stock="2026-11-01")
    t = time.perf_counter()
    res = release.compute_release(d["communes"], d["ti"], d["sirene"], d["urssaf"], d["chomage"], d["census"], periods,
                                  industrial=industrial, states=d["states"],
                                  config=release.ReleaseConfig(mc=MCConfig(draws=draws)))
    t_compute = time.perf_counter() - t
    return {
        "read_seconds": round(t_read, 2), "compute_seconds": round(t_compute, 2),
        "total_seconds": round(t_read + t_compute, 2), "steps": res.timings, "peak_rss_mb": round(_vmhwm_mb()),
        "territories": res.territories.groupby("level").size().to_dict(), "indicator_values": len(res.long),
        "composite_rows": len(res.composite), "draws": draws,
        "mc_seconds_per_set": {k: v["seconds"] for k, v in res.mc_summary["sets"].items()},
        "avg_rank_shift": {k: round(v, 2) for k, v in res.mc_summary["avg_rank_shift"].items()},
        "secret_status": res.long["secret_status"].value_counts().to_dict(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--units", type=int, default=1_000_000, help="industrial SIRENE units in the stock extract")
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # child process
    a = p.parse_args(argv)
    if a.run:
        print(json.dumps(run(a.run, a.draws)))
        return 0
    meta_path = OUT / "meta.json"
    if a.regenerate or not meta_path.exists() or json.loads(meta_path.read_text()).get("industrial") != a.units:
        print(f"generating the national-scale SYNTHETIC input set in {OUT} ...", flush=True)
        meta = generate(OUT, n_units=a.units)
    else:
        meta = json.loads(meta_path.read_text())
    print("inputs:", json.dumps(meta))
    t = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--run", str(OUT), "--draws", str(a.draws)], capture_output=True,
                           text=True, env={**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"})
    if child.returncode != 0:
        print(child.stdout, child.stderr, sep="\n")
        return child.returncode
    r = json.loads(child.stdout.strip().splitlines()[-1])
    wall = time.perf_counter() - t
    print(f"machine: {os.cpu_count()} CPU, Python {platform.python_version()}, {platform.machine()}")
    print(json.dumps(r, indent=1))
    print(f"RESULT: indicators + composite + {a.draws} MC draws: compute {r['compute_seconds']} s "
          f"(read {r['read_seconds']} s, child wall incl. imports {wall:.1f} s), peak RSS {r['peak_rss_mb']} MB "
          f"-> target 30 s / 2048 MB: {'MET' if r['total_seconds'] < 30 and r['peak_rss_mb'] < 2048 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
