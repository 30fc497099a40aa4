"""Time-series tasks with NaN: classification of variable-length series, and imputation.

Masks: True = observed. Standardisation uses training statistics only; results come back in the
data's own units. Test-time holes (classification) and held-out values (imputation) are seeded, so
every method is scored on the same ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.series import (
    HOLDOUT_PATTERNS,
    SeriesSplits,
    Standardizer,
    chronological_split,
    holdout_mask,
    make_windows,
    pad_series,
    window_starts,
)
from ..devices import device_of, to_device
from ..errors import DataError, TooFewToCalibrate
from ..extras import require as _require
from ..losses import masked_mae
from ..masks import Mask
from ..missingness import Schedule
from ..models.series import SeriesClassifier, SeriesConfig, SeriesImputer
from .common import TEST_SEED, accuracy_and_macro_f1

__all__ = [
    "SeriesClassificationTask",
    "ImputationTask",
    "imputation_metrics",
    "impute_mean",
    "impute_locf",
    "impute_linear",
    "prepare_imputation_data",
    "load_imputer",
    "impute_frame",
    "impute_csv",
    "match_columns",
    "TrainedImputer",
]

_OFFSET = {"train": 0, "valid": 1, "test": 2}


MISSING_UNITS = ("value", "step")  # classification's test and training holes
IMPUTATION_UNITS = ("value", "block", "variable", "mixed")  # the imputer's artificial training holes
# the command line's --missing-process names -> the imputer's units (see _hide)
TRAINING_HOLES = {"values": "value", "blocks": "block", "variables": "variable", "mixed": "mixed"}


def _hide(
    x: torch.Tensor,
    rate: float,
    uniforms: torch.Tensor,
    unit: str = "value",
    block_length: int = 7,
    variables: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``x`` float[B, L, F] with a share ``rate`` of its observed values set to NaN (uniforms [F, B, L]).

    ``unit="value"``: each value is hidden on its own draw (a step becomes a missing position only
    when all its features are hidden); ``"step"``: whole steps are hidden (every feature together,
    one draw per step), e.g. a sensor box that drops out, so the step is a missing position;
    ``"block"``: a variable is hidden for ``block_length`` consecutive steps (a sensor that fails
    for days), blocks starting with the probability that covers ``rate`` of the steps;
    ``"variable"``: a variable is hidden for the whole window (a station that is down throughout),
    with probability ``rate`` per window and variable; ``"mixed"``: each window takes one of
    value / block / variable at random (uniforms then float[F + 1, B, L]: the last row picks).
    ``variables`` (bool[F]): only these variables are hidden. ``unit`` is checked by the caller."""
    if rate == 0:
        return x
    if unit == "mixed":
        pick = (uniforms[-1, :, 0] * 3).long().clamp(max=2)  # (B,): 0 value, 1 block, 2 variable
        each = [_hide(x, rate, uniforms[:-1], u, block_length, variables) for u in ("value", "block", "variable")]
        return torch.stack(each)[pick, torch.arange(x.shape[0])]  # (3, B, L, F) -> (B, L, F)
    if unit == "step":
        draws = uniforms[0].unsqueeze(-1)  # (B, L, 1): one draw per step, shared by its features
    elif unit == "variable":
        draws = uniforms[:, :, :1].permute(1, 2, 0)  # (F, B, 1) -> (B, 1, F): one draw per window and variable
    else:
        draws = uniforms.permute(1, 2, 0)  # (F, B, L) -> (B, L, F)
    if unit == "block":
        k = max(1, int(block_length))
        starts = (draws < 1 - (1 - rate) ** (1 / k)).float().transpose(1, 2)  # (B, F, L): a block starts here
        padded = F.pad(starts, (k - 1, 0))  # (B, F, L + k - 1)
        chosen = padded.unfold(-1, k, 1).amax(-1).transpose(1, 2) > 0  # (B, L, F): a start in the last k steps
    else:
        chosen = draws < rate
    hidden = chosen & ~torch.isnan(x)  # (B, L, F)
    if variables is not None:
        hidden = hidden & variables.to(hidden.device)
    return torch.where(hidden, torch.full_like(x, float("nan")), x)


# ---------------------------------------------------------------------------------------- classification
class SeriesClassificationTask:
    """Classify series with NaN; ``train_missing`` / test rates hide a share of the observed values,
    value by value or whole steps at a time (``missing_unit``, see :func:`_hide`)."""

    def __init__(
        self,
        splits: SeriesSplits,
        train_missing: float = 0.0,
        schedule: str = "dynamic",
        seed: int = 0,
        eval_batch_size: int = 128,
        missing_unit: str = "value",
    ) -> None:
        if missing_unit not in MISSING_UNITS:
            raise ValueError(f"missing_unit must be one of {MISSING_UNITS}, got {missing_unit!r}")
        self.splits, self.seed, self.train_missing, self.missing_unit = splits, seed, train_missing, missing_unit
        self.eval_batch_size = eval_batch_size
        self.max_len = max(len(x) for name in ("train", "valid", "test") for x, _ in splits.split(name))
        self.scaler = Standardizer.fit(np.concatenate([x for x, _ in splits.train]))
        self.data = {
            name: [self.scaler.transform(x) for x, _ in splits.split(name)] for name in ("train", "valid", "test")
        }
        self.labels = {name: torch.tensor([y for _, y in splits.split(name)]) for name in ("train", "valid", "test")}
        self.schedule = Schedule(schedule, splits.num_features, seed, self.max_len)
        self.valid_rate = train_missing

    def num_train(self) -> int:
        return len(self.data["train"])

    def _batch(self, split: str, indices: Sequence[int], rate: float, schedule: Optional[Schedule], draw: int):
        x, _ = pad_series([self.data[split][i] for i in indices])  # (B, L, F), NaN = missing / padding
        lengths = torch.tensor([len(self.data[split][i]) for i in indices])
        if rate > 0:
            x = _hide(x, rate, schedule.uniforms(indices, x.shape[1], draw), self.missing_unit)
        return x, Mask.from_nan(x, lengths=lengths), self.labels[split][list(indices)]

    def train_batch(self, indices: list[int], draw: int):
        return self._batch("train", indices, self.train_missing, self.schedule, draw)

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def loss(self, model, batch) -> torch.Tensor:
        x, mask, labels = batch
        return F.cross_entropy(model(x, mask).float(), labels)

    def evaluate(self, model, split: str = "valid", rate: Optional[float] = None) -> dict:
        rate = self.valid_rate if rate is None else rate
        schedule = Schedule("static", self.splits.num_features, TEST_SEED + _OFFSET[split], self.max_len)
        was = model.training
        model.eval()
        preds, loss, n = [], 0.0, len(self.data[split])
        device = device_of(model)
        with torch.no_grad():
            for start in range(0, n, self.eval_batch_size):
                idx = list(range(start, min(n, start + self.eval_batch_size)))
                x, mask, labels = to_device(self._batch(split, idx, rate, schedule, 0), device)
                logits = model(x, mask).float()
                loss += float(F.cross_entropy(logits, labels, reduction="sum"))
                preds.append(logits.argmax(-1).cpu())
        model.train(was)
        acc, f1 = accuracy_and_macro_f1(torch.cat(preds), self.labels[split], len(self.splits.labels))
        return {
            "accuracy": acc,
            "macro_f1": f1,
            "loss": loss / max(1, n),
            "score": acc,
            "missing_rate": rate,
            "missing_unit": self.missing_unit,
        }

    def save_assets(self, folder: Path) -> None:
        (Path(folder) / "series.json").write_text(
            json.dumps({"labels": self.splits.labels, "scaler": self.scaler.to_dict()})
        )


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


def _pinball(pred: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor, q: float) -> torch.Tensor:
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
    out = {
        "scaler": scaler,
        "ranges": ranges,
        "train_min": train_min.tolist(),
        "train_max": train_max.tolist(),
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
                wins, holdout, seed + _OFFSET[name], pattern=holdout_pattern, variables=variables
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
        inputs = _hide(truth, self.artificial, uniforms, self.missing_unit, self.block_length, self.variables)
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
            + _pinball(lower, truth, hidden, low_q)
            + _pinball(upper, truth, hidden, high_q)
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
                }
            )
        )


@dataclass
class TrainedImputer:
    """An imputation run, loaded: the model and what it needs to read a user's file."""

    model: SeriesImputer
    scaler: Standardizer
    window: int
    columns: list  # positions of the trained variables in the training file
    column_names: Optional[list] = None  # their names (runs before names were saved: None)
    dropped_names: list = field(default_factory=list)  # variables dropped as never observed in training
    train_min: Optional[np.ndarray] = None  # observed range of each trained variable in the training split
    train_max: Optional[np.ndarray] = None
    fallback: Optional[str] = None  # a simple baseline that beat the model on validation: it fills instead
    interval_scale: float = 1.0  # conformal factor of the prediction interval, from validation (calibration.json)


FALLBACK_FILE = "fallback.json"
CALIBRATION_FILE = "calibration.json"
BASELINES = ("mean", "locf", "linear")


def write_calibration(folder: Path, scale: float, interval: float, valid_metrics: dict) -> None:
    """``calibration.json`` in a run's ``best/``: the conformal factor ``impute --intervals`` applies."""
    record = {
        "method": "split conformal (scaled quantile offsets), validation held-out values",
        "interval": interval,
        "scale": scale,
        "n": valid_metrics.get("n"),
        "valid_raw_coverage": valid_metrics.get("coverage"),
    }
    (Path(folder) / CALIBRATION_FILE).write_text(json.dumps(record, indent=2))


def calibrate_run(folder: Path, task: "ImputationTask") -> float:
    """Calibrate a finished imputation run's interval on ``task``'s validation held-out values (for runs
    trained before dynmask calibrated): writes ``calibration.json`` into its ``best/`` and re-signs it."""
    from ..training.run_folders import write_manifest

    model, best_dir = _load_imputer_model(folder)
    if model.interval_head is None:
        raise ValueError(f"{folder} was trained without intervals; nothing to calibrate")
    scale = task.calibrate(model, "valid")
    write_calibration(best_dir, scale, model.config.interval, task.evaluate(model, "valid"))
    write_manifest(best_dir)
    return scale


def _input_calibrated_metrics(task: "ImputationTask", model, data: dict) -> Optional[dict]:
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


def choose_fallback(model_metrics: dict, baseline_metrics: dict) -> Optional[str]:
    """The simple baseline to use instead of the model when one has a lower validation MAE, else None."""
    name, best = min(baseline_metrics.items(), key=lambda kv: kv[1]["mae"])
    return name if best["mae"] < model_metrics["mae"] else None


def _load_imputer_model(folder: Path) -> tuple[SeriesImputer, Path]:
    """(model, the folder its weights came from: the run's best/ or the run) of an imputation run,
    checked as untrusted input."""
    from ..training import load_run_model
    from ..training.run_folders import config_from_dict

    model, folder, _ = load_run_model(
        folder, lambda c: SeriesImputer(config_from_dict(SeriesConfig, c, "config.json")), expect_task="impute"
    )
    return model, folder


def load_imputer(folder: Path) -> TrainedImputer:
    """An imputation run's folder (or its best/), checked as untrusted input."""
    model, folder = _load_imputer_model(folder)
    return imputer_from_assets(model, folder, model.config.num_features, model.config.max_len)


def imputer_from_assets(model, folder: Path, features: Optional[int] = None, max_len: Optional[int] = None):
    """A :class:`TrainedImputer` around ``model`` (a :class:`SeriesImputer` or an exported runner) from the
    ``series.json`` (and ``fallback.json``) in ``folder``, checked against ``features`` variables and
    windows of at most ``max_len`` steps when given."""
    from ..training.run_folders import RunFolderError, read_json

    folder = Path(folder)
    assets = read_json(folder / "series.json")
    try:
        scaler = Standardizer(
            np.array(assets["scaler"]["mean"], dtype=np.float64), np.array(assets["scaler"]["std"], dtype=np.float64)
        )
        window, columns = int(assets["window"]), list(assets["columns"])
        names = assets.get("column_names")
        lo, hi = assets.get("train_min"), assets.get("train_max")
    except (KeyError, TypeError, ValueError) as e:
        raise RunFolderError(f"{folder / 'series.json'} is damaged ({type(e).__name__}: {e})") from None
    features = len(columns) if features is None else features
    if (
        scaler.mean.shape != (features,)
        or scaler.std.shape != (features,)
        or len(columns) != features
        or (names is not None and len(names) != features)
        or window < 1
        or (max_len is not None and window > max_len)
    ):
        raise RunFolderError(
            f"{folder / 'series.json'} does not match the model ({features} variables, windows up to {max_len} steps)"
        )
    as_array = lambda v: None if v is None else np.array([np.nan if x is None else x for x in v], dtype=np.float64)
    fallback = None
    if (folder / FALLBACK_FILE).exists():
        fallback = read_json(folder / FALLBACK_FILE).get("fallback")
        if fallback not in (None, *BASELINES):
            raise RunFolderError(
                f"{folder / FALLBACK_FILE}: unknown fallback {fallback!r}; expected one of {BASELINES}"
            )
    scale = 1.0
    if (folder / CALIBRATION_FILE).exists():
        scale = read_json(folder / CALIBRATION_FILE).get("scale")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (0 < scale < float("inf")):
            raise RunFolderError(f"{folder / CALIBRATION_FILE}: scale must be a positive finite number, got {scale!r}")
    return TrainedImputer(
        model,
        scaler,
        window,
        columns,
        names,
        list(assets.get("dropped_names") or []),
        as_array(lo),
        as_array(hi),
        fallback,
        float(scale),
    )


def match_columns(trained: TrainedImputer, file_columns: Sequence[str], source: str = "the file") -> list:
    """The file's column for each trained variable, matched by name (refusing missing and unknown
    columns); by position, when the run predates saved names, if the count matches."""
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


def _fill_windows(
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
    fills = _fill_windows(model, scaler, window, values)
    if clip is not None:
        fills = np.clip(fills, clip[0], clip[1])
    result = frame.astype("float64")
    holes = ~np.isfinite(values)
    result[labels] = np.where(holes, fills, values)  # observed values are never overwritten
    return result


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
    point, lower, upper = _fill_windows(model, scaler, window, np.where(cells, np.nan, values), intervals=True)
    return conformal_scale(point, lower, upper, values, cells, model.config.interval), int(cells.sum())


def _format_fill(value: float) -> str:
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def impute_csv(
    trained: TrainedImputer,
    input_path: Path,
    output_path: Path,
    *,
    time_column: Optional[str] = None,
    clip_to_train_range: bool = False,
    encoding: str = "utf-8",
    plot: Optional[Path] = None,
    plot_variables: Optional[Sequence[str]] = None,
    intervals: bool = False,
    use_model: bool = False,
    calibrate: str = "auto",
    calibration_pattern: str = "values",
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
    Returns counts, and the calibration used."""
    from ..data.series import read_wide_csv, read_wide_text

    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.resolve() == input_path.resolve() or (output_path.exists() and output_path.samefile(input_path)):
        raise DataError(f"--output {output_path} is the --input file; write the filled copy elsewhere")
    values = read_wide_csv(input_path, time_column, encoding)
    text = read_wide_text(input_path, time_column, encoding)
    labels = match_columns(trained, values.columns, str(input_path))
    unknown = [v for v in plot_variables or () if v not in labels]
    if plot is not None and unknown:  # checked before anything is written
        raise DataError(f"--plot-variables {unknown} are not variables the model fills; they are {labels[:10]}")
    clip = None
    if clip_to_train_range:
        if trained.train_min is None:
            raise DataError("--clip-to-train-range: this run predates saved training ranges; retrain it")
        clip = (trained.train_min, trained.train_max)
    numbers = values[labels].to_numpy(dtype=np.float64)  # (T, F)
    holes = ~np.isfinite(numbers)
    if intervals and getattr(trained.model, "interval_head", None) is None:
        raise DataError("--intervals: this imputer was trained without intervals; train it with --intervals 0.9")
    if calibrate not in ("auto", "input", "validation"):
        raise DataError(f"--calibrate must be 'auto', 'input' or 'validation', got {calibrate!r}")
    if calibration_pattern not in HOLDOUT_PATTERNS:
        raise DataError(f"--calibration-pattern must be one of {HOLDOUT_PATTERNS}, got {calibration_pattern!r}")
    if trained.fallback is not None and not use_model:
        if intervals:
            raise DataError(
                f"--intervals: this run fills with its validation fallback ({trained.fallback}), which has no "
                "intervals; add --use-model to fill (and bound) with the model anyway"
            )
        fill = {"mean": impute_mean, "locf": impute_locf, "linear": impute_linear}[trained.fallback]
        fills = fill(numbers[None], trained.scaler.mean.astype(np.float64))[0]  # the whole file as one window
    else:
        scale = trained.interval_scale
        if intervals:
            scale, calibration = _interval_factor(trained, numbers, calibrate, calibration_pattern)
        fills = _fill_windows(trained.model, trained.scaler, trained.window, numbers, intervals, scale)
    if intervals:
        fills, lower, upper = fills
    if clip is not None:
        fills = np.clip(fills, clip[0], clip[1])
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
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".partial")
    out.to_csv(tmp, encoding=encoding)
    os.replace(tmp, output_path)
    left = int(values.drop(columns=labels).isna().to_numpy().sum())
    counts_fallback = None if use_model else trained.fallback
    if plot is not None:
        from ..plots import plot_imputation

        plot_imputation(
            plot,
            list(values.index),
            labels,
            numbers,
            fills,
            lower=lower if intervals else None,
            upper=upper if intervals else None,
            variables=plot_variables,
            title=f"{input_path.name}: observed and filled" + (" (with intervals)" if intervals else ""),
        )
    return {
        "holes": int(holes.sum()),
        "filled": int(holes.sum()),
        "left_in_unknown_columns": left,
        "filled_by": counts_fallback or "model",
        **({"calibration": calibration} if intervals else {}),
    }


def _interval_factor(trained: TrainedImputer, numbers: np.ndarray, calibrate: str, pattern: str) -> tuple[float, dict]:
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


def train_series_classifier(
    splits: SeriesSplits,
    output: Path,
    model_config: dict,
    train_config,
    *,
    train_missing: float = 0.0,
    schedule: str = "dynamic",
    resume: bool = False,
    test_rates: Sequence[float] = (),
    missing_unit: str = "value",
    overwrite: bool = False,
) -> dict:
    from ..training import Trainer, load_run_model, start_run_folder
    from ..training.run_folders import config_from_dict, fingerprint

    start_run_folder(output, resume=resume, overwrite=overwrite)
    task = SeriesClassificationTask(splits, train_missing, schedule, seed=train_config.seed, missing_unit=missing_unit)
    config = SeriesConfig(
        num_features=splits.num_features, num_classes=len(splits.labels), max_len=max(task.max_len, 8), **model_config
    )
    torch.manual_seed(train_config.seed)
    model = SeriesClassifier(config)
    run_config = {
        "task": "classify-series",
        "model": config.to_dict(),
        "train": asdict(train_config),
        "train_missing": train_missing,
        "schedule": schedule,
        "missing_unit": missing_unit,
        "data": {
            "name": splits.name,
            **splits.info,
            "fingerprint": fingerprint(
                *(x for k in ("train", "valid", "test") for x, _ in splits.split(k)),
                [[y for _, y in splits.split(k)] for k in ("train", "valid", "test")],
            ),
        },
    }
    trainer = Trainer(model, task, train_config, output, run_config)
    summary = trainer.fit(resume=resume)
    if test_rates and trainer.main:
        best = model
        if (Path(output) / "best" / "model.safetensors").exists():
            best = load_run_model(
                Path(output) / "best",
                lambda c: SeriesClassifier(config_from_dict(SeriesConfig, c, "config.json")),
                expect_task="classify-series",
            )[0]
        summary["test"] = [task.evaluate(best, "test", r) for r in test_rates]
        (Path(output) / "test_results.json").write_text(json.dumps(summary["test"], indent=2))
    return summary


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
    see :func:`_hide`)."""
    import time

    from ..training import Trainer, start_run_folder
    from ..training.run_folders import fingerprint

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
            from ..training.run_folders import write_manifest

            (best_dir / FALLBACK_FILE).write_text(
                json.dumps({"fallback": fallback, "valid": summary["valid"]}, indent=2)
            )
            if best.interval_head is not None:
                write_calibration(best_dir, scale, best.config.interval, valid_model)  # 1.0: uncalibrated
            write_manifest(best_dir)
        summary["test"] = task.evaluate(best, "test", interval_scale=scale)
        if best.interval_head is not None:  # what `impute --intervals` does by default: calibrate on the input
            summary["test"]["input_calibration"] = _input_calibrated_metrics(task, best, data)
        summary["baselines"] = task.baselines("test")
        np.save(Path(output) / "test_holdout_mask.npy", data["test_holdout"])
        chosen = summary["test"] if fallback is None else summary["baselines"][fallback]
        (Path(output) / "test_results.json").write_text(
            json.dumps(
                {
                    "dynmask": summary["test"],
                    **summary["baselines"],
                    "dynmask_or_fallback": {**chosen, "fallback": fallback},
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
