"""Choices that follow how gappy a history is: the validation fallback and the interval's conformal factor.

A model that beats the simple baselines on complete histories may lose to them on thin ones (and the
reverse), and its interval, calibrated on the validation histories as they come, is too narrow for a
history with more holes. So a run validates at several levels of history missingness: the validation
windows as they are, and with ``EXTRA_HOLES`` more of their observed history hidden the way training hides
it (values, blocks or whole variables, seeded). Each level records its mean missing share, the baseline
that beats the model there (or None), the conformal factor measured there, and for a fallback the factor
of its own interval: the model's interval moved onto the fallback's forecast, calibrated the same way on
the same values, so a run that forecasts with a baseline still gives a calibrated interval. A new history takes the
choices of the level whose missing share is nearest its own. Stored in ``best/fallback.json`` under
``"by_history_missing"``; runs without it use their single fallback and factor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...errors import TooFewToCalibrate
from ...missingness import hide_values
from ...training.run_folders import RunFolderError, read_json
from ..impute.calibration import conformal_scale, widen_interval
from ..impute.trained import FALLBACK_FILE, choose_fallback
from .combination import candidate_forecast, candidate_names, combined_name

__all__ = [
    "Regime",
    "EXTRA_HOLES",
    "history_missing",
    "moved_interval",
    "level_interval",
    "validate_regimes",
    "nearest_regime",
    "read_regimes",
]

EXTRA_HOLES = (0.0, 0.2, 0.4)  # shares of the observed validation history hidden, one level each


@dataclass(frozen=True)
class Regime:
    missing: float  # mean share of missing history values (context steps x variables) at this level
    fallback: Optional[str]  # the baseline that beat the model on validation at this level, or None
    interval_scale: float = 1.0  # the conformal factor measured at this level
    # the factor of the model's interval moved onto the fallback's forecast (None: no fallback, or no interval)
    fallback_interval_scale: Optional[float] = None


def history_missing(history: np.ndarray) -> float:
    """Share of missing values (NaN) in ``history`` float[T, F] or float[N, T, F] (the mean over windows)."""
    return float(np.isnan(history).mean()) if history.size else 1.0


def thinned_windows(task, split: str, rate: float, seed: int = 0) -> np.ndarray:
    """``split``'s windows (original units, N x (C + H) x F) with ``rate`` of their observed history hidden
    as training hides it (``task.missing_unit``, ``task.block_length``), from a seeded generator."""
    return thin_history(task, task.data[split], rate, seed)


def thin_history(task, windows: np.ndarray, rate: float, seed: int = 0) -> np.ndarray:
    """A copy of ``windows`` (original units, N x (C + H) x F) with ``rate`` of their observed history hidden
    as training hides it, from a seeded generator (see :func:`thinned_windows`)."""
    windows = windows.copy()
    if rate == 0:
        return windows
    history = torch.from_numpy(windows[:, : task.context])  # (N, C, F)
    n, context, features = history.shape
    g = torch.Generator().manual_seed(seed)
    uniforms = torch.rand(features + 1, n, context, generator=g, dtype=history.dtype)  # (F + 1, N, C)
    windows[:, : task.context] = hide_values(history, rate, uniforms, task.missing_unit, task.block_length).numpy()
    return windows


def moved_interval(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, centre: np.ndarray):
    """(lower, upper): the interval ``lower``..``upper`` around ``point`` moved to ``centre`` (each bound
    keeps its distance to the point); arrays of one shape."""
    return centre - (point - lower), centre + (upper - point)


def level_interval(regime: Regime, point, lower, upper, centre):
    """(lower, upper) that ``dynmask forecast --interval`` gives at ``regime``'s level around ``centre``
    (what it forecasts): the model's raw interval (``point``, ``lower``, ``upper``) widened by the level's
    factor where the model forecasts, moved onto the fallback's forecast and widened by the fallback's
    factor where a fallback does; None where the level's fallback has no factor (runs from before)."""
    if regime.fallback is None:
        return widen_interval(point, lower, upper, regime.interval_scale)
    if regime.fallback_interval_scale is None:
        return None
    return widen_interval(centre, *moved_interval(point, lower, upper, centre), regime.fallback_interval_scale)


def _calibrated(parts: list, interval: float) -> float:
    """The conformal factor of the pooled ``parts`` ((point, lower, upper, truth), each float[N, H, F]);
    1.0 with too few values."""
    point, lower, upper, truth = (np.concatenate(a) for a in zip(*parts))
    try:
        return conformal_scale(point, lower, upper, truth, np.isfinite(truth), interval)
    except TooFewToCalibrate:
        return 1.0


def validate_regimes(task, model, split: str = "valid", folds: Sequence = ()) -> list[dict]:
    """One row per level of :data:`EXTRA_HOLES`: its missing share, the model's, the baselines' and the
    combination's metrics (``combination.py``), the fallback chosen there (the candidate that beats the
    model), the conformal factor (1.0 without an interval head or too few values) and the fallback's own
    factor (:func:`moved_interval`).
    ``folds``: (model, windows) pairs, out-of-fold models and the training windows each never saw
    (``folds.py``); their forecasts, thinned the same way at each level, join the validation forecasts in
    the conformal factors (not in the choice of the fallback, which compares this ``model`` itself).
    A level's factor is never below a less gappy level's (a running maximum): on a small validation set the
    factor measured on thinned histories is noisy, and a gappier history never earns a narrower interval
    (US change, 4 non-overlapping validation forecasts: 0.98 / 0.86 / 0.72 measured, coverage at 40% more holes 67% with
    them, 72% with the running maximum)."""
    rows, floor = [], 0.0
    intervals = getattr(model, "interval_head", None) is not None
    for rate in EXTRA_HOLES:
        windows = thinned_windows(task, split, rate, seed=1000 + int(rate * 100))
        out = task.forecast(model, task.windows(split, windows), intervals=intervals)
        forecasts = out if intervals else (out,)  # one forecast serves the scores and the calibration
        metrics = task.score(split, forecasts, model.config.interval)
        baseline_points = task.baseline_forecasts(split, windows=windows)
        baselines = task.baselines(split, points=baseline_points)
        mean = combined_name(min(baselines, key=lambda name: baselines[name]["mae"]))  # with the best baseline
        combined = {mean: candidate_forecast(mean, forecasts[0], baseline_points)}
        candidates = {**baselines, **task.baselines(split, points=combined)}
        fallback, scale, fallback_scale = choose_fallback(metrics, candidates), 1.0, None
        if intervals:
            sets = [(forecasts, baseline_points, task.truth(split))]  # validation, then each fold's windows
            for k, (fold_model, fold_windows) in enumerate(folds):
                thin = thin_history(task, fold_windows, rate, seed=2000 + 100 * k + int(rate * 100))
                fold_out = task.forecast(fold_model, task.windows(split, thin), intervals=True)
                sets.append((fold_out, task.baseline_forecasts(split, windows=thin), fold_windows[:, task.context :]))
            scale = _calibrated([(*f, truth) for f, _, truth in sets], model.config.interval)
            if fallback is not None:
                centres = [candidate_forecast(fallback, f[0], points) for f, points, _ in sets]
                moved = [(c, *moved_interval(*f, c), truth) for c, (f, _, truth) in zip(centres, sets)]
                fallback_scale = _calibrated(moved, model.config.interval)
        scale = floor = max(scale, floor)
        regime = Regime(history_missing(windows[:, : task.context]), fallback, scale, fallback_scale)
        rows.append({**asdict(regime), "extra_holes": rate, "valid": {"dynmask": metrics, **candidates}})
    return rows


def nearest_regime(regimes: Sequence[Regime], missing: float) -> Regime:
    """The level whose missing share is nearest ``missing`` (the least gappy on a tie)."""
    return min(regimes, key=lambda r: (abs(r.missing - missing), r.missing))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_regimes(folder: Path, baselines: tuple) -> list[Regime]:
    """The levels a forecasting run's ``fallback.json`` records (empty for runs that predate them)."""
    path = Path(folder) / FALLBACK_FILE
    if not path.exists():
        return []
    rows = read_json(path).get("by_history_missing") or []
    regimes = []
    try:
        for row in rows:
            missing, fallback, scale = row["missing"], row["fallback"], row["interval_scale"]
            moved = row.get("fallback_interval_scale")
            if not (
                _number(missing)
                and 0 <= missing <= 1
                and _number(scale)
                and 0 < scale < math.inf
                and fallback in (None, *candidate_names(baselines))
                and (moved is None or (_number(moved) and 0 < moved < math.inf))
            ):
                raise ValueError(f"a level reads {row!r}")
            regimes.append(Regime(float(missing), fallback, float(scale), None if moved is None else float(moved)))
    except (KeyError, TypeError, ValueError) as e:
        raise RunFolderError(f"{path}: by_history_missing is damaged ({type(e).__name__}: {e})") from None
    return regimes
