"""Panel files: one row per (entity, time) with one column per variable (one row per station and hour), the
shape of most sensor and clinical exports. They fit neither the wide layout (one row per time) nor the long
one (one row per time and variable).

dynmask reads such a file as a wide table whose columns are each entity's variables, named
``"{entity} | {variable}"`` (a model then learns from every entity at once, and from how they move
together), and writes a filled file back in the file's own shape: the same rows in the same order, every
observed cell and every other column as read, only the holes of the variables filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError
from .series import read_csv_frame

__all__ = ["SEP", "PanelFile", "panel_column", "read_panel", "read_panel_file"]

SEP = " | "


def panel_column(entity: str, variable: str) -> str:
    """The wide table's name of ``entity``'s ``variable``."""
    return f"{entity}{SEP}{variable}"


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


@dataclass
class PanelFile:
    """A panel file, read once: ``wide`` (float64, one row per time in time order, one column per
    (entity, variable) named by :func:`panel_column`; NaN where a value is missing or a row is absent),
    ``text`` (the cells exactly as written, in file order), its ``time_column``, ``variables`` and ``layout``."""

    wide: object
    text: object
    time_column: str
    variables: list
    layout: object


def read_panel_file(path: Path, id_column: str, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """:class:`PanelFile` of ``path``. Entities and times are keyed by their text as written (``"007"``
    stays ``"007"``, not the number 7), so the wide table and the file's rows name them alike. Refused with
    one line: a repeated (entity, time) pair, a variable column holding text."""
    import pandas as pd

    path = Path(path)
    text, layout = read_csv_frame(path, encoding, dtype=str, keep_default_na=False)
    time_column, variables = _columns(text, path, id_column, time_column)
    frame, _ = read_csv_frame(path, encoding)
    words = [v for v in variables if not pd.api.types.is_numeric_dtype(frame[v])]
    if words:
        raise DataError(
            f"{path.name}: the variable column(s) {words[:5]} hold text; a panel file holds the id, the time and "
            "numeric variables only (remove or encode the others)"
        )
    frame[id_column], frame[time_column] = text[id_column], text[time_column]  # the keys as written
    if frame.duplicated([id_column, time_column]).any():
        first = frame[frame.duplicated([id_column, time_column])].iloc[0]
        raise DataError(
            f"{path.name} has several rows for {id_column} {first[id_column]!r} at {first[time_column]!r}: one row "
            "per (entity, time) is expected"
        )
    wide = frame.pivot(index=time_column, columns=id_column, values=variables)  # columns: (variable, entity)
    wide.columns = [panel_column(entity, variable) for variable, entity in wide.columns]
    entities = list(dict.fromkeys(frame[id_column]))
    ordered = [panel_column(e, v) for e in entities for v in variables]  # entity by entity, as in the file
    wide = wide[ordered].loc[_time_order(wide.index)].astype("float64")
    return PanelFile(wide, text, time_column, variables, layout)


def read_panel(path: Path, id_column: str, time_column: Optional[str] = None, encoding: str = "utf-8"):
    """The wide table of the panel file ``path`` (:attr:`PanelFile.wide`)."""
    return read_panel_file(path, id_column, time_column, encoding).wide


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
