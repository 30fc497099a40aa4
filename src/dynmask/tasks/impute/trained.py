"""A trained imputer as loaded from its run folder (or an exported graph's assets): the model, its scaler,
window and columns, the fallback chosen on validation, and its interval calibration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ...data.series import (
    Standardizer,
)
from ...models.series import SeriesConfig, SeriesImputer
from ...training import load_run_model
from ...training.run_folders import RunFolderError, config_from_dict, read_json


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
    train_capped: Optional[np.ndarray] = None  # bool per variable: its maximum is a cap many values sit at
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


def read_fallback(folder: Path, baselines: tuple) -> Optional[str]:
    """The baseline a series run's ``best/fallback.json`` names (one of ``baselines``), or None."""
    if not (Path(folder) / FALLBACK_FILE).exists():
        return None
    fallback = read_json(Path(folder) / FALLBACK_FILE).get("fallback")
    if fallback not in (None, *baselines):
        raise RunFolderError(
            f"{Path(folder) / FALLBACK_FILE}: unknown fallback {fallback!r}; expected one of {baselines}"
        )
    return fallback


def read_calibration_scale(folder: Path) -> float:
    """The conformal factor a series run's ``best/calibration.json`` holds (1.0 without the file)."""
    if not (Path(folder) / CALIBRATION_FILE).exists():
        return 1.0
    scale = read_json(Path(folder) / CALIBRATION_FILE).get("scale")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (0 < scale < float("inf")):
        raise RunFolderError(
            f"{Path(folder) / CALIBRATION_FILE}: scale must be a positive finite number, got {scale!r}"
        )
    return float(scale)


def choose_fallback(model_metrics: dict, baseline_metrics: dict) -> Optional[str]:
    """The candidate to use instead of the model when one has a lower validation MAE, else None (a simple
    baseline; for a forecaster also the model combined with one, ``forecast/combination.py``)."""
    name, best = min(baseline_metrics.items(), key=lambda kv: kv[1]["mae"])
    return name if best["mae"] < model_metrics["mae"] else None


def load_imputer_model(folder: Path) -> tuple[SeriesImputer, Path]:
    """(model, the folder its weights came from: the run's best/ or the run) of an imputation run,
    checked as untrusted input."""

    model, folder, _ = load_run_model(
        folder, lambda c: SeriesImputer(config_from_dict(SeriesConfig, c, "config.json")), expect_task="impute"
    )
    return model, folder


def load_imputer(folder: Path) -> TrainedImputer:
    """An imputation run's folder (or its best/), checked as untrusted input."""
    model, folder = load_imputer_model(folder)
    return imputer_from_assets(model, folder, model.config.num_features, model.config.max_len)


def imputer_from_assets(model, folder: Path, features: Optional[int] = None, max_len: Optional[int] = None):
    """A :class:`TrainedImputer` around ``model`` (a :class:`SeriesImputer` or an exported runner) from the
    ``series.json`` (and ``fallback.json``) in ``folder``, checked against ``features`` variables and
    windows of at most ``max_len`` steps when given."""

    folder = Path(folder)
    assets = read_json(folder / "series.json")
    try:
        scaler = Standardizer(
            np.array(assets["scaler"]["mean"], dtype=np.float64), np.array(assets["scaler"]["std"], dtype=np.float64)
        )
        window, columns = int(assets["window"]), list(assets["columns"])
        names = assets.get("column_names")
        lo, hi = assets.get("train_min"), assets.get("train_max")
        capped = assets.get("train_capped")
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
    fallback, scale = read_fallback(folder, BASELINES), read_calibration_scale(folder)
    return TrainedImputer(
        model,
        scaler,
        window,
        columns,
        names,
        list(assets.get("dropped_names") or []),
        as_array(lo),
        as_array(hi),
        None if capped is None or len(capped) != features else np.array(capped, dtype=bool),
        fallback,
        scale,
    )
