"""Atomic publication survives SIGKILL: 20 kills per backend (SQLite file, PostgreSQL on 127.0.0.1).

The warehouse holds a complete release A (``2026-10``). A child process then publishes release
``2026-11`` (100 000 indicator rows + 5 000 territories, so the transaction lasts seconds) and is
killed with SIGKILL after a seeded random delay spanning the whole publication. After every kill
the test reads the warehouse with a fresh connection and checks what a reader relies on:

- ``current_release`` names a complete release;
- ``latest_indicator_values`` holds exactly ``releases.n_indicator_values`` rows, all carrying the
  one marker of that release (never a mix of two publications), and ``latest_territories`` too;
- the underlying tables hold, per release id, either nothing or the complete set of rows of one
  publication (no orphan half release);
- the visible publication is either the previous one or the new one.

Each child prints ``READY`` just before :func:`warehouse.publish_release` and ``DONE`` after it,
so the kill delays are drawn over the measured duration of a publication. Bounded: 20 kills per
backend, each child killed at most ``1.2 x`` the measured publication time after ``READY``.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from .airflow_env import create_database, drop_database, postgres_unavailable

N_VALUES = 100_000
N_TERR = N_VALUES // 20
KILLS = 20
A, B = "2026-10", "2026-11"

CHILD = r"""
import sys, time
import numpy as np, pandas as pd
from territoires_industrie import warehouse

url, rel, marker, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
k = np.arange(n)
terr_ids = pd.Series(np.arange(n // 20)).astype("str").str.zfill(6)
iv = pd.DataFrame({
    "level": "commune", "territory_id": terr_ids.to_numpy()[k // 20],
    "indicator_id": pd.Series(k % 20).astype("str").radd("ind_").to_numpy(), "period": "2024",
    "value": float(marker), "numerator": k.astype(float), "denominator": 1.0, "unit": "%",
})
terr = pd.DataFrame({"level": "commune", "territory_id": terr_ids, "label": f"m{marker}"})
engine = warehouse.get_engine(url)
warehouse.init_schema(engine)
print("READY", flush=True)
t0 = time.perf_counter()
warehouse.publish_release(engine, rel, {"indicator_values": iv, "territories": terr},
                          {"source_vintages": {"marker": marker}})
print(f"DONE {time.perf_counter() - t0:.3f}", flush=True)
"""


def _start(script: Path, url: str, release: str, marker: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), url, release, str(marker), str(N_VALUES)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_ready(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "READY":
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited before READY: {proc.stderr.read()[-3000:]}")
    proc.kill()
    raise AssertionError("child never became READY")


def _publish_fully(script: Path, url: str, release: str, marker: int) -> float:
    proc = _start(script, url, release, marker)
    _wait_ready(proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    return float(out.split("DONE", 1)[1].split()[0])


def _state(url: str) -> dict:
    """What a reader sees, read with a fresh engine (SQLite rolls back the hot journal here)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT release_id FROM current_release")).scalars().all()
            assert len(current) == 1, f"current_release must hold one row, holds {current}"
            current = current[0]
            rel = conn.execute(sa.text("SELECT release_id, status, n_indicator_values, source_vintages FROM releases")).all()
            releases = {r[0]: {"status": r[1], "n": r[2], "marker": json.loads(r[3])["marker"]} for r in rel}
            n_view, vmin, vmax, n_rel = conn.execute(sa.text(
                "SELECT COUNT(*), MIN(value), MAX(value), COUNT(DISTINCT release_id) FROM latest_indicator_values")).one()
            terr_view = conn.execute(sa.text(
                "SELECT COUNT(*), MIN(label), MAX(label) FROM latest_territories")).one()
            per_release = conn.execute(sa.text(
                "SELECT release_id, COUNT(*), MIN(value), MAX(value) FROM indicator_values GROUP BY release_id")).all()
            terr_per_release = dict(conn.execute(sa.text(
                "SELECT release_id, COUNT(*) FROM territories GROUP BY release_id")).all())
    finally:
        engine.dispose()
    return {"current": current, "releases": releases, "view": (n_view, vmin, vmax, n_rel), "terr_view": terr_view,
            "per_release": {r[0]: (r[1], r[2], r[3]) for r in per_release}, "terr_per_release": terr_per_release}


def _check_consistent(s: dict) -> int:
    """Assert the warehouse shows one complete publication; return the visible marker."""
    cur = s["current"]
    assert cur in s["releases"], f"current_release {cur!r} has no releases row: {s['releases']}"
    meta = s["releases"][cur]
    assert meta["status"] == "complete"
    n_view, vmin, vmax, n_rel = s["view"]
    assert n_view == meta["n"] == N_VALUES, f"latest view shows {n_view} rows, release says {meta['n']}"
    assert n_rel == 1 and vmin == vmax == meta["marker"], f"mixed publications visible: values {vmin}..{vmax}, marker {meta['marker']}"
    assert s["terr_view"] == (N_TERR, f"m{meta['marker']}", f"m{meta['marker']}"), s["terr_view"]
    # no orphan rows of a half release in the tables themselves
    assert set(s["per_release"]) == set(s["releases"]), f"rows without a release: {s['per_release']} vs {s['releases']}"
    for rid, (n, lo, hi) in s["per_release"].items():
        m = s["releases"][rid]["marker"]
        assert (n, lo, hi) == (N_VALUES, m, m), f"release {rid}: {n} rows, values {lo}..{hi}, expected {N_VALUES} x {m}"
        assert s["terr_per_release"].get(rid) == N_TERR
    return meta["marker"]


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/warehouse.db"
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL variant skipped: {reason}")
    url = create_database("ti_kill")
    try:
        yield url
    finally:
        drop_database(url)


def test_sigkill_during_publication_never_shows_a_mix(warehouse_url, tmp_path):
    script = tmp_path / "publish_child.py"
    script.write_text(CHILD)
    t_start = time.monotonic()
    duration = _publish_fully(script, warehouse_url, A, 1)
    s = _state(warehouse_url)
    assert s["current"] == A and _check_consistent(s) == 1

    rng = random.Random(20261109)
    visible = 1  # marker of the publication readers see
    outcomes = {"killed_old_kept": 0, "killed_new_visible": 0, "completed": 0}
    for i in range(1, KILLS + 1):
        marker = 100 + i
        delay = rng.uniform(0.0, 1.2 * duration)
        proc = _start(script, warehouse_url, B, marker)
        _wait_ready(proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        completed = "DONE" in out
        s = _state(warehouse_url)
        seen = _check_consistent(s)
        assert seen in (visible, marker), f"kill {i} after {delay:.2f}s: marker {seen} is neither previous {visible} nor new {marker}"
        if completed:
            assert seen == marker, f"kill {i}: publication reported DONE but readers see marker {seen}"
            outcomes["completed"] += 1
        else:
            outcomes["killed_new_visible" if seen == marker else "killed_old_kept"] += 1
        # release A, fully published before, is never damaged by a killed publication of B
        assert s["releases"][A]["marker"] == 1
        assert s["current"] == (B if seen == marker else (A if visible == 1 else B))
        visible = seen
    elapsed = time.monotonic() - t_start
    print(f"{warehouse_url.split(':')[0]}: publication {duration:.2f}s, {KILLS} kills in {elapsed:.1f}s: {outcomes}")
    assert sum(outcomes.values()) == KILLS
    # the delays really land inside publications (not all before or all after)
    assert outcomes["killed_old_kept"] >= KILLS // 4, outcomes
