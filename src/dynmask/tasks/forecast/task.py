"""Forecasting from gappy history: the forecaster is a series model that fills the future.

A window is ``context`` steps of history (with their real gaps, NaN = missing) followed by ``horizon``
steps that are entirely missing; the model (a :class:`~dynmask.models.series.SeriesImputer`: the dynamic
mask, per-variable observed values) predicts them from the observed history only, so what a missing
history value holds can never change a forecast. Training also hides a share of the observed history
(re-drawn every batch: values, blocks or whole variables), so the model learns to forecast from thinner
histories than the training data's. Scores: MAE, MASE and MAE per horizon step on the observed future
values, the simple baselines on exactly the same values, and interval coverage.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ...baselines.forecast import FORECAST_BASELINES
from ...data.series import Standardizer
from ...devices import device_of
from ...losses import masked_mae
from ...masks import Mask
from ...missingness import Schedule, hide_values
from ...models.series import SeriesConfig, SeriesImputer
from ...training import Trainer, start_run_folder
from ...training.run_folders import fingerprint, write_manifest
from ..impute.calibration import interval_metrics, pinball_loss, widen_interval
from ..impute.trained import CALIBRATION_FILE, FALLBACK_FILE
from .combination import candidate_forecast, describe
from .folds import auto_folds, train_fold_models
from .regimes import Regime, history_missing, level_interval, nearest_regime, validate_regimes
from .trained import load_forecaster

__all__ = ["ForecastTask", "train_forecaster", "forecast_metrics"]


def forecast_metrics(pred: np.ndarray, truth: np.ndarray, scale: np.ndarray) -> dict:
    """MAE, MASE (each error over its variable's ``scale``), RMSE and MAE per horizon step, on the observed
    values of ``truth`` (N, H, F); ``pred`` (N, H, F) must be finite there."""
    scored = np.isfinite(truth)
    if not scored.any():
        raise ValueError("no future value is observed: nothing to score")
    err = np.where(scored, pred - truth, 0.0)
    if np.isnan(err[scored]).any():
        raise ValueError("a forecast at a scored value is NaN")
    per_step = [float(np.abs(err[:, h][scored[:, h]]).mean()) if scored[:, h].any() else None
                for h in range(truth.shape[1])]  # fmt: skip
    return {
        "mae": float(np.abs(err[scored]).mean()),
        "mase": float((np.abs(err) / scale)[scored].mean()),
        "rmse": float(np.sqrt((err[scored] ** 2).mean())),
        "mae_per_step": per_step,
        "n": int(scored.sum()),
    }


class ForecastTask:
    """Windows of ``context + horizon`` steps in standardised units; see the module docstring. ``history_holes``
    is the share of observed history values hidden per training batch (``missing_unit`` as for the imputer)."""

    def __init__(
        self,
        data: dict,
        history_holes: float = 0.2,
        seed: int = 0,
        missing_unit: str = "mixed",
        block_length: int = 7,
        eval_batch_size: int = 128,
    ) -> None:
        self.data, self.season, self.seed = data, data["season"], seed
        self.history_holes, self.missing_unit, self.block_length = history_holes, missing_unit, block_length
        self.context, self.horizon = data["context"], data["horizon"]
        self.scaler: Standardizer = data["scaler"]
        self.eval_batch_size = eval_batch_size
        self.std = {k: torch.from_numpy(self.scaler.transform(data[k])).float() for k in ("train", "valid", "test")}
        self.scale = np.asarray(data["mase_scale"], dtype=np.float64)  # float[F]: MASE's denominators
        features = data["train"].shape[2]
        self.schedule = Schedule("dynamic", features + 1, seed, self.context)

    # -------------------------------------------------------------------------------------- training
    def num_train(self) -> int:
        return self.std["train"].shape[0]

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def train_batch(self, indices: list[int], draw: int):
        truth = self.std["train"][indices]  # (B, C + H, F)
        history = truth[:, : self.context]
        uniforms = self.schedule.uniforms(indices, self.context, draw)  # (F + 1, B, C)
        history = hide_values(history, self.history_holes, uniforms, self.missing_unit, self.block_length)
        future = torch.full_like(truth[:, self.context :], float("nan"))  # (B, H, F): to be forecast
        inputs = torch.cat([history, future], dim=1)  # (B, C + H, F)
        return inputs, Mask.from_nan(inputs), truth

    def loss(self, model, batch) -> torch.Tensor:
        inputs, mask, truth = batch
        observed = ~torch.isnan(truth)  # (B, C + H, F)
        future = torch.zeros_like(observed)
        future[:, self.context :] = True
        target = observed & future  # the observed future values: the forecast's target
        hidden = observed & ~future & ~mask.observed_values  # history hidden this batch: learn to fill it too
        net = getattr(model, "module", model)  # DDP wraps the model
        if net.interval_head is None:
            pred = model(inputs, mask).float()
            return masked_mae(pred, truth, target) + 0.5 * masked_mae(pred, truth, hidden)
        pred, lower, upper = (t.float() for t in net.forward_with_interval(inputs, mask))
        low_q, high_q = net.quantiles
        return (
            masked_mae(pred, truth, target)
            + 0.5 * masked_mae(pred, truth, hidden)
            + pinball_loss(lower, truth, target, low_q)
            + pinball_loss(upper, truth, target, high_q)
        )

    # -------------------------------------------------------------------------------------- scoring
    def windows(self, split: str, windows: Optional[np.ndarray] = None) -> np.ndarray:
        """The ``split``'s windows (original units) as the model reads them: the horizon blanked."""
        windows = (self.data[split] if windows is None else windows).copy()
        windows[:, self.context :] = np.nan
        return windows

    def forecast(self, model, windows: np.ndarray, intervals: bool = False):
        """Forecasts float64[N, H, F] (original units) for ``windows`` (N, C + H, F) whose horizon is NaN;
        with ``intervals``: (point, lower, upper), the model's raw quantiles."""
        x_all = torch.from_numpy(self.scaler.transform(windows)).float()
        was = model.training
        model.eval()
        parts = ([], [], []) if intervals else ([],)
        device = device_of(model)
        with torch.no_grad():
            for start in range(0, x_all.shape[0], self.eval_batch_size):
                x = x_all[start : start + self.eval_batch_size].to(device)  # (b, C + H, F)
                mask = Mask.from_nan(x)
                outs = model.forward_with_interval(x, mask) if intervals else (model(x, mask),)
                for part, out in zip(parts, outs):
                    part.append(out[:, self.context :].float().cpu())
        model.train(was)
        out = tuple(self.scaler.inverse(torch.cat(p).numpy().astype(np.float64)) for p in parts)
        return out if intervals else out[0]

    def truth(self, split: str) -> np.ndarray:
        return self.data[split][:, self.context :]

    def evaluate(self, model, split: str = "valid", interval_scale=1.0, windows=None) -> dict:
        """Forecast metrics on ``split``'s observed future values (``windows``: other history, e.g. with
        extra holes); with an interval head, the coverage of the interval widened by ``interval_scale`` (a
        number, or float[N, 1, 1]: one per window)."""
        intervals = getattr(model, "interval_head", None) is not None
        out = self.forecast(model, self.windows(split, windows), intervals=intervals)
        return self.score(split, out if intervals else (out,), model.config.interval, interval_scale)

    def score(self, split: str, forecasts: tuple, interval: Optional[float] = None, interval_scale=1.0) -> dict:
        """Metrics of ``forecasts`` ((point,) or (point, lower, upper), each float[N, H, F], the raw
        quantiles) on ``split``'s observed future values; the interval widened by ``interval_scale``."""
        truth = self.truth(split)
        metrics = forecast_metrics(forecasts[0], truth, self.scale)
        if len(forecasts) == 3:
            lo, hi = widen_interval(*forecasts, interval_scale)
            metrics.update(interval_metrics(lo, hi, truth, np.isfinite(truth), interval))
            metrics["interval_scale"] = float(np.mean(interval_scale))
        return {**metrics, "score": -metrics["mae"]}

    def baseline_forecasts(self, split: str, windows=None) -> dict:
        history = self.windows(split, windows)[:, : self.context]
        fill = self.scaler.mean.astype(np.float64)
        return {name: fn(history, self.horizon, self.season, fill) for name, fn in FORECAST_BASELINES.items()}

    def baselines(self, split: str = "test", windows=None, points: Optional[dict] = None) -> dict:
        """The simple forecasts (``points``: already made, from :meth:`baseline_forecasts`), scored on
        exactly the same values."""
        truth = self.truth(split)
        points = self.baseline_forecasts(split, windows) if points is None else points
        return {name: forecast_metrics(pred, truth, self.scale) for name, pred in points.items()}

    def regimes_of(self, regimes: list[Regime], split: str, windows=None) -> list[Regime]:
        """The level each of ``split``'s windows takes: the one nearest its history's missing share."""
        history = self.windows(split, windows)[:, : self.context]
        return [nearest_regime(regimes, history_missing(h)) for h in history]

    def chosen_forecasts(self, point: np.ndarray, baselines: dict, levels: list[Regime]) -> np.ndarray:
        """What ``dynmask forecast`` gives for each window (N, H, F): the model's forecast (``point``), or
        the forecast of the fallback (a baseline in ``baselines``, or the model combined with one) of the
        window's level (``levels``: one per window, from :meth:`regimes_of`)."""
        chosen = point.copy()
        for i, regime in enumerate(levels):
            if regime.fallback is not None:
                chosen[i] = candidate_forecast(regime.fallback, point[i], {k: v[i] for k, v in baselines.items()})
        return chosen

    def chosen_intervals(self, forecasts: tuple, chosen: np.ndarray, levels: list[Regime]):
        """(lower, upper) float[N, H, F] that ``dynmask forecast --interval`` gives around ``chosen``, from
        the model's raw interval (``forecasts`` = (point, lower, upper)) by :func:`level_interval` at each
        window's level (NaN where the level's fallback has no factor)."""
        lower, upper = np.full_like(chosen, np.nan), np.full_like(chosen, np.nan)
        for i, regime in enumerate(levels):
            bounds = level_interval(regime, *(f[i] for f in forecasts), chosen[i])
            if bounds is not None:
                lower[i], upper[i] = bounds
        return lower, upper

    def save_assets(self, folder: Path) -> None:
        (Path(folder) / "forecast.json").write_text(
            json.dumps(
                {
                    "scaler": self.scaler.to_dict(),
                    "context": self.context,
                    "horizon": self.horizon,
                    "season": self.season,
                    "column_names": self.data["column_names"],
                    "dropped_names": self.data.get("dropped_names", []),
                    "mase_scale": self.scale.tolist(),
                }
            )
        )


def train_forecaster(
    data: dict,
    output: Path,
    model_config: dict,
    train_config,
    *,
    history_holes: float = 0.2,
    missing_unit: str = "mixed",
    block_length: int = 7,
    resume: bool = False,
    overwrite: bool = False,
    calibration_folds: Optional[int] = None,
) -> dict:
    """Train, choose a fallback on validation (a simple baseline that beats the model there forecasts
    instead, and says so), calibrate the interval on validation (pooled with the out-of-fold forecasts of
    ``calibration_folds`` blocked cross-validation models, ``folds.py``; None: :func:`~.folds.auto_folds`),
    and score the model and the baselines on the test forecasts (``test_results.json``; raw forecasts in
    ``test_forecasts.npz``)."""
    if calibration_folds and not model_config.get("interval", 0.0) > 0:  # before the run folder is made
        raise ValueError("calibration_folds calibrates an interval: the model has none (interval 0)")
    start_run_folder(output, resume=resume, overwrite=overwrite)
    task_kwargs = {"history_holes": history_holes, "missing_unit": missing_unit, "block_length": block_length}
    task = ForecastTask(data, seed=train_config.seed, **task_kwargs)  # the fold models' tasks take the same
    window = data["context"] + data["horizon"]
    config = SeriesConfig(num_features=data["train"].shape[2], max_len=window, **model_config)
    torch.manual_seed(train_config.seed)
    model = SeriesImputer(config)
    run_config = {
        "task": "forecast",
        "model": config.to_dict(),
        "train": asdict(train_config),
        **task_kwargs,
        "data": {
            **{k: data[k] for k in ("ranges", "horizon", "context", "stride", "column_names", "dropped_names")},
            "season": data["season"],
            "valid_step": data.get("valid_step", data["horizon"]),
            "fingerprint": fingerprint(*(data[k] for k in ("train", "valid", "test"))),
        },
    }
    folds = auto_folds(data, config.interval > 0) if calibration_folds is None else calibration_folds
    run_config["calibration_folds"] = folds  # what happens after training: a resume may change it
    trainer = Trainer(model, task, train_config, output, run_config)
    t0 = time.perf_counter()
    summary = trainer.fit(resume=resume)
    summary["train_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fold_models = train_fold_models(data, output, config, train_config, run_config, folds, task_kwargs, resume=resume)
    summary["calibration_seconds"] = time.perf_counter() - t0
    if not trainer.main:
        return summary
    best_dir = Path(output) / "best"
    best = load_forecaster(output).model if (best_dir / "model.safetensors").exists() else model
    # the validation history as it is, then with more holes; the factors pooled with the folds' forecasts
    levels = validate_regimes(task, best, folds=fold_models if best.interval_head is not None else ())
    regimes = [Regime(r["missing"], r["fallback"], r["interval_scale"], r["fallback_interval_scale"]) for r in levels]
    fallback, scale = regimes[0].fallback, regimes[0].interval_scale
    summary["fallback"], summary["valid"] = fallback, levels[0]["valid"]
    summary["by_history_missing"] = levels
    if best_dir.exists():
        (best_dir / FALLBACK_FILE).write_text(
            json.dumps({"fallback": fallback, "valid": summary["valid"], "by_history_missing": levels}, indent=2)
        )
        if best.interval_head is not None:
            (best_dir / CALIBRATION_FILE).write_text(
                json.dumps(
                    {
                        "method": "split conformal, validation forecasts"
                        + (f" and out-of-fold forecasts of {len(fold_models)} blocked-CV models" if fold_models else "")
                        + "; per level of history missingness in fallback.json",
                        "scale": scale,
                        "interval": best.config.interval,
                        "folds": len(fold_models),
                        "fold_seconds": summary["calibration_seconds"],
                    },
                    indent=2,
                )  # fmt: skip
            )
        write_manifest(best_dir)
    t1 = time.perf_counter()
    intervals = best.interval_head is not None
    out = task.forecast(best, task.windows("test"), intervals=intervals)
    forecasts = out if intervals else (out,)  # one forecast serves every score below
    levels_of_test = task.regimes_of(regimes, "test")  # one per test window
    scales = np.array([r.interval_scale for r in levels_of_test])[:, None, None]  # (N, 1, 1)
    summary["test"] = task.score("test", forecasts, best.config.interval, scales)
    summary["forecast_seconds"] = time.perf_counter() - t1
    point, baseline_points = forecasts[0], task.baseline_forecasts("test")
    summary["baselines"] = task.baselines("test", points=baseline_points)
    chosen_points = task.chosen_forecasts(point, baseline_points, levels_of_test)
    chosen = forecast_metrics(chosen_points, task.truth("test"), task.scale)
    if intervals:  # the interval `dynmask forecast --interval` gives, the fallback's included
        lower, upper = task.chosen_intervals(forecasts, chosen_points, levels_of_test)
        truth = task.truth("test")
        scored = np.isfinite(truth) & np.isfinite(lower).all(axis=(1, 2), keepdims=True)
        if scored.any():
            chosen.update(interval_metrics(lower, upper, truth, scored, best.config.interval))
    results = {
        "dynmask": summary["test"],
        **summary["baselines"],
        "dynmask_or_fallback": {**chosen, "fallback": fallback, "fallback_by_history_missing": [
            {"missing": r.missing, "fallback": r.fallback} for r in regimes]},
    }  # fmt: skip
    (Path(output) / "test_results.json").write_text(json.dumps(results, indent=2))
    np.savez_compressed(
        Path(output) / "test_forecasts.npz",
        origins=np.array(data["test_origins"]),
        truth=task.truth("test"),
        dynmask=point,
        **baseline_points,
    )
    for name in dict.fromkeys(lv["fallback"] for lv in levels if lv["fallback"] is not None):
        won = [lv for lv in levels if lv["fallback"] == name]
        shares = " / ".join(f"{lv['missing']:.0%}" for lv in won)
        maes = " / ".join(f"{lv['valid'][name]['mae']:.4g} vs {lv['valid']['dynmask']['mae']:.4g}" for lv in won)
        print(
            f"note: {describe(name)} beat the model on validation histories {shares} missing (MAE {maes}): `dynmask "
            "forecast` uses it for histories that gappy, and says so",
            flush=True,
        )
    return summary
