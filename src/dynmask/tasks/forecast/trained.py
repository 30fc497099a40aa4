"""A trained forecaster as a user loads it: the model, its scaler and columns, context and horizon, the
fallback chosen on validation and the interval calibration; :meth:`TrainedForecaster.forecast` turns a
gappy history (a DataFrame or an array) into the next ``horizon`` steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ...baselines.forecast import FORECAST_BASELINES
from ...data.series import Standardizer
from ...errors import DataError
from ...masks import Mask
from ...models.series import SeriesConfig, SeriesImputer
from ...training import load_run_model
from ...training.run_folders import RunFolderError, config_from_dict, read_json
from ..impute.trained import read_calibration_scale, read_fallback
from .combination import candidate_forecast, candidate_names, combined_baseline
from .regimes import Regime, history_missing, level_interval, nearest_regime, read_regimes

__all__ = ["TrainedForecaster", "load_forecaster", "forecaster_from_assets"]


@dataclass
class TrainedForecaster:
    """A forecasting run, loaded. ``model`` is a :class:`SeriesImputer` (or an exported runner with the
    same ``__call__(x, mask)``)."""

    model: object
    scaler: Standardizer
    context: int
    horizon: int
    season: int
    column_names: list
    dropped_names: list = field(default_factory=list)  # never observed in training: not forecast (left blank)
    # a simple baseline, or the model combined with one ("model+<baseline>", combination.py), that beat the
    # model on validation: it forecasts instead
    fallback: Optional[str] = None
    interval_scale: float = 1.0  # conformal factor of the interval, from validation
    # the fallback and factor per level of history missingness (regimes.py); empty: the two above for all
    regimes: list = field(default_factory=list)

    def regime(self, history: np.ndarray) -> Regime:
        """The choices for ``history`` float[T, F] (at most ``context`` steps; fewer count the steps before
        them as missing): those of the validation level nearest its missing share (fallback or None, the
        model's conformal factor, the fallback's)."""
        if not self.regimes:
            return Regime(0.0, self.fallback, self.interval_scale)
        history = np.where(np.isfinite(history), history, np.nan)[-self.context :]
        padded = np.concatenate([np.full((self.context - history.shape[0], history.shape[1]), np.nan), history])
        return nearest_regime(self.regimes, history_missing(padded))

    def choices(self, history: np.ndarray) -> tuple[Optional[str], float]:
        """(fallback or None, the model's conformal factor) for ``history``: see :meth:`regime`."""
        regime = self.regime(history)
        return regime.fallback, regime.interval_scale

    def forecast(self, history: np.ndarray, intervals: bool = False, use_model: bool = False):
        """The next ``horizon`` steps float64[H, F] after ``history`` float[T, F] (original units, NaN =
        missing, columns in :attr:`column_names` order). Only the last ``context`` steps are read; a
        shorter history is read as it is (the steps before it missing). With ``intervals``: (point,
        lower, upper). A variable never observed in the history is forecast from the others (the model)
        or at its training mean (the baselines). Refused only when nothing at all is observed."""
        history = np.asarray(history, dtype=np.float64)
        if history.ndim != 2 or history.shape[1] != len(self.column_names):
            raise DataError(f"history must be [time, {len(self.column_names)} variables], got {list(history.shape)}")
        history = np.where(np.isfinite(history), history, np.nan)[-self.context :]
        if not np.isfinite(history).any():
            raise DataError("the history holds no observed value: nothing to forecast from")
        regime = self.regime(history)
        if use_model:
            regime = dataclasses.replace(regime, fallback=None)
        fallback = regime.fallback
        if fallback is None and not intervals:
            return self._model_forecast(history, False)[0]
        if (
            fallback is not None
            and intervals
            and (regime.fallback_interval_scale is None or getattr(self.model, "interval_head", None) is None)
        ):
            raise DataError(
                f"--interval: this run forecasts with its validation fallback ({fallback}) and holds no "
                "interval for it (trained without --intervals, or before fallbacks had one); add "
                "--use-model to forecast (and bound) with the model"
            )
        raw = None  # the model's (point,) or (point, raw lower, raw upper), where something reads it
        if fallback is None or intervals or combined_baseline(fallback) is not None:
            raw = self._model_forecast(history, intervals)
        if fallback is None:
            return (raw[0], *level_interval(regime, *raw, raw[0]))
        fill = self.scaler.mean.astype(np.float64)
        name = combined_baseline(fallback) or fallback
        baseline = {name: FORECAST_BASELINES[name](history[None], self.horizon, self.season, fill)[0]}
        centre = candidate_forecast(fallback, None if raw is None else raw[0], baseline)
        return (centre, *level_interval(regime, *raw, centre)) if intervals else centre

    def _model_forecast(self, history: np.ndarray, intervals: bool) -> tuple:
        """The model's (point,) or (point, raw lower, raw upper), each float64[H, F], after ``history``
        (finite or NaN, at most ``context`` steps)."""
        pad = self.context - history.shape[0]
        window = np.concatenate(
            [np.full((pad, history.shape[1]), np.nan), history, np.full((self.horizon, history.shape[1]), np.nan)]
        )  # (C + H, F): the history, the horizon to fill
        x = torch.from_numpy(self.scaler.transform(window[None])).float()  # (1, C + H, F)
        mask = Mask.from_nan(x)
        with torch.no_grad():
            if intervals:
                if getattr(self.model, "interval_head", None) is None:
                    raise DataError(
                        "--interval: this forecaster was trained without intervals (train with --intervals 0.9)"
                    )
                outs = self.model.forward_with_interval(x, mask)
            else:
                outs = (self.model(x, mask),)
        return tuple(self.scaler.inverse(t[0, self.context :].double().numpy()) for t in outs)


def load_forecaster(folder: Path) -> TrainedForecaster:
    """A forecasting run's folder (or its best/), checked as untrusted input."""
    model, folder, _ = load_run_model(
        folder, lambda c: SeriesImputer(config_from_dict(SeriesConfig, c, "config.json")), expect_task="forecast"
    )
    return forecaster_from_assets(model, folder, model.config.num_features, model.config.max_len)


def forecaster_from_assets(model, folder: Path, features: int, max_len: int) -> TrainedForecaster:
    folder = Path(folder)
    assets = read_json(folder / "forecast.json")
    try:
        scaler = Standardizer(
            np.array(assets["scaler"]["mean"], np.float64), np.array(assets["scaler"]["std"], np.float64)
        )
        context, horizon, season = int(assets["context"]), int(assets["horizon"]), int(assets["season"])
        names = [str(n) for n in assets["column_names"]]
        dropped = [str(n) for n in assets.get("dropped_names") or []]
    except (KeyError, TypeError, ValueError) as e:
        raise RunFolderError(f"{folder / 'forecast.json'} is damaged ({type(e).__name__}: {e})") from None
    if (
        scaler.mean.shape != (features,)
        or len(names) != features
        or context < 1
        or horizon < 1
        or context + horizon > max_len
    ):
        raise RunFolderError(f"{folder / 'forecast.json'} does not match the model ({features} variables)")
    fallback, scale = read_fallback(folder, candidate_names(FORECAST_BASELINES)), read_calibration_scale(folder)
    regimes = read_regimes(folder, tuple(FORECAST_BASELINES))
    return TrainedForecaster(model, scaler, context, horizon, season, names, dropped, fallback, scale, regimes)
