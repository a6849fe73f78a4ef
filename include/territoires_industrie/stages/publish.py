"""Stage 5: publication — warehouse release, exports, HTML report, switched together.

A release is all or nothing. :func:`run_publish`:

1. checks the staged release: every table file, every column, ``release_meta.json``
   (:class:`StagingIncomplete` names what is missing; nothing is written);
2. writes its warehouse rows under a private *building key* (invisible to readers);
3. builds the exports and the report from those rows into new folders
   ``exports/.releases/<release>.<token>/`` and ``reports/.releases/<release>.<token>/``,
   and verifies them (row counts, every expected file, the manifest's checksums);
4. writes the publication journal ``.publish-journal.json`` (what is about to switch);
5. **commit point**: one warehouse transaction turns the building rows into the release,
   marks it complete and moves ``current_release`` (:func:`warehouse.switch_release`);
6. points ``exports/<release>`` and ``reports/<release>`` (symbolic links, replaced
   atomically) at the new folders, then ``exports/latest`` and ``reports/latest`` at the
   release when it is the current one, and deletes the journal.

A failure or a kill before step 5 leaves the previous release current with its exports and
report untouched; the next run (:func:`recover`, called first by every publication and by
``ti-indicators report``) deletes the building rows and folders. A kill after step 5 leaves
the journal: the next run completes step 6 (only renames of links). Every step holds the
publication lock (a file lock on the data folder, plus an advisory lock on PostgreSQL), so
two publications never interleave.

:func:`build_outputs` (``ti-indicators report``) rebuilds the exports and report of an
already published release from the warehouse the same way (new folders, then links).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path

import pandas as pd

from .. import storage
from ..arguments import release_id as checked_release_id
from ..config import Settings, get_settings
from ..errors import DataError
from ..warehouse import PublishConflict
from .common import redact_url

log = logging.getLogger(__name__)

#: Folder (inside ``exports/`` and ``reports/``) holding the real release folders; the
#: user-facing ``<release>`` and ``latest`` entries are symbolic links into it.
BUILDS = ".releases"
JOURNAL = ".publish-journal.json"
LOCK = ".publish.lock"
#: PostgreSQL advisory lock id of the publication (any constant, the same for every run).
PG_LOCK_ID = 7_311_202_311
#: Files of an indicators staging partition a release cannot be published without.
REQUIRED_STAGING = ("release_meta.json", "territories.parquet", "indicator_values.parquet",
                    "indicator_dictionary.parquet", "composite.parquet", "counts_internal.parquet",
                    "reference_models.json")


class StagingIncomplete(DataError, RuntimeError):
    """The staged release lacks a file, a table or a column: nothing is published."""


# --- locking ------------------------------------------------------------------------------------

@contextlib.contextmanager
def publication_lock(settings: Settings, engine, wait_seconds: float = 30.0):
    """Exclusive publication lock: a file lock on ``<data dir>/.publish.lock`` (released by the
    kernel when a process dies) and, on PostgreSQL, a session advisory lock (released when its
    connection closes). Waits up to ``wait_seconds``, then :class:`PublishConflict`."""
    import fcntl

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / LOCK
    deadline = time.monotonic() + wait_seconds
    with open(path, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PublishConflict(f"another publication is running on {settings.data_dir} (lock {path} held "
                                          f"for more than {wait_seconds:.0f} s); wait for it to finish, then run "
                                          f"again") from None
                time.sleep(0.2)
        conn = None
        try:
            if engine.dialect.name == "postgresql":
                import sqlalchemy as sa

                conn = engine.connect()
                while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_ID}).scalar_one():
                    conn.rollback()
                    if time.monotonic() > deadline:
                        raise PublishConflict("another publication of the same PostgreSQL warehouse is running "
                                              "(advisory lock held); wait for it to finish, then run again")
                    time.sleep(0.2)
                conn.commit()
            yield
        finally:
            if conn is not None:
                conn.close()  # ends the session: releases the advisory lock
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- folders and links --------------------------------------------------------------------------

def _new_build_dir(root: Path, release_id: str, token: str) -> Path:
    d = Path(root) / BUILDS / f"{release_id}.{token}"
    d.parent.mkdir(parents=True, exist_ok=True)
    return d


def _point(root: Path, name: str, target: str) -> None:
    """``root/name`` becomes a symbolic link to ``target`` (relative), replaced atomically. A real
    folder left by an older version is moved into ``.releases/`` first."""
    link = Path(root) / name
    if link.exists() and not link.is_symlink():
        legacy = Path(root) / BUILDS / f"{name}.legacy-{time.time_ns()}"
        legacy.parent.mkdir(parents=True, exist_ok=True)
        os.replace(link, legacy)
    tmp = Path(root) / f".{name}.link-{os.getpid()}-{secrets.token_hex(3)}"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def write_latest(reports_dir: Path, release_id: str) -> None:
    from ..report.build import write_latest as write  # the report's own redirect page (lazy: heavy module)

    write(Path(reports_dir), release_id)


def _switch_links(settings: Settings, release_id: str, exports_name: str | None, report_name: str,
                  current: str | None) -> None:
    if exports_name:
        _point(settings.exports_dir, release_id, f"{BUILDS}/{exports_name}")
    _point(settings.reports_dir, release_id, f"{BUILDS}/{report_name}")
    if current == release_id:
        _point(settings.exports_dir, "latest", release_id)
        write_latest(settings.reports_dir, release_id)


def _collect_garbage(settings: Settings) -> list[str]:
    """Delete build folders no link points at, and temporaries left by killed runs."""
    removed = []
    for root in (settings.exports_dir, settings.reports_dir):
        if not root.exists():
            continue
        used = {p.resolve() for p in root.iterdir() if p.is_symlink()}
        for p in list((root / BUILDS).iterdir()) if (root / BUILDS).exists() else []:
            if p.resolve() not in used:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(str(p))
        for p in root.iterdir():
            if p.name.startswith(".build-") or ".old-" in p.name or (p.name.startswith(".") and ".link-" in p.name):
                if p.is_symlink() or p.is_file():
                    p.unlink()
                else:
                    shutil.rmtree(p, ignore_errors=True)
                removed.append(str(p))
    if removed:
        log.info("publication: removed %d leftover build folder(s)/link(s): %s", len(removed), removed[:5])
    return removed


def recover(settings: Settings, engine) -> dict:
    """Bring a data folder back to one consistent release after a failed or killed publication
    (call with the publication lock held). Returns what was done."""
    from .. import warehouse

    done: dict = {"journal": None, "discarded_keys": [], "removed": []}
    jpath = settings.data_dir / JOURNAL
    if jpath.exists():
        j = json.loads(jpath.read_text())
        committed = j["key"] not in warehouse.staged_keys(engine)
        rel = warehouse.list_releases(engine)
        if committed and j["release_id"] in set(rel["release_id"]):
            _switch_links(settings, j["release_id"], j.get("exports"), j["report"], warehouse.current_release_id(engine))
            done["journal"] = f"completed the switch of release {j['release_id']}"
        else:
            done["journal"] = f"abandoned the unswitched publication of {j['release_id']}"
        jpath.unlink()
        log.warning("publication journal found: %s", done["journal"])
    for key in warehouse.staged_keys(engine):  # rows of killed publications (we hold the lock)
        warehouse.discard_staged(engine, key)
        done["discarded_keys"].append(key)
    current = warehouse.current_release_id(engine)
    if current and (settings.reports_dir / current / "index.html").exists():
        latest = settings.reports_dir / "latest" / "index.html"
        if not latest.exists() or f"url=../{current}/index.html" not in latest.read_text():  # e.g. after a rollback
            write_latest(settings.reports_dir, current)
    exp_latest = settings.exports_dir / "latest"
    if current and (settings.exports_dir / current).exists() and \
            not (exp_latest.is_symlink() and os.readlink(exp_latest) == current):
        _point(settings.exports_dir, "latest", current)
    done["removed"] = _collect_garbage(settings)
    return done


# --- staging checks -----------------------------------------------------------------------------

def read_staging(folder: Path, release_id: str) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The release meta and tables of an indicators staging partition, refused with
    :class:`StagingIncomplete` (naming every missing file, column or empty table)."""
    from .. import warehouse

    folder = Path(folder)
    missing = [n for n in REQUIRED_STAGING if not (folder / n).is_file()]
    if missing:
        raise StagingIncomplete(f"release {release_id}: staging {folder} lacks {', '.join(missing)}; nothing was "
                                f"published (re-run the indicators stage for this period)")
    try:
        meta = json.loads((folder / "release_meta.json").read_text())
    except ValueError as exc:
        raise StagingIncomplete(f"release {release_id}: {folder / 'release_meta.json'} is not valid JSON ({exc}); "
                                f"nothing was published") from exc
    if meta.get("release_id") not in (None, release_id):
        raise StagingIncomplete(f"release {release_id}: {folder / 'release_meta.json'} describes release "
                                f"{meta.get('release_id')!r}; nothing was published")
    tables, problems = {}, []
    for name, table in warehouse.RELEASE_TABLES.items():
        path = folder / f"{name}.parquet"
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file refuses the release
            problems.append(f"{path.name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        need = [c.name for c in table.columns if c.name != "release_id"]
        lack = [c for c in need if c not in df.columns]
        if lack:
            problems.append(f"{path.name}: missing column(s) {lack}")
        if df.empty:
            problems.append(f"{path.name}: no rows")
        tables[name] = df
    if problems:
        raise StagingIncomplete(f"release {release_id}: staging {folder} is incomplete; nothing was published: "
                                + "; ".join(problems))
    return meta, tables


def _validation_overall(settings: Settings) -> str | None:
    """``passed`` / ``warnings`` from the latest gate results (None when unavailable)."""
    try:
        from ..validation import latest_status, overall_status
    except (ImportError, AttributeError):
        return None
    try:
        status = overall_status(latest_status(settings))
    except Exception as exc:  # a missing or unreadable status must not block publication
        log.warning("validation status unavailable (%s)", exc)
        return None
    return None if status == "none" else status


# --- building and verifying the outputs ---------------------------------------------------------

def _build(settings: Settings, engine, rd, token: str, *, exports: bool, staged: bool,
           geometry_dir: Path | None = None) -> dict:
    """Exports and report of ``rd`` into new build folders, verified. Returns their names."""
    from ..publish import build_exports
    from ..publish.exports import export_names, exports_complete
    from ..report import build_report

    out: dict = {"release_id": rd.release_id, "synthetic": rd.synthetic, "exports_name": None}
    exp_dir = settings.exports_dir / rd.release_id  # the published one (report downloads) unless rebuilt
    if exports:
        exp_dir = _new_build_dir(settings.exports_dir, rd.release_id, token)
        out["exports"] = build_exports(rd, exp_dir)
        expected = set(export_names(rd.release_id, rd.synthetic).values()) | {"MANIFEST.json"}
        have = {p.name for p in exp_dir.iterdir()}
        if expected - have or not exports_complete(exp_dir, rd.release_id):
            raise RuntimeError(f"release {rd.release_id}: exports in {exp_dir} failed verification "
                               f"(missing {sorted(expected - have)} or checksum mismatch)")
        out["exports_name"] = exp_dir.name
    rep_dir = _new_build_dir(settings.reports_dir, rd.release_id, token)
    report = build_report(engine, settings.reports_dir, rd.release_id, settings=settings, geometry_dir=geometry_dir,
                          exports_dir=exp_dir, update_latest=False, staged=rd if staged else None, dest=rep_dir)
    if not (rep_dir / "index.html").is_file():
        raise RuntimeError(f"release {rd.release_id}: report {rep_dir} has no index.html")
    out.update({"report_name": rep_dir.name, "report_pages": report["pages"], "report_seconds": report["seconds"],
                "previous_release": report["previous_release"]})
    return out


def _result_paths(settings: Settings, out: dict, current: str | None) -> dict:
    rid = out["release_id"]
    res = dict(out)
    res["report"] = str(settings.reports_dir / rid / "index.html")
    res["report_latest"] = str(settings.reports_dir / "latest" / "index.html") if current == rid else None
    return res


def build_outputs(settings: Settings | None = None, release_id: str | None = None, *, engine=None,
                  exports: bool = True, geometry_dir: Path | None = None) -> dict:
    """Exports and report of ``release_id`` (the warehouse's current release by default),
    rebuilt from the warehouse alone and switched in (links replaced atomically)."""
    from .. import warehouse
    from ..publish import load_release

    settings = settings or get_settings()
    if release_id is not None:
        release_id = checked_release_id(release_id)
    own = engine is None
    engine = engine or warehouse.get_engine(settings.warehouse_url)
    try:
        with publication_lock(settings, engine):
            recover(settings, engine)
            rd = load_release(engine, release_id)
            out = _build(settings, engine, rd, secrets.token_hex(4), exports=exports, staged=False,
                         geometry_dir=geometry_dir)
            current = warehouse.current_release_id(engine)
            _switch_links(settings, rd.release_id, out["exports_name"], out["report_name"], current)
            _collect_garbage(settings)
            return _result_paths(settings, out, current)
    finally:
        if own:
            engine.dispose()


def _resolve_staging(settings: Settings, release: str | None) -> tuple[str, Path]:
    if release:
        from ..arguments import contained

        release_id = checked_release_id(release)
        folder = contained(settings.staging_dir / "indicators", release_id, what="release staging folder")
        if not (folder / "release_meta.json").exists():
            have = sorted(p.parent.name for p in (settings.staging_dir / "indicators").glob("*/release_meta.json"))
            raise FileNotFoundError(f"no staged indicators for release {release!r} ({folder}); "
                                    f"staged releases: {', '.join(have) or 'none'}")
        return release_id, folder
    release_id, folder = storage.current(settings.staging_dir, "indicators")
    return checked_release_id(release_id, what="current indicators partition"), folder


def run_publish(settings: Settings | None = None, release: str | None = None) -> dict:
    """Publish the current indicators partition, or ``release`` (a past period whose
    ``staging/indicators/<release>/`` is still there: re-run / backfill). All or nothing."""
    from .. import warehouse
    from ..publish import load_release

    settings = settings or get_settings()
    if release is not None:
        release = checked_release_id(release)
    release_id, folder = _resolve_staging(settings, release)
    meta, tables = read_staging(folder, release_id)
    if meta.get("validation_status") is None:
        meta["validation_status"] = _validation_overall(settings)
    from ..review.inputs import review_inputs_from_staging  # restricted inputs of the candidacy review

    tables["review_inputs"] = review_inputs_from_staging(settings, folder)
    engine = warehouse.get_engine(settings.warehouse_url)
    try:
        with publication_lock(settings, engine):
            recover(settings, engine)
            key = warehouse.stage_release(engine, release_id, tables, meta)
            token = key.split("~", 1)[1]
            try:
                counts = warehouse.staged_counts(engine, key)
                short = {n: (counts[n], len(df)) for n, df in tables.items() if counts.get(n) != len(df)}
                if short:
                    raise RuntimeError(f"release {release_id}: warehouse rows differ from staging: {short}")
                rd = load_release(engine, release_id, staged_key=key)
                out = _build(settings, engine, rd, token, exports=True, staged=True)
                storage.write_json(settings.data_dir / JOURNAL, {
                    "release_id": release_id, "key": key, "exports": out["exports_name"],
                    "report": out["report_name"], "rows": counts})
            except BaseException:
                warehouse.discard_staged(engine, key)
                _collect_garbage(settings)
                raise
            try:
                result = warehouse.switch_release(engine, release_id, key)  # the commit point
            except BaseException:
                if key in warehouse.staged_keys(engine):  # not committed: abandon this publication now
                    warehouse.discard_staged(engine, key)
                    (settings.data_dir / JOURNAL).unlink(missing_ok=True)
                    _collect_garbage(settings)
                raise  # committed (the error came after): the journal lets the next run finish the links
            _switch_links(settings, release_id, out["exports_name"], out["report_name"], result["current_release"])
            (settings.data_dir / JOURNAL).unlink()
            _collect_garbage(settings)
    finally:
        engine.dispose()
    exports = out.get("exports", {})
    result.update({"csv": str(settings.exports_dir / release_id / Path(exports["csv"]).name),
                   "xlsx": str(settings.exports_dir / release_id / Path(exports["xlsx"]).name),
                   "exports": str(settings.exports_dir / release_id),
                   "report": str(settings.reports_dir / release_id / "index.html"),
                   "report_pages": out["report_pages"],
                   "warehouse": redact_url(settings.warehouse_url), "synthetic": meta.get("synthetic"),
                   "validation_status": meta.get("validation_status")})
    log.info("release %s published (current: %s); report: %s", release_id, result["current_release"],
             result["report"])
    return result
