"""Calibrated prediction intervals for the imputer: interval metrics and the pinball loss, split-conformal
scaling on held-out cells of the validation range or of the input itself, and the calibration file of a
run.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ...data.series import (
    HOLDOUT_PATTERNS,
    holdout_mask,
)
from ...errors import TooFewToCalibrate


# ---------------------------------------------------------------------------------------- imputation
def imputation_metrics(pred: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> dict:
    """MAE, RMSE and MRE (sum |error| / sum |truth|, as in PyPOTS) over the ``scored`` entries."""
    err = (pred - truth)[scored]
    if err.size == 0:
        raise ValueError("no value is scored")
    if np.isnan(err).any():
        raise ValueError("a prediction at a scored position is NaN")
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "mre": float(np.abs(err).sum() / np.abs(truth[scored]).sum()),
        "n": int(err.size),
    }


def pinball_loss(pred: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor, q: float) -> torch.Tensor:
    """Mean pinball (quantile) loss of ``pred`` for level ``q`` over entries where ``keep`` is True."""
    zero = pred.new_zeros(())
    diff = torch.where(keep, truth, zero) - torch.where(keep, pred, zero)  # (B, L, F); 0 where not kept
    loss = torch.maximum(q * diff, (q - 1) * diff)
    return torch.where(keep, loss, zero).sum() / keep.sum().clamp(min=1)


def interval_metrics(
    lower: np.ndarray, upper: np.ndarray, truth: np.ndarray, scored: np.ndarray, interval: float
) -> dict:
    """Empirical coverage of the ``interval`` prediction interval on the ``scored`` values, its mean
    width, and the interval score (Gneiting & Raftery, 2007; lower is better), data units."""
    lo, hi, y = lower[scored], upper[scored], truth[scored]
    alpha = 1 - interval
    score = (hi - lo) + (2 / alpha) * np.maximum(lo - y, 0) + (2 / alpha) * np.maximum(y - hi, 0)
    return {
        "interval": interval,
        "coverage": float(((y >= lo) & (y <= hi)).mean()),
        "interval_width": float((hi - lo).mean()),
        "interval_score": float(score.mean()),
    }


def widen_interval(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, scale: float):
    """(lower, upper) with their distances to ``point`` multiplied by ``scale`` (the conformal
    calibration factor); where the interval is the point itself (observed values) nothing moves."""
    return point - scale * (point - lower), point + scale * (upper - point)


def conformal_scale(
    point: np.ndarray, lower: np.ndarray, upper: np.ndarray, truth: np.ndarray, scored: np.ndarray, interval: float
) -> float:
    """Split-conformal factor for the learned quantile interval (conformalized quantile regression,
    Romano et al. 2019, in its scaled form): the smallest ``s`` such that ``widen_interval(.., s)`` covers
    the ``ceil((n + 1) * interval)``-th smallest of the ``n`` calibration scores, where each ``scored``
    value's score is the factor its interval needs, ``(point - y) / (point - lower)`` below the point and
    ``(y - point) / (upper - point)`` above. Held-out values not seen in training (validation) make the
    calibrated interval cover a new value with probability >= ``interval`` under exchangeability."""
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval must lie in (0, 1), got {interval}")
    p, lo, hi, y = point[scored], lower[scored], upper[scored], truth[scored]
    if y.size == 0:
        raise ValueError("no value is scored: conformal calibration needs held-out values")
    tiny = np.finfo(np.float64).tiny
    below = (p - y) / np.maximum(p - lo, tiny)  # > 0 where the value lies below the point
    above = (y - p) / np.maximum(hi - p, tiny)
    scores = np.maximum(np.maximum(below, above), 0.0)  # float[n]
    rank = int(np.ceil((y.size + 1) * interval))  # 1-based rank of the conformal quantile
    if rank > y.size:
        raise TooFewToCalibrate(
            f"{y.size} held-out values are too few to calibrate a {interval:g} interval; need at least "
            f"{int(np.ceil(interval / (1 - interval)))}"
        )
    return float(np.partition(scores, rank - 1)[rank - 1])


CALIBRATION_SEED = 7919  # the cells hidden to calibrate on an input; not a held-out seed (0, 1, 2, ...)


def calibration_cells(
    windows: np.ndarray,
    pattern: str = "values",
    fraction: float = 0.1,
    seed: int = CALIBRATION_SEED,
    variables: Optional[np.ndarray] = None,
) -> np.ndarray:
    """bool[N, L, F], True = a cell to hide and calibrate on: a seeded ``fraction`` of the observed values
    of ``windows`` (float[N, L, F], NaN = missing) in ``pattern`` (single values, blocks of 3-14 steps
    or whole variables of a window, as :func:`~dynmask.data.series.holdout_mask` draws them).

    Calibrating on the input itself (transductive split conformal) needs no validation period, so a
    shift between the training years and the input's does not bias the interval; its coverage holds
    for holes exchangeable with the hidden cells, i.e. missing in the same ``pattern``, at random.
    ``variables`` (bool[F]): hide only these (as the held-out values of ``--hide-variables``)."""
    if pattern not in HOLDOUT_PATTERNS:
        raise ValueError(f"calibration pattern must be one of {HOLDOUT_PATTERNS}, got {pattern!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"calibration fraction must lie in (0, 1), got {fraction}")
    return holdout_mask(windows, fraction, seed, pattern=pattern, variables=variables)
