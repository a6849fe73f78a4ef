"""Security checks (issue 9): no SQL built from user strings, the API key never lands anywhere,
`pip check` clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .reliability_world import copy_world, published_template, run_stages, settings_for

INCLUDE = Path(__file__).resolve().parents[2] / "include" / "territoires_industrie"
KEY = "TEST-KEY-DO-NOT-LEAK-1234"

# f-string SQL whose interpolated parts are fixed identifiers from code (table / view / column
# names of the metadata, dialect keywords), never user input: file -> allowed interpolations
FIXED_IDENTIFIERS = {"table.name", "c.name", "ctype", "view", "body", "name", "sql", "table", "ident", "col", "cols"}
SQL_FSTRING = re.compile(r"""(?:execute|text|exec_driver_sql)\(\s*f(["'])(.*?)\1""", re.S)


def test_no_sql_built_from_user_strings():
    offending = []
    for path in sorted(INCLUDE.rglob("*.py")):
        for m in SQL_FSTRING.finditer(path.read_text()):
            parts = {p.strip() for p in re.findall(r"\{([^}:!]+)", m.group(2))}
            bad = {p for p in parts if p not in FIXED_IDENTIFIERS and not p.startswith("', '.join(")}
            if bad:
                offending.append(f"{path.relative_to(INCLUDE)}: {m.group(0)[:100]} ({sorted(bad)})")
    assert offending == [], "SQL built with f-strings from non-constant parts: use bound parameters\n" + "\n".join(offending)


def test_pip_check_is_clean():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_api_key_never_written_or_logged(tmp_path, tmp_path_factory, monkeypatch, caplog):
    data = copy_world(published_template(tmp_path_factory), tmp_path / "data")
    monkeypatch.setenv("TI_INSEE_API_KEY", KEY)
    caplog.set_level("DEBUG")
    summaries = run_stages(monkeypatch, settings_for(data), ("sirene", "employment", "indicators", "publish"))
    assert KEY not in repr(summaries)  # stage summaries are what goes to XCom
    assert KEY not in caplog.text
    leaked = [str(p) for p in data.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []
