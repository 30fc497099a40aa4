"""Out-of-fold forecasts that calibrate a short series' interval (blocked cross-validation).

A short series' validation range holds a few forecasts from one stretch of time (US change: 18 quarters,
2003-2007), so a conformal factor measured there knows only that stretch: calm validation years shrink
the interval, and it is too narrow when the test years are not calm. With ``folds`` > 0 the training
windows are cut into ``folds`` contiguous blocks in time; for each block a model is trained without it
(and without every window that overlaps it in time) and forecasts the block's non-overlapping windows.
These out-of-fold forecasts span the whole training history; pooled with the validation forecasts they
calibrate the factors (``regimes.validate_regimes``), as statsforecast and neuralforecast calibrate
their conformal intervals on cross-validation windows, and as CV+ does (Barber et al. 2021). Blocked
cross-validation of a forecaster that reads only its history is sound (Bergmeir, Hyndman & Koo 2018).

The point forecast and the fallback are untouched: they are the main model's, chosen on validation.
Each fold model trains with the main model's settings, seed and validation range (for early stopping)
in ``RUN/calibration/fold{k}of{folds}``, a run folder of its own that ``--resume`` resumes.
Masks: NaN in a value array = missing.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ...models.series import SeriesConfig, SeriesImputer
from ...training import Trainer
from ...training.run_folders import fingerprint

__all__ = ["DEFAULT_FOLDS", "auto_folds", "fold_blocks", "train_fold_models"]

DEFAULT_FOLDS = 4


def auto_folds(data: dict, intervals: bool) -> int:
    """The folds ``--calibration-folds`` defaults to: :data:`DEFAULT_FOLDS` for a model with an interval
    whose validation range holds too few non-overlapping forecasts to validate on them (it validates from
    a rolling origin: ``data.valid_step`` < horizon), else 0 (validation alone)."""
    return DEFAULT_FOLDS if intervals and data.get("valid_step", data["horizon"]) < data["horizon"] else 0


def fold_blocks(n: int, width: int, horizon: int, stride: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kept, held) int arrays for each of ``folds`` contiguous blocks of the ``n`` training windows
    (``width`` steps each, one every ``stride`` steps): ``held``, the block's windows whose horizons do not
    overlap; ``kept``, every window that shares no step with any window of the block. Blocks that would
    keep or hold nothing are left out."""
    edges = np.linspace(0, n, folds + 1).astype(int)
    starts = np.arange(n) * stride  # first step of each window
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        first, end = starts[lo], starts[hi - 1] + width  # the block covers steps [first, end)
        kept = np.flatnonzero((starts + width <= first) | (starts >= end))
        held = np.arange(lo, hi, max(1, math.ceil(horizon / stride)))
        if len(kept) and len(held):
            out.append((kept, held))
    return out


def train_fold_models(
    data: dict,
    output: Path,
    config: SeriesConfig,
    train_config,
    run_config: dict,
    folds: int,
    task_kwargs: dict,
    resume: bool = False,
) -> list[tuple[SeriesImputer, np.ndarray]]:
    """Train one model per block of :func:`fold_blocks` on the other windows (in ``output/calibration/
    fold{k}of{folds}``) and return (its best model, the training windows it never saw, original units (N, C + H, F))
    for each. Every process of a ``torchrun`` job calls it (the folds train data-parallel, as the main
    model does)."""
    from .task import ForecastTask
    from .trained import load_forecaster

    train = data["train"]
    blocks = fold_blocks(train.shape[0], data["context"] + data["horizon"], data["horizon"], data["stride"], folds)
    out, t0 = [], time.perf_counter()
    for k, (kept, held) in enumerate(blocks):
        folder = Path(output) / "calibration" / f"fold{k + 1}of{folds}"
        fold_data = dict(data, train=train[kept])
        task = ForecastTask(fold_data, seed=train_config.seed, **task_kwargs)
        torch.manual_seed(train_config.seed)
        model = SeriesImputer(config)
        fold_run = {
            **run_config,
            "calibration_fold": {"fold": k, "folds": folds, "held": held.tolist()},
            "data": {**run_config["data"], "fingerprint": fingerprint(train[kept], data["valid"], train[held])},
        }
        trainer = Trainer(model, task, train_config, folder, fold_run)
        trainer.fit(resume=resume and (folder / "config.json").exists())
        if trainer.main and (folder / "best" / "model.safetensors").exists():  # rank 0 wrote it; it alone reads it
            model = load_forecaster(folder).model
        out.append((model.eval(), train[held]))
        if trainer.main and train_config.progress:
            print(f"calibration fold {k + 1}/{len(blocks)}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out
