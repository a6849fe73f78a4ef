"""A small published world for the reliability tests (issue 9): the whole pipeline run once in
sample mode (Corse, scale 0.3, 50 Monte Carlo draws), copied per test, plus a snapshot of what a
user relies on (every published warehouse row, every export/report file hash, staging pointers)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import sqlalchemy as sa

ENV = {"TI_SAMPLE_DEPARTEMENTS": "2A,2B", "TI_SAMPLE_SCALE": "0.3", "TI_MC_DRAWS": "50", "TI_SOURCE_MODE": "sample"}
STAGES = ("geography", "sirene", "sirene_history", "employment", "indicators", "publish")


def settings_for(data_dir: Path, warehouse_url: str | None = None):
    from territoires_industrie.config import get_settings

    env = {**ENV, "TI_DATA_DIR": str(data_dir)}
    if warehouse_url:
        env["TI_WAREHOUSE_URL"] = warehouse_url
    return get_settings(env)


def run_stages(monkeypatch, settings, stages=STAGES) -> dict:
    """Run stages through the library (``pipeline.run_*``, the functions the DAG tasks call)."""
    from territoires_industrie import pipeline

    monkeypatch.setenv("TI_MC_DRAWS", ENV["TI_MC_DRAWS"])
    return {s: getattr(pipeline, f"run_{s}")(settings) for s in stages}


def build_template(tmp_factory, monkeypatch) -> Path:
    root = tmp_factory.mktemp("published_world") / "data"
    run_stages(monkeypatch, settings_for(root))
    return root


def copy_world(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)  # release and latest links stay links
    return dest


def file_hashes(data_dir: Path, subdirs=("exports", "reports")) -> dict[str, str]:
    """sha256 of every file a user reaches under ``exports/`` and ``reports/``: through the
    release and ``latest`` links, not the build folders (``.releases/``) they point at."""
    import os

    out = {}
    for sub in subdirs:
        root = data_dir / sub
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.startswith("."):
                    continue
                p = Path(dirpath) / f
                out[str(p.relative_to(data_dir))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def warehouse_rows(url: str) -> dict[str, list[tuple]]:
    """``SELECT *`` of every published table and view, rows sorted (run_metrics excluded: it is a log)."""
    from territoires_industrie import warehouse

    names = ["releases", "current_release", *warehouse.RELEASE_TABLES, *warehouse.RESTRICTED_TABLES,
             *warehouse.LATEST_VIEWS]
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        have = set(insp.get_table_names()) | set(insp.get_view_names())
        with engine.connect() as conn:
            return {n: sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {n}")))  # noqa: S608 - fixed names
                    for n in names if n in have}
    finally:
        engine.dispose()


def staging_pointers(data_dir: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in sorted((data_dir / "staging").glob("*/CURRENT"))}


def snapshot(settings) -> dict:
    return {"warehouse": warehouse_rows(settings.warehouse_url), "files": file_hashes(settings.data_dir),
            "pointers": staging_pointers(settings.data_dir)}


_TEMPLATE: dict = {}


def published_template(tmp_path_factory) -> Path:
    """The published world, built once per test session (about 15 s) and shared read-only."""
    import pytest

    if "path" not in _TEMPLATE:
        with pytest.MonkeyPatch.context() as mp:
            for k in ("TI_WAREHOUSE_URL", "TI_INSEE_API_KEY", "TI_WEIGHTS", "TI_MC_SEED"):
                mp.delenv(k, raising=False)
            _TEMPLATE["path"] = build_template(tmp_path_factory, mp)
    return _TEMPLATE["path"]
