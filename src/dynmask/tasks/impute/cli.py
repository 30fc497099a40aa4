"""dynmask train impute: arguments and the glue to the task (dynmask impute fills a CSV with the trained run)."""

from __future__ import annotations

import argparse

from ...missingness import TRAINING_HOLES
from ..arguments import (
    HOLDOUT,
    NON_NEGATIVE,
    POSITIVE,
    SHARE,
    add_optimisation_args,
    add_series_data_args,
    add_series_model_args,
    markers,
    number,
    read_series_table,
    series_model,
    train_config,
)
from ..report import impute_report, save_summary
from .task import prepare_imputation_data, train_imputer, window_and_stride


def add_arguments(q) -> None:
    """The flags of ``dynmask train impute``."""
    add_series_data_args(q)
    q.add_argument(
        "--window",
        type=number(int, 2, 65_536),
        default=None,
        help="window length in steps (default: 30, or the length of the validation / test range when that is shorter)",
    )
    q.add_argument(
        "--stride", type=POSITIVE, default=None, help="stride of training windows (default: a sixth of the window)"
    )
    q.add_argument(
        "--holdout",
        type=HOLDOUT,
        default=0.1,
        help="share of observed valid/test values hidden and scored, in (0, 1) (default: %(default)s)",
    )
    q.add_argument(
        "--artificial",
        type=SHARE,
        default=0.3,
        help="share of observed training values hidden per batch, in [0, 1) (default: %(default)s, "
        "the best on PM10 validation values)",
    )
    q.add_argument(
        "--schedule",
        choices=("dynamic", "static"),
        default="dynamic",
        help="artificial holes re-drawn every batch or drawn once per window (default: %(default)s)",
    )
    q.add_argument(
        "--data-seed", type=NON_NEGATIVE, default=0, help="seed of the held-out values (default: %(default)s)"
    )
    q.add_argument(
        "--drop-unobserved",
        action="store_true",
        help="drop variables never observed in the training range (they are listed) instead of stopping",
    )
    q.add_argument(
        "--holdout-pattern",
        choices=("values", "blocks", "variables"),
        default="values",
        help="held-out (scored) values: single values, blocks of 3-14 steps of one variable, or a variable for "
        "a whole window (default: %(default)s)",
    )
    q.add_argument(
        "--missing-process",
        choices=("values", "blocks", "variables", "mixed"),
        default="mixed",
        help="artificial training holes: single values, blocks of --block-length steps of one variable, a "
        "variable for a whole window (--artificial is then the share of variables hidden), or mixed (each "
        "window one of the three) (default: %(default)s)",
    )
    q.add_argument(
        "--block-length",
        type=number(int, 1, 10_000),
        default=7,
        help="steps per training block (default: %(default)s)",
    )
    q.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="predict a correction to linear interpolation of the observed values (which is also an input), "
        "starting from a zero correction: lower error than the plain imputer on PM10's single values and on "
        "trending and weather-like tables, slightly higher on long gaps (README); --no-residual predicts values "
        "directly (default: %(default)s)",
    )
    q.add_argument(
        "--residual-gate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --residual: a learned gate per value mixes interpolation + correction with a direct "
        "prediction, so long gaps and variables missing for a whole window need not lean on interpolation; "
        "ignored with --no-residual (default: %(default)s)",
    )
    q.add_argument(
        "--normalize",
        choices=("none", "window"),
        default="none",
        help="window: the model reads each window's variables relative to their observed mean and standard "
        "deviation and predicts in those units, so a level or trend outside the training range does not throw it "
        "(default: %(default)s)",
    )
    q.add_argument(
        "--intervals",
        type=HOLDOUT,
        default=0.0,
        help="also learn a prediction interval of this level (e.g. 0.9: the 5%% and 95%% quantiles, pinball "
        "loss); its coverage on the held-out values is reported",
    )
    q.add_argument(
        "--hide-variables",
        default=None,
        help="comma-separated variables: holes (training and held-out) fall on these only",
    )
    add_series_model_args(q, 256)  # defaults: the setting chosen on PM10 validation values (README)
    add_optimisation_args(q, epochs=150, lr=1e-3)
    q.set_defaults(batch_size=32, patience=25)


def train(args) -> dict:
    frame = read_series_table(args)
    print(
        f"data {args.data}: {len(frame):,} time steps x {frame.shape[1]} variables, "
        f"{float(frame.isna().to_numpy().mean()):.1%} missing (most: "
        + ", ".join(f"{c} {v:.0%}" for c, v in frame.isna().mean().sort_values(ascending=False).head(3).items())
        + ")",
        flush=True,
    )
    window, stride = window_and_stride(len(frame), args.window, args.stride)
    if args.window is None:
        print(f"window {window} steps, stride {stride} (from {len(frame)} time steps; --window to choose)")
    data = prepare_imputation_data(
        frame.to_numpy(),
        window,
        stride,
        holdout=args.holdout,
        seed=args.data_seed,
        drop_unobserved=args.drop_unobserved,
        names=[str(c) for c in frame.columns],
        holdout_pattern=args.holdout_pattern,
        hide_variables=markers(args.hide_variables),
    )
    if data["dropped"]:
        print(f"dropped variables never observed in training: {[str(frame.columns[i]) for i in data['dropped']]}")
    summary = train_imputer(
        data,
        args.output,
        series_model(args),
        train_config(args),
        artificial=args.artificial,
        schedule=args.schedule,
        resume=args.resume,
        overwrite=args.overwrite,
        missing_unit=TRAINING_HOLES[args.missing_process],
        block_length=args.block_length,
    )
    save_summary(args.output, summary)
    panel = f" --id-column {args.id_column}" + (f" --time-column {args.time_column}" if args.time_column else "")
    print(impute_report(summary, args.output, panel if args.id_column else ""))
    return summary
