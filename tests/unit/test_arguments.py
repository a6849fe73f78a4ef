"""Arguments checked at the edge (issue 21): release ids, paths built from input, echoed text."""

from __future__ import annotations

import pytest
from territoires_industrie.arguments import InvalidArgument, contained, printable, release_id


@pytest.mark.parametrize("good", ["2026-11", "2023-01", "1999-12"])
def test_release_ids_accepted(good):
    assert release_id(good) == good


@pytest.mark.parametrize("bad", ["2026-11 ", " 2026-11", "2026-11\n", "2026-00", "2026-13", "2026-1", "../2026-11",
                                 "2026-11/..", "2026_11", "2026-11-01", "", None, 202611, "２０２６-11"])
def test_release_ids_refused_with_a_readable_message(bad):
    with pytest.raises(InvalidArgument) as info:
        release_id(bad)
    msg = str(info.value)
    assert "expected YYYY-MM" in msg and "\n" not in msg


def test_paths_from_input_stay_in_their_folder(tmp_path):
    (tmp_path / "base").mkdir()
    assert contained(tmp_path / "base", "2026-11") == (tmp_path / "base" / "2026-11").resolve()
    for bad in ("../x", "a/../../x", "/etc/passwd"):
        with pytest.raises(InvalidArgument, match="leaves its folder"):
            contained(tmp_path / "base", bad)
    (tmp_path / "outside").mkdir()
    (tmp_path / "base" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidArgument, match="leaves its folder"):
        contained(tmp_path / "base", "link", "f")


def test_printable_escapes_terminal_and_log_controls():
    s = printable("a\x1b[2Jb\rc\u202ed\u2028e")
    assert s == "a\\x1b[2Jb\\x0dc\\u202ed\\u2028e"
    assert printable("x" * 500, limit=10) == "x" * 10 + "…"
    assert printable("ok\nFAKE LOG LINE\tx") == "ok\\x0aFAKE LOG LINE\\x09x"  # no forged log line
