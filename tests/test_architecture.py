"""Issue 18: the library's layers (pyproject ``[tool.importlinter]``) hold, imports inside
functions included, and the check is not toothless: a low layer importing a stage breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path, include: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, env={"PYTHONPATH": str(include), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_layers_and_the_absence_of_import_circles_hold():
    r = _lint(ROOT, ROOT / "include")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


def test_a_source_importing_a_stage_inside_a_function_breaks_the_contract(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    inc = tmp_path / "include"
    shutil.copytree(ROOT / "include" / "territoires_industrie", inc / "territoires_industrie",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    src = inc / "territoires_industrie" / "sources" / "urssaf.py"
    src.write_text(src.read_text() + "\n\ndef _sneaky():\n    from ..stages.common import load_geography\n"
                   "    return load_geography\n")
    r = _lint(tmp_path, inc)
    assert r.returncode != 0
    assert "territoires_industrie.sources.urssaf -> territoires_industrie.stages.common" in r.stdout


def test_the_lint_passes_complexity_rules_included():
    """ruff with the project's rules (pyproject): pyflakes, style, imports, Airflow 3, and the
    complexity rules (C901 max 15, PLR0915 max 60 statements) on the library."""
    ruff = str(Path(sys.executable).with_name("ruff"))
    r = subprocess.run([ruff, "check", "include", "dags", "plugins", "tests", "bench"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
