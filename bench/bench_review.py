"""Benchmark: candidacy review (not a test).

Against a published warehouse (``--data-dir``: a ``TI_DATA_DIR`` after ``make run``; default:
the small hand-made release of ``tests/unit/review_world.py`` published in a temporary
folder), measures:

1. ``review.load_review_context`` — reading the release (published tables + restricted inputs);
2. one ``review_candidacy`` with its four outputs (HTML, JSON, CSV, XLSX);
3. ``review_batch`` of ``--n`` candidacies (random groups of 1-4 EPCI of the release, fixed seed)
   with the ranked summary.

    .venv/bin/python bench/bench_review.py [--data-dir var] [--n 200]

Targets (2 cores): context < 5 s at national scale, single review < 1 s, batch of 200 < 20 s.
Results are written to ``bench/out/last_results.json`` under ``review``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="TI_DATA_DIR of a published warehouse (default: fixture)")
    ap.add_argument("--n", type=int, default=200, help="candidacies in the batch")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from territoires_industrie import warehouse
    from territoires_industrie.config import get_settings
    from territoires_industrie.review import from_args, load_review_context, review_batch, review_candidacy

    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    if args.data_dir:
        settings = get_settings({"TI_DATA_DIR": args.data_dir})
        engine = warehouse.get_engine(settings.warehouse_url)
        source = args.data_dir
    else:
        sys.path.insert(0, str(ROOT))
        from tests.unit.review_world import publish_world, write_geometry

        engine = warehouse.get_engine(f"sqlite:///{tmp}/w.db")
        publish_world(engine, write_geometry(tmp / "geo"), draws=1000)
        source = "tests/unit/review_world.py fixture"
    res = {"source": source, "n": args.n}
    t = time.perf_counter()
    ctx = load_review_context(engine)
    res["context_s"] = round(time.perf_counter() - t, 3)
    epci = sorted(ctx.counted_epci)
    res["epci"] = len(epci)
    rng = random.Random(20231109)
    out = tmp / "reviews"
    t = time.perf_counter()
    review_candidacy(from_args("Bench", epci=rng.sample(epci, min(3, len(epci)))), ctx, out_root=out)
    res["single_s"] = round(time.perf_counter() - t, 3)
    cands = [from_args(f"Candidature {i:03d}", epci=rng.sample(epci, rng.randint(1, min(4, len(epci)))))
             for i in range(args.n)]
    t = time.perf_counter()
    batch = review_batch(cands, ctx, out_root=out, batch_name="bench")
    res["batch_s"] = round(time.perf_counter() - t, 3)
    res["per_candidacy_ms"] = round(1000 * res["batch_s"] / max(args.n, 1), 1)
    res["reviewed"], res["rejected"] = len(batch["results"]), len(batch["rejected"])
    res["targets_met"] = {"context": res["context_s"] < 5, "single": res["single_s"] < 1,
                          "batch_200": res["batch_s"] * 200 / max(args.n, 1) < 20}
    engine.dispose()
    print(json.dumps(res, indent=2))
    if not args.no_write:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "last_results.json"
        allres = json.loads(path.read_text()) if path.exists() else {}
        allres["review"] = res
        path.write_text(json.dumps(allres, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
