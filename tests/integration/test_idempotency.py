"""Idempotent re-runs, backfill in any order, re-run of a past period, rollback (issue 9).

Runs the library stages (the functions the DAG tasks call) on a small published sample world."""

from __future__ import annotations

import json
import shutil

import sqlalchemy as sa

from .reliability_world import copy_world, published_template, run_stages, settings_for, snapshot


def _world(tmp_path, tmp_path_factory, name="data"):
    data = copy_world(published_template(tmp_path_factory), tmp_path / name)
    return data, settings_for(data)


def test_rerun_same_period_is_byte_identical(tmp_path, tmp_path_factory, monkeypatch):
    data, settings = _world(tmp_path, tmp_path_factory)
    before = snapshot(settings)
    assert any(k.startswith("exports/") for k in before["files"]) and any(k.startswith("reports/") for k in before["files"])
    run_stages(monkeypatch, settings, ("sirene", "employment", "indicators", "publish"))
    after = snapshot(settings)
    assert after["warehouse"] == before["warehouse"]  # no duplicates, no now() in published rows
    assert after["files"] == before["files"]  # every export and report file byte-identical
    assert after["pointers"] == before["pointers"]


def _add_past_period(data, past="2026-10"):
    """A second, older period staged next to the current one (same numbers, another key)."""
    src = data / "staging" / "indicators" / "2026-11"
    dest = data / "staging" / "indicators" / past
    shutil.copytree(src, dest)
    meta = json.loads((dest / "release_meta.json").read_text())
    meta["release_id"] = past  # what the indicators stage writes for that period (publish checks it)
    (dest / "release_meta.json").write_text(json.dumps(meta))


def _published(settings):
    return snapshot(settings)["warehouse"]


def test_backfill_order_does_not_matter(tmp_path, tmp_path_factory, monkeypatch):
    from territoires_industrie import pipeline

    results = []
    for name, order in (("forward", ("2026-10", "2026-11")), ("reverse", ("2026-11", "2026-10"))):
        data, settings = _world(tmp_path, tmp_path_factory, name)
        _add_past_period(data)
        for rel in order:
            pipeline.run_publish(settings, release=rel)
        results.append((_published(settings), {k: v for k, v in snapshot(settings)["files"].items()
                                               if k.startswith("exports/")}))
    (w1, e1), (w2, e2) = results
    assert w1 == w2
    assert w1["current_release"] == [(1, "2026-11")]  # the newest period is current whatever the order
    assert sorted(r[0] for r in w1["releases"]) == ["2026-10", "2026-11"]
    assert e1 == e2 and any("exports/2026-10/" in k for k in e1)


def test_rerun_past_period_and_rollback(tmp_path, tmp_path_factory, monkeypatch, capsys):
    from territoires_industrie import cli

    data, settings = _world(tmp_path, tmp_path_factory)
    monkeypatch.setenv("TI_DATA_DIR", str(data))
    monkeypatch.setenv("TI_MC_DRAWS", "50")
    monkeypatch.delenv("TI_WAREHOUSE_URL", raising=False)
    _add_past_period(data)
    n_current = len(_published(settings)["latest_indicator_values"])

    # re-run the publication of a past period: published, but the newest period stays current
    assert cli.main(["stage", "publish", "--release", "2026-10"]) == 0
    w = _published(settings)
    assert w["current_release"] == [(1, "2026-11")]
    assert sorted((r[0], r[1]) for r in w["releases"]) == [("2026-10", "complete"), ("2026-11", "complete")]
    assert len(w["indicator_values"]) == 2 * n_current

    assert cli.main(["stage", "publish", "--release", "2099-01"]) == 1
    assert "no staged indicators for release '2099-01'" in capsys.readouterr().out

    # roll back to 2026-10: one transaction, 2026-11 withdrawn, the views show 2026-10 only
    assert cli.main(["rollback", "--to", "2026-10"]) == 0
    assert "2026-11 -> 2026-10" in capsys.readouterr().out
    w = _published(settings)
    assert w["current_release"] == [(1, "2026-10")]
    assert dict((r[0], r[1]) for r in w["releases"]) == {"2026-10": "complete", "2026-11": "withdrawn"}
    assert len(w["latest_indicator_values"]) == n_current and {r[0] for r in w["latest_indicator_values"]} == {"2026-10"}
    assert cli.main(["releases"]) == 0
    listing = capsys.readouterr().out
    assert "2026-11    withdrawn" in listing and "2026-10    complete" in listing

    # unknown or withdrawn target: a clear message, nothing changed
    assert cli.main(["rollback", "--to", "2026-11"]) == 1
    assert "complete releases: 2026-10" in capsys.readouterr().out
    assert _published(settings)["current_release"] == [(1, "2026-10")]

    # re-publishing the withdrawn period makes it complete and current again
    assert cli.main(["stage", "publish", "--release", "2026-11"]) == 0
    w = _published(settings)
    assert w["current_release"] == [(1, "2026-11")]
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT status FROM releases WHERE release_id='2026-11'")).scalar_one() == "complete"
    engine.dispose()
