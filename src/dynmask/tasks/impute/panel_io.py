"""``dynmask impute --id-column``: fill a panel file (one row per entity and time, one column per variable;
:mod:`dynmask.data.panel`) and write it back in its own shape: the same rows in the same order, every
observed cell and every other column exactly as read, only the holes of the trained variables filled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...data.panel import panel_column, read_panel_file
from .csv_io import _format_fill, check_output, fill_values, match_columns
from .trained import TrainedImputer

__all__ = ["impute_panel_csv"]


def impute_panel_csv(
    trained: TrainedImputer,
    input_path: Path,
    output_path: Path,
    *,
    id_column: str,
    time_column: Optional[str] = None,
    bounds: bool = True,
    clip_to_train_range: bool = False,
    encoding: str = "utf-8",
    use_model: bool = False,
    plot: Optional[Path] = None,
    plot_variables: Optional[Sequence[str]] = None,
    protected: Sequence[Path] = (),
) -> dict:
    """Fill the panel file ``input_path`` into ``output_path`` (see the module docstring); the model reads
    the file as its wide table (``"{entity} | {variable}"`` columns, the names it was trained on). Returns
    the counts ``dynmask impute`` reports."""
    input_path, output_path = Path(input_path), Path(output_path)
    check_output(output_path, input_path, protected)
    panel = read_panel_file(input_path, id_column, time_column, encoding)
    wide, text = panel.wide, panel.text  # (T, entities x variables) float64; the cells as written
    absent = [name for name in trained.column_names or [] if name not in wide.columns]
    for name in absent:  # an entity (or variable) without rows in this file: read as missing throughout
        wide[name] = np.nan
    labels = match_columns(trained, list(wide.columns), str(input_path))
    numbers = wide[labels].to_numpy(dtype=np.float64)  # (T, F) in the model's order
    filled_values = fill_values(trained, numbers, use_model=use_model, bounds=bounds,
                                clip_to_train_range=clip_to_train_range)  # fmt: skip
    holes = ~np.isfinite(numbers)
    row_of = {t: i for i, t in enumerate(wide.index)}
    column_of = {label: j for j, label in enumerate(labels)}
    filled = 0
    out = text.copy()
    for variable in panel.variables:  # (match_columns refused entities and variables the model does not know)
        cells = out[variable].to_numpy(dtype=object)
        for r, (entity, when) in enumerate(zip(text[id_column], text[panel.time_column])):
            t, j = row_of[when], column_of[panel_column(entity, variable)]
            if holes[t, j]:  # the cell as the wide table read it: blank, a NaN spelling or not finite
                cells[r] = _format_fill(filled_values[t, j])
                filled += 1
        out[variable] = cells
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".partial")
    try:
        with open(tmp, "w", encoding=panel.layout.encoding, newline="") as f:  # the input's BOM and line ending
            out.to_csv(f, index=False, lineterminator=panel.layout.line_ending, sep=panel.layout.sep)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, output_path)
    if plot is not None:
        from ...plots import plot_imputation

        plot_imputation(plot, list(wide.index), labels, numbers, filled_values,
                        variables=plot_variables, title=f"{input_path.name}: observed and filled")  # fmt: skip
    per = holes.sum(axis=0)
    return {
        "mostly_missing": [label for label, n in zip(labels, per) if n > 0.5 * len(numbers)],
        "holes": filled,
        "filled": filled,
        "left_in_unknown_columns": 0,
        "filled_by": (None if use_model else trained.fallback) or "model",
    }
