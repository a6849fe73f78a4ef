"""Gate runner: validate one batch with its Great Expectations suite, persist the result,
stop the run on a hard failure.

``gate(dataset, df, settings=..., vintage=..., context=...)`` is the single entry point the
stages call, *before* they stage or publish anything:

1. reference lists (COG communes, EPCI, ZE, NAF table, expected départements) are built
   from the geography (``context["geography"]`` or the staging ``geography`` dataset);
2. the dataset's suite (:mod:`.suites`) runs on the prepared batch in an ephemeral GX
   context (pandas datasource, ExpectationSuite, ValidationDefinition);
3. file-level checks made on the SIRENE stream (``context["stream"]``, see
   :mod:`.stream`) and parse-report checks join the result;
4. drift against the previous vintage (``metrics.json``) runs as a second, soft, GX
   validation;
5. everything is written under ``<TI_DATA_DIR>/validation/<dataset>/<vintage>/``:
   ``result.json`` (counts and samples of unexpected values), ``report.html``,
   ``metrics.json``, ``quarantine.parquet`` + ``.csv`` (rows failing a row-level check,
   with the reason), and ``validation/index.html`` is refreshed;
6. a hard failure raises :class:`HardGateFailed` naming dataset, expectation, column and
   counts; soft failures are logged as warnings and returned.

Nothing here imports Great Expectations at module level.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .. import storage
from ..config import env as setting
from ..errors import DataError
from ..storage import jsonable
from .failures import describe_failure

log = logging.getLogger(__name__)

SAMPLE_SIZE = 20
#: settings.extra key / environment variable -> default
#: soft/hard gate thresholds -> their setting (defaults and meaning: config.VARIABLES)
KNOBS = {
    "validation_drift_pct": "TI_VALIDATION_DRIFT_PCT",
    "validation_rowcount_pct": "TI_VALIDATION_ROWCOUNT_PCT",
    "validation_max_unknown_commune_pct": "TI_VALIDATION_MAX_UNKNOWN_COMMUNE_PCT",
    "validation_quarantine_cap": "TI_VALIDATION_QUARANTINE_CAP",
}


class HardGateFailed(DataError, RuntimeError):
    """A hard gate failed: nothing was staged or published. The message names the dataset,
    the vintage, every failed expectation with its column and counts, and the report."""

    def __init__(self, dataset: str, vintage: str, failures: list[dict], result_path: Path | None = None,
                 html_path: Path | None = None, quarantine_path: Path | None = None):
        self.dataset, self.vintage, self.failures = dataset, vintage, failures
        self.result_path, self.html_path, self.quarantine_path = result_path, html_path, quarantine_path
        lines = "; ".join(describe_failure(f) for f in failures[:10])
        more = f"; ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        where = f" Report: {html_path or result_path}." if (html_path or result_path) else ""
        quarantine = f" Quarantined rows: {quarantine_path}." if quarantine_path else ""
        super().__init__(f"hard gate failed for {dataset} {vintage}: {len(failures)} check(s) failed — "
                         f"{lines}{more}.{quarantine}{where}")


    def __reduce__(self):  # picklable (task runners may ship exceptions between processes)
        return (HardGateFailed, (self.dataset, self.vintage, self.failures, self.result_path, self.html_path,
                                 self.quarantine_path))


class ValidationSetupError(RuntimeError):
    """The gate cannot run (e.g. the geography it checks codes against is missing)."""


@dataclass
class GateResult:
    dataset: str
    vintage: str
    status: str  # passed | warnings | failed
    hard_failures: list = field(default_factory=list)
    soft_failures: list = field(default_factory=list)
    result_path: str | None = None
    html_path: str | None = None
    quarantine_path: str | None = None
    quarantine_rows: int = 0
    rows: int = 0
    evaluated: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def knob(settings, name: str) -> float:
    extra = getattr(settings, "extra", None) or {}
    if name in extra:
        return float(extra[name])
    return float(setting(KNOBS[name]))


# --------------------------------------------------------------------------- GX plumbing
_CTX = None


def gx_context():
    """One ephemeral GX context per process, progress bars and analytics off."""
    global _CTX
    if _CTX is None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # GX logs its set-up at INFO (some of its modules set their own level): keep task logs readable
        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(setting("TI_GX_LOG_LEVEL"))

        from great_expectations.execution_engine import pandas_execution_engine as engine

        from . import gx_custom  # noqa: F401 - registers the project's expectations

        # GX labels every pandas batch under 1 GB with an MD5 of hash_pandas_object over all its
        # columns and index ("pandas_data_fingerprint", a batch marker the gate never reads):
        # on the 13M history states that alone took 4.8 s and 815 MB per validation call
        # (measured, issue 19). The threshold is GX's own switch; 0 turns the fingerprint off.
        engine.HASH_THRESHOLD = 0
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.data_sources.add_pandas("territoires_industrie")
        _CTX = ctx
    return _CTX


def _expectation_columns(cfg) -> set[str]:
    kw = cfg.kwargs
    cols = {kw.get("column"), kw.get("column_A"), kw.get("column_B"), *(kw.get("column_list") or [])}
    cond = kw.get("row_condition")
    if isinstance(cond, dict):
        c = cond.get("column")
        cols.add(c.get("name") if isinstance(c, dict) else c)
    elif cond is not None and hasattr(cond, "column"):
        cols.add(cond.column.name)
    return {c for c in cols if c}


#: Row-wise expectations: their result over a frame is the sum of their results over row
#: chunks, so big frames are validated chunk by chunk (GX's pandas engine needs several
#: times a column's memory per expectation). Whole-frame ones (uniqueness, distinct values,
#: row counts, dtypes) still see the whole frame.
CHUNKABLE = frozenset({
    "expect_column_values_to_be_between", "expect_column_values_to_be_in_reference_set",
    "expect_column_values_to_be_in_set", "expect_column_values_to_be_null", "expect_column_values_to_match_regex",
    "expect_column_values_to_not_be_null", "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_equal", "expect_column_values_to_be_plausible_counts",
})
CHUNK_ROWS = 2_000_000


#: Uniqueness expectations: over a frame sorted by a key they include, the duplicates of the
#: whole frame are those of row chunks cut between two keys (a duplicate shares the key)
KEY_CHUNKABLE = frozenset({"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"})


def _key_sorted(df: pd.DataFrame, key: str | None) -> bool:
    """``df`` is sorted by ``key`` (non-decreasing, no missing key): checked, never assumed."""
    if not key or key not in df.columns:
        return False
    import pyarrow as pa
    import pyarrow.compute as pc

    col = df[key]
    if bool(col.isna().any()):
        return False
    if len(col) < 2:
        return True
    if pd.api.types.is_numeric_dtype(col.dtype):
        v = col.to_numpy()
        return bool((v[1:] >= v[:-1]).all())
    # Arrow comparison: pandas' is_monotonic_increasing turns 13M Arrow strings into Python
    # objects first (about 900 MB, measured on the history states)
    a = pa.array(col.array) if hasattr(col.array, "__arrow_array__") else pa.array(col.to_numpy(dtype=object))
    return bool(pc.all(pc.greater_equal(a[1:], a[:-1])).as_py())


def _key_chunks(df: pd.DataFrame, key: str, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges of about ``chunk_rows`` rows, each cut where ``key`` changes."""
    col, n, out, start = df[key], len(df), [], 0
    while start < n:
        end = min(start + chunk_rows, n)
        while end < n and col.iat[end] == col.iat[end - 1]:
            end += 1
        out.append((start, end))
        start = end
    return out


def _chunked(asset_name: str, suite_name: str, exps: list, df: pd.DataFrame, bounds) -> list[dict]:
    merged: list[dict] | None = None
    for start, end in bounds:
        part = _validate(asset_name, suite_name, exps, df.iloc[start:end])
        merged = part if merged is None else [_merge_records(a, b) for a, b in zip(merged, part)]
    return merged or []


def run_suite(asset_name: str, df: pd.DataFrame, suite, chunk_rows: int = CHUNK_ROWS,
              sorted_by: str | None = None) -> tuple[list[dict], list[dict]]:
    """Validate ``df`` with ``suite``; returns (check records, skipped expectations).

    Expectations whose column is absent from ``df`` are skipped (an absent *required*
    column is reported by its own ``expect_column_to_exist``). Above ``chunk_rows`` rows the
    row-wise expectations (:data:`CHUNKABLE`) run on row chunks and their results are summed
    (counts, samples, unexpected row indices), which bounds the memory of the validation.
    When ``df`` is sorted by ``sorted_by`` (checked), the uniqueness expectations whose columns
    include that key (:data:`KEY_CHUNKABLE`) run on chunks cut between two keys: a duplicate
    row shares its key, so it is in the same chunk, and the counts add up exactly."""
    present = set(df.columns)
    skipped = []
    keep = []
    for exp in suite.expectations:
        cfg = exp.configuration
        missing = sorted(c for c in _expectation_columns(cfg) if c not in present)
        if missing and cfg.type != "expect_column_to_exist":
            skipped.append({"expectation": cfg.type, "column": _column_label(cfg.kwargs),
                            "reason": f"column(s) {missing} absent from the batch"})
        else:
            keep.append(exp)
    if len(df) <= chunk_rows:
        return _validate(asset_name, suite.name, keep, df), skipped
    rowwise = [i for i, e in enumerate(keep) if e.configuration.type in CHUNKABLE]
    keyed = [i for i, e in enumerate(keep) if e.configuration.type in KEY_CHUNKABLE
             and sorted_by in _expectation_columns(e.configuration)]
    if keyed and not _key_sorted(df, sorted_by):
        log.info("validation %s: not sorted by %s, uniqueness checked on the whole frame", asset_name, sorted_by)
        keyed = []
    whole = [i for i in range(len(keep)) if i not in set(rowwise) | set(keyed)]
    records: dict[int, dict] = dict(zip(whole, _validate(asset_name, suite.name, [keep[i] for i in whole], df)))
    bounds = [(s, s + chunk_rows) for s in range(0, len(df), chunk_rows)]
    records.update(zip(rowwise, _chunked(f"{asset_name}_rows", f"{suite.name}__rows", [keep[i] for i in rowwise],
                                         df, bounds)))
    if keyed:
        records.update(zip(keyed, _chunked(f"{asset_name}_keys", f"{suite.name}__keys", [keep[i] for i in keyed], df,
                                           _key_chunks(df, sorted_by, chunk_rows))))
    log.info("validation %s: %d rows, %d row-wise and %d key-wise expectations in chunks of %d rows", asset_name,
             len(df), len(rowwise), len(keyed), chunk_rows)
    return [records[i] for i in range(len(keep))], skipped


def _validate(asset_name: str, suite_name: str, expectations: list, df: pd.DataFrame) -> list[dict]:
    import great_expectations as gx

    if not expectations:
        return []
    ctx = gx_context()
    ds = ctx.data_sources.get("territoires_industrie")
    try:
        asset = ds.get_asset(asset_name)
    except LookupError:
        asset = ds.add_dataframe_asset(asset_name)
    try:
        batch_def = asset.get_batch_definition("whole")
    except (KeyError, LookupError, ValueError):
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
    # copies: GX refuses an expectation that already belongs to another suite (chunked runs)
    run_suite_obj = gx.ExpectationSuite(name=suite_name, expectations=[copy.copy(e) for e in expectations])
    run_suite_obj = ctx.suites.add_or_update(run_suite_obj)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{asset_name}_validation", data=batch_def, suite=run_suite_obj))
    res = vd.run(batch_parameters={"dataframe": df},
                 result_format={"result_format": "COMPLETE", "partial_unexpected_count": SAMPLE_SIZE,
                                "return_unexpected_index_query": False})
    return [_record(r) for r in res.results]


def _merge_records(a: dict, b: dict) -> dict:
    """Result of one row-wise expectation over two row chunks."""
    def add(k):
        return None if a.get(k) is None and b.get(k) is None else int(a.get(k) or 0) + int(b.get(k) or 0)

    out = dict(a)
    out["success"] = bool(a["success"] and b["success"])
    out["error"] = a.get("error") or b.get("error")
    for k in ("element_count", "unexpected_count", "missing_count", "checked_count"):
        out[k] = add(k)
    if out.get("unexpected_count") is not None:
        base = (out.get("element_count") or 0) - (out.get("missing_count") or 0)
        out["unexpected_percent"] = round(100.0 * out["unexpected_count"] / base, 4) if base else 0.0
    for k in ("sample", "sample_rows"):
        if a.get(k) is not None or b.get(k) is not None:
            out[k] = ([*(a.get(k) or []), *(b.get(k) or [])])[:SAMPLE_SIZE]
    if a.get("sample_counts") is not None or b.get("sample_counts") is not None:
        counts: dict = {}
        for item in [*(a.get("sample_counts") or []), *(b.get("sample_counts") or [])]:
            key = json.dumps(item.get("value"), sort_keys=True, default=str)
            counts.setdefault(key, {"value": item.get("value"), "count": 0})["count"] += int(item.get("count") or 0)
        out["sample_counts"] = sorted(counts.values(), key=lambda x: -x["count"])[:SAMPLE_SIZE]
    if a.get("_index") is not None or b.get("_index") is not None:
        out["_index"] = [*(a.get("_index") or []), *(b.get("_index") or [])]
    return out


def _column_label(kw: dict) -> str | None:
    if kw.get("column"):
        return kw["column"]
    if kw.get("column_A"):
        return f"{kw['column_A']}, {kw['column_B']}"
    if kw.get("column_list"):
        return ", ".join(kw["column_list"])
    return None


def render_condition(cond) -> str | None:
    if cond is None:
        return None
    if hasattr(cond, "to_dict") or hasattr(cond, "dict"):
        try:
            cond = cond.dict()
        except Exception:
            return str(cond)
    if isinstance(cond, dict):
        if cond.get("type") == "comparison" or "operator" in cond:
            c = cond.get("column")
            name = c.get("name") if isinstance(c, dict) else c
            op = cond.get("operator")
            op = getattr(op, "value", op)
            return f"{name} {op} {jsonable(cond.get('parameter'))!r}"
        if cond.get("type") == "nullity":
            c = cond.get("column")
            name = c.get("name") if isinstance(c, dict) else c
            return f"{name} is {'null' if cond.get('is_null', True) else 'not null'}"
        if "conditions" in cond:
            joiner = " and " if cond.get("type") == "and" else " or "
            return joiner.join(render_condition(c) or "" for c in cond["conditions"])
    return str(cond)


def _record(r) -> dict:
    cfg = r.expectation_config
    kw = dict(cfg.kwargs)
    meta = dict(cfg.meta or {})
    result = dict(r.result or {})
    error = None
    info = r.exception_info or {}
    if isinstance(info, dict):
        items = info.values() if info and all(isinstance(x, dict) for x in info.values()) else [info]
        for x in items:
            if x.get("raised_exception"):
                error = (x.get("exception_message") or "exception").splitlines()[0][:300]
                break
    params = {k: v for k, v in kw.items() if k not in ("batch_id", "column", "column_A", "column_B", "column_list",
                                                        "row_condition", "condition_parser", "result_format")}
    for k, v in list(params.items()):
        if isinstance(v, (list, tuple, set, frozenset)) and len(v) > 20:
            params[k] = [*list(v)[:20], f"... ({len(v)} values)"]
    severity = getattr(cfg, "severity", None) or meta.get("severity") or "critical"
    severity = getattr(severity, "value", severity)
    rec = {
        "expectation": cfg.type,
        "column": _column_label(kw),
        "condition": render_condition(kw.get("row_condition")),
        "severity": "hard" if severity == "critical" else "soft",
        "kind": meta.get("kind"),
        "description": meta.get("description"),
        "success": bool(r.success) and error is None,
        "engine": "great_expectations",
        "params": jsonable(params),
        "element_count": jsonable(result.get("element_count")),
        "unexpected_count": jsonable(result.get("unexpected_count")),
        "unexpected_percent": jsonable(result.get("unexpected_percent")),
        "missing_count": jsonable(result.get("missing_count")),
        "observed_value": jsonable(result.get("observed_value")),
        "sample": jsonable(result.get("partial_unexpected_list")),
        "sample_counts": jsonable(result.get("partial_unexpected_counts")),
        "sample_rows": jsonable(result.get("partial_unexpected_index_list")),
        "missing_values": jsonable(result.get("partial_missing_list") or (result.get("details") or {}).get("missing")),
        "error": error,
        "_index": result.get("unexpected_index_list"),
    }
    if rec["element_count"] is not None:
        rec["checked_count"] = int(rec["element_count"]) - int(rec["missing_count"] or 0)
    if rec["unexpected_percent"] is not None:
        rec["unexpected_percent"] = round(rec["unexpected_percent"], 4)
    return rec


# --------------------------------------------------------------------------- geography
def _geography(settings, context: dict):
    geo = context.get("geography")
    if geo is not None:
        return geo
    from ..staged import load_geography

    try:
        return load_geography(settings)
    except FileNotFoundError as exc:
        raise ValidationSetupError(
            f"validation needs the geography (COG communes, EPCI, ZE) to check codes against, and the staging "
            f"dataset 'geography' is missing under {settings.staging_dir}: run the geography stage "
            f"(ti-indicators stage geography / DAG ti_geography) first. ({exc})") from exc


# --------------------------------------------------------------------------- extra checks
def _check(expectation: str, column: str | None, *, severity: str, kind: str, description: str,
           unexpected: int, total: int | None, sample=None, engine: str = "report", **extra) -> dict:
    return {"expectation": expectation, "column": column, "condition": None, "severity": severity, "kind": kind,
            "description": description, "success": unexpected == 0, "engine": engine, "params": {},
            "element_count": total, "unexpected_count": int(unexpected),
            "unexpected_percent": round(100.0 * unexpected / total, 4) if total else None,
            "missing_count": None, "observed_value": None, "sample": jsonable(sample or []), "sample_counts": None,
            "sample_rows": None, "missing_values": None, "error": None, **extra}


def report_checks(dataset: str, context: dict, settings) -> list[dict]:
    """Checks on the parse report: establishments/rows whose commune code is not in the COG
    vintage were dropped by the parser. Soft when any (communes nouvelles after the COG
    vintage), hard above ``validation_max_unknown_commune_pct`` of the stock (SIRENE)."""
    rep = context.get("report") or {}
    out = []
    if not rep:
        return out
    out += passage_checks(rep.get("passage") or {}, rows=rep.get("rows"))
    sample = list((rep.get("unknown_communes_sample") or {}))[:SAMPLE_SIZE] \
        if isinstance(rep.get("unknown_communes_sample"), dict) else list(rep.get("unknown_communes_sample") or [])
    if dataset == "sirene_stock" and rep.get("rows"):
        n = int(rep.get("unknown_commune_establishments") or 0)
        total = int(rep["rows"])
        limit = knob(settings, "validation_max_unknown_commune_pct")
        pct = 100.0 * n / total if total else 0.0
        out.append(_check("expect_column_values_to_be_in_reference_set", "codeCommuneEtablissement",
                          severity="hard" if pct > limit else "soft", kind="keys",
                          description=f"establishments whose commune code is not in the COG vintage (dropped by the "
                                      f"parser); hard above {limit:g} % of the stock",
                          unexpected=n, total=total, sample=sample,
                          codes=int(rep.get("unknown_commune_codes") or 0)))
    elif dataset == "sirene_history":
        # SIRETs of the stock without a state at the requested year ends are normal (units created
        # after the last year end): shown in the parse report, not checked.
        if rep.get("overlapping_periods"):
            out.append(_check("expect_compound_columns_to_be_unique", "siret, dateDebut", severity="soft", kind="keys",
                              description="overlapping periods of one SIRET in the history file (the most recent "
                                          "start was kept)", unexpected=int(rep["overlapping_periods"]),
                              total=rep.get("rows_kept")))
    elif dataset == "chomage_bdm" and rep.get("missing_idbanks"):
        miss = list(rep["missing_idbanks"])
        out.append(_check("expect_column_distinct_values_to_contain_set", "idbank", severity="soft",
                          kind="completeness", description="every requested BDM series is in the response",
                          unexpected=len(miss), total=rep.get("series"), sample=miss[:SAMPLE_SIZE]))
    elif rep.get("unknown_commune_codes"):
        n = int(rep["unknown_commune_codes"])
        out.append(_check("expect_column_values_to_be_in_reference_set", "commune code (source file)",
                          severity="soft", kind="keys",
                          description="commune codes of the source file not in the COG vintage (rows dropped by the "
                                      "parser, listed in parse_report.json)",
                          unexpected=n, total=rep.get("rows"), sample=sample))
    return out


def passage_checks(p: dict, rows=None) -> list[dict]:
    """The codes of another COG year met by a source (see ``geography.map_to_vintage``): codes that
    could not be mapped (their rows are dropped), communes nouvelles newer than the reference (sent
    to one predecessor), and reference communes that absorbed others since (their commune-level
    value covers the absorbed ones). Soft: listed in the validation report with counts and codes."""
    out = []
    if p.get("unmappable_count"):
        out.append(_check("expect_column_values_to_be_in_reference_set", "commune code (passage)", severity="soft",
                          kind="keys", description="commune codes that no passage table maps to the reference COG "
                                                   "(rows dropped)",
                          unexpected=int(p["unmappable_count"]), total=rows, sample=list(p.get("unmappable") or [])[:SAMPLE_SIZE]))
    if p.get("newer"):
        sample = [f"{k}->{v}" for k, v in list(p["newer"].items())[:SAMPLE_SIZE]]
        out.append(_check("expect_column_values_to_be_in_reference_set", "commune code (newer COG)", severity="soft",
                          kind="keys", description="communes nouvelles created after the reference COG under a new "
                                                   "code: counted in one predecessor (the smallest code)",
                          unexpected=len(p["newer"]), total=rows, sample=sample))
    if p.get("absorbed_after_reference"):
        sample = [f"{k}<-{'+'.join(v)}" for k, v in list(p["absorbed_after_reference"].items())[:SAMPLE_SIZE]]
        out.append(_check("expect_column_values_to_be_in_reference_set", "commune code (merged since)", severity="soft",
                          kind="keys", description="reference communes that absorbed other reference communes since: "
                                                   "the source counts them together (commune level only)",
                          unexpected=len(p["absorbed_after_reference"]), total=rows, sample=sample))
    return out


# --------------------------------------------------------------------------- the gate
def gate(dataset: str, df: pd.DataFrame, *, settings, vintage: str, context: dict | None = None) -> GateResult:
    """Validate one batch; raise :class:`HardGateFailed` on a hard failure (see module doc)."""
    from . import quarantine
    from .gx_custom import register_reference_sets as register
    from .suites import DATASETS, build_references

    t0 = time.perf_counter()
    if dataset not in DATASETS:
        raise ValueError(f"no validation suite for dataset {dataset!r}; known: {sorted(DATASETS)}")
    spec = DATASETS[dataset]
    context = dict(context or {})
    vintage = str(vintage)
    if dataset == "geography" or not spec.needs_geography:
        geo = context.get("geography")
    else:
        geo = _geography(settings, context)
    if geo is None and dataset == "geography":
        raise ValidationSetupError("gate('geography', ...) needs context['geography'] (the Geography object)")
    refs = build_references(geo, settings, context)
    register(refs.reference_sets())

    folder = Path(settings.validation_dir) / dataset / vintage
    prepared = spec.prepare(df.reset_index(drop=True), refs, context)
    suite = spec.suite(refs, tuple(prepared.columns))

    checks, skipped = run_suite(dataset, prepared, suite, sorted_by=spec.sorted_by)
    if dataset == "sirene_stock" and context.get("stream"):
        checks += context["stream"].get("checks", [])
    checks += report_checks(dataset, context, settings)

    metrics, drift_info, dchecks = _drift(dataset, df, spec, context, settings, vintage)
    checks += dchecks

    hard = [c for c in checks if not c["success"] and c["severity"] == "hard"]
    soft = [c for c in checks if not c["success"] and c["severity"] == "soft"]
    state = "failed" if hard else ("warnings" if soft else "passed")

    q = quarantine.write(folder, prepared, checks,
                         stream_rows=(context.get("stream") or {}).get("quarantine") if dataset == "sirene_stock" else None,
                         cap=int(knob(settings, "validation_quarantine_cap")))
    for c in checks:
        c.pop("_index", None)

    result = {
        "dataset": dataset, "title": spec.title, "vintage": vintage, "status": state,
        "validated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "rows": int(len(df)), "columns": [str(c) for c in df.columns],
        "gx_version": _gx_version(), "suite": suite.name, "evaluated": len(checks), "skipped": skipped,
        "hard_failures": len(hard), "soft_failures": len(soft),
        "checks": checks, "drift": drift_info, "references": refs.describe(),
        "quarantine": q, "parse_report": jsonable(context.get("report") or {}),
        "stream": jsonable({k: v for k, v in (context.get("stream") or {}).items() if k not in ("checks", "quarantine")}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    paths = _write_result(folder, result, metrics, settings)

    gr = GateResult(dataset, vintage, state, hard_failures=hard, soft_failures=soft, result_path=str(paths["result"]),
                    html_path=str(paths["html"]), quarantine_path=q.get("parquet"), quarantine_rows=q.get("rows", 0),
                    rows=int(len(df)), evaluated=len(checks), seconds=result["seconds"])
    log.info("validation %s %s: %s — %d checks, %d hard and %d soft failure(s), %d row(s) quarantined, %d rows "
             "in %.2f s (%s)", dataset, vintage, state.upper(), len(checks), len(hard), len(soft), gr.quarantine_rows,
             len(df), result["seconds"], paths["html"])
    for f in soft:
        log.warning("validation %s %s soft gate: %s", dataset, vintage, describe_failure(f))
    if hard:
        for f in hard:
            log.error("validation %s %s hard gate: %s", dataset, vintage, describe_failure(f))
        raise HardGateFailed(dataset, vintage, hard, paths["result"], paths["html"],
                             Path(q["parquet"]) if q.get("parquet") else None)
    return gr


def _drift(dataset: str, df: pd.DataFrame, spec, context: dict, settings, vintage: str) -> tuple[dict, dict, list]:
    """Soft gate: this batch's metrics against the previous vintage's (metrics, info, checks)."""
    from . import drift

    try:
        metrics = spec.metrics(df, context)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:  # e.g. a required column is missing
        log.warning("validation %s %s: drift metrics not computed (%s)", dataset, vintage, exc)
        metrics = {}
    previous = drift.previous_metrics(settings.validation_dir, dataset, vintage)
    drift_info = {"previous_vintage": previous.get("vintage") if previous else None,
                  "threshold_pct": knob(settings, "validation_drift_pct"),
                  "rowcount_threshold_pct": knob(settings, "validation_rowcount_pct")}
    drift_frame = drift.compare(metrics, previous.get("metrics") if previous else None, spec.drift_min_base)
    dchecks: list = []
    if previous and len(drift_frame):
        dchecks, _ = run_suite(f"{dataset}_drift", drift_frame,
                               drift.drift_suite(dataset, drift_info["threshold_pct"], drift_info["rowcount_threshold_pct"],
                                                 previous["vintage"]))
        for c in dchecks:
            idx = c.pop("_index", None) or []
            c["sample"] = jsonable(drift_frame.loc[idx[:SAMPLE_SIZE], ["metric", "key", "previous", "current",
                                                                        "change_pct"]].to_dict("records"))
        drift_info["compared"] = int(len(drift_frame))
        drift_info["table"] = jsonable(drift_frame.sort_values("change_pct", key=lambda s: -s.abs()).head(50)
                                       .to_dict("records"))
    return metrics, drift_info, dchecks


def _write_result(folder: Path, result: dict, metrics: dict, settings) -> dict:
    """result.json, report.html and metrics.json of the batch, then the validation index."""
    from . import render, status

    dataset, vintage, state = result["dataset"], result["vintage"], result["status"]
    paths = {"result": folder / "result.json", "html": folder / "report.html", "metrics": folder / "metrics.json"}
    result["paths"] = {k: str(v) for k, v in paths.items()}
    storage.write_json(paths["metrics"], {"dataset": dataset, "vintage": vintage, "status": state,
                                          "metrics": jsonable(metrics)})
    storage.write_json(paths["result"], result)
    storage.atomic_write_text(paths["html"], render.gate_page(result))
    status.set_latest(settings.validation_dir, dataset, vintage)
    storage.atomic_write_text(Path(settings.validation_dir) / "index.html",
                              render.index_page(status.latest_status(settings)))
    return paths


def _gx_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("great_expectations")
    except Exception:  # pragma: no cover
        return None
