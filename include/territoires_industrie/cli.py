"""Command-line entry points: ``ti-indicators <command>`` (or ``python -m territoires_industrie.cli``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

STAGES = ("geography", "sirene", "sirene_history", "employment", "indicators", "publish")


def _summary(args) -> int:
    import sqlalchemy as sa

    from . import storage, warehouse
    from .config import get_settings
    from .pipeline import SYNTHETIC_BANNER, redact_url

    s = get_settings()
    engine = warehouse.get_engine(s.warehouse_url)
    rel = warehouse.current_release_id(engine)
    if rel is None:
        print("No release published yet: run the pipeline first (make run).")
        print(_validation_text(s))
        return 1
    with engine.connect() as conn:
        meta = conn.execute(sa.select(warehouse.releases).where(warehouse.releases.c.release_id == rel)).mappings().one()
        counts = {
            name: conn.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar_one()
            for name in ("releases", *warehouse.RELEASE_TABLES, *warehouse.LATEST_VIEWS)
        }
        per_level = conn.execute(sa.text(
            "SELECT level, COUNT(*) FROM latest_territories GROUP BY level ORDER BY level")).all()
    _, folder = storage.current(s.staging_dir, "indicators")
    print("=" * 78)
    if meta["synthetic"]:
        print(f"  {SYNTHETIC_BANNER}")
        print("=" * 78)
    print(f"Current release : {rel}  (pipeline {meta['pipeline_version']}, status {meta['status']})")
    print(f"Source vintages : {meta['source_vintages']}")
    print(f"Warehouse       : {redact_url(s.warehouse_url)}")
    for name, n in counts.items():
        print(f"  {name:<30} {n:>9} rows")
    print("Territories in the release: " + ", ".join(f"{lv} {n}" for lv, n in per_level))
    for p in sorted((s.exports_dir / rel).glob("*")):
        print(f"Export          : {p}")
    print(f"Staging         : {folder}")
    for extra in sorted((s.reports_dir).glob("*/index.html")) if s.reports_dir.exists() else []:
        print(f"Report          : {extra}")
    current_report = s.reports_dir / rel / "index.html"
    if current_report.exists():
        print(f"Open the report : {current_report.as_uri()}")
    else:
        print("Report          : not built for this release (ti-indicators report)")
    print("-" * 78)
    print(_validation_text(s))
    print("=" * 78)
    return 0


def _validation_text(settings) -> str:
    from .validation import format_summary, latest_status

    return format_summary(latest_status(settings))


def _validation(args) -> int:
    """Latest validation status of every dataset; exit 1 when a hard gate failed."""
    from .config import get_settings
    from .validation import format_summary, latest_status, overall_status

    status = latest_status(get_settings())
    print(format_summary(status))
    return 1 if overall_status(status) == "failed" else 0


def _report(args) -> int:
    """Rebuild the HTML report (and its downloads) of a published release from the warehouse."""
    from pathlib import Path

    from . import warehouse
    from .config import get_settings
    from .stages.publish import build_outputs

    s = get_settings()
    engine = warehouse.get_engine(s.warehouse_url)
    try:
        if warehouse.current_release_id(engine) is None:
            print("No release published yet: run the pipeline first (make run).")
            return 1
        try:
            out = build_outputs(s, args.release, engine=engine, exports=args.exports,
                                geometry_dir=Path(args.geometry_dir) if args.geometry_dir else None)
        except KeyError as exc:
            print(exc.args[0] if exc.args else exc)
            return 1
    finally:
        engine.dispose()
    index = Path(out["report"])
    print(f"Report of release {out['release_id']} rebuilt from the warehouse ({out['report_pages']} territory pages, "
          f"{out['report_seconds']} s){'  [SYNTHETIC data]' if out['synthetic'] else ''}")
    print(f"Open the report : {index.as_uri()}")
    if out.get("report_latest"):
        print(f"Latest release  : {Path(out['report_latest']).as_uri()}")
    return 0


def _review(args) -> int:
    """Review one candidacy (--name + --epci/--communes/--ti) or a batch file (--csv) against a
    published release; outputs under <TI_DATA_DIR>/reviews/<release>/."""
    from .review import CandidacyFileError, CandidacyRejected, ReviewInputsError, run_review

    try:
        out = run_review(name=args.name, epci=args.epci, communes=args.communes, ti=args.ti, csv_path=args.csv,
                         release=args.release, restricted=args.diffusion_restreinte)
    except CandidacyRejected as exc:
        print(f"Candidature non examinée : « {exc.candidacy.name or '?'} »")
        for pb in exc.problems:
            print(f"  - {pb.message}")
        return 2
    except (CandidacyFileError, ReviewInputsError) as exc:
        print(exc.args[0] if exc.args else exc)
        return 2 if isinstance(exc, CandidacyFileError) else 1
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "text"}, indent=2, ensure_ascii=False, default=str))
        return 0
    print(out["text"])
    for kind, path in sorted(out["paths"].items()):
        print(f"{kind:<12}: {path}")
    if out["mode"] == "batch":
        for rej in out["rejections"]:
            print(f"Rejetée : {rej['name']} — " + " ; ".join(rej["problems"]))
    return 0


def _stage(args) -> int:
    from . import pipeline

    fn = getattr(pipeline, f"run_{args.name}")
    if args.release and args.name != "publish":
        print(f"--release applies to the publish stage only (re-publish a staged past period), not {args.name!r}")
        return 2
    from .arguments import InvalidArgument, printable
    from .stages.publish import PublishConflict, StagingIncomplete

    try:
        out = fn(release=args.release) if args.release else fn()
    except (StagingIncomplete, PublishConflict, InvalidArgument) as exc:
        print(printable(exc, limit=2000))
        return 1
    except FileNotFoundError as exc:
        if not args.release:
            raise
        print(printable(exc, limit=2000))
        return 1
    print(json.dumps(out, indent=2, default=str))
    return 0


def _releases(args) -> int:
    """Every release in the warehouse, its status and which one is current."""
    import sqlalchemy as sa

    from . import warehouse
    from .config import get_settings

    engine = warehouse.get_engine(get_settings().warehouse_url)
    try:
        if not sa.inspect(engine).has_table("releases"):
            print("No release published yet: run the pipeline first (make run).")
            return 1
        current = warehouse.current_release_id(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(warehouse.releases).order_by(warehouse.releases.c.release_id)).mappings().all()
    finally:
        engine.dispose()
    print(f"{'release':<10} {'status':<10} {'values':>9} {'validation':<11} {'synthetic':<9} current")
    for r in rows:
        print(f"{r['release_id']:<10} {r['status']:<10} {r['n_indicator_values']:>9} {str(r['validation_status']):<11} "
              f"{str(bool(r['synthetic'])):<9} {'*' if r['release_id'] == current else ''}")
    return 0


def _rollback(args) -> int:
    """Point ``current_release`` at an existing complete release (newer ones are withdrawn)."""
    from . import warehouse
    from .config import get_settings

    engine = warehouse.get_engine(get_settings().warehouse_url)
    try:
        out = warehouse.rollback(engine, args.to)
    except KeyError as exc:
        print(exc.args[0])
        return 1
    finally:
        engine.dispose()
    print(f"current release: {out['previous_current']} -> {out['current_release']}; "
          f"withdrawn: {', '.join(out['withdrawn']) or 'none'}")
    print("Rebuild the report of the current release with: ti-indicators report")
    return 0


def _recover(args) -> int:
    """Complete or abandon an interrupted publication (normally done by the next publication)."""
    from . import warehouse
    from .config import get_settings
    from .stages.publish import publication_lock, recover

    s = get_settings()
    engine = warehouse.get_engine(s.warehouse_url)
    try:
        with publication_lock(s, engine):
            done = recover(s, engine)
        current = warehouse.current_release_id(engine)
    finally:
        engine.dispose()
    print(f"current release : {current or 'none'}")
    print(f"journal         : {done['journal'] or 'none (no interrupted switch)'}")
    print(f"staged rows     : {', '.join(done['discarded_keys']) or 'none'} discarded")
    print(f"build folders   : {len(done['removed'])} removed")
    return 0


def _sources(args) -> int:
    """The latest health check of every live source (``--check``: run one now, metadata only)."""
    from . import warehouse
    from .config import get_settings
    from .source_status import DRIFT, UNREACHABLE, format_table, latest_status

    s = get_settings()
    if args.check:
        from .pipeline import run_source_check

        summary = run_source_check(s)
        if summary.get("skipped"):
            print(f"not checked: {summary['reason']}")
            return 0
    engine = warehouse.get_engine(s.warehouse_url)
    try:
        rows = latest_status(engine)
    finally:
        engine.dispose()
    print(format_table(rows))
    return 1 if any(r["state"] in (DRIFT, UNREACHABLE) for r in rows) else 0


def _alerts(args) -> int:
    """Alerted territories (most difficult first) and the establishment events since a date."""
    from . import warehouse
    from .alerts import tables
    from .config import get_settings

    s = get_settings()
    if args.run or args.rebuild:
        from .pipeline import run_early_warning

        run_early_warning(s, rebuild=args.rebuild)
    engine = warehouse.get_engine(s.warehouse_url)
    try:
        sig = tables.read_signals(engine)
        if sig.empty:
            print("No early-warning run yet: run the DAG ti_sirene_updates (or: ti-indicators alerts --run).")
            return 1
        try:
            comp = warehouse.read_latest(engine, "latest_composite")
            terr = warehouse.read_latest(engine, "latest_territories")
        except Exception:  # noqa: BLE001 - no release yet: alerts unranked
            import pandas as pd

            comp, terr = pd.DataFrame(), pd.DataFrame()
        ranked = tables.ranked_alerts(sig, comp, terr)
        events = tables.read_events(engine, since=args.since)
    finally:
        engine.dispose()
    if args.territory:
        code = args.territory
        ranked = ranked[ranked["territory_id"] == code]
        keep = events["codgeo"].eq(code)
        for col in ("epci", "ze", "departement"):
            keep |= events[col].eq(code)
        events = events[keep]
    synthetic = bool((sig["data_status"] == "SYNTHETIC").any())
    if args.json:
        from .storage import jsonable

        print(json.dumps(jsonable({"as_of": str(sig["as_of"].iloc[0]), "synthetic": synthetic,
                                   "alerts": ranked.to_dict("records"), "events": events.to_dict("records")}),
                         ensure_ascii=False, indent=1))
    else:
        print(tables.format_text(ranked, events, str(sig["as_of"].iloc[0]), synthetic, args.since))
    return 0


def _date_arg(value: str) -> str:
    """argparse type: a date AAAA-MM-JJ (exit code 2 otherwise)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date AAAA-MM-JJ: {value!r}") from None


def _code_arg(value: str) -> str:
    import re

    if not re.fullmatch(r"[0-9A-Za-z-]{1,16}", value or ""):
        raise argparse.ArgumentTypeError(f"not a territory code (EPCI SIREN, zone d'emploi, département, commune): "
                                         f"{value[:40]!r}")
    return value


def _release_arg(value: str) -> str:
    """argparse type: a release id YYYY-MM, refused at the edge otherwise (exit code 2)."""
    from .arguments import InvalidArgument, release_id

    try:
        return release_id(value)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ti-indicators", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="print what the last run produced and where")
    p.set_defaults(func=_summary)
    p = sub.add_parser("validation", help="print the latest validation (Great Expectations gates) status per dataset")
    p.set_defaults(func=_validation)
    p = sub.add_parser("sources", help="the latest health check of every live source (state, when, what changed); "
                                       "exit code 1 when one drifted or is unreachable")
    p.add_argument("--check", action="store_true", help="check the sources now (metadata only, live mode)")
    p.set_defaults(func=_sources)
    p = sub.add_parser("alerts", help="early warning: territories alerted by industrial closures (most difficult "
                                      "first) and the establishment events since a date")
    p.add_argument("--since", default=None, type=_date_arg, help="events with an effective date on or after AAAA-MM-JJ")
    p.add_argument("--territory", default=None, type=_code_arg,
                   help="only this territory (EPCI SIREN, zone d'emploi, département or commune code)")
    p.add_argument("--run", action="store_true", help="merge the landed updates and recompute the signals first")
    p.add_argument("--rebuild", action="store_true",
                   help="reseed the establishment store from the current SIRENE stock, then merge every landed batch")
    p.add_argument("--json", action="store_true", help="print alerts and events as JSON")
    p.set_defaults(func=_alerts)
    p = sub.add_parser("report", help="rebuild the HTML report of a release from the warehouse (no pipeline run)")
    p.add_argument("--release", default=None, type=_release_arg, help="release id (YYYY-MM); default: the current release")
    p.add_argument("--exports", action="store_true", help="also rewrite exports/<release>/ from the warehouse")
    p.add_argument("--geometry-dir", default=None, help="folder with epci*.geojson / ze*.geojson (map)")
    p.set_defaults(func=_report)
    p = sub.add_parser("review", help="review a candidacy (group of EPCI) or a batch of candidacies against a "
                                      "published release: HTML, JSON, CSV and XLSX under reviews/<release>/")
    p.add_argument("--name", default=None, help="name of the candidacy")
    p.add_argument("--epci", default=None, help="EPCI SIREN codes, comma-separated (e.g. 200000172,200069193)")
    p.add_argument("--communes", default=None, help="commune INSEE codes, comma-separated (converted to their EPCI)")
    p.add_argument("--ti", default=None, help="existing Territoire d'industrie id(s), e.g. ti-2701")
    p.add_argument("--csv", default=None, help="batch file: one row per candidacy x code (see docs/review.md)")
    p.add_argument("--release", default=None, type=_release_arg, help="release id (YYYY-MM); default: the current release")
    p.add_argument("--json", action="store_true", help="print the result (paths, flags, problems) as JSON")
    p.add_argument("--diffusion-restreinte", action="store_true",
                   help="entitled reviewers only: the group's exact figures, secret ones included, under "
                        "reviews-restreintes/ (owner-only files), every output marked DIFFUSION RESTREINTE")
    p.set_defaults(func=_review)
    p = sub.add_parser("stage", help="run one pipeline stage without Airflow (debugging)")
    p.add_argument("name", choices=STAGES)
    p.add_argument("--release", default=None, type=_release_arg, help="publish only: re-publish this staged past period (YYYY-MM)")
    p.set_defaults(func=_stage)
    p = sub.add_parser("releases", help="list the releases in the warehouse and the current one")
    p.set_defaults(func=_releases)
    p = sub.add_parser("rollback", help="make an existing complete release current again (newer ones withdrawn)")
    p.add_argument("--to", required=True, type=_release_arg, help="release id (YYYY-MM) to make current")
    p.set_defaults(func=_rollback)
    p = sub.add_parser("recover", help="complete or abandon an interrupted publication (the next publication "
                                       "does it too): links, latest, leftover build folders and staged rows")
    p.set_defaults(func=_recover)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
