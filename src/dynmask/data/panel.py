"""Panel files: one row per (entity, time) with one column per variable (one row per station and hour), the
shape of most sensor and clinical exports. They fit neither the wide layout (one row per time) nor the long
one (one row per time and variable).

dynmask reads such a file as a wide table whose columns are each entity's variables, named
``"{entity} | {variable}"`` (a model then learns from every entity at once, and from how they move
together), and writes a filled file back in the file's own shape: the same rows in the same order, every
observed cell and every other column as read, only the holes of the variables filled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import DataError
from .csv_layout import csv_layout

__all__ = ["SEP", "panel_column", "read_panel", "read_panel_text"]

SEP = " | "


def panel_column(entity: str, variable: str) -> str:
    """The wide table's name of ``entity``'s ``variable``."""
    return f"{entity}{SEP}{variable}"


def _frame(path: Path, encoding: str, **read_kw):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist" if not path.exists() else f"{path} is a folder; pass a CSV")
    layout = csv_layout(path, encoding)
    try:
        return pd.read_csv(path, encoding=layout.encoding, sep=layout.sep, **read_kw), layout
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"could not read {path} as CSV ({str(e).splitlines()[0]})") from None


def _columns(frame, path: Path, id_column: str, time_column: Optional[str]) -> tuple[str, list[str]]:
    """(time column, variable columns) of a panel file, checked."""
    if id_column not in frame.columns:
        raise DataError(f"--id-column {id_column!r} is not in {path.name}; its columns are {list(frame.columns)[:10]}")
    time_column = time_column or next((c for c in frame.columns if c != id_column), None)
    if time_column not in frame.columns or time_column == id_column:
        raise DataError(
            f"--time-column {time_column!r} is not a column of {path.name} other than the id; its columns are "
            f"{list(frame.columns)[:10]}"
        )
    variables = [c for c in frame.columns if c not in (id_column, time_column)]
    if not variables:
        raise DataError(f"{path.name} has no variable column besides {id_column!r} and {time_column!r}")
    return time_column, variables


def read_panel(path: Path, id_column: str, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """The panel file ``path`` as a float64 wide table: one row per time (in time order), one column per
    (entity, variable) named by :func:`panel_column`; NaN where a value is missing or a row is absent.
    Refused with one line: a repeated (entity, time) pair, a variable column holding text."""
    import pandas as pd

    path = Path(path)
    frame, _ = _frame(path, encoding)
    time_column, variables = _columns(frame, path, id_column, time_column)
    text = [v for v in variables if not pd.api.types.is_numeric_dtype(frame[v])]
    if text:
        raise DataError(
            f"{path.name}: the variable column(s) {text[:5]} hold text; a panel file holds the id, the time and "
            "numeric variables only (remove or encode the others)"
        )
    if frame.duplicated([id_column, time_column]).any():
        first = frame[frame.duplicated([id_column, time_column])].iloc[0]
        raise DataError(
            f"{path.name} has several rows for {id_column} {first[id_column]!r} at {first[time_column]!r}: one row "
            "per (entity, time) is expected"
        )
    frame[id_column] = frame[id_column].astype(str)
    frame[time_column] = frame[time_column].astype(str)
    wide = frame.pivot(index=time_column, columns=id_column, values=variables)  # columns: (variable, entity)
    wide.columns = [panel_column(entity, variable) for variable, entity in wide.columns]
    entities = list(dict.fromkeys(frame[id_column]))
    ordered = [panel_column(e, v) for e in entities for v in variables]  # entity by entity, as in the file
    return wide[ordered].loc[_time_order(wide.index)].astype("float64")


def read_panel_text(path: Path, id_column: str, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """(the file's cells exactly as written, str DataFrame in file order; its time column; its variable
    columns; its layout) for writing it back filled."""
    path = Path(path)
    frame, layout = _frame(path, encoding, dtype=str, keep_default_na=False)
    time_column, variables = _columns(frame, path, id_column, time_column)
    return frame, time_column, variables, layout


def _time_order(times):
    """The times sorted as dates when they all parse as dates, as numbers when numbers, else as text."""
    import pandas as pd

    for parse in (lambda t: pd.to_datetime(t, format="mixed"), pd.to_numeric):
        try:
            keys = parse(pd.Series(times))
        except (ValueError, TypeError):
            continue
        return [times[i] for i in keys.argsort(kind="stable")]
    return sorted(times)
