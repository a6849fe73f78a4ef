"""One readable line per failed expectation (used by the gates, their status file and the report)."""

from __future__ import annotations


def describe_failure(f: dict) -> str:
    """One line a data engineer can read: expectation, column, condition, counts, sample."""
    what = f"{f.get('expectation')} on {f.get('column') or 'table'}"
    if f.get("condition"):
        what += f" (where {f['condition']})"
    if f.get("error"):
        return f"{what}: could not be evaluated ({f['error']})"
    if f.get("expectation") == "expect_column_to_exist":
        return f"{what}: column missing"
    parts = []
    if f.get("unexpected_count") is not None:
        total = f.get("checked_count", f.get("element_count"))
        parts.append(f"{f['unexpected_count']:,} unexpected" + (f" of {total:,} rows checked" if total is not None
                                                                 else ""))
    if f.get("missing_values"):
        parts.append(f"missing {_short(f['missing_values'])}")
    if f.get("observed_value") is not None and not f.get("unexpected_count"):
        parts.append(f"observed {_short(f['observed_value'])}")
    if f.get("sample"):
        parts.append(f"e.g. {_short(f['sample'][:5])}")
    return f"{what}: " + ", ".join(parts) if parts else what


def _short(v, n: int = 120) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."
