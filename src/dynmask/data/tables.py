"""A user's table (CSV / TSV / JSONL / Parquet) read as untrusted input: named columns, one clear error per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import DataError
from ..extras import require as _require
from .csv_layout import csv_layout

# label cells that mean "no label" (pandas' missing-value spellings), refused rather than made a class
_MISSING_LABELS = {"nan", "-nan", "na", "n/a", "#n/a", "null", "<na>", "-1.#ind", "1.#qnan"}


def _read_frame(path: Path, encoding: str):
    pd = _require("pandas")

    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):  # a BOM, a duplicate name or a million columns: before pandas
        layout = csv_layout(path, encoding, "\t" if suffix == ".tsv" else None)  # .csv: "," or ";" ...
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep=layout.sep, dtype=str, keep_default_na=False, encoding=layout.encoding)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=suffix == ".jsonl", dtype=False, encoding=encoding)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it needs a header row and at least two labelled rows") from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not readable as {encoding} ({e.reason} at byte {e.start}); "
            f"re-save it as UTF-8 or pass --encoding with its real encoding (e.g. latin-1)"
        ) from None
    except ValueError as e:
        raise DataError(f"could not parse {path} as {suffix[1:].upper()}: {e}") from None
    raise DataError(f"unsupported file type {suffix!r} for {path}: use .csv, .tsv, .jsonl, .json or .parquet")


def read_table(
    path: str | Path, text_column: str, label_column: Optional[str], encoding: str = "utf-8"
) -> tuple[list[str], list[Optional[str]], "object"]:
    """Read texts (and labels) from a user's file. Returns (texts, labels, frame)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty: it needs a header row and at least two labelled rows")
    frame = _read_frame(path, encoding)
    if len(frame) == 0:
        raise DataError(f"{path} has a header but no rows")
    columns = [str(c) for c in frame.columns]
    for flag, column in (("--text-column", text_column), ("--label-column", label_column)):
        if column is not None and column not in columns:
            raise DataError(
                f"column {column!r} is not in {path.name}; its columns are {columns}. Pass {flag} with one of them"
            )
    texts = ["" if v is None or v != v else str(v) for v in frame[text_column].tolist()]  # NaN/None -> ""
    labels = None
    if label_column is not None:
        labels = ["" if v is None or v != v else str(v).strip() for v in frame[label_column].tolist()]
        empty = [i for i, v in enumerate(labels) if v == "" or v.lower() in _MISSING_LABELS]
        if empty:
            raise DataError(
                f"{len(empty)} row(s) of {path.name} have an empty or missing {label_column!r} (first: "
                f"data row {empty[0] + 1}, {labels[empty[0]]!r}); fill or remove them — an unlabelled row "
                "cannot be trained on, and a missing label is not a class"
            )
    return texts, labels, frame
