"""``dynmask train forecast``: arguments and the glue to the task (``dynmask forecast`` writes the next rows
of a CSV with the trained run)."""

from __future__ import annotations

import argparse

from ...data.series import chronological_split
from ...errors import DataError
from ...missingness import TRAINING_HOLES
from ..arguments import (
    HOLDOUT,
    POSITIVE,
    SHARE,
    add_optimisation_args,
    add_series_data_args,
    add_series_model_args,
    number,
    read_series_table,
    series_model,
    train_config,
)
from ..report import forecast_report
from .data import MIN_VALID_FORECASTS, default_context, prepare_forecast_data, season_of
from .folds import DEFAULT_FOLDS
from .task import train_forecaster

HORIZON = number(int, 1, 10_000)


def add_arguments(q) -> None:
    """The flags of ``dynmask train forecast``."""
    add_series_data_args(q)
    q.add_argument("--horizon", type=HORIZON, required=True, help="steps to forecast after the last row")
    q.add_argument(
        "--context",
        type=number(int, 2, 65_536),
        default=None,
        help="history steps the model reads (default: four seasons or four horizons, at least 16)",
    )
    q.add_argument(
        "--season",
        type=POSITIVE,
        default=None,
        help="steps per cycle, for the seasonal baselines and MASE (default: from the time column: 7 for days, "
        "24 for hours, 12 for months; 1 otherwise)",
    )
    q.add_argument("--stride", type=POSITIVE, default=1, help="stride of training windows (default: %(default)s)")
    q.add_argument(
        "--history-holes",
        type=SHARE,
        default=0.2,
        help="share of observed history values hidden per training batch, so forecasts hold up on thinner "
        "histories (default: %(default)s)",
    )
    q.add_argument(
        "--missing-process",
        choices=("values", "blocks", "variables", "mixed"),
        default="mixed",
        help="shape of those training holes (default: %(default)s)",
    )
    q.add_argument("--block-length", type=number(int, 1, 10_000), default=7, help="(default: %(default)s)")
    q.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="forecast a learned correction to the last observed value (default: %(default)s)",
    )
    q.add_argument(
        "--normalize",
        choices=("none", "window"),
        default="window",
        help="window: read each history relative to its observed mean and spread (default: %(default)s)",
    )
    q.add_argument(
        "--intervals",
        type=HOLDOUT,
        default=0.9,
        help="learn a prediction interval of this level, calibrated by split conformal on held-out forecasts "
        "(see --calibration-folds; default: %(default)s)",
    )
    q.add_argument(
        "--calibration-folds",
        type=number(int, 0, 20),
        default=None,
        help="also calibrate the interval on the out-of-fold forecasts of this many models, each trained "
        "without one block of the training history (blocked cross-validation; 0: validation alone; default: "
        f"{DEFAULT_FOLDS} when the validation range holds fewer than {MIN_VALID_FORECASTS} forecasts, else 0)",
    )
    add_series_model_args(q, 64)
    add_optimisation_args(q, epochs=30, lr=1e-3)
    # an epoch of at least 100 steps (neuralforecast validates every 100 steps by default): a short series
    # gives a few batches a pass, and 30 one-pass epochs stopped training while validation still improved
    q.set_defaults(batch_size=32, patience=5, min_epoch_steps=100)


def train(args) -> dict:
    if getattr(args, "id_column", None) is not None:
        raise DataError(
            "--id-column: forecasting reads a wide file (one row per time); pivot the panel to one column per "
            "entity and variable, or impute it with `dynmask train impute --id-column`"
        )
    frame = read_series_table(args)
    season = args.season or season_of(list(frame.index))
    (a, b) = chronological_split(len(frame))["train"]
    context = args.context or default_context(args.horizon, season, b - a)
    print(
        f"{len(frame)} steps x {frame.shape[1]} variables, {float(frame.isna().to_numpy().mean()):.1%} missing; "
        f"season {season}, context {context}, horizon {args.horizon}",
        flush=True,
    )
    data = prepare_forecast_data(
        frame.to_numpy(),
        args.horizon,
        context,
        season=season,
        names=[str(c) for c in frame.columns],
        stride=args.stride,
    )
    if data["dropped_names"]:
        print(f"left out, never observed in the training range: {data['dropped_names'][:10]}", flush=True)
    model = series_model(args)
    model.update(residual=args.residual, residual_gate=args.residual, normalize=args.normalize)
    if args.intervals:
        model["interval"] = args.intervals
    summary = train_forecaster(
        data,
        args.output,
        model,
        train_config(args),
        history_holes=args.history_holes,
        missing_unit=TRAINING_HOLES[args.missing_process],
        block_length=args.block_length,
        resume=args.resume,
        overwrite=args.overwrite,
        calibration_folds=args.calibration_folds,
    )
    print(forecast_report(summary, args.output))
    return summary
