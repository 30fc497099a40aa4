"""What a user's CSV looks like before pandas reads it: its encoding (a UTF-8 byte-order mark), its
line ending and its header, checked in time linear in the header's size.

pandas reads a BOM into the first column's name, renames duplicate columns (``temp``, ``temp.1``) and
writes LF whatever the input had; a file written back from it is then not the file read. Reading the
layout first lets a reader refuse what it cannot round-trip (with the fix) and a writer reproduce the
rest: the same BOM, the same line ending."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError

__all__ = ["CsvLayout", "csv_layout", "bom_encoding", "MAX_COLUMNS", "MAX_HEADER_BYTES"]

MAX_COLUMNS = 20_000  # a wider table is refused before it is parsed (10⁶ columns took minutes in pandas)
MAX_HEADER_BYTES = 16 * 2**20  # a first line longer than this is not a header
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class CsvLayout:
    encoding: str  # what to read and write with: "utf-8-sig" where the file starts with a BOM
    line_ending: str  # "\r\n" or "\n", as the header line ends
    header: tuple  # the column names, as written
    sep: str = ","  # the delimiter: the one given, or the one the header shows (",", ";", tab, "|")


SEPARATORS = (",", ";", "\t", "|")


def csv_layout(path: Path, encoding: str = "utf-8", sep: Optional[str] = None) -> CsvLayout:
    """The layout of the delimited file ``path``; a header with more than :data:`MAX_COLUMNS` columns, or
    naming a column twice, is a :class:`DataError` that says so (a reader would rename or drop one).
    ``sep`` None: the delimiter is the one of :data:`SEPARATORS` the header holds most often (a comma when
    it holds none: one column), so a semicolon file saved by a spreadsheet reads."""
    path = Path(path)
    encoding = bom_encoding(path, encoding)
    try:
        with open(path, encoding=encoding, newline="") as f:  # newline="": the line ending as written
            line = f.readline(MAX_HEADER_BYTES + 1)
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not readable as {encoding} ({e.reason} at byte {e.start}); re-save it as UTF-8 or pass "
            "--encoding with its real encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise DataError(f"--encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, latin-1)") from None
    if len(line) > MAX_HEADER_BYTES:
        raise DataError(f"the first line of {path} is over {MAX_HEADER_BYTES // 2**20} M characters long: not a header")
    line_ending = "\r\n" if line.endswith("\r\n") else "\n"
    if sep is None:  # by counting (a parse of a 10-MB line per candidate would be slow and hit csv's field limit)
        sep = max(SEPARATORS, key=lambda s: (line.count(s), s == ","))  # ties (one column): the comma
    if line.count(sep) + 1 > MAX_COLUMNS:  # a cheap bound first: no parse of a million-field line
        raise DataError(
            f"{path} has a header of {line.count(sep) + 1:,} columns; dynmask reads tables of at most "
            f"{MAX_COLUMNS:,} columns (is --sep / the file type right?)"
        )
    header = tuple(next(csv.reader([line.rstrip("\r\n")], delimiter=sep), []))
    twice = [name for name, n in Counter(header).items() if n > 1]
    if twice:
        raise DataError(
            f"{path} names column(s) {twice[:5]} more than once; rename them so that each column has its own "
            "name (a reader would rename or drop one)"
        )
    return CsvLayout(encoding, line_ending, header, sep)


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def bom_encoding(path: Path, encoding: str = "utf-8") -> str:
    """``encoding``, or ``"utf-8-sig"`` when ``path`` is UTF-8 with a byte-order mark (so that the mark is
    not read as the first character of the first word or column name)."""
    if _is_utf8(encoding):
        with open(path, "rb") as f:
            if f.read(len(_BOM)) == _BOM:
                return "utf-8-sig"
    return encoding
