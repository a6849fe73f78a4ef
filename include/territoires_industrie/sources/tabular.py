"""Shared helpers for delimited text files: encoding and delimiter checks with clear errors."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError


class TabularFileError(DataError, ValueError):
    pass


def sniff_header(path: Path, expected_sep: str, encoding: str = "utf-8") -> tuple[list[str], str]:
    """Read the header line, check encoding and delimiter; return (columns, separator).

    A file served with the other delimiter (``,`` instead of ``;``) is accepted when the
    header makes it unambiguous, and logged; a non-UTF-8 file or an HTML page fails with
    the file name in the message.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.strip():
        raise TabularFileError(f"{path.name}: empty file")
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        # the 64 KiB cut can split a multibyte char at the very end: retry without the tail
        try:
            text = head[: exc.start].decode(encoding) if exc.start > len(head) - 4 else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            raise TabularFileError(
                f"{path.name}: not valid {encoding} at byte {exc.start} (latin-1/cp1252 file?); "
                "re-export it as UTF-8"
            ) from exc
    text = text.lstrip("\ufeff")
    first = text.splitlines()[0] if text.splitlines() else ""
    if first.lstrip().lower().startswith(("<!doctype", "<html", "<?xml")):
        raise TabularFileError(f"{path.name}: received an HTML/XML page instead of a CSV file")
    counts = {sep: first.count(sep) for sep in (";", ",", "\t")}
    sep = expected_sep if counts[expected_sep] > 0 else max(counts, key=counts.get)
    if counts[sep] == 0:
        raise TabularFileError(f"{path.name}: cannot find a delimiter in the header line {first[:80]!r}")
    cols = [c.strip().strip('"') for c in first.split(sep)]
    return cols, sep
