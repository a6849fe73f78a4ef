"""A release is all or nothing: SIGKILL a real publication (warehouse + exports + report) at 20
random moments, on SQLite and on PostgreSQL, and check the three together as a reader would.

The world is the small published sample (Corse): release ``2026-11`` is current with its exports
and report. A child process publishes ``2026-12`` (a staged copy carrying a marker in its source
vintages, a new marker per attempt) through :func:`pipeline.run_publish`, the function the
``ti_publish`` task calls, and is killed after a seeded random delay spanning the publication.
After every kill, with no repair run first, a reader must find:

- the warehouse's current release complete, its ``latest_*`` view holding exactly its rows;
- ``exports/<current>/`` complete by its manifest (every file, every checksum) and carrying the
  same publication marker as the warehouse row;
- ``reports/<current>/index.html`` built from that same publication (the report's downloads
  manifest is byte-identical to the exports manifest) and ``reports/latest`` /
  ``exports/latest`` pointing at the current release;
- the visible publication is the previous one or the new one.

The one documented exception is a kill in the few milliseconds between the warehouse commit and
the link renames: the publication journal then exists, and ``ti-indicators recover`` (or the next
publication) must complete it. At the end a full publication leaves no build folder, no link
temporary and no building row behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from .airflow_env import create_database, drop_database, postgres_unavailable
from .reliability_world import ENV, copy_world, published_template

KILLS = 20
OLD, NEW = "2026-11", "2026-12"

CHILD = r"""
import json, os, sys, time
from territoires_industrie.config import get_settings
from territoires_industrie import pipeline
settings = get_settings()
print("READY", flush=True)
t0 = time.perf_counter()
pipeline.run_publish(settings, release=sys.argv[1])
print(f"DONE {time.perf_counter() - t0:.3f}", flush=True)
"""


def _env(data: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TI_")}
    return {**env, **ENV, "TI_DATA_DIR": str(data), "TI_WAREHOUSE_URL": url}


def _stage_new(data: Path, marker: int) -> None:
    """Staging of ``NEW``: the ``OLD`` partition with the release id and a marker of this attempt."""
    src, dest = data / "staging" / "indicators" / OLD, data / "staging" / "indicators" / NEW
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    meta = json.loads((dest / "release_meta.json").read_text())
    meta["release_id"] = NEW
    meta.setdefault("source_vintages", {})["kill_marker"] = marker
    (dest / "release_meta.json").write_text(json.dumps(meta))


def _run_child(script: Path, env: dict, release: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), release], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise AssertionError(f"child not READY: {line!r} {proc.stderr.read()[-3000:]}")


def _reader_state(data: Path, url: str) -> dict:
    """What people and programs read, checked together. ``consistent`` is False with the reason."""
    from territoires_industrie.publish.exports import exports_complete

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT release_id FROM current_release")).scalar_one()
            rows = conn.execute(sa.text("SELECT release_id, status, n_indicator_values, source_vintages "
                                        "FROM releases")).all()
            n_view = conn.execute(sa.text("SELECT COUNT(*) FROM latest_indicator_values")).scalar_one()
    finally:
        engine.dispose()
    rel = {r[0]: {"status": r[1], "n": r[2], "marker": json.loads(r[3]).get("kill_marker")} for r in rows}
    out = {"current": current, "marker": rel.get(current, {}).get("marker"), "journal": (data / ".publish-journal.json").exists(),
           "consistent": False, "why": None}
    exp, rep = data / "exports" / current, data / "reports" / current

    def fail(why):
        out["why"] = why
        return out

    if rel.get(current, {}).get("status") != "complete":
        return fail(f"current release {current} is not complete: {rel.get(current)}")
    if n_view != rel[current]["n"]:
        return fail(f"latest view shows {n_view} rows, release says {rel[current]['n']}")
    if not exports_complete(exp, current):
        return fail(f"exports/{current} incomplete or not of release {current}")
    manifest = json.loads((exp / "MANIFEST.json").read_text())
    if (manifest.get("source_vintages") or {}).get("kill_marker") != out["marker"]:
        return fail(f"exports/{current} are of another publication ({manifest.get('source_vintages')}) "
                    f"than the warehouse (marker {out['marker']})")
    if not (rep / "index.html").is_file():
        return fail(f"reports/{current}/index.html missing")
    if (rep / "downloads" / "MANIFEST.json").read_bytes() != (exp / "MANIFEST.json").read_bytes():
        return fail(f"reports/{current} was built from another publication than exports/{current}")
    latest = (data / "reports" / "latest" / "index.html").read_text()
    if f"url=../{current}/index.html" not in latest:
        return fail(f"reports/latest does not point at {current}")
    if (data / "exports" / "latest").resolve() != exp.resolve():
        return fail(f"exports/latest -> {(data / 'exports' / 'latest').resolve()}, not exports/{current}")
    out["consistent"] = True
    return out


def _recover(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "territoires_industrie.cli", "recover"], env=env, check=True,
                   capture_output=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path, tmp_path_factory):
    data = copy_world(published_template(tmp_path_factory), tmp_path / "data")
    if request.param == "sqlite":
        yield data, f"sqlite:///{data}/warehouse.db"
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL variant skipped: {reason}")
    url = create_database("ti_kill_outputs")
    try:
        yield data, url
    finally:
        drop_database(url)


def test_sigkill_during_publication_keeps_warehouse_exports_and_report_together(world, tmp_path):
    data, url = world
    env = _env(data, url)
    script = tmp_path / "publish_child.py"
    script.write_text(CHILD)
    # a full publication of OLD on this backend: the starting state, and the publication's duration
    proc = _run_child(script, env, OLD)
    _wait_ready(proc)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    duration = float(out.split("DONE", 1)[1].split()[0])
    s = _reader_state(data, url)
    assert s["consistent"] and s["current"] == OLD, s

    rng = random.Random(20261203)
    visible = (OLD, None)
    outcomes = {"old_kept": 0, "new_visible": 0, "completed": 0, "journal_recovered": 0}
    for i in range(1, KILLS + 1):
        marker = 100 + i
        _stage_new(data, marker)
        proc = _run_child(script, env, NEW)
        _wait_ready(proc)
        time.sleep(rng.uniform(0.0, 1.2 * duration))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        s = _reader_state(data, url)
        if not s["consistent"]:
            # the documented window: warehouse switched, links not yet renamed; the journal says so
            assert s["journal"], f"kill {i}: inconsistent without a publication journal: {s['why']}"
            _recover(env)
            s = _reader_state(data, url)
            assert s["consistent"] and (s["current"], s["marker"]) == (NEW, marker), (i, s)
            outcomes["journal_recovered"] += 1
        seen = (s["current"], s["marker"])
        assert seen in (visible, (NEW, marker)), f"kill {i}: readers see {seen}, neither {visible} nor {(NEW, marker)}"
        if "DONE" in out:
            assert seen == (NEW, marker), f"kill {i}: publication reported DONE but readers see {seen}"
            outcomes["completed"] += 1
        else:
            outcomes["new_visible" if seen == (NEW, marker) else "old_kept"] += 1
        visible = seen
    print(f"{url.split(':')[0]}: publication {duration:.2f}s, {KILLS} kills: {outcomes}")
    assert outcomes["old_kept"] >= KILLS // 4, outcomes  # the kills really land inside publications

    # a full rerun completes and leaves nothing behind
    _stage_new(data, 999)
    proc = _run_child(script, env, NEW)
    _wait_ready(proc)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    s = _reader_state(data, url)
    assert s["consistent"] and (s["current"], s["marker"]) == (NEW, 999), s
    assert not s["journal"]
    for root in (data / "exports", data / "reports"):
        linked = {p.resolve() for p in root.iterdir() if p.is_symlink()}
        assert {p.resolve() for p in (root / ".releases").iterdir()} <= linked, "unreferenced build folder left"
        assert not [p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".releases"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM releases WHERE status = 'building'")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT COUNT(*) FROM indicator_values WHERE release_id LIKE '%~%'")
                                ).scalar_one() == 0
    finally:
        engine.dispose()
    # the previous release is intact, with its own exports and report
    from territoires_industrie.publish.exports import exports_complete

    assert exports_complete(data / "exports" / OLD, OLD) and (data / "reports" / OLD / "index.html").is_file()


def test_two_publications_of_the_same_release_racing(world, tmp_path):
    """Two publishers of the same period at once (two CLI users, or a manual run beside the DAG):
    they are serialised by the publication lock; neither dies on a raw database error
    (``UniqueViolation`` before) and readers end on one complete publication."""
    data, url = world
    env = _env(data, url)
    script = tmp_path / "publish_child.py"
    script.write_text(CHILD)
    _stage_new(data, 555)
    procs = [_run_child(script, env, NEW) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert "UniqueViolation" not in err and "IntegrityError" not in err, err[-2000:]
        assert p.returncode == 0 or "another publication" in err, err[-2000:]
    assert any(p.returncode == 0 for p in procs)
    s = _reader_state(data, url)
    assert s["consistent"] and (s["current"], s["marker"]) == (NEW, 555), s
