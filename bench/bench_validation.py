"""Validation benchmark: the Great Expectations gate on a 1M-row URSSAF-like batch, and the
SIRENE stream checker on synthetic RecordBatches. Not a test: prints seconds and peak RSS.

    .venv/bin/python bench/bench_validation.py                 # urssaf 1M rows, stream 4M rows
    .venv/bin/python bench/bench_validation.py --rows 2M --stream-rows 16M --repeat 3

Each measurement runs in a fresh child process. ``peak RSS`` is the child's VmHWM (whole
process: interpreter, pandas, GX); ``delta`` is VmHWM minus the RSS just before the
measured call (the cost of validation itself, the batch being already in memory).

* ``gate urssaf``: ``validation.gate("urssaf", df, ...)`` exactly as the employment stage
  calls it (suite of ~23 expectations incl. COG existence of 34,945 communes, compound key
  uniqueness, ranges, completeness, quarantine, result.json + HTML), on the real COG 2023
  geography; the batch has ~1 % bad rows so the quarantine path is exercised. The first
  gate of a process also pays the GX import (~2.5 s), reported apart.
* ``stream``: ``SireneStreamChecker.update`` on 1M-row batches of the stock's columns
  (SIRET, commune, NAF, nomenclature, size band, state), then ``result()`` (SIRET
  uniqueness: sort of every SIRET as int64).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "KM" else s) * mult)


def _vm(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


# ------------------------------------------------------------------------------ children
def child_gate(rows: int) -> dict:
    import numpy as np
    import pandas as pd
    from territoires_industrie.config import Settings
    from territoires_industrie.geography import build_geography
    from territoires_industrie.nomenclature import INDUSTRIAL_DIVISIONS, naf_sous_classes
    from territoires_industrie.validation import HardGateFailed, gate

    t = time.perf_counter()
    geo = build_geography()
    t_geo = time.perf_counter() - t
    rng = np.random.default_rng(1)
    communes = geo.communes["codgeo"].astype(str).to_numpy()
    divisions = np.array(sorted(naf_sous_classes()["NIV2"].dropna().unique()))
    years = np.arange(2020, 2026)
    # unique (commune, division, year) keys drawn without replacement from the full grid
    grid = len(communes) * len(divisions) * len(years)
    keys = rng.choice(grid, size=rows, replace=False)
    c, rest = np.divmod(keys, len(divisions) * len(years))
    d, y = np.divmod(rest, len(years))
    df = pd.DataFrame({
        "codgeo": pd.array(communes[c], dtype="str"), "division": pd.array(divisions[d], dtype="str"),
        "year": years[y].astype("int64"), "n_etab": rng.poisson(3, rows).astype("float64"),
        "jobs": np.round(rng.lognormal(2.5, 1.2, rows), 0),
    })
    df["is_industrial"] = df["division"].isin(INDUSTRIAL_DIVISIONS)
    bad = rng.choice(rows, size=rows // 100, replace=False)
    df.loc[bad[: len(bad) // 2], "jobs"] = -1.0  # out of range -> hard failure + quarantine
    df.loc[bad[len(bad) // 2:], "codgeo"] = "99999"  # not in the COG
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), warehouse_url="sqlite://", source_mode="live")
        # warm-up on a tiny batch: pays the GX import and context creation
        t = time.perf_counter()
        try:
            gate("urssaf", df.head(1000), settings=settings, vintage="warmup", context={"geography": geo})
        except HardGateFailed:
            pass
        t_warm = time.perf_counter() - t
        rss0 = _vm("VmRSS")
        _reset_peak()
        t = time.perf_counter()
        try:
            gate("urssaf", df, settings=settings, vintage="2025", context={"geography": geo})
            status = "passed"
        except HardGateFailed as exc:
            status = "failed: " + ", ".join(f"{f['expectation']} on {f['column']} ({f['unexpected_count']})"
                                            for f in exc.failures)
            qrows = json.loads(exc.result_path.read_text())["quarantine"]["rows"]
        wall = time.perf_counter() - t
        peak = _vm("VmHWM")
    return {"part": "gate urssaf", "rows": rows, "seconds": round(wall, 3), "rows_per_s": round(rows / wall),
            "peak_rss_mb": round(peak / 2**20), "delta_mb": round((peak - rss0) / 2**20), "status": status,
            "quarantined": qrows if status.startswith("failed") else 0, "first_gate_s": round(t_warm, 2),
            "geography_s": round(t_geo, 2)}


def child_stream(rows: int, batch: int = 1_000_000) -> dict:
    import numpy as np
    import pyarrow as pa
    from territoires_industrie.nomenclature import naf_sous_classes
    from territoires_industrie.validation import SireneStreamChecker

    rng = np.random.default_rng(2)
    naf = np.array(naf_sous_classes()["NIV5"].dropna().astype(str))
    tranches = np.array(["NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "", "NN"])

    import pyarrow.compute as pc

    base = {  # one batch of codes, reused; only the SIRETs change (unique over the whole stream)
        "codeCommuneEtablissement": pa.array(np.char.zfill(rng.integers(1000, 95999, batch).astype(str), 5)),
        "activitePrincipaleEtablissement": pa.array(naf[rng.integers(0, len(naf), batch)]),
        "nomenclatureActivitePrincipaleEtablissement": pa.array(np.where(rng.random(batch) < 0.9, "NAFRev2",
                                                                          "NAFRev1")),
        "trancheEffectifsEtablissement": pa.array(tranches[rng.integers(0, len(tranches), batch)]),
        "etatAdministratifEtablissement": pa.array(np.where(rng.random(batch) < 0.55, "A", "F")),
    }

    def make(i: int, n: int) -> pa.RecordBatch:
        ids = pa.array(np.arange(i, i + n, dtype=np.int64) * 7919 % 10**14 + 10**13)
        return pa.record_batch({"siret": pc.cast(ids, pa.string()), **{k: v.slice(0, n) for k, v in base.items()}})

    checker = SireneStreamChecker()
    rss0 = _vm("VmRSS")
    _reset_peak()
    t_make = 0.0
    t = time.perf_counter()
    done = 0
    while done < rows:
        n = min(batch, rows - done)
        tm = time.perf_counter()
        b = make(done, n)
        t_make += time.perf_counter() - tm
        checker.update(b)
        del b
        done += n
    res = checker.result()
    wall = time.perf_counter() - t - t_make
    peak = _vm("VmHWM")
    return {"part": "stream checks", "rows": rows, "seconds": round(wall, 3), "rows_per_s": round(rows / wall),
            "peak_rss_mb": round(peak / 2**20), "delta_mb": round((peak - rss0) / 2**20),
            "status": "offending: " + json.dumps({k: v for k, v in res["counts"].items() if v}) if any(
                res["counts"].values()) else "no offending row", "memory_bound_mb": round(res["memory_bound_bytes"] / 2**20)}


# ------------------------------------------------------------------------------ parent
def run_child(part: str, rows: int) -> dict:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    out = subprocess.run([sys.executable, __file__, "--child", part, "--rows", str(rows)], capture_output=True,
                         text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{part} child failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1M", help="rows of the URSSAF-like batch (default 1M)")
    ap.add_argument("--stream-rows", default="4M", help="rows through the stream checker (default 4M; 0 = skip)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", choices=["gate", "stream"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = child_gate(parse_size(args.rows)) if args.child == "gate" else child_stream(parse_size(args.rows))
        print(json.dumps(res))
        return

    import pyarrow

    print(f"machine: {os.cpu_count()} CPU, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, pyarrow {pyarrow.__version__}")
    plan = [("gate", parse_size(args.rows))]
    if parse_size(args.stream_rows):
        plan.append(("stream", parse_size(args.stream_rows)))
    for part, rows in plan:
        runs = [run_child(part, rows) for _ in range(args.repeat)]
        med = dict(runs[0])
        for k in ("seconds", "peak_rss_mb", "delta_mb"):
            med[k] = statistics.median(r[k] for r in runs)
        med["rows_per_s"] = round(rows / med["seconds"])
        print(json.dumps(med, ensure_ascii=False))


if __name__ == "__main__":
    main()
