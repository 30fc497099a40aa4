"""What each endpoint runs, loaded once from a run folder or an ONNX export: text rows for ``/predict``
(the objects ``dynmask predict`` prints), JSON rows filled for ``/impute`` and the next rows for
``/forecast``. Every function takes plain JSON-ready values and raises :class:`DataError` on bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..data.confidence import mark_low_confidence
from ..errors import DataError
from ..export import is_onnx, load_onnx
from ..tasks.common import stored_reading
from ..tasks.registry import task_of

__all__ = ["ServedModel", "load_served"]

SERVED_TASKS = ("classify", "impute", "forecast")


class ServedModel:
    """A loaded run: ``task`` (classify / impute / forecast) and the callables the endpoints use.
    ``threads``: the model's intra-op threads (PyTorch's, process-wide, or the onnxruntime session's);
    None keeps the runtime's default."""

    def __init__(self, path: Path, threads: Optional[int] = None) -> None:
        self.path, self.threads = Path(path), threads
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if is_onnx(self.path):
            runner = load_onnx(self.path, threads, spinning=False)  # the event loop needs the cores between calls
            self.task = runner.meta["task"]
        else:
            self.task = task_of(self.path).name
            runner = None
        if self.task not in SERVED_TASKS:
            raise DataError(f"--model {path} is a {self.task!r} run; serve covers {', '.join(SERVED_TASKS)} runs")
        self.threshold, self.lexicon = stored_reading(self.path)
        if self.task == "classify":
            self._load_classifier(runner)
        elif self.task == "impute":
            from ..export import onnx_imputer
            from ..tasks.impute.trained import load_imputer

            self.imputer = onnx_imputer(runner, self.path) if runner is not None else load_imputer(self.path)
        else:
            from ..export import onnx_forecaster
            from ..tasks.forecast.trained import load_forecaster

            self.forecaster = onnx_forecaster(runner, self.path) if runner is not None else load_forecaster(self.path)

    # ------------------------------------------------------------------------------------------ text
    def _load_classifier(self, runner) -> None:
        if runner is not None:
            self._predict = runner.predict
            return
        from ..tasks.classify.task import load_classifier, predict_texts

        model, tokenizer, labels = load_classifier(self.path)
        self._predict = lambda texts: predict_texts(model, tokenizer, labels, texts)

    def read_text(self, text: str, confidences: Optional[list]) -> str:
        """The text as the model reads it: words below the run's confidence threshold marked missing."""
        if confidences is None:
            return text
        if self.threshold is None:
            raise DataError("this run stores no confidence threshold: send texts without confidences")
        confidences = [float("nan") if c is None else float(c) for c in confidences]
        return mark_low_confidence(text, confidences, self.threshold, lexicon=self.lexicon)

    def predict(self, items: list) -> list[dict]:
        """Rows for ``items`` (text, text as read): the text as sent, the label and probabilities."""
        rows = self._predict([read for _, read in items])
        return [{**row, "text": text} for (text, _), row in zip(items, rows)]

    # ------------------------------------------------------------------------------------------ series
    def impute(self, rows: list[dict], time_column: Optional[str]) -> list[dict]:
        """``rows`` with every missing value (null, NaN, inf) of a trained variable filled; every other
        value returned as sent."""
        from ..tasks.impute.csv_io import fill_values, match_columns

        time_column, names, numbers = _table(rows, time_column)
        labels = match_columns(self.imputer, names, "the rows")
        index = [names.index(label) for label in labels]
        values = numbers[:, index]  # (T, F) in the model's order
        fills = fill_values(self.imputer, values)  # as dynmask impute: fallback, the data's bounds
        out = []
        for t, row in enumerate(rows):
            filled = dict(row)
            for j, label in enumerate(labels):
                if not math.isfinite(values[t, j]):
                    filled[label] = float(fills[t, j])
            out.append(filled)
        return out

    def forecast(self, rows: list[dict], time_column: Optional[str], interval: bool) -> list[dict]:
        """The next ``horizon`` rows after ``rows`` (the time continued at their step)."""
        from ..tasks.forecast.data import continue_time
        from ..tasks.impute.csv_io import match_columns

        time_column, names, numbers = _table(rows, time_column)
        labels = match_columns(self.forecaster, names, "the rows")
        history = numbers[:, [names.index(label) for label in labels]]
        result = self.forecaster.forecast(history, intervals=interval)
        point, lower, upper = result if interval else (result, None, None)
        times = continue_time([row[time_column] for row in rows], self.forecaster.horizon)
        out = []
        for h, when in enumerate(times):
            row = {time_column: when}
            for j, label in enumerate(labels):
                row[label] = float(point[h, j])
                if interval:
                    row[f"{label}_lo"], row[f"{label}_hi"] = float(lower[h, j]), float(upper[h, j])
            out.append(row)
        return out

    def describe(self) -> dict[str, Any]:
        out = {"task": self.task, "model": str(self.path), "model_threads": self.threads}  # None: the runtime's
        if self.task == "impute":
            out["variables"] = self.imputer.column_names
        elif self.task == "forecast":
            out.update(variables=self.forecaster.column_names, horizon=self.forecaster.horizon)
        return out


def _table(rows: list[dict], time_column: Optional[str]) -> tuple[str, list[str], np.ndarray]:
    """(time column, variable names, float64[T, F] with NaN for null / NaN / inf) of JSON rows."""
    if not rows:
        raise DataError("rows is empty: send at least one row")
    first = rows[0]
    time_column = time_column or next(iter(first), None)
    if time_column is None or any(time_column not in row for row in rows):
        raise DataError(f'every row needs the time column {time_column!r} (set "time_column")')
    names = [k for k in first if k != time_column]
    numbers = np.full((len(rows), len(names)), np.nan)
    for t, row in enumerate(rows):
        if set(row) != set(first):
            raise DataError(f"row {t} has other keys than row 0: every row needs the same variables")
        for j, name in enumerate(names):
            value = row[name]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"row {t}, {name!r}: expected a number or null, got {type(value).__name__}")
            numbers[t, j] = float(value) if math.isfinite(value) else np.nan
    return time_column, names, numbers


def load_served(path: Path) -> ServedModel:
    return ServedModel(path)
