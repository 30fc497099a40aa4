"""The classical imputers every series model is reported beside: the variable's training mean, the last
observation carried forward (then backward), and linear interpolation in time. Arrays float[T, F], NaN =
missing; observed values are returned unchanged.
"""

from __future__ import annotations

import numpy as np

from ..extras import require as _require


def impute_mean(windows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Every hole filled with the variable's training mean."""
    return np.where(np.isnan(windows), mean, windows)


def _fill(windows: np.ndarray, mean: np.ndarray, method: str) -> np.ndarray:
    pd = _require("pandas")

    out = windows.copy()
    for i in range(out.shape[0]):
        frame = pd.DataFrame(out[i])
        if method == "locf":
            frame = frame.ffill().bfill()  # carried forward; the start takes the first observation
        else:
            frame = frame.interpolate(method="linear", limit_direction="both")
        out[i] = frame.to_numpy()
    return np.where(np.isnan(out), mean, out)  # a variable never observed in the window: its mean


def impute_locf(windows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Last observation carried forward within each window (backward at its start; mean if none)."""
    return _fill(windows, mean, "locf")


def impute_linear(windows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Linear interpolation along time within each window (nearest value at the edges; mean if none)."""
    return _fill(windows, mean, "linear")
