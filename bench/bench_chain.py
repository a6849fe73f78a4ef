"""Benchmark: the whole monthly chain at national volume, stage by stage (not a test).

Target (issue 8): all sources at real volumes, indicators, Monte Carlo, publication in under
15 minutes on a 2-core worker; memory per stage under 1.5 GB where the ingest is concerned.

    .venv/bin/python bench/bench_chain.py                      # 44M stock, 98M history, 1.2M URSSAF
    .venv/bin/python bench/bench_chain.py --stock-rows 4M      # a quicker, smaller run

Inputs (prepared once, outside the timed chain, under ``bench/out/chain/``, git-ignored):

* the SYNTHETIC sample of the embedded default generated for **every département** of the
  real COG 2023 geography (census, unemployment by ZE, TI 2023 lists, ...);
* in place of its SIRENE files, ``StockEtablissement`` of ``--stock-rows`` rows and the
  matching ``StockEtablissementHistorique`` (~2.2 periods per SIRET, ~98M rows for 44M)
  from ``bench/gen_sirene_stock.py``; in place of its URSSAF file, a 1.2M-row commune x APE
  export in the official wide layout (``bench_ingest.gen_urssaf``).

The timed chain is what the DAGs run, in their order, each stage in a fresh child process
(so each peak RSS is that stage's own VmHWM): ``pipeline.run_geography``, ``run_sirene``
(stock: ISA-L stream + stream checks + GX gate + industrial extract), ``run_sirene_history``,
``run_employment``, ``run_indicators`` (all levels, composite, 1,000 Monte Carlo draws),
``run_publish`` (warehouse release, exports, HTML report). The landing of every file in the
raw zone (a copy, as after a download) is inside the stages' time.

The result table is printed and written between the ``bench_chain`` markers of
``bench/RESULTS.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
CHAIN = OUT / "chain"
STAGES = ("geography", "sirene", "sirene_history", "employment", "indicators", "publish")
TARGET_SECONDS = 15 * 60
STAGE_MEMORY_TARGET = 1536 * 2**20  # issue 19: a small worker, every stage under 1.5 GB
CHAIN_TARGET_SECONDS = 150  # issue 19: the whole chain under 2.5 minutes


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(stage: str) -> dict:
    """Run one stage exactly as its DAG task does (``ti_common.run_stage`` -> ``pipeline.run_<stage>``)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from territoires_industrie import pipeline  # imports outside the measure

    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru.ru_utime + ru.ru_stime
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    t = time.perf_counter()
    summary = getattr(pipeline, f"run_{stage}")()
    seconds = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"stage": stage, "seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime - cpu0,
            "peak_rss": _vm("VmHWM"), "summary": summary}


def run_stage(stage: str, env: dict) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", stage], env=env, capture_output=True, text=True,
                       timeout=3600)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-5000:])
        raise SystemExit(f"stage {stage} failed (exit {r.returncode})")
    return json.loads(r.stdout.strip().splitlines()[-1])


def chain_env(data_dir: Path, departements: list[str], scale: float) -> dict:
    env = dict(os.environ)
    env.update({
        "TI_DATA_DIR": str(data_dir),
        "TI_WAREHOUSE_URL": f"sqlite:///{data_dir / 'warehouse.sqlite'}",
        "TI_SOURCE_MODE": "sample",
        "TI_SAMPLE_DEPARTEMENTS": ",".join(departements),
        "TI_SAMPLE_SCALE": str(scale),
        "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(BENCH), env.get("PYTHONPATH", "")]),
    })
    for k in ("TI_NOTIFY_WEBHOOK", "TI_SMTP_HOST"):
        env.pop(k, None)
    return env


def prepare(args, env: dict) -> dict:
    """National SYNTHETIC sample + national-volume SIRENE / URSSAF files swapped in (not timed)."""
    import gen_sirene_stock as gen
    from bench_ingest import gen_urssaf, parse_size
    from territoires_industrie import storage
    from territoires_industrie.config import get_settings
    from territoires_industrie.geography import build_geography
    from territoires_industrie.sample.bootstrap import ensure_sample

    os.environ.update({k: v for k, v in env.items() if k.startswith("TI_")})
    settings = get_settings()
    t = time.perf_counter()
    geo = build_geography()
    manifest = ensure_sample(settings, geo)
    info = {"sample_seconds": round(time.perf_counter() - t, 1)}
    rows = parse_size(args.stock_rows)
    stock = OUT / f"StockEtablissement_{args.stock_rows}_s{args.seed}.zip"
    history = OUT / f"StockEtablissementHistorique_{args.stock_rows}_s{args.seed}.zip"
    urssaf = OUT / f"urssaf_{args.urssaf_rows}.csv"
    t = time.perf_counter()
    if not stock.exists():
        print(f"[prepare] generating {rows:,} stock rows -> {stock}", flush=True)
        gen.generate_stock(stock, rows, seed=args.seed)
    if not history.exists():
        print(f"[prepare] generating the matching history -> {history}", flush=True)
        gen.generate_history(history, rows, seed=args.seed)
    if not urssaf.exists():
        gen_urssaf(urssaf, parse_size(args.urssaf_rows))
    info["generate_seconds"] = round(time.perf_counter() - t, 1)
    for key, src in (("sirene_stock", stock), ("sirene_history", history), ("urssaf", urssaf)):
        dest = settings.sample_dir / manifest["files"][key]["path"]
        dest.unlink(missing_ok=True)
        os.link(src, dest)  # same bytes, no copy; the stages copy it into the raw zone like a download
        manifest["files"][key]["rows"] = None
        manifest["files"][key]["bench_source"] = src.name
        # the swapped file is the sample now: its checksum too (else the stage refuses it as altered)
        manifest["files"][key]["sha256"] = storage.sha256_file(src)
    (settings.sample_dir / "SAMPLE_MANIFEST.json").write_text(json.dumps(manifest, indent=1))
    info.update(stock_zip_gb=stock.stat().st_size / 1e9, history_zip_gb=history.stat().st_size / 1e9,
                urssaf_mb=urssaf.stat().st_size / 1e6)
    return info


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def render(results: list[dict], info: dict, args, total: float) -> str:
    def mb(n):
        return f"{n / 2**20:,.0f}"

    def facts(r):
        s = r["summary"] or {}
        keep = {k: s[k] for k in ("rows", "rows_kept", "groups", "aggregate_rows", "industrial_rows", "units", "territories",
                                   "indicator_values", "release", "pages", "vintage") if k in s and not isinstance(s[k], dict)}
        return ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in keep.items())

    lines = [
        f"Generated by `bench/bench_chain.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        f"Inputs: SYNTHETIC national sample ({len(info['departements'])} départements, scale {args.scale}), "
        f"SIRENE stock {args.stock_rows} rows ({info['stock_zip_gb']:.2f} GB zip), matching history "
        f"({info['history_zip_gb']:.2f} GB zip), URSSAF {args.urssaf_rows} rows ({info['urssaf_mb']:.0f} MB). "
        f"Preparation, not timed: sample {info['sample_seconds']} s, generators {info['generate_seconds']} s.",
        "",
        "| stage (DAG task) | wall (s) | CPU (s) | peak RSS (MB) | load before | what it did |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(f"| {r['stage']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {mb(r['peak_rss'])} | {r['load']} | "
                     f"{facts(r)} |")
    verdict = "met" if total <= TARGET_SECONDS else "MISSED"
    largest = max(r["peak_rss"] for r in results)
    lines += ["", f"**Whole chain: {total:.0f} s ({total / 60:.1f} min)** against the 15-minute target: {verdict}. "
              f"Largest stage peak RSS: {mb(largest)} MB.",
              "", f"Issue 19 targets: every stage under 1.5 GB ({mb(STAGE_MEMORY_TARGET)} MB): "
              f"{'met' if largest <= STAGE_MEMORY_TARGET else 'MISSED'}; whole chain under {CHAIN_TARGET_SECONDS} s: "
              f"{'met' if total <= CHAIN_TARGET_SECONDS else 'MISSED'}."]
    return "\n".join(lines)


def write_results(block: str) -> None:
    path = BENCH / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    begin, end = "<!-- bench_chain:begin -->", "<!-- bench_chain:end -->"
    new = f"{begin}\n\n{block}\n\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: new, text, flags=re.S)
    else:
        text += "\n\n## The whole monthly chain at national volume (issue 8)\n\n" + new + "\n"
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--stock-rows", default="44M")
    ap.add_argument("--urssaf-rows", default="1.2M")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scale", type=float, default=1.0, help="scale of the national synthetic sample (other sources)")
    ap.add_argument("--keep", action="store_true", help="keep bench/out/chain (warehouse, report) afterwards")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child), default=str))
        return 0
    sys.path[:0] = [str(REPO / "include"), str(BENCH)]
    from territoires_industrie.geography import build_geography

    departements = sorted(build_geography().communes["dep"].astype(str).unique())
    if CHAIN.exists():
        shutil.rmtree(CHAIN)
    CHAIN.mkdir(parents=True)
    env = chain_env(CHAIN, departements, a.scale)
    info = prepare(a, env)
    info["departements"] = departements
    print(f"[prepare] {json.dumps(info)[:400]}", flush=True)
    results, t0 = [], time.perf_counter()
    for stage in STAGES:
        load = _load()
        r = run_stage(stage, env)
        r["load"] = load
        results.append(r)
        print(f"[chain] {stage:15s} {r['seconds']:7.1f} s  CPU {r['cpu_seconds']:7.1f} s  peak RSS "
              f"{r['peak_rss'] / 2**20:7,.0f} MB", flush=True)
    total = time.perf_counter() - t0
    block = render(results, info, a, total)
    print("\n" + block)
    if not a.no_write:
        write_results(block)
    if not a.keep:
        shutil.rmtree(CHAIN, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
