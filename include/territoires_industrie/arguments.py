"""Arguments from people, checked at the edge (CLI, Airflow params, review requests).

A release id becomes a folder name (``exports/<release>/``, ``reports/<release>/``) and the
warehouse key of every published row: anything but ``YYYY-MM`` is refused here, before it is
joined to a path or written anywhere. Paths built from user input are resolved and must stay
inside their base folder. Text echoed back to a terminal or a log has its control characters
escaped (an input cannot move the cursor, clear the screen or forge a log line).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import DataError

#: A release is the period of the SIRENE stock vintage: ``YYYY-MM``, month 01-12, nothing else.
RELEASE_ID_RE = re.compile(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$")
#: The same rule as a JSON-schema pattern (Airflow ``Param(pattern=...)`` of the trigger form).
RELEASE_ID_PATTERN = RELEASE_ID_RE.pattern

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


class InvalidArgument(DataError, ValueError):
    """A value given by a person (CLI option, DAG parameter, request field) is not acceptable."""


def printable(value, limit: int = 120) -> str:
    """``repr``-like text of ``value`` safe for a terminal or a log line: control, bidi and
    line-separator characters shown as ``\\xNN`` / ``\\uNNNN``, long values cut."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"

    def esc(m: re.Match) -> str:
        c = ord(m.group(0))
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _CONTROL_RE.sub(esc, text)


def release_id(value, *, what: str = "release") -> str:
    """``value`` if it is a release id ``YYYY-MM`` (e.g. ``2026-11``); InvalidArgument otherwise.

    No trimming, no normalisation: ``"2026-11 "`` or ``"2026-11/../x"`` is refused, never
    silently turned into another release."""
    if not isinstance(value, str) or not RELEASE_ID_RE.fullmatch(value):
        raise InvalidArgument(f"{what} {printable(repr(value))}: not a release id; expected YYYY-MM, "
                              f"e.g. 2026-11 (the period of the SIRENE stock vintage)")
    return value


def contained(base: Path, *parts: str, what: str = "path") -> Path:
    """``base / parts`` resolved, refused unless it stays inside ``base`` (symlinks resolved)."""
    base_r = Path(base).resolve()
    path = base_r.joinpath(*parts).resolve()
    if path != base_r and base_r not in path.parents:
        raise InvalidArgument(f"{what} {printable('/'.join(parts))!r} leaves its folder {base_r}")
    return path
