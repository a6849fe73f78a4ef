"""Benchmark: secondary suppression by linear programming and the attacker's LP audit (issue 20).

Not a test. On a published data directory (the full sample by default, built here in a
temporary folder; a national one with ``--data-dir bench/out/chain/data`` after
``make bench-chain``), it

1. re-runs the secrecy of the release from its internal counts (primary rules, then the LP
   secondary suppression of ``indicators/suppression.py``), timed;
2. prints the published information lost: cells hidden per level and per indicator, by the
   primary rules alone ("before") and after secondary suppression ("after");
3. runs the attacker of ``tests/integration/secrecy_attacker.py`` on the published export
   (min and max of every hidden cell by LP), timed, and prints the cells audited and recovered.

    .venv/bin/python bench/bench_secrecy.py                    # full SYNTHETIC sample (10 départements)
    .venv/bin/python bench/bench_secrecy.py --national         # every département (~35 000 communes)
    .venv/bin/python bench/bench_secrecy.py --data-dir DIR     # an already published data directory

The audit is the attacker's: exact LPs on small components; on large ones (at national scale a
région's hidden cells are linked by its published totals) each cell is first solved on its
départements with the other hidden values fixed at their true values (an interval inside the
attacker's: covering the requirement there proves protection), the exact LP deciding the rest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_sample(data_dir: Path, national: bool = False, scale: float = 1.0) -> None:
    os.environ.update({"TI_SOURCE_MODE": "sample", "TI_DATA_DIR": str(data_dir), "TI_MC_DRAWS": "50"})
    if national:
        from territoires_industrie.geography import build_geography

        deps = sorted(build_geography().communes["dep"].astype(str).unique())
        os.environ.update({"TI_SAMPLE_DEPARTEMENTS": ",".join(deps), "TI_SAMPLE_SCALE": str(scale)})
    from territoires_industrie import pipeline
    from territoires_industrie.config import get_settings

    settings = get_settings()
    for stage in ("geography", "sirene", "sirene_history", "employment", "indicators", "publish"):
        t = time.perf_counter()
        getattr(pipeline, f"run_{stage}")(settings)
        print(f"  built {stage:15s} {time.perf_counter() - t:6.1f} s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="a published data directory (built there when empty; default: "
                                                    "a temporary one)")
    ap.add_argument("--national", action="store_true", help="build the SYNTHETIC sample of every département")
    ap.add_argument("--scale", type=float, default=1.0, help="scale of the national sample")
    args = ap.parse_args(argv)
    import numpy as np
    import pandas as pd
    from territoires_industrie.indicators import release, secrecy, suppression
    from territoires_industrie.indicators.definitions import INDICATORS

    sys.path.insert(0, str(ROOT))
    from tests.integration import secrecy_attacker as attacker

    data = args.data_dir
    if data is None or not (data / "staging" / "indicators" / "CURRENT").exists():
        data = data or Path(tempfile.mkdtemp(prefix="bench_secrecy_")) / "data"
        print(f"building the {'national' if args.national else 'full'} sample in {data}")
        t = time.perf_counter()
        build_sample(data, args.national, args.scale)
        print(f"  built in {time.perf_counter() - t:.0f} s")
    folder = data / "staging" / "indicators" / (data / "staging" / "indicators" / "CURRENT").read_text().strip()
    counts = pd.read_parquet(folder / "counts_internal.parquet")
    members = pd.read_parquet(folder / "membership_internal.parquet")
    print(f"\n{len(counts):,} cells ({', '.join(f'{k} {v:,}' for k, v in counts['level'].value_counts().items())})")

    rep = suppression.Report()
    t = time.perf_counter()
    status = release.secrecy_status(counts, members, report=rep)
    t_supp = time.perf_counter() - t
    print(f"secondary suppression: {t_supp:.1f} s ({rep.lps:,} LPs, {rep.mirrored:,} saved by reversal, "
          f"{rep.widened} widened, {len(rep.unprotectable)} unprotectable)")
    same = all((status[c].to_numpy() == counts[c].to_numpy()).all() for c in status.columns)
    print(f"statuses identical to the published release: {same}")

    wide_after = counts.assign(**{c: status[c] for c in status.columns})
    wide_before = counts.assign(**{c: np.where(np.isin(status[c], ["A", "B"]), status[c], "V") for c in status.columns})
    rows = []
    for d in INDICATORS:
        if not d.secrecy:
            continue
        b = release.indicator_status(wide_before, d.id) != secrecy.PUBLISHED
        a = release.indicator_status(wide_after, d.id) != secrecy.PUBLISHED
        for lv in sorted(counts["level"].unique()):
            m = (counts["level"] == lv).to_numpy()
            rows.append({"indicator": d.id, "level": lv, "cells": int(m.sum()), "before": int(b[m].sum()),
                         "after": int(a[m].sum())})
    loss = pd.DataFrame(rows)
    loss["secondary"] = loss["after"] - loss["before"]
    print("\ncells hidden per indicator and level: primary rules only (before), with secondary suppression (after)")
    print(loss.to_string(index=False))
    tot = loss.groupby("level")[["cells", "before", "after", "secondary"]].sum()
    print("\nall secret indicators, per level:")
    print(tot.to_string())

    t = time.perf_counter()
    pub = attacker.read_published(data, members)
    truth = counts.set_index(counts["level"] + "|" + counts["territory_id"])
    res = attacker.audit(pub, truth=truth)
    bad = attacker.judge(pub, res, truth)
    t_audit = time.perf_counter() - t
    print(f"\nLP audit: {len(res.intervals):,} hidden cells audited with {res.n_lp:,} LPs in {t_audit:.1f} s "
          f"({res.certified:,} certified on their départements, {int(res.intervals['exact'].sum()):,} exact); "
          f"recovered or narrowed below protection: {len(bad)}")
    print(f"total (suppression + audit): {t_supp + t_audit:.1f} s; load average {os.getloadavg()[0]:.2f}")
    return 1 if len(bad) else 0


if __name__ == "__main__":
    raise SystemExit(main())
