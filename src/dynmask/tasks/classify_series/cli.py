"""dynmask train classify-series: arguments and the glue to the task."""

from __future__ import annotations

from ...data.series import load_series_classification
from ..arguments import (
    SHARE,
    add_optimisation_args,
    add_run_args,
    add_series_model_args,
    rates,
    series_model,
    train_config,
)
from ..report import save_summary, series_classify_report, series_data_summary
from .task import train_series_classifier


def add_arguments(q) -> None:
    """The flags of ``dynmask train classify-series``."""
    add_run_args(q, "run folder")
    q.add_argument(
        "--data",
        default="japanese_vowels",
        help="japanese_vowels, basic_motions, or a pattern my_{split}.ts naming TRAIN and TEST .ts files "
        "(default: %(default)s)",
    )
    q.add_argument(
        "--train-missing",
        type=SHARE,
        default=0.0,
        help="share of observed values hidden during training, in [0, 1) (default: %(default)s)",
    )
    q.add_argument(
        "--schedule",
        choices=("dynamic", "static"),
        default="dynamic",
        help="hidden values re-drawn every batch or drawn once per series (default: %(default)s)",
    )
    q.add_argument(
        "--test-missing",
        type=rates,
        default="0,0.2,0.4,0.6",
        help="test-time shares of hidden values, seeded (default: %(default)s)",
    )
    q.add_argument(
        "--missing-unit",
        choices=("value", "step"),
        default="value",
        help="hide single values, or whole steps (all variables together) (default: %(default)s)",
    )
    add_series_model_args(q, 64)
    add_optimisation_args(q, epochs=60, lr=2e-3)
    q.set_defaults(batch_size=32, patience=15)


def train(args) -> dict:
    splits = load_series_classification(args.data, seed=args.seed)
    print(series_data_summary(splits), flush=True)
    summary = train_series_classifier(
        splits,
        args.output,
        series_model(args),
        train_config(args),
        train_missing=args.train_missing,
        schedule=args.schedule,
        resume=args.resume,
        test_rates=args.test_missing if args.max_steps is None else (),
        missing_unit=args.missing_unit,
        overwrite=args.overwrite,
    )
    save_summary(args.output, summary)
    print(series_classify_report(summary, splits, args.output))
    return summary
