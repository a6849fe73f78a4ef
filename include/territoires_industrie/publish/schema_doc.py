"""Refresh the warehouse schema section of ``docs/report.md`` from the table definitions::

    .venv/bin/python -m territoires_industrie.publish.schema_doc docs/report.md

(a unit test fails when the documented schema and the real warehouse differ).
"""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN, END = "<!-- schema:begin -->\n", "<!-- schema:end -->"


def documented_block(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end]


def refresh(path: Path) -> bool:
    from ..warehouse import schema_markdown

    text = Path(path).read_text(encoding="utf-8")
    new = text.replace(documented_block(text), schema_markdown(), 1)
    if new != text:
        Path(path).write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # pragma: no cover
    print("updated" if refresh(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report.md")) else "up to date")
