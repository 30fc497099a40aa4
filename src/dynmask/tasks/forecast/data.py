"""Forecasting data: the season and frequency of a time column, the context length, and the windows a
forecaster trains and is scored on (history with its real gaps, then the horizon to predict).

Masks: True = observed; NaN in a value array = missing.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...data.series import Standardizer, chronological_split, make_windows
from ...errors import DataError
from ...extras import require as _require

__all__ = [
    "infer_step",
    "season_of",
    "default_context",
    "continue_time",
    "prepare_forecast_data",
    "mase_scale",
    "history_holes",
    "valid_step",
    "MIN_VALID_FORECASTS",
]

# steps per cycle for a regular datetime step (the dominant cycle: a week of days, a day of hours, ...)
_SEASONS = (
    (np.timedelta64(1, "m"), 60),
    (np.timedelta64(5, "m"), 12 * 24),
    (np.timedelta64(10, "m"), 6 * 24),
    (np.timedelta64(15, "m"), 4 * 24),
    (np.timedelta64(30, "m"), 2 * 24),
    (np.timedelta64(1, "h"), 24),
    (np.timedelta64(1, "D"), 7),
    (np.timedelta64(7, "D"), 52),
)


def _as_datetimes(index):
    """The time column as datetime64 (None when it is not dates)."""
    pd = _require("pandas")

    if np.issubdtype(np.asarray(index).dtype, np.number):
        return None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stamps = pd.to_datetime(pd.Index(index).astype(str), errors="raise")
    except (ValueError, TypeError, OverflowError):
        return None
    return stamps


def infer_step(index) -> tuple[str, object]:
    """("datetime", Timedelta or DateOffset) / ("number", step) / ("none", None): the step of the time
    column, the median difference of its last values (months and years by calendar)."""
    pd = _require("pandas")

    index = list(index)
    if len(index) < 2:
        return "none", None
    stamps = _as_datetimes(index)
    if stamps is not None:
        tail = stamps[-min(len(stamps), 60) :]
        diffs = np.diff(tail.values).astype("timedelta64[s]")
        if len(diffs) == 0:
            return "none", None
        median = np.median(diffs.astype(np.int64))
        days = median / 86400
        if 27 <= days <= 32:
            return "datetime", pd.DateOffset(months=1)
        if 89 <= days <= 93:
            return "datetime", pd.DateOffset(months=3)
        if 364 <= days <= 367:
            return "datetime", pd.DateOffset(years=1)
        return "datetime", pd.Timedelta(seconds=int(median))
    values = np.asarray(index)
    if np.issubdtype(values.dtype, np.number):
        tail = values[-min(len(values), 60) :]
        step = np.median(np.diff(tail))
        return "number", (int(step) if np.issubdtype(values.dtype, np.integer) else float(step))
    return "none", None


def season_of(index) -> int:
    """Steps per cycle of a regular time column: 7 for days, 24 for hours, 12 for months, 4 for quarters,
    52 for weeks, 1 when there is no calendar cycle to read (numbers, years, text)."""
    kind, step = infer_step(index)
    if kind != "datetime":
        return 1
    if hasattr(step, "months") and getattr(step, "months", 0):
        return 12 if step.months == 1 else 4
    if hasattr(step, "years") and getattr(step, "years", 0):
        return 1
    seconds = step.total_seconds()
    for delta, season in _SEASONS:
        if seconds == delta.astype("timedelta64[s]").astype(np.int64):
            return season
    return 1


def default_context(horizon: int, season: int, n_train: int) -> int:
    """History steps the model reads: four seasons or four horizons (at least 16), at most a quarter of
    the training range and 512."""
    context = max(4 * horizon, 4 * season, 16)
    return int(max(2, min(context, n_train // 4, 512)))


def continue_time(index: Sequence, horizon: int) -> list[str]:
    """The ``horizon`` time values after ``index``'s last, at its step, written as the column writes them
    (dates as dates, date-times as ISO, numbers as numbers); ``+1`` ... ``+H`` when the column is not a
    regular time axis (a note says so)."""
    pd = _require("pandas")

    kind, step = infer_step(index)
    last = list(index)[-1]
    if kind == "number":
        return [str(last + step * (k + 1)) for k in range(horizon)]
    if kind == "datetime":
        stamps = _as_datetimes(index)
        nxt = [stamps[-1] + step * (k + 1) for k in range(horizon)]
        text = str(last)
        if len(text) == 10 and all(t.hour == 0 and t.minute == 0 and t.second == 0 for t in nxt):
            return [t.strftime("%Y-%m-%d") for t in nxt]
        sep = "T" if "T" in text else " "
        return [pd.Timestamp(t).isoformat(sep=sep) for t in nxt]
    return [f"+{k + 1}" for k in range(horizon)]


# a validation range with fewer non-overlapping forecasts than this is validated from a rolling origin
MIN_VALID_FORECASTS = 30


def _origins(start: int, end: int, horizon: int, context: int, step: Optional[int] = None) -> list[int]:
    """Forecast origins in [start, end): every ``step`` steps (default ``horizon``: non-overlapping horizon
    blocks), each with a full context before it (the first may read history from the split before)."""
    first = max(start, context)
    return list(range(first, end - horizon + 1, step or horizon))


def valid_step(start: int, end: int, horizon: int, context: int) -> int:
    """Steps between validation origins: the horizon when that gives at least :data:`MIN_VALID_FORECASTS`
    forecasts, else the largest step that does, down to 1 (a rolling origin). A short series (US change:
    18 validation quarters, 4 non-overlapping 4-quarter forecasts) then stops early, chooses its fallback
    and calibrates its interval on 15 overlapping forecasts instead of 4; the test forecasts stay non-overlapping."""
    for step in range(horizon, 0, -1):
        if len(_origins(start, end, horizon, context, step)) >= MIN_VALID_FORECASTS:
            return step
    return 1


def prepare_forecast_data(
    values: np.ndarray,
    horizon: int,
    context: int,
    *,
    season: int = 1,
    names: Optional[Sequence[str]] = None,
    stride: int = 1,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> dict:
    """Chronological split, standardisation (training statistics), and windows of ``context + horizon``
    steps: overlapping ones (``stride``) inside the training range; in valid and test one window per
    origin, every ``horizon`` steps, whose history may reach back before the split (it is the past) and
    whose horizon lies inside it (validation origins closer together on a short range: :func:`valid_step`).
    Arrays in original units, NaN = missing. ``season``: steps per cycle
    (the seasonal naive baseline's lag and MASE's)."""
    values = np.asarray(values, dtype=np.float64)
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(values.shape[1])]
    ranges = chronological_split(values.shape[0], valid_fraction, test_fraction)
    (a, b) = ranges["train"]
    train = values[a:b]
    if b - a < context + horizon:
        raise DataError(
            f"the training range has {b - a} steps, fewer than --context {context} + --horizon {horizon}: "
            "pass a shorter --context or more data"
        )
    never = np.isnan(train).all(axis=0)
    if never.all():
        raise DataError("no variable is observed in the training range (the first 70% of the rows)")
    dropped = [names[i] for i in np.flatnonzero(never)]  # nothing to learn them from: listed, left out
    values, train = values[:, ~never], train[:, ~never]
    names = [n for n, gone in zip(names, never) if not gone]
    out = {
        "scaler": Standardizer.fit(train),
        "ranges": ranges,
        "horizon": horizon,
        "context": context,
        "stride": stride,
        "column_names": names,
        "dropped_names": dropped,
        "season": season,
        "train": make_windows(train, context + horizon, stride),
        "mase_scale": mase_scale(train, season),
    }
    for split in ("valid", "test"):
        start, end = ranges[split]
        step = valid_step(start, end, horizon, context) if split == "valid" else horizon
        origins = _origins(start, end, horizon, context, step)
        if not origins:
            raise DataError(
                f"the {split} range ({end - start} steps) holds no forecast of --horizon {horizon}: more data or "
                "a shorter horizon"
            )
        out[split] = np.stack([values[t - context : t + horizon] for t in origins])  # (N, C + H, F)
        out[f"{split}_origins"] = origins
    out["valid_step"] = valid_step(*ranges["valid"], horizon, context)
    return out


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """float[F]: each variable's in-sample mean absolute seasonal difference over the training range (its
    observed pairs), the denominator of MASE (Hyndman & Koehler 2006); lag 1 without a season."""
    lag = max(1, season)
    diffs = np.abs(train[lag:] - train[:-lag])  # NaN where either side is missing
    scale = np.nanmean(np.where(np.isfinite(diffs), diffs, np.nan), axis=0)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def history_holes(
    windows: np.ndarray, context: int, rate: float, pattern: str, seed: int, block: int = 7
) -> np.ndarray:
    """``windows`` (N, C + H, F) with a further ``rate`` of the observed *history* values removed (the
    horizon is left alone), seeded: ``"uniform"`` single values, ``"blocks"`` runs of ``block`` steps of
    one variable. For measuring how forecasts hold up as the history thins."""
    out = windows.copy()
    if rate <= 0:
        return out
    rng = np.random.default_rng(seed)
    history = out[:, :context]  # a view
    if pattern == "uniform":
        history[rng.random(history.shape) < rate] = np.nan
    elif pattern == "blocks":
        n, c, f = history.shape
        starts = rng.random((n, c, f)) < rate / block
        hidden = np.zeros_like(starts)
        for k in range(block):
            hidden[:, k:] |= starts[:, : c - k]
        history[hidden] = np.nan
    else:
        raise ValueError(f"pattern must be 'uniform' or 'blocks', got {pattern!r}")
    return out
