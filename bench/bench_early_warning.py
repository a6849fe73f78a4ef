"""Early warning at national volume (issue 15): a month of API Sirene updates merged into the
establishment store and turned into territory signals.

    .venv/bin/python bench/bench_early_warning.py                 # 1.5M updates, 3M-establishment store
    .venv/bin/python bench/bench_early_warning.py --updates 300k --no-write

Prepared (not in the target, timed and printed): a SYNTHETIC national geography (35,000
communes, 1,250 EPCI, 300 zones d'emploi, 100 départements, 18 régions, 183 Territoires
d'industrie), the store seeded from a 3M-row industrial extract of the stock, 300,000 past
closures (the history's baseline), and ``--updates`` treated establishments written as API
Sirene 3.11 pages (1,000 per page: header with cursors, nested address, periods, millisecond
treatment times), then flattened by the landing code (``sirene_api.write_flat_zip``, the pull's
own step; its time is printed too). About 10 % of the updates touch industrial establishments
of the store (closures, re-openings, transfers, activity and size changes, unchanged), 1 % are
industrial creations, the rest are non-industrial noise.

Measured in a fresh child process (wall time, CPU and peak RSS = VmHWM), exactly what the
daily task ``early_warning`` does for one batch: read the store, read the landed batch, merge
it (versions + events), write the store and the events, compute the signals of every territory
for 7 / 30 / 90 days against the history. Targets: under 60 s and under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_chain import _vm  # VmHWM / VmRSS of this process

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out" / "early_warning"
AS_OF = "2026-11-01"
TARGET_SECONDS, TARGET_RSS = 60.0, 1 << 30


def parse_size(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


# --- preparation ---------------------------------------------------------------------------------
def geography(rng) -> tuple:
    import pandas as pd

    deps = [f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B", "971", "972", "973", "974"]
    codes = []
    for d in deps:
        n = 350
        codes += [f"{d}{i:03d}" if len(d) == 2 else f"{d}{i:02d}" for i in range(1, n + 1)]
    codes = np.array(codes[:35_000])
    dep = np.array([c[:3] if c.startswith("97") else c[:2] for c in codes])
    epci = np.array([f"2{int(i):08d}" for i in np.minimum(np.arange(len(codes)) // 28, 1249)])
    ze = np.array([f"{int(i):04d}" for i in np.minimum(np.arange(len(codes)) // 117, 299)])
    dep_ids = sorted(set(dep))
    reg_of = {d: f"{11 + (k % 18) * 3:02d}" for k, d in enumerate(dep_ids)}
    reg = np.array([reg_of[d] for d in dep])
    parts = [pd.DataFrame({"level": lv, "territory_id": ids, "codgeo": codes})
             for lv, ids in (("epci", epci), ("ze", ze), ("departement", dep), ("region", reg))]
    ti_epci = rng.choice(np.unique(epci), size=183 * 3, replace=False)
    ti_of = {e: f"TI-{k // 3:03d}" for k, e in enumerate(ti_epci)}
    in_ti = np.array([e in ti_of for e in epci])
    parts.append(pd.DataFrame({"level": "ti", "territory_id": [ti_of[e] for e in epci[in_ti]], "codgeo": codes[in_ti]}))
    return codes, pd.concat(parts, ignore_index=True)


def extract(rng, codes, n: int):
    import pandas as pd

    siret = pd.Series(10**13 + np.arange(n) * 20 + rng.integers(0, 20, n)).astype(str)  # unique, shuffled below
    siret = siret.sample(frac=1.0, random_state=3).reset_index(drop=True)
    nafs = np.array(["10.71C", "25.62B", "28.11Z", "16.10A", "22.22Z", "29.10Z", "33.12Z", "24.10Z", "10.11Z", "31.09B"])
    bands = np.array(["NN", "", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41"])
    p = np.array([.45, .2, .03, .08, .07, .05, .04, .04, .02, .01, .004, .003, .003])
    return pd.DataFrame({
        "siret": siret.to_numpy(), "codeCommuneEtablissement": rng.choice(codes, size=n),
        "activitePrincipaleEtablissement": rng.choice(nafs, size=n),
        "etatAdministratifEtablissement": np.where(rng.random(n) < 0.58, "A", "F"),
        "caractereEmployeurEtablissement": "N", "trancheEffectifsEtablissement": rng.choice(bands, size=n, p=p / p.sum()),
        "anneeEffectifsEtablissement": "2023", "dateCreationEtablissement": "2005-06-01", "dateDebut": "2005-06-01"})


def write_pages(rng, ext, codes, n: int, folder: Path) -> list[Path]:
    """``n`` treated establishments as API Sirene 3.11 pages of 1,000."""
    from territoires_industrie.sample.generate import STOCK_COLUMNS
    from territoires_industrie.sample.updates_feed import api_record

    folder.mkdir(parents=True, exist_ok=True)
    template = dict.fromkeys(STOCK_COLUMNS, "")
    template.update({"statutDiffusionEtablissement": "O", "etablissementSiege": "false", "nombrePeriodesEtablissement": "2",
                     "nomenclatureActivitePrincipaleEtablissement": "NAFRev2", "caractereEmployeurEtablissement": "O",
                     "numeroVoieEtablissement": "3", "typeVoieEtablissement": "RUE", "libelleVoieEtablissement": "DES FORGES",
                     "codePostalEtablissement": "21000", "libelleCommuneEtablissement": "COMMUNE",
                     "dateCreationEtablissement": "2005-06-01", "dateDebut": "2005-06-01"})
    n_known = n // 10
    known = ext.sample(n=n_known, random_state=1).to_dict("records")
    kinds = rng.choice(["close", "reopen", "move", "out", "drop", "same"], size=n_known,
                       p=[.15, .03, .04, .03, .15, .60])
    n_new = n - n_known
    new_sirets = (5 * 10**13 + np.arange(n_new) * 37 + rng.integers(0, 37, n_new)).astype(str)  # unique
    new_ind = rng.random(n_new) < 0.011
    pages, buf, k = [], [], 0
    days = np.array([f"2026-11-{d:02d}" for d in range(2, 31)])

    def flush():
        nonlocal buf
        header = {"statut": 200, "message": "OK", "total": n, "debut": len(pages) * 1000, "nombre": len(buf),
                  "curseur": f"C{len(pages)}", "curseurSuivant": f"C{len(pages) + 1}"}
        path = folder / f"page-{len(pages) + 1:05d}.json"
        path.write_text(json.dumps({"header": header, "etablissements": buf}))
        pages.append(path)
        buf = []

    for i in range(n):
        day = days[i * len(days) // n]
        treated = f"{day}T{6 + (i // 3600) % 12:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}"
        if i < n_known:
            e = known[i]
            row = {**template, **{c: e[c] for c in ext.columns}, "siren": e["siret"][:9], "nic": e["siret"][9:]}
            kind = kinds[i]
            new = {"close": {"etatAdministratifEtablissement": "F"}, "reopen": {"etatAdministratifEtablissement": "A"},
                   "move": {"codeCommuneEtablissement": codes[int(rng.integers(len(codes)))]},
                   "out": {"activitePrincipaleEtablissement": "46.69B"}, "drop": {"trancheEffectifsEtablissement": "01"},
                   "same": {}}[kind]
        else:
            s = new_sirets[i - n_known]
            row = {**template, "siret": s, "siren": s[:9], "nic": s[9:], "codeCommuneEtablissement": codes[i % len(codes)],
                   "activitePrincipaleEtablissement": "25.62B" if new_ind[i - n_known] else "56.10A",
                   "etatAdministratifEtablissement": "A", "trancheEffectifsEtablissement": "01",
                   "dateCreationEtablissement": day, "dateDebut": day}
            new = {}
        buf.append(api_record(row, new, treated, day))
        k += 1
        if len(buf) == 1000:
            flush()
        if k % 250_000 == 0:
            print(f"[prepare] {k:,} API records written", flush=True)
    if buf:
        flush()
    return pages


def prepare(args) -> dict:
    import pandas as pd
    from territoires_industrie import storage
    from territoires_industrie.alerts import store as st
    from territoires_industrie.sources.sirene_api import write_flat_zip

    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(19)
    info = {}
    t = time.perf_counter()
    codes, membership = geography(rng)
    ext = extract(rng, codes, parse_size(args.store))
    store = st.seed(ext, lambda s: s, AS_OF)
    storage.write_parquet(store, OUT / "store.parquet")
    membership.to_parquet(OUT / "membership.parquet")
    n_cl = 300_000
    past = pd.DataFrame({"siret": ext["siret"].sample(n=n_cl, replace=True, random_state=2).to_numpy(),
                         "date": (pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 2130, n_cl), "D"))
                         .strftime("%Y-%m-%d"), "naf": "25.62B"})
    past.to_parquet(OUT / "closures.parquet")
    info["prepare_store_s"] = round(time.perf_counter() - t, 1)
    old = OUT / "prepared.json"
    if args.reuse_batch and old.exists() and (OUT / "flat.zip").exists():  # same seed: the same batch
        prev = json.loads(old.read_text())
        return {**prev, **info, "store_rows": int(len(store))}
    t = time.perf_counter()
    pages = write_pages(rng, ext, codes, parse_size(args.updates), OUT / "pages")
    info["pages"], info["pages_mb"] = len(pages), round(sum(p.stat().st_size for p in pages) / 1e6)
    info["write_pages_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    rows, max_ddt = write_flat_zip(pages, OUT / "flat.zip")
    info["landing_flatten_s"] = round(time.perf_counter() - t, 1)
    info["flat_rows"], info["max_treated"] = rows, max_ddt
    for p in pages:
        p.unlink()
    info["store_rows"] = int(len(store))
    return info


# --- the measure ------------------------------------------------------------------------------------
def child() -> dict:
    import pandas as pd
    from territoires_industrie import storage
    from territoires_industrie.alerts import signals
    from territoires_industrie.alerts import store as st

    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru.ru_utime + ru.ru_stime
    lap, hwm, t0 = {}, {}, time.perf_counter()
    t = t0
    store = st.read_store(OUT / "store.parquet")
    membership = pd.read_parquet(OUT / "membership.parquet")
    lap["read_store"] = time.perf_counter() - t
    hwm["read_store"] = _vm("VmHWM") // 2**20
    t = time.perf_counter()
    batch = st.load_batch(OUT / "flat.zip", store, lambda s: s)
    lap["read_batch"] = time.perf_counter() - t
    hwm["read_batch"] = _vm("VmHWM") // 2**20
    t = time.perf_counter()
    fp = storage.sha256_file(OUT / "flat.zip")  # the batch's identity, as in the stage
    st.plan_batch({"watermark": AS_OF, "batches": {}}, "bench", fp, batch["treated"].max())
    store, events, counts = st.merge_batch(store, batch, "bench", AS_OF)
    del batch
    lap["merge"] = time.perf_counter() - t
    hwm["merge"] = _vm("VmHWM") // 2**20
    t = time.perf_counter()
    storage.write_parquet(store, OUT / "store_after.parquet")
    storage.write_parquet(events, OUT / "events.parquet")
    lap["write"] = time.perf_counter() - t
    hwm["write"] = _vm("VmHWM") // 2**20
    t = time.perf_counter()
    as_of = "2026-11-30"
    cov = signals.covered_windows(as_of, AS_OF)
    commune_of = store.drop_duplicates("siret", keep="last").set_index("siret")["codgeo"]
    past = signals.baseline(pd.read_parquet(OUT / "closures.parquet"), commune_of, membership, as_of,
                            windows=sorted(set(cov.values())))
    del commune_of
    sig = signals.territory_signals(events, membership, past, as_of, coverage=cov)
    lap["signals"] = time.perf_counter() - t
    hwm["signals"] = _vm("VmHWM") // 2**20
    seconds = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime - cpu0, "peak_rss": _vm("VmHWM"),
            "laps": {k: round(v, 2) for k, v in lap.items()}, "hwm_mb": hwm, "counts": counts, "store_after": int(len(store)),
            "signals": int(len(sig)), "alerted": int(sig["alerted"].sum()),
            "territories": int(sig[["level", "territory_id"]].drop_duplicates().shape[0])}


def render(info: dict, r: dict, args) -> str:
    ok = r["seconds"] < TARGET_SECONDS and r["peak_rss"] < TARGET_RSS
    load = os.getloadavg()[0]
    return "\n".join([
        "## Early warning at national volume (issue 15)", "",
        f"`bench/bench_early_warning.py --updates {args.updates} --store {args.store}` on "
        f"{time.strftime('%Y-%m-%d')} (load average {load:.2f}, {os.cpu_count()} cores). SYNTHETIC data.", "",
        f"Prepared (not in the target): store of {info['store_rows']:,} industrial establishments, "
        f"{info['flat_rows']:,} treated establishments written as {info['pages']:,} API Sirene 3.11 pages "
        f"({info['pages_mb']:,} MB of JSON, {info['write_pages_s']} s), flattened by the landing code in "
        f"**{info['landing_flatten_s']} s** (the pull's own step).", "",
        "| measure | value | target |", "|---|---|---|",
        f"| merge + signals, wall | **{r['seconds']:.1f} s** | < {TARGET_SECONDS:.0f} s |",
        f"| CPU | {r['cpu_seconds']:.1f} s | |",
        f"| peak RSS (VmHWM) | **{r['peak_rss'] / 2**20:,.0f} MB** | < {TARGET_RSS / 2**20:,.0f} MB |",
        f"| steps (s) | {', '.join(f'{k} {v}' for k, v in r['laps'].items())} | |",
        f"| peak RSS after each step (MB) | {', '.join(f'{k} {v:,}' for k, v in r['hwm_mb'].items())} | |",
        f"| result | {r['counts']['versions_written']:,} versions, {r['counts']['events']:,} events "
        f"({', '.join(f'{k[7:]} {v:,}' for k, v in r['counts'].items() if k.startswith('events_') and v)}), "
        f"{r['territories']:,} territories x 3 windows, {r['alerted']:,} alerted rows | |", "",
        f"Targets {'met' if ok else 'NOT met'}.", ""])


def write_results(block: str) -> None:
    path = BENCH / "RESULTS.md"
    text = path.read_text(encoding="utf-8")
    start = text.find("## Early warning at national volume")
    if start >= 0:
        end = text.find("\n## ", start + 5)
        text = text[:start] + block + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", default="1.5M")
    ap.add_argument("--store", default="3M")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse the prepared files of the last run")
    ap.add_argument("--reuse-batch", action="store_true", help="rebuild the store but keep the landed batch")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child()))
        return 0
    info_path = OUT / "prepared.json"
    if args.reuse and info_path.exists():
        info = json.loads(info_path.read_text())
    else:
        info = prepare(args)
        info_path.write_text(json.dumps(info))
    print(f"[prepare] {info}", flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "include"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-5000:])
        return 1
    res = json.loads(r.stdout.strip().splitlines()[-1])
    block = render(info, res, args)
    print(block)
    if not args.no_write:
        write_results(block)
    return 0 if res["seconds"] < TARGET_SECONDS and res["peak_rss"] < TARGET_RSS else 2


if __name__ == "__main__":
    sys.exit(main())
