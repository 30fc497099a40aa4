"""``dynmask forecast``: a wide CSV's history in, its next ``horizon`` rows out (the time column continued
at the history's step, the same variable columns, and ``{column}_lo`` / ``{column}_hi`` with an interval).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...data.csv_layout import csv_layout
from ...data.series import read_wide_csv
from ...extras import require as _require
from ..impute.csv_io import check_output, match_columns
from .data import continue_time
from .trained import TrainedForecaster

__all__ = ["forecast_csv"]


def forecast_csv(
    trained: TrainedForecaster,
    input_path: Path,
    output_path: Path,
    *,
    time_column: Optional[str] = None,
    intervals: bool = False,
    use_model: bool = False,
    encoding: str = "utf-8",
    protected: Sequence[Path] = (),
) -> dict:
    """Write the forecast of ``input_path``'s history to ``output_path`` (atomically, with the input's BOM
    and line ending); returns what was forecast and how (``"model"`` or the fallback's name)."""
    pd = _require("pandas")
    input_path, output_path = Path(input_path), Path(output_path)
    check_output(output_path, input_path, protected)
    frame = read_wide_csv(input_path, time_column, encoding)
    labels = match_columns(trained, frame.columns, str(input_path))  # a forecaster has the names it reads
    history = frame[labels].to_numpy(dtype=np.float64)  # (T, F)
    result = trained.forecast(history, intervals=intervals, use_model=use_model)
    point, lower, upper = result if intervals else (result, None, None)
    if not np.isfinite(point).all():
        raise RuntimeError("the forecaster produced NaN; the model file may be damaged")
    times = continue_time(list(frame.index), trained.horizon)
    out = pd.DataFrame({frame.index.name or "time": times})
    for j, label in enumerate(labels):
        out[label] = [_format(v) for v in point[:, j]]
        if intervals:
            out[f"{label}_lo"] = [_format(v) for v in lower[:, j]]
            out[f"{label}_hi"] = [_format(v) for v in upper[:, j]]
    for label in trained.dropped_names:  # never observed in training: the model cannot forecast them
        if label in frame.columns:
            out[label] = ""
    layout = csv_layout(input_path, encoding)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".partial")
    try:
        out.to_csv(tmp, index=False, encoding=layout.encoding, lineterminator=layout.line_ending, sep=layout.sep)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, output_path)
    unobserved = [label for j, label in enumerate(labels) if not np.isfinite(history[-trained.context :, j]).any()]
    return {
        "horizon": trained.horizon,
        "rows_read": int(min(len(history), trained.context)),
        "forecast_by": (None if use_model else trained.choices(history)[0]) or "model",
        "time": "continued" if not times[0].startswith("+") else "unknown step: rows named +1 ... +H",
        "unobserved_in_history": unobserved,
        "not_forecast": [n for n in trained.dropped_names if n in frame.columns],
    }


def _format(value: float) -> str:
    return repr(float(value))
