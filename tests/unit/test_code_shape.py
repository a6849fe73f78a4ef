"""Issue 18 item 4: functions a reader can hold in mind. No function of the library is longer
than 80 lines (the declarative tables are data, not functions); ruff's complexity rules
(C901, PLR0915) run with the lint."""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "include" / "territoires_industrie"
MAX_LINES = 80


def test_no_library_function_is_longer_than_80_lines():
    long = []
    for p in sorted(LIB.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{p.relative_to(LIB)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []
