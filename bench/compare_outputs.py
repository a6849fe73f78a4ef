"""Compare what two data directories hold: every export and report file (sha256, through the
``latest`` links), every row of the warehouse's published views, and every staged Parquet table
each stage hands to the next (``staging/**.parquet``: sha256, else cell-by-cell with its schema,
so a change of bytes with the same table is told apart from a change of data).

    .venv/bin/python bench/compare_outputs.py BEFORE_DATA_DIR AFTER_DATA_DIR

Used to prove a refactor changed nothing (issue 18): run the same pipeline (e.g. the Corse world,
``TI_SAMPLE_DEPARTEMENTS=2A,2B TI_SAMPLE_SCALE=0.3 TI_MC_DRAWS=50``) before and after, then compare.
Exit 0 when identical, 1 otherwise (the differing files and views are listed).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import sqlalchemy as sa

VIEWS = ("latest_indicator_values", "latest_composite", "latest_territories", "latest_indicator_dictionary")


def files(root: Path) -> dict[str, str]:
    out = {}
    for sub in ("exports", "reports"):  # release folders and latest links, not the .releases build folders
        base = root / sub
        for dirpath, dirnames, names in os.walk(base, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for n in sorted(names):
                p = Path(dirpath) / n
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def staged(root: Path) -> dict[str, Path]:
    base = root / "staging"
    return {str(p.relative_to(root)): p for p in sorted(base.rglob("*.parquet"))} if base.exists() else {}


def staged_diff(a: Path, b: Path) -> list[str]:
    import pyarrow.parquet as pq

    sa_, sb = staged(a), staged(b)
    out = []
    for k in sorted(set(sa_) | set(sb)):
        if k not in sa_ or k not in sb:
            out.append(f"staged table only in {'after' if k in sb else 'before'}: {k}")
            continue
        if hashlib.sha256(sa_[k].read_bytes()).digest() == hashlib.sha256(sb[k].read_bytes()).digest():
            continue
        ta, tb = pq.read_table(sa_[k]), pq.read_table(sb[k])
        same = ta.schema.remove_metadata().equals(tb.schema.remove_metadata()) and ta.equals(tb)
        out.append(f"staged table {'same cells, other bytes' if same else 'differs'}: {k}")
    return out


def views(root: Path) -> dict[str, list]:
    eng = sa.create_engine(f"sqlite:///{root / 'warehouse.db'}")
    try:
        with eng.connect() as c:
            return {v: sorted(map(tuple, c.execute(sa.text(f"SELECT * FROM {v}")))) for v in VIEWS}  # noqa: S608
    finally:
        eng.dispose()


def main(argv=None) -> int:
    a, b = (Path(x) for x in (argv or sys.argv[1:]))
    fa, fb = files(a), files(b)
    diff = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
    va, vb = views(a), views(b)
    vdiff = [v for v in VIEWS if va[v] != vb[v]]
    sdiff = staged_diff(a, b)
    print(f"{len(fa)} files, {sum(len(x) for x in va.values()):,} view rows, {len(staged(a))} staged tables compared")
    for k in sdiff:
        print(f"  {k}")
    for k in diff:
        print(f"  file differs: {k}")
    for v in vdiff:
        print(f"  view differs: {v}")
    same = not diff and not vdiff and not sdiff
    print("IDENTICAL" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
