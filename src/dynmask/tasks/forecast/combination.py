"""What a forecasting run may forecast with instead of its model alone, chosen on validation.

The candidates are the simple baselines (``baselines/forecast.py``) and one combination: the equal-weight
mean of the model's forecast and the forecast of the baseline that scores best on validation, named
``"model+<baseline>"``. Averaging forecasts whose errors are not perfectly correlated lowers the error of
either more often than not (Bates & Granger 1969; the simple mean is hard to beat with fitted weights, the
"forecast combination puzzle", Smith & Wallis 2009; combinations led the M4 competition), and a mean of two
needs no weight fitted on a small validation set. A run keeps its model unless a candidate has the lower
validation MAE (``impute.trained.choose_fallback``); the choice is stored as the fallback's name, so every
reader (``dynmask forecast``, the server, the ONNX runner's loader) computes it the same way.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

__all__ = [
    "COMBINED",
    "combined_name",
    "combined_baseline",
    "candidate_names",
    "candidate_forecast",
    "describe",
]

COMBINED = "model+"  # the prefix of a combination's name: "model+season_mean"


def combined_name(baseline: str) -> str:
    """The name of the mean of the model's and ``baseline``'s forecasts."""
    return COMBINED + baseline


def combined_baseline(name: Optional[str]) -> Optional[str]:
    """The baseline a combination's ``name`` averages with the model (None for any other name)."""
    return name[len(COMBINED) :] if name is not None and name.startswith(COMBINED) else None


def candidate_names(baselines) -> tuple:
    """Every name a fallback may carry: each baseline, and each baseline combined with the model."""
    return (*baselines, *(combined_name(b) for b in baselines))


def candidate_forecast(name: str, point: Optional[np.ndarray], baseline_points: Mapping[str, np.ndarray]):
    """The forecast of candidate ``name``: a baseline's (from ``baseline_points``), or for a combination the
    mean of the model's ``point`` and its baseline's; arrays of one shape."""
    baseline = combined_baseline(name)
    if baseline is None:
        return baseline_points[name]
    if point is None:
        raise ValueError(f"{name} needs the model's forecast")
    return (point + baseline_points[baseline]) / 2


def describe(name: str) -> str:
    """``name`` as a sentence reads it: a combination says what it averages."""
    baseline = combined_baseline(name)
    return name if baseline is None else f"{name} (the mean of the model's and {baseline}'s forecasts)"
