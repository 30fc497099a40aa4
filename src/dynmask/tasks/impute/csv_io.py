"""Filling a user's CSV with a trained imputer: columns matched to the run's variables, windows filled and
stitched, intervals written beside the values, observed cells returned unchanged; written atomically.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...baselines.series import impute_linear, impute_locf, impute_mean
from ...data.csv_layout import csv_layout
from ...data.series import (
    HOLDOUT_PATTERNS,
    Standardizer,
    read_wide_chunks,
    read_wide_csv,
    read_wide_text,
    window_starts,
)
from ...devices import device_of
from ...errors import DataError, TooFewToCalibrate
from ...masks import Mask
from ...models.series import SeriesImputer
from ...plots import plot_imputation
from .calibration import CALIBRATION_SEED, calibration_cells, conformal_scale, widen_interval
from .trained import TrainedImputer


def match_columns(trained, file_columns: Sequence[str], source: str = "the file") -> list:
    """The file's column for each variable of ``trained`` (a :class:`TrainedImputer` or a forecaster: its
    ``column_names`` and ``dropped_names``), matched by name (refusing missing and unknown columns); by
    position, when an imputation run predates saved names, if the count matches."""
    file_columns = [str(c) for c in file_columns]
    if trained.column_names is None:
        if len(file_columns) != len(trained.columns):
            raise DataError(
                f"the model was trained on {len(trained.columns)} variables, {source} has {len(file_columns)}"
            )
        return file_columns
    absent = [n for n in trained.column_names if n not in file_columns]
    if absent:
        raise DataError(
            f"{source} lacks column(s) {absent[:10]} that the model was trained on; its variable columns "
            f"are {file_columns[:10]}"
        )
    unknown = [c for c in file_columns if c not in trained.column_names and c not in trained.dropped_names]
    if unknown:
        raise DataError(
            f"{source} has column(s) {unknown[:10]} that the model was not trained on; remove them, or "
            "train a model on them"
        )
    return list(trained.column_names)


def fill_windows(
    model: SeriesImputer,
    scaler: Standardizer,
    window: int,
    values: np.ndarray,
    intervals: bool = False,
    interval_scale: float = 1.0,
):
    """Model predictions float64[T, F] (data units) for every cell of ``values`` (T, F), window by window:
    the first window to cover a step fills it. With ``intervals``: (fills, lower, upper), the interval
    widened by the conformal factor ``interval_scale``."""
    total = values.shape[0]
    length = min(window, total)
    starts = window_starts(total, length, length)
    outputs = [np.full(values.shape, np.nan) for _ in range(3 if intervals else 1)]
    device = device_of(model)
    with torch.no_grad():
        for s in starts:
            x = torch.from_numpy(scaler.transform(values[s : s + length])).float().unsqueeze(0).to(device)  # (1, L, F)
            mask = Mask.from_nan(x)
            preds = model.impute_with_interval(x, mask) if intervals else (model.impute(x, mask),)
            todo = np.isnan(outputs[0][s : s + length])
            for out, pred in zip(outputs, preds):
                values_here = scaler.inverse(pred[0].double().cpu().numpy())  # (L, F), data units
                out[s : s + length][todo] = values_here[todo]
    if intervals:
        return (outputs[0], *widen_interval(*outputs, interval_scale))
    return outputs[0]


def impute_frame(
    model: SeriesImputer,
    scaler: Standardizer,
    window: int,
    frame,
    columns: Optional[list] = None,
    clip: Optional[tuple] = None,
):
    """A wide DataFrame (time × variables, NaN = missing) with only its holes filled, original units.

    ``columns``: labels (or positions) of the variables the model was trained on, in the model's
    order (others are left as they are). ``clip``: (low, high) arrays per trained variable that
    fills are clipped to. Observed values are returned untouched (same dtype, same values)."""
    labels = (
        list(frame.columns)
        if columns is None
        else [frame.columns[c] if isinstance(c, (int, np.integer)) and c not in frame.columns else c for c in columns]
    )
    values = frame[labels].to_numpy(dtype=np.float64)
    if values.shape[1] != scaler.mean.shape[0]:
        raise DataError(f"the model was trained on {scaler.mean.shape[0]} variables, the file has {values.shape[1]}")
    fills = fill_windows(model, scaler, window, values)
    if clip is not None:
        fills = np.clip(fills, clip[0], clip[1])
    result = frame.astype("float64")
    holes = ~np.isfinite(values)
    result[labels] = np.where(holes, fills, values)  # observed values are never overwritten
    return result


def _format_fill(value: float) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def check_output(output_path: Path, input_path: Path, protected: Sequence[Path] = ()) -> None:
    """Refuse an ``--output`` that would destroy something: the input itself, the input under the name
    of the temporary file the output is written through (``OUTPUT.partial``), a folder, or a file inside
    ``protected`` (the model's run folder, an exported model and its assets)."""
    out = output_path.resolve()
    partial = output_path.with_name(output_path.name + ".partial").resolve()
    if out == input_path.resolve() or (output_path.exists() and output_path.samefile(input_path)):
        raise DataError(f"--output {output_path} is the --input file; write the filled copy elsewhere")
    if partial == input_path.resolve():
        raise DataError(
            f"--input {input_path} is the temporary file --output {output_path} is written through; rename one"
        )
    if output_path.is_dir():
        raise DataError(f"--output {output_path} is a folder; name a CSV file")
    for place in protected:
        kept = Path(place).resolve()
        if out == kept or kept in out.parents:
            raise DataError(f"--output {output_path} would overwrite the model ({place}); write it elsewhere")


STREAM_ROWS = 4096  # rows of a CSV filled at a time (rounded down to whole windows)


def impute_csv(
    trained: TrainedImputer,
    input_path: Path,
    output_path: Path,
    *,
    time_column: Optional[str] = None,
    clip_to_train_range: bool = False,
    bounds: bool = True,
    encoding: str = "utf-8",
    plot: Optional[Path] = None,
    plot_variables: Optional[Sequence[str]] = None,
    intervals: bool = False,
    use_model: bool = False,
    calibrate: str = "auto",
    calibration_pattern: str = "values",
    protected: Sequence[Path] = (),
    stream_rows: int = STREAM_ROWS,
) -> dict:
    """Fill the holes of a wide CSV and write it to ``output_path``: every observed cell (and the time
    column, the header, every column the model does not know) is written back exactly as read, as
    text; only holes (blank, NaN-like or non-finite cells of the trained variables) get a value.
    Columns are matched by name. ``plot``: a PNG of observed and filled values of ``plot_variables``
    (default: the first four). ``intervals``: after each variable, ``<name>_lower`` and ``<name>_upper``
    columns hold the run's prediction interval at the holes (blank at observed cells), calibrated by split
    conformal prediction: ``calibrate="input"`` on the file itself (10% of its observed values hidden in
    ``calibration_pattern``: choose the pattern of the file's holes), ``"validation"`` with the run's saved
    factor, ``"auto"`` on the input when it yields at least :data:`MIN_INPUT_CALIBRATION` values.

    ``bounds`` (default): fills stay in the range the training data allows: a variable never negative in
    training is never filled negative, one whose maximum is a cap (many values at it) never above it.
    ``clip_to_train_range``: fills stay inside each variable's observed training range.

    The file is read, filled and written ``stream_rows`` rows at a time (memory bounded by that, not by
    the file; the fills are the same as the whole file's), except where an option needs the whole file
    at once: ``plot``, intervals calibrated on the input, and a locf / linear fallback.
    Returns counts, and the calibration used."""

    input_path, output_path = Path(input_path), Path(output_path)
    check_output(output_path, input_path, protected)
    if calibrate not in ("auto", "input", "validation"):
        raise DataError(f"--calibrate must be 'auto', 'input' or 'validation', got {calibrate!r}")
    if calibration_pattern not in HOLDOUT_PATTERNS:
        raise DataError(f"--calibration-pattern must be one of {HOLDOUT_PATTERNS}, got {calibration_pattern!r}")
    if intervals and getattr(trained.model, "interval_head", None) is None:
        raise DataError("--intervals: this imputer was trained without intervals; train it with --intervals 0.9")
    fallback = None if use_model else trained.fallback
    if fallback is not None and intervals:
        raise DataError(
            f"--intervals: this run fills with its validation fallback ({trained.fallback}), which has no "
            "intervals; add --use-model to fill (and bound) with the model anyway"
        )
    clip = fill_bounds(trained, bounds, clip_to_train_range)
    layout = csv_layout(input_path, encoding)
    whole = plot is not None or fallback in ("locf", "linear") or (intervals and calibrate != "validation")
    if whole:
        values = read_wide_csv(input_path, time_column, encoding)
        chunks = [(values, read_wide_text(input_path, time_column, encoding))]
    else:
        block = trained.window * max(1, stream_rows // trained.window)  # windows never straddle two blocks
        chunks = read_wide_chunks(input_path, block, time_column, encoding)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".partial")
    counts = {"holes": 0, "left_in_unknown_columns": 0, "rows": 0, "holes_per_variable": None}
    try:
        calibration = _write_filled(
            trained, chunks, tmp, layout, input_path, clip, fallback, intervals, calibrate, calibration_pattern,
            plot, plot_variables, counts,
        )  # fmt: skip
    except BaseException:
        tmp.unlink(missing_ok=True)  # a block that fails (or Ctrl-C) leaves no half-written file behind
        raise
    os.replace(tmp, output_path)
    per = counts["holes_per_variable"]
    mostly = [label for label, n in zip(counts["labels"], per) if n > 0.5 * counts["rows"]] if per is not None else []
    return {
        "mostly_missing": mostly,
        "holes": counts["holes"],
        "filled": counts["holes"],
        "left_in_unknown_columns": counts["left_in_unknown_columns"],
        "filled_by": fallback or "model",
        **({"calibration": calibration} if intervals else {}),
    }


def _write_filled(
    trained, chunks, tmp, layout, input_path, clip, fallback, intervals, calibrate, calibration_pattern,
    plot, plot_variables, counts,
):  # fmt: skip
    """Fill ``chunks`` ((values, text) blocks in order) and write them to ``tmp``; returns the interval
    calibration (None without intervals); adds to ``counts``."""
    calibration = None
    with open(tmp, "w", encoding=layout.encoding, newline="") as out:  # the input's BOM and line ending
        labels, carry, pending = None, None, None
        for values, text in itertools.chain(chunks, [(None, None)]):  # one block read ahead: is this the last?
            if labels is None:
                labels = counts["labels"] = match_columns(trained, values.columns, str(input_path))
                unknown = [v for v in plot_variables or () if v not in labels]
                if plot is not None and unknown:  # checked before anything is written
                    raise DataError(
                        f"--plot-variables {unknown} are not variables the model fills; they are {labels[:10]}"
                    )
            if pending is not None:
                block_values, block_text = pending
                numbers = block_values[labels].to_numpy(dtype=np.float64)  # (T, F)
                if intervals and calibration is None:
                    scale, calibration = interval_factor(trained, numbers, calibrate, calibration_pattern)
                fills = fill_block(trained, numbers, carry, values is None, fallback, intervals,
                                    calibration["scale"] if intervals else 1.0)  # fmt: skip
                if clip is not None:  # fills (and interval bounds) inside what the data allows
                    fills = tuple(np.clip(f, clip[0], clip[1]) for f in fills) if intervals else np.clip(fills, *clip)
                filled = _filled_text(block_text, labels, numbers, fills, intervals)
                filled.to_csv(out, header=carry is None, lineterminator=layout.line_ending, sep=layout.sep)
                counts["holes"] += int((~np.isfinite(numbers)).sum())
                per = (~np.isfinite(numbers)).sum(axis=0)
                counts["holes_per_variable"] = (
                    per if counts["holes_per_variable"] is None else counts["holes_per_variable"] + per
                )
                counts["rows"] += len(numbers)
                counts["left_in_unknown_columns"] += int(block_values.drop(columns=labels).isna().to_numpy().sum())
                carry = numbers[-trained.window :]
                if plot is not None:
                    plot_imputation(
                        plot,
                        list(block_values.index),
                        labels,
                        numbers,
                        fills[0] if intervals else fills,
                        lower=fills[1] if intervals else None,
                        upper=fills[2] if intervals else None,
                        variables=plot_variables,
                        title=f"{input_path.name}: observed and filled" + (" (with intervals)" if intervals else ""),
                    )
            pending = (values, text)
    return calibration


def fill_bounds(trained: TrainedImputer, bounds: bool = True, clip_to_train_range: bool = False):
    """(lower, upper) per variable that fills are clipped to, or None: the range the data allows
    (:func:`data_bounds`) with ``bounds``, each variable's training range with ``clip_to_train_range``."""
    if clip_to_train_range:
        if trained.train_min is None:
            raise DataError("--clip-to-train-range: this run predates saved training ranges; retrain it")
        return trained.train_min, trained.train_max
    return data_bounds(trained) if bounds else None


def fill_values(
    trained: TrainedImputer, numbers: np.ndarray, *, use_model: bool = False, bounds: bool = True,
    clip_to_train_range: bool = False,
) -> np.ndarray:  # fmt: skip
    """``numbers`` float[T, F] (the model's variables in its order; NaN = missing) with every hole filled
    (by the run's validation fallback unless ``use_model``; clipped as :func:`fill_bounds` says) and every
    observed value unchanged: what ``impute`` does to a whole table in memory."""
    fallback = None if use_model else trained.fallback
    fills = fill_block(trained, numbers, None, True, fallback, False, 1.0)
    clip = fill_bounds(trained, bounds, clip_to_train_range)
    if clip is not None:
        fills = np.clip(fills, *clip)
    holes = ~np.isfinite(numbers)
    if np.isnan(fills[holes]).any():
        raise RuntimeError("the imputer produced NaN for a hole; the model file may be damaged")
    return np.where(holes, fills, numbers)


def data_bounds(trained: TrainedImputer):
    """(lower, upper) per variable that the training data allows: 0 below a variable never negative in
    training, its maximum above one that is capped there; None when the run saved no training range."""
    if trained.train_min is None:
        return None
    lower = np.where(np.nan_to_num(trained.train_min, nan=-np.inf) >= 0, 0.0, -np.inf)
    capped = trained.train_capped if trained.train_capped is not None else np.zeros(len(lower), dtype=bool)
    upper = np.where(capped, trained.train_max, np.inf)
    return lower, upper


def fill_block(trained, numbers, carry, last: bool, fallback, intervals: bool, scale: float):
    """Fills (T, F) for one block of rows (or (fills, lower, upper)), the same as the whole file's: a
    block starts at a multiple of the window, and a last block shorter than a window is read with the
    rows before it (``carry``), as the whole file's last window is."""
    if fallback is not None:
        fill = {"mean": impute_mean, "locf": impute_locf, "linear": impute_linear}[fallback]
        return fill(numbers[None], trained.scaler.mean.astype(np.float64))[0]  # the block as one window
    window, n = trained.window, numbers.shape[0]
    if last and carry is not None and n < window:
        context = np.concatenate([carry[-(window - n) :], numbers])  # (window, F)
        out = fill_windows(trained.model, trained.scaler, window, context, intervals, scale)
        return tuple(o[-n:] for o in out) if intervals else out[-n:]
    return fill_windows(trained.model, trained.scaler, window, numbers, intervals, scale)


def _filled_text(text, labels, numbers, fills, intervals: bool):
    """``text`` (the block's cells as written) with its holes filled; with ``intervals``, each variable
    followed by ``<name>_lower`` / ``<name>_upper`` (blank at observed cells)."""
    holes = ~np.isfinite(numbers)
    if intervals:
        fills, lower, upper = fills
    if np.isnan(fills[holes]).any():
        raise RuntimeError("the imputer produced NaN for a hole; the model file may be damaged")
    out = text.copy()
    for j, label in enumerate(labels):
        column = out[label].to_numpy(dtype=object)
        rows = np.flatnonzero(holes[:, j])
        column[rows] = [_format_fill(v) for v in fills[rows, j]]
        out[label] = column
        if intervals:
            position = list(out.columns).index(label)
            for suffix, bound in (("_upper", upper), ("_lower", lower)):  # inserted right after the variable
                cells = np.full(len(out), "", dtype=object)
                cells[rows] = [_format_fill(v) for v in bound[rows, j]]
                out.insert(position + 1, f"{label}{suffix}", cells)
    return out


MIN_INPUT_CALIBRATION = 100  # hidden values below which `--calibrate auto` keeps the validation factor


def calibrate_on_values(
    model: SeriesImputer,
    scaler: Standardizer,
    window: int,
    values: np.ndarray,
    pattern: str = "values",
    fraction: float = 0.1,
    seed: int = CALIBRATION_SEED,
) -> tuple[float, int]:
    """(conformal factor, number of calibration values) for ``model``'s interval from a user's own
    series ``values`` float[T, F] (data units, NaN = missing): a seeded ``fraction`` of its observed
    values is hidden in ``pattern`` (drawn within consecutive model-length windows, so ``variables``
    hides a variable for one window) and the interval is calibrated on them (:func:`calibration_cells`).
    Raises :class:`TooFewToCalibrate` when the values are too few."""
    total, features = values.shape
    n_windows = -(-total // window)
    padded = np.full((n_windows * window, features), np.nan)
    padded[:total] = values
    cells = calibration_cells(padded.reshape(n_windows, window, features), pattern, fraction, seed)  # (N, L, F)
    cells = cells.reshape(-1, features)[:total]  # (T, F)
    if not cells.any():
        raise TooFewToCalibrate("the input has no observed value to calibrate on")
    point, lower, upper = fill_windows(model, scaler, window, np.where(cells, np.nan, values), intervals=True)
    return conformal_scale(point, lower, upper, values, cells, model.config.interval), int(cells.sum())


def interval_factor(trained: TrainedImputer, numbers: np.ndarray, calibrate: str, pattern: str) -> tuple[float, dict]:
    """(factor, how it was chosen) for ``impute_csv``'s intervals; see its ``calibrate``."""
    validation = {"on": "validation", "scale": trained.interval_scale}
    if calibrate == "validation":
        return trained.interval_scale, validation
    try:
        scale, n = calibrate_on_values(trained.model, trained.scaler, trained.window, numbers, pattern)
    except TooFewToCalibrate as e:
        if calibrate == "input":
            raise DataError(f"--calibrate input: {e}; use --calibrate validation") from None
        return trained.interval_scale, {**validation, "why": str(e)}
    if calibrate == "auto" and n < MIN_INPUT_CALIBRATION:
        why = f"the input gives {n} calibration values, fewer than {MIN_INPUT_CALIBRATION}"
        return trained.interval_scale, {**validation, "why": why}
    return scale, {"on": "input", "scale": scale, "n": n, "pattern": pattern}
