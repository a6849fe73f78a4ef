"""Issue 21: a release is all or nothing, and what users type is checked at the edge.

Each test attacks the published sample world from outside (CLI, library entry points, files in
the staging area) and checks what a user relies on: the published warehouse rows, every export
and report file byte-identical, the exit code and the message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .reliability_world import copy_world, published_template, settings_for, snapshot


@pytest.fixture
def world(tmp_path, tmp_path_factory, monkeypatch):
    data = copy_world(published_template(tmp_path_factory), tmp_path / "data")
    monkeypatch.setenv("TI_DATA_DIR", str(data))
    monkeypatch.setenv("TI_MC_DRAWS", "50")
    monkeypatch.delenv("TI_WAREHOUSE_URL", raising=False)
    return data, settings_for(data)


def _stage(data: Path, release: str, marker: int | None = None) -> Path:
    src, dest = data / "staging" / "indicators" / "2026-11", data / "staging" / "indicators" / release
    shutil.copytree(src, dest)
    meta = json.loads((dest / "release_meta.json").read_text())
    meta["release_id"] = release
    if marker is not None:
        meta.setdefault("source_vintages", {})["marker"] = marker
    (dest / "release_meta.json").write_text(json.dumps(meta))
    return dest


# --- release ids -------------------------------------------------------------------------------

BAD_IDS = ["../2026-11", "2026-11/../../x", "2026-11 ", "2026-11\n", "2026-13", "2026-1", "26-11", "2026_11",
           "/tmp/x", "2026-11\x1b[2J", ""]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_cli_refuses_a_release_id_that_is_not_yyyy_mm(world, bad, capsys):
    from territoires_industrie import cli

    data, settings = world
    before = snapshot(settings)
    for argv in (["stage", "publish", "--release", bad], ["report", "--release", bad], ["rollback", "--to", bad],
                 ["review", "--epci", "200000172", "--release", bad]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err
        assert "not a release id; expected YYYY-MM" in err, err
        line = [ln for ln in err.splitlines() if "not a release id" in ln]
        assert "\x1b" not in err and len(line) == 1 and "expected YYYY-MM" in line[0]  # escaped: one message line
    assert snapshot(settings) == before
    assert not any(p.name not in ("2026-11", "latest", ".releases") for p in (data / "exports").iterdir())


@pytest.mark.parametrize("bad", ["../2026-11", "2026-11 ", "2026-11/../2026-10"])
def test_library_refuses_a_bad_release_id_before_any_path_is_built(world, bad):
    from territoires_industrie import pipeline
    from territoires_industrie.arguments import InvalidArgument
    from territoires_industrie.stages.publish import build_outputs

    data, settings = world
    before = snapshot(settings)
    with pytest.raises(InvalidArgument, match="not a release id"):
        pipeline.run_publish(settings, release=bad)
    with pytest.raises(InvalidArgument, match="not a release id"):
        build_outputs(settings, bad)
    assert snapshot(settings) == before


# --- an incomplete staging publishes nothing ---------------------------------------------------

@pytest.mark.parametrize("damage", ["composite.parquet", "indicator_dictionary.parquet", "release_meta.json",
                                    "column:composite.parquet:score", "empty:territories.parquet",
                                    "meta_release:2026-10"])
def test_incomplete_staging_is_refused_and_nothing_changes(world, damage, capsys):
    import pandas as pd
    from territoires_industrie import cli

    data, settings = world
    folder = _stage(data, "2026-12")
    kind, _, rest = damage.partition(":")
    if not rest:
        (folder / damage).unlink()
    elif kind == "column":
        name, col = rest.split(":")
        pd.read_parquet(folder / name).drop(columns=[col]).to_parquet(folder / name)
    elif kind == "empty":
        pd.read_parquet(folder / rest).head(0).to_parquet(folder / rest)
    elif kind == "meta_release":
        meta = json.loads((folder / "release_meta.json").read_text())
        meta["release_id"] = rest
        (folder / "release_meta.json").write_text(json.dumps(meta))
    before = snapshot(settings)
    code = cli.main(["stage", "publish", "--release", "2026-12"])
    out = capsys.readouterr().out
    assert code != 0
    want = {"composite.parquet": "lacks composite.parquet", "indicator_dictionary.parquet": "lacks indicator_dictionary",
            "release_meta.json": "no staged indicators for release '2026-12'",
            "column:composite.parquet:score": "composite.parquet: missing column(s) ['score']",
            "empty:territories.parquet": "territories.parquet: no rows",
            "meta_release:2026-10": "describes release '2026-10'"}[damage]
    assert want in out, out
    assert snapshot(settings) == before
    assert not (data / "exports" / "2026-12").exists() and not (data / "reports" / "2026-12").exists()


# --- a failure at any step leaves the previous release whole -----------------------------------

@pytest.mark.parametrize("step", ["territoires_industrie.publish.build_exports",
                                  "territoires_industrie.report.build_report",
                                  "territoires_industrie.warehouse.switch_release"])
def test_failure_before_the_switch_leaves_the_old_release_current_and_cleans_up(world, step, monkeypatch):
    import importlib

    from territoires_industrie import pipeline

    data, settings = world
    _stage(data, "2026-12")
    before = snapshot(settings)
    mod, name = step.rsplit(".", 1)

    def boom(*a, **k):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(importlib.import_module(mod), name, boom)
    with pytest.raises(OSError, match="injected"):
        pipeline.run_publish(settings, release="2026-12")
    assert snapshot(settings) == before
    for root in (data / "exports", data / "reports"):
        assert sorted(p.name for p in (root / ".releases").iterdir()) == sorted(
            p.resolve().name for p in root.iterdir() if p.is_symlink() and p.name != "latest"), "build folder left"
        assert not (root / "2026-12").exists()


def test_kill_after_the_warehouse_commit_is_completed_by_the_next_run(world, monkeypatch, capsys):
    """The documented window: warehouse switched, links not renamed yet (a kill there). The journal
    lets ``ti-indicators recover`` (or the next publication) finish the switch."""
    from territoires_industrie import cli, pipeline
    from territoires_industrie.stages import publish as pub

    data, settings = world
    _stage(data, "2026-12", marker=7)

    def killed(*a, **k):
        raise KeyboardInterrupt  # as abrupt as a kill: nothing after the commit runs

    monkeypatch.setattr(pub, "_switch_links", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_publish(settings, release="2026-12")
    monkeypatch.undo()
    monkeypatch.setenv("TI_DATA_DIR", str(data))
    assert (data / ".publish-journal.json").exists()
    assert not (data / "exports" / "2026-12").exists()
    assert cli.main(["recover"]) == 0
    assert "completed the switch of release 2026-12" in capsys.readouterr().out
    assert not (data / ".publish-journal.json").exists()
    from territoires_industrie.publish.exports import exports_complete

    assert exports_complete(data / "exports" / "2026-12", "2026-12")
    manifest = json.loads((data / "exports" / "2026-12" / "MANIFEST.json").read_text())
    assert manifest["source_vintages"]["marker"] == 7
    assert "url=../2026-12/index.html" in (data / "reports" / "latest" / "index.html").read_text()
    assert (data / "exports" / "latest").resolve() == (data / "exports" / "2026-12").resolve()


def test_two_publications_racing_get_a_clear_message(world):
    """A second publisher while the first holds the lock: a clear PublishConflict, not a raw
    database error, and the first one's release is untouched."""
    from territoires_industrie import warehouse
    from territoires_industrie.stages.publish import PublishConflict, publication_lock

    data, settings = world
    engine = warehouse.get_engine(settings.warehouse_url)
    try:
        with publication_lock(settings, engine):
            with pytest.raises(PublishConflict, match="another publication is running"):
                with publication_lock(settings, engine, wait_seconds=0.5):
                    pass
    finally:
        engine.dispose()
