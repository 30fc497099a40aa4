"""Time-series tasks with NaN: classification of variable-length series, and imputation.

Masks: True = observed. Standardisation uses training statistics only; results come back in the
data's own units. Test-time holes (classification) and held-out values (imputation) are seeded, so
every method is scored on the same ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...baselines.series import impute_linear, impute_locf, impute_mean
from ...data.series import (
    Standardizer,
    chronological_split,
    holdout_mask,
    make_windows,
)
from ...devices import device_of
from ...errors import DataError, TooFewToCalibrate
from ...losses import masked_mae
from ...masks import Mask
from ...missingness import IMPUTATION_UNITS, Schedule, hide_values
from ...models.series import SeriesConfig, SeriesImputer
from ...training import Trainer, start_run_folder
from ...training.run_folders import fingerprint, write_manifest
from ..common import SPLIT_OFFSET
from .calibration import (
    CALIBRATION_SEED,
    calibration_cells,
    conformal_scale,
    imputation_metrics,
    interval_metrics,
    pinball_loss,
    widen_interval,
)
from .trained import FALLBACK_FILE, choose_fallback, load_imputer, load_imputer_model, write_calibration

__all__ = ["ImputationTask", "prepare_imputation_data", "window_and_stride", "train_imputer", "calibrate_run"]


DEFAULT_WINDOW = 30  # steps; the setting chosen on PM10 validation values


def window_and_stride(n_times: int, window: Optional[int] = None, stride: Optional[int] = None) -> tuple[int, int]:
    """The imputer's window and training stride for a series of ``n_times`` steps. ``None`` chooses
    from the data: :data:`DEFAULT_WINDOW`, or the length of the shorter of the validation and test
    ranges when that is less (their windows do not overlap, so each must hold one); the stride is a
    sixth of the window. Given values are kept (too long a window is refused later, with the sizes)."""
    if window is None:
        ranges = chronological_split(n_times)
        shortest = min(b - a for name, (a, b) in ranges.items() if name != "train")
        window = min(DEFAULT_WINDOW, shortest)
        if window < 2:
            raise DataError(f"{n_times} time steps leave {shortest} for validation / test: too few for a window of 2")
    return window, stride if stride is not None else max(1, window // 6)


def prepare_imputation_data(
    values: np.ndarray,
    window: int,
    stride: int,
    *,
    holdout: float = 0.1,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    drop_unobserved: bool = False,
    names: Optional[Sequence[str]] = None,
    holdout_pattern: str = "values",
    hide_variables: Optional[Sequence[str]] = None,
) -> dict:
    """Chronological split, standardisation (training statistics only), windows, held-out masks.

    Train windows overlap (``stride``); valid and test windows do not (stride = window), so each held-out
    value is scored once. Returns a dict of numpy arrays (original units) and the fitted scaler.
    ``drop_unobserved``: variables with no observed value in the training range are dropped (listed
    under ``"dropped"``) instead of raising. ``names``: the variables' column names, saved with the
    model so that ``dynmask impute`` matches a file's columns by name.
    """
    values = np.asarray(values, dtype=np.float64)
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(values.shape[1])]
    if len(names) != values.shape[1]:
        raise ValueError(f"names has {len(names)} entries for {values.shape[1]} variables")
    ranges = chronological_split(values.shape[0], valid_fraction, test_fraction)
    train = values[ranges["train"][0] : ranges["train"][1]]
    empty = np.isnan(train).all(axis=0)
    kept = np.flatnonzero(~empty)
    if empty.any() and drop_unobserved:
        values = values[:, kept]
        train = train[:, kept]
    scaler = Standardizer.fit(train)
    with np.errstate(invalid="ignore"):
        train_min, train_max = np.nanmin(train, axis=0), np.nanmax(train, axis=0)
        at_max = (train == train_max).sum(axis=0)  # a cap: the maximum reached by many values (100% humidity)
        capped = (at_max >= 3) & (at_max >= 0.005 * np.isfinite(train).sum(axis=0))
    out = {
        "scaler": scaler,
        "ranges": ranges,
        "train_min": train_min.tolist(),
        "train_max": train_max.tolist(),
        "train_capped": capped.tolist(),
        "column_names": [names[i] for i in kept] if drop_unobserved else names,
        "dropped_names": [names[i] for i in np.flatnonzero(empty)] if drop_unobserved else [],
        "window": window,
        "stride": stride,
        "holdout": holdout,
        "seed": seed,
        "kept_columns": kept.tolist() if drop_unobserved else list(range(values.shape[1])),
        "dropped": np.flatnonzero(empty).tolist() if drop_unobserved else [],
        "holdout_pattern": holdout_pattern,
        "hide_variables": list(hide_variables) if hide_variables else None,
    }
    variables = None
    if hide_variables:
        unknown = [v for v in hide_variables if v not in out["column_names"]]
        if unknown:
            raise DataError(
                f"--hide-variables {unknown} are not variables of the data; they are {out['column_names'][:10]}"
            )
        variables = np.array([n in set(hide_variables) for n in out["column_names"]])
    out["variables_hidden"] = variables  # bool[F] or None: the only variables holes fall on
    for name, (a, b) in ranges.items():
        wins = make_windows(values[a:b], window, stride if name == "train" else window)
        out[name] = wins
        if name != "train":
            out[f"{name}_holdout"] = holdout_mask(
                wins, holdout, seed + SPLIT_OFFSET[name], pattern=holdout_pattern, variables=variables
            )
    return out


class ImputationTask:
    """Windows in standardised units; trained with artificial holes (hidden observed values) re-drawn
    every batch (``schedule="dynamic"``) or drawn once per window (``"static"``): the loss is the MAE
    on the hidden values (imputation) plus the MAE on the values left observed (reconstruction)."""

    def __init__(
        self,
        data: dict,
        artificial: float = 0.2,
        schedule: str = "dynamic",
        seed: int = 0,
        eval_batch_size: int = 128,
        missing_unit: str = "value",
        block_length: int = 7,
    ) -> None:
        if missing_unit not in IMPUTATION_UNITS:
            raise ValueError(f"missing_unit must be one of {IMPUTATION_UNITS}, got {missing_unit!r}")
        self.data, self.artificial, self.seed, self.eval_batch_size = data, artificial, seed, eval_batch_size
        self.missing_unit, self.block_length = missing_unit, block_length
        hidden = data.get("variables_hidden")
        self.variables = None if hidden is None else torch.as_tensor(np.asarray(hidden, dtype=bool))
        self.scaler: Standardizer = data["scaler"]
        self.std = {k: torch.from_numpy(self.scaler.transform(data[k])).float() for k in ("train", "valid", "test")}
        features, window = data["train"].shape[2], data["train"].shape[1]
        # one uniform per variable and step; "mixed" draws one more row, which picks each window's unit
        self.schedule = Schedule(schedule, features + (missing_unit == "mixed"), seed, window)

    def num_train(self) -> int:
        return self.std["train"].shape[0]

    def train_batch(self, indices: list[int], draw: int):
        truth = self.std["train"][indices]  # (B, L, F)
        uniforms = self.schedule.uniforms(indices, truth.shape[1], draw)
        inputs = hide_values(truth, self.artificial, uniforms, self.missing_unit, self.block_length, self.variables)
        return inputs, Mask.from_nan(inputs), truth

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def loss(self, model, batch) -> torch.Tensor:
        inputs, mask, truth = batch
        observed = ~torch.isnan(truth)
        hidden = observed & ~mask.observed_values  # artificially hidden: the imputation target
        net = getattr(model, "module", model)  # DDP wraps the model
        if net.interval_head is None:
            pred = model(inputs, mask).float()
            return masked_mae(pred, truth, hidden) + masked_mae(pred, truth, mask.observed_values)
        pred, lower, upper = (t.float() for t in net.forward_with_interval(inputs, mask))
        low_q, high_q = net.quantiles
        # the point as before, plus the pinball loss of both quantiles on the hidden values
        return (
            masked_mae(pred, truth, hidden)
            + masked_mae(pred, truth, mask.observed_values)
            + pinball_loss(lower, truth, hidden, low_q)
            + pinball_loss(upper, truth, hidden, high_q)
        )

    def predict(self, model, split: str) -> np.ndarray:
        """Imputed windows of ``split`` in original units, with its held-out values hidden from the model."""
        windows = self.std[split].clone()
        if f"{split}_holdout" in self.data:
            windows[torch.from_numpy(self.data[f"{split}_holdout"])] = float("nan")
        was = model.training
        model.eval()
        outs, device = [], device_of(model)
        with torch.no_grad():
            for start in range(0, windows.shape[0], self.eval_batch_size):
                x = windows[start : start + self.eval_batch_size].to(device)  # (b, L, F)
                outs.append(model.impute(x, Mask.from_nan(x)).float().cpu())
        model.train(was)
        return self.scaler.inverse(torch.cat(outs).numpy())

    def predict_with_intervals(
        self, model, split: str, also_hide: Optional[np.ndarray] = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(filled, lower, upper) windows of ``split`` in original units, its held-out values hidden
        (and the cells of ``also_hide``, bool[N, L, F], when given); the model's raw quantile interval."""
        windows = self.std[split].clone()
        hidden = self.data[f"{split}_holdout"] if also_hide is None else self.data[f"{split}_holdout"] | also_hide
        windows[torch.from_numpy(hidden)] = float("nan")
        was = model.training
        model.eval()
        parts, device = ([], [], []), device_of(model)
        with torch.no_grad():
            for start in range(0, windows.shape[0], self.eval_batch_size):
                x = windows[start : start + self.eval_batch_size].to(device)  # (b, L, F)
                for part, out in zip(parts, model.impute_with_interval(x, Mask.from_nan(x))):
                    part.append(out.float().cpu())
        model.train(was)
        point, lower, upper = (self.scaler.inverse(torch.cat(part).numpy().astype(np.float64)) for part in parts)
        return point, lower, upper

    def calibrate(self, model, split: str = "valid") -> float:
        """The conformal factor of ``model``'s interval on the held-out values of ``split``."""
        point, lower, upper = self.predict_with_intervals(model, split)
        scored = self.data[f"{split}_holdout"]
        return conformal_scale(point, lower, upper, self.data[split], scored, model.config.interval)

    def calibrate_on_input(
        self, model, split: str = "test", pattern: str = "values", fraction: float = 0.1, seed: int = CALIBRATION_SEED
    ) -> tuple[float, int]:
        """(conformal factor, number of calibration values) from ``split``'s own input: a seeded
        ``fraction`` of the values the model sees there (observed, not held out) is hidden as well, in
        ``pattern`` (on the ``--hide-variables`` only, when the data has them), and the interval is
        calibrated on them. The held-out truth is never read. See :func:`calibration_cells`."""
        windows = np.where(self.data[f"{split}_holdout"], np.nan, self.data[split])  # what the model sees
        cells = calibration_cells(windows, pattern, fraction, seed, self.data.get("variables_hidden"))
        point, lower, upper = self.predict_with_intervals(model, split, also_hide=cells)
        scale = conformal_scale(point, lower, upper, self.data[split], cells, model.config.interval)
        return scale, int(cells.sum())

    def evaluate(self, model, split: str = "valid", interval_scale: float = 1.0) -> dict:
        """Point metrics on the held-out values of ``split``; with an interval head, the coverage of the
        interval widened by ``interval_scale`` (and, when that is not 1, of the raw one as ``raw_*``)."""
        scored = self.data[f"{split}_holdout"]
        metrics = imputation_metrics(self.predict(model, split), self.data[split], scored)
        if getattr(model, "interval_head", None) is not None:
            point, lower, upper = self.predict_with_intervals(model, split)
            truth, interval = self.data[split], model.config.interval
            widened = widen_interval(point, lower, upper, interval_scale)
            metrics.update(interval_metrics(*widened, truth, scored, interval))
            if interval_scale != 1.0:
                raw = interval_metrics(lower, upper, truth, scored, interval)
                metrics.update({f"raw_{k}": v for k, v in raw.items() if k != "interval"})
                metrics["interval_scale"] = interval_scale
        return {**metrics, "score": -metrics["mae"]}

    def per_variable(self, model, split: str = "test") -> dict:
        """{variable: {"n", "mae" (the data's units), "mae_std" (in training standard deviations, comparable
        across variables), and each baseline's "mae"}} on the held-out values of ``split``."""
        scored = self.data[f"{split}_holdout"]  # (N, L, F)
        truth = self.data[split]
        windows = np.where(scored, np.nan, truth)
        predictions = {"dynmask": self.predict(model, split)}
        for name, fn in (("mean", impute_mean), ("locf", impute_locf), ("linear", impute_linear)):
            predictions[name] = fn(windows.copy(), self.scaler.mean)
        names = self.data.get("column_names") or [str(j) for j in range(truth.shape[-1])]
        out = {}
        for j, name in enumerate(names):
            keep = scored[..., j]
            if not keep.any():
                continue
            errors = {k: float(np.abs(p[..., j][keep] - truth[..., j][keep]).mean()) for k, p in predictions.items()}
            out[name] = {
                "n": int(keep.sum()),
                "mae": errors.pop("dynmask"),
                **{f"{k}_mae": v for k, v in errors.items()},
            }
            out[name]["mae_std"] = out[name]["mae"] / float(self.scaler.std[j])
        return out

    def baselines(self, split: str = "test") -> dict:
        """Mean, LOCF and linear interpolation on exactly the same held-out values."""
        windows = self.data[split].copy()
        scored = self.data[f"{split}_holdout"]
        windows[scored] = np.nan
        mean = self.scaler.mean
        return {
            name: imputation_metrics(fn(windows, mean), self.data[split], scored)
            for name, fn in (("mean", impute_mean), ("locf", impute_locf), ("linear", impute_linear))
        }

    def save_assets(self, folder: Path) -> None:
        (Path(folder) / "series.json").write_text(
            json.dumps(
                {
                    "scaler": self.scaler.to_dict(),
                    "window": self.data["window"],
                    "columns": self.data["kept_columns"],
                    "column_names": self.data.get("column_names"),
                    "dropped_names": self.data.get("dropped_names", []),
                    "train_min": self.data.get("train_min"),
                    "train_max": self.data.get("train_max"),
                    "train_capped": self.data.get("train_capped"),
                }
            )
        )


def train_imputer(
    data: dict,
    output: Path,
    model_config: dict,
    train_config,
    *,
    artificial: float = 0.2,
    schedule: str = "dynamic",
    resume: bool = False,
    overwrite: bool = False,
    missing_unit: str = "value",
    block_length: int = 7,
) -> dict:
    """Train, then score the best model and the simple baselines on the test split's held-out values.

    ``missing_unit`` / ``block_length``: the shape of the artificial training holes (single values,
    blocks of consecutive steps of one variable, a variable for a whole window, or a mix of the three;
    see :func:`hide_values`)."""
    import time

    start_run_folder(output, resume=resume, overwrite=overwrite)
    task = ImputationTask(
        data, artificial, schedule, seed=train_config.seed, missing_unit=missing_unit, block_length=block_length
    )
    config = SeriesConfig(num_features=data["train"].shape[2], max_len=max(data["window"], 8), **model_config)
    torch.manual_seed(train_config.seed)
    model = SeriesImputer(config)
    run_config = {
        "task": "impute",
        "model": config.to_dict(),
        "train": asdict(train_config),
        "artificial": artificial,
        "schedule": schedule,
        "missing_unit": missing_unit,
        "block_length": block_length,
        "data": {
            **{k: data[k] for k in ("ranges", "window", "stride", "holdout", "seed", "dropped")},
            "holdout_pattern": data.get("holdout_pattern", "values"),
            "hide_variables": data.get("hide_variables"),
            "column_names": data.get("column_names"),
            "fingerprint": fingerprint(*(data[k] for k in ("train", "valid", "test"))),
        },
    }
    trainer = Trainer(model, task, train_config, output, run_config)
    t0 = time.perf_counter()
    summary = trainer.fit(resume=resume)
    summary["train_seconds"] = time.perf_counter() - t0
    if trainer.main:
        best = model
        best_dir = Path(output) / "best"
        if (best_dir / "model.safetensors").exists():
            best = load_imputer(output).model
        # never behind the simple baselines on validation: if one wins there, it fills instead (and says so)
        valid_model, valid_baselines = task.evaluate(best, "valid"), task.baselines("valid")
        fallback = choose_fallback(valid_model, valid_baselines)
        summary["fallback"] = fallback
        summary["valid"] = {"dynmask": valid_model, **valid_baselines}
        # intervals a user can trust: widen (or narrow) the learned quantiles to cover on validation
        scale = 1.0
        if best.interval_head is not None:
            try:
                scale = task.calibrate(best, "valid")
            except TooFewToCalibrate as e:
                print(f"note: intervals left uncalibrated (the model's raw quantiles): {e}", flush=True)
        if best_dir.exists():
            (best_dir / FALLBACK_FILE).write_text(
                json.dumps({"fallback": fallback, "valid": summary["valid"]}, indent=2)
            )
            if best.interval_head is not None:
                write_calibration(best_dir, scale, best.config.interval, valid_model)  # 1.0: uncalibrated
            write_manifest(best_dir)
        summary["test"] = task.evaluate(best, "test", interval_scale=scale)
        if best.interval_head is not None:  # what `impute --intervals` does by default: calibrate on the input
            summary["test"]["input_calibration"] = input_calibrated_metrics(task, best, data)
        summary["baselines"] = task.baselines("test")
        summary["per_variable"] = task.per_variable(best, "test")
        np.save(Path(output) / "test_holdout_mask.npy", data["test_holdout"])
        chosen = summary["test"] if fallback is None else summary["baselines"][fallback]
        (Path(output) / "test_results.json").write_text(
            json.dumps(
                {
                    "dynmask": summary["test"],
                    **summary["baselines"],
                    "dynmask_or_fallback": {**chosen, "fallback": fallback},
                    "per_variable": summary["per_variable"],
                },
                indent=2,
            )
        )
        if fallback is not None:
            print(
                f"note: {fallback} beat the model on validation values (MAE {valid_baselines[fallback]['mae']:.4g} "
                f"vs {valid_model['mae']:.4g}): `dynmask impute` will fill with {fallback} and say so",
                flush=True,
            )
    return summary


def calibrate_run(folder: Path, task: "ImputationTask") -> float:
    """Calibrate a finished imputation run's interval on ``task``'s validation held-out values (for runs
    trained before dynmask calibrated): writes ``calibration.json`` into its ``best/`` and re-signs it."""

    model, best_dir = load_imputer_model(folder)
    if model.interval_head is None:
        raise ValueError(f"{folder} was trained without intervals; nothing to calibrate")
    scale = task.calibrate(model, "valid")
    write_calibration(best_dir, scale, model.config.interval, task.evaluate(model, "valid"))
    write_manifest(best_dir)
    return scale


def input_calibrated_metrics(task: "ImputationTask", model, data: dict) -> Optional[dict]:
    """Test interval metrics with the factor calibrated on the test input itself (the held-out pattern's
    cells hidden), or None when the input holds too few values to calibrate on."""
    try:
        scale, n = task.calibrate_on_input(model, "test", data.get("holdout_pattern", "values"))
    except TooFewToCalibrate:
        return None
    point, lower, upper = task.predict_with_intervals(model, "test")
    widened = widen_interval(point, lower, upper, scale)
    metrics = interval_metrics(*widened, data["test"], data["test_holdout"], model.config.interval)
    return {"scale": scale, "n": n, **metrics}
