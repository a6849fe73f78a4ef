"""Issue 18 item 2: every TI_* setting is declared once in config.py and read there only; the
README's table is the declarations'. Checked on the source (every read, in functions too)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from territoires_industrie import config

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "include" / "territoires_industrie"


def _env_reads(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every os.environ / os.getenv access in a module."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            out.append((node.lineno, ast.get_source_segment(path.read_text(), node) or ""))
    return out


def test_no_module_but_config_reads_a_ti_variable_from_the_environment():
    offenders = []
    for p in sorted(LIB.rglob("*.py")):
        if p.name == "config.py" and p.parent == LIB:
            continue
        text = p.read_text().splitlines()
        for line, _ in _env_reads(p):
            if "TI_" in text[line - 1]:
                offenders.append(f"{p.relative_to(ROOT)}:{line}: {text[line - 1].strip()}")
    assert offenders == []


def test_every_ti_name_in_the_code_is_declared():
    names = set()
    for folder in (LIB, ROOT / "dags", ROOT / "plugins"):
        for p in folder.rglob("*.py"):
            names |= set(re.findall(r"[\"'](TI_[A-Z0-9_]+)", p.read_text()))
    undeclared = []
    for n in sorted(names):
        try:
            config.declared(n)
        except KeyError:
            if not any(v.name.startswith(n) for v in config.VARIABLES):  # a prefix being built: TI_URL_
                undeclared.append(n)
    assert undeclared == []


def test_the_readme_table_is_the_declarations():
    readme = (ROOT / "README.md").read_text()
    assert config.markdown_table() in readme


def test_undeclared_names_are_refused_and_defaults_come_from_the_declaration():
    with pytest.raises(KeyError, match="TI_NOPE is not declared"):
        config.env("TI_NOPE", {})
    assert config.env("TI_MC_DRAWS", {}) == "1000" and config.env("TI_MC_DRAWS", {"TI_MC_DRAWS": " 50 "}) == "50"
    assert config.env("TI_URL_MELODI", {}) is None  # a family member: its default lives with the client
    assert config.get_settings({"TI_DATA_DIR": "/tmp/x", "TI_SOURCE_MODE": ""}).source_mode == "sample"
