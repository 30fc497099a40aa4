"""The simple forecasts every forecasting table reports beside the model, read from a gappy history.

Each takes ``history`` float[N, C, F] (NaN = missing; the last row is the step before the forecast),
the ``horizon`` H and the ``season`` S (steps per cycle; 1 = none), and returns float[N, H, F]. Missing
history values are never read as numbers: each method uses the observed values only, and falls back to
the last observed value (then to ``fill``, the training mean, for a variable never observed in the
history) where its own rule has nothing to read.
"""

from __future__ import annotations

import numpy as np

__all__ = ["last_value", "seasonal_naive", "season_mean", "linear_trend", "FORECAST_BASELINES"]


def _last_observed(history: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """float[N, F]: the last observed value of each variable (``fill`` where none)."""
    observed = np.isfinite(history)  # (N, C, F)
    length = history.shape[1]
    last = length - 1 - np.argmax(observed[:, ::-1], axis=1)  # (N, F): index of the last observation
    value = np.take_along_axis(history, last[:, None, :], axis=1)[:, 0]  # (N, F)
    return np.where(observed.any(axis=1), value, fill)


def last_value(history: np.ndarray, horizon: int, season: int, fill: np.ndarray) -> np.ndarray:
    """The last observed value, held."""
    return np.repeat(_last_observed(history, fill)[:, None], horizon, axis=1)


def seasonal_naive(history: np.ndarray, horizon: int, season: int, fill: np.ndarray) -> np.ndarray:
    """Step h repeats the value one season earlier (y[T + h - k·S], the nearest observed k ≥ 1); the last
    observed value where no season back is observed."""
    out = last_value(history, horizon, season, fill)  # (N, H, F)
    if season <= 1:
        return out
    length = history.shape[1]
    for h in range(horizon):
        found = np.zeros(out.shape[::2], dtype=bool)  # (N, F)
        k = (h // season) + 1
        while True:
            pos = length + h - k * season  # the context index of y[T + h + 1 - k·S]
            if pos < 0:
                break
            value = history[:, pos]  # (N, F)
            take = ~found & np.isfinite(value)
            out[:, h] = np.where(take, value, out[:, h])
            found |= take
            if found.all():
                break
            k += 1
    return out


def season_mean(history: np.ndarray, horizon: int, season: int, fill: np.ndarray) -> np.ndarray:
    """The mean of the observed values of the last season (at least the last 7 steps without a season)."""
    span = min(history.shape[1], max(season, 7))
    recent = history[:, -span:]  # (N, span, F)
    count = np.isfinite(recent).sum(axis=1)  # (N, F)
    total = np.where(np.isfinite(recent), recent, 0.0).sum(axis=1)
    mean = np.where(count > 0, total / np.maximum(count, 1), _last_observed(history, fill))
    return np.repeat(mean[:, None], horizon, axis=1)


def linear_trend(history: np.ndarray, horizon: int, season: int, fill: np.ndarray) -> np.ndarray:
    """A least-squares line through the observed values of the history, extended; the last observed
    value where fewer than two are observed."""
    n, length, f = history.shape
    t = np.arange(length, dtype=np.float64)[None, :, None]  # (1, C, 1)
    observed = np.isfinite(history)
    w = observed.astype(np.float64)
    y = np.where(observed, history, 0.0)
    count = w.sum(axis=1, keepdims=True)  # (N, 1, F)
    t_mean = (w * t).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    y_mean = (w * y).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    cov = (w * (t - t_mean) * (y - y_mean)).sum(axis=1, keepdims=True)
    var = (w * (t - t_mean) ** 2).sum(axis=1, keepdims=True)
    slope = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0)
    future = np.arange(length, length + horizon, dtype=np.float64)[None, :, None]  # (1, H, 1)
    line = y_mean + slope * (future - t_mean)  # (N, H, F)
    enough = (count >= 2) & (var > 0)
    return np.where(enough, line, last_value(history, horizon, season, fill))


FORECAST_BASELINES = {
    "last_value": last_value,
    "seasonal_naive": seasonal_naive,
    "season_mean": season_mean,
    "linear_trend": linear_trend,
}
