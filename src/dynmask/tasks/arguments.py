"""Argument types and groups every command shares, and small helpers of the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..data.text import load_text_dataset
from ..errors import DataError
from ..methods import method_names
from ..training import TrainConfig

PROCESS_CHOICES = ("uniform", "spans", "value")


def rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated rates such as 0,0.2,0.4, got {text!r}") from None
    if not rates or any(not 0 <= r <= 1 for r in rates):  # NaN fails this too
        raise argparse.ArgumentTypeError(f"missing rates must lie in [0, 1], got {text!r}")
    return rates


def number(kind, low=None, high=None, *, low_open: bool = False, high_open: bool = False):
    """An argparse type: ``kind`` within [low, high] (or open at either end); NaN and inf refused."""
    import math

    left, right = "(" if low_open else "[", ")" if high_open else "]"
    span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    what = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} in {span}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what} in {span}, got {text!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"expected {what} in {span}, got {text!r}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"expected {what} in {span}, got {text!r}")
        return value

    parse.__name__ = f"{what} in {span}"
    return parse


SHARE = number(float, 0, 1, high_open=True)  # a share of values hidden: 1 would hide everything
HOLDOUT = number(float, 0, 1, low_open=True, high_open=True)
DROPOUT = number(float, 0, 1, high_open=True)
POSITIVE = number(int, 1)
SIZE = number(int, 1, 65_536)
LAYERS = number(int, 1, 64)
NON_NEGATIVE = number(int, 0)
POSITIVE_FLOAT = number(float, 0, low_open=True)
NON_NEGATIVE_FLOAT = number(float, 0)
FRACTION = number(float, 0, 1)


def _epochs_to_average(text: str) -> int:
    value = NON_NEGATIVE(text)
    if value == 1:
        raise argparse.ArgumentTypeError("expected 0 (off) or at least 2 epochs to average, got 1")
    return value


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default="rotten_tomatoes",
        help="built-in set (rotten_tomatoes, 20newsgroups) or a CSV / TSV / JSONL / Parquet file "
        "(default: %(default)s)",
    )
    g.add_argument("--text-column", default="text", help="column holding the text (default: %(default)s)")
    g.add_argument("--label-column", default="label", help="column holding the label (default: %(default)s)")
    g.add_argument(
        "--split-column",
        default=None,
        help="column whose values (train / valid / test) pick each row's split; default: a seeded "
        "random split 80/10/10",
    )
    g.add_argument(
        "--group-column",
        default=None,
        help="keep rows sharing this column's value in one split (e.g. a document or speaker id)",
    )
    g.add_argument("--encoding", default="utf-8", help="text encoding of the file (default: %(default)s)")
    g.add_argument(
        "--data-seed", type=NON_NEGATIVE, default=0, help="seed of the train/valid/test split (default: %(default)s)"
    )


def add_confidence_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine confidences (OCR, speech recognition)")
    g.add_argument(
        "--confidence-column",
        default=None,
        help="a column of space-separated confidences in [0, 1], one per whitespace-separated word of the text",
    )
    g.add_argument(
        "--confidence-threshold",
        type=FRACTION,
        default=None,
        help="words whose confidence is below this are missing (default: chosen on the validation split and "
        "stored with the run)",
    )


def add_missing_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("missingness")
    g.add_argument(
        "--train-missing",
        type=SHARE,
        default=0.3,
        help="share of tokens made missing during training, in [0, 1) (default: %(default)s)",
    )
    g.add_argument(
        "--missing-process",
        choices=PROCESS_CHOICES,
        default="uniform",
        help="how tokens go missing: uniform (independently), spans (contiguous runs), value "
        "(rare tokens more often) (default: %(default)s)",
    )
    g.add_argument(
        "--schedule",
        choices=("dynamic", "static"),
        default="dynamic",
        help="dynamic: holes re-drawn every batch; static: drawn once per example (default: %(default)s)",
    )
    g.add_argument(
        "--mean-span",
        type=number(float, 1),
        default=3.0,
        help="mean span length for --missing-process spans (default: %(default)s)",
    )
    g.add_argument(
        "--test-missing",
        type=rates,
        default="0,0.2,0.4,0.6",
        help="test-time missing rates, comma-separated; the holes are seeded, the same for every "
        "method (default: %(default)s)",
    )


def add_optimisation_args(p: argparse.ArgumentParser, epochs: int = 5, lr: float = 1e-3) -> None:
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=POSITIVE, default=epochs, help="(default: %(default)s)")
    o.add_argument("--batch-size", type=POSITIVE, default=64, help="per process (default: %(default)s)")
    o.add_argument("--lr", type=POSITIVE_FLOAT, default=lr, help="peak learning rate of AdamW (default: %(default)s)")
    o.add_argument("--weight-decay", type=NON_NEGATIVE_FLOAT, default=0.01, help="(default: %(default)s)")
    o.add_argument(
        "--warmup", type=FRACTION, default=0.1, help="share of steps spent warming up (default: %(default)s)"
    )
    o.add_argument(
        "--clip-norm", type=POSITIVE_FLOAT, default=1.0, help="gradient clipping norm (default: %(default)s)"
    )
    o.add_argument(
        "--patience", type=POSITIVE, default=2, help="epochs without improvement before stopping (default: %(default)s)"
    )
    o.add_argument(
        "--min-epoch-steps",
        type=NON_NEGATIVE,
        default=0,
        help="an epoch runs at least this many steps: a small training set is passed over several times between "
        "validations (default: %(default)s, one pass)",
    )
    o.add_argument("--seed", type=NON_NEGATIVE, default=0, help="training seed (default: %(default)s)")
    o.add_argument(
        "--amp",
        choices=("auto", "on", "off"),
        default="auto",
        help="mixed precision: auto = on for CUDA, off on CPU (default: %(default)s)",
    )
    o.add_argument(
        "--checkpoint-every", type=POSITIVE, default=500, help="steps between checkpoints (default: %(default)s)"
    )
    o.add_argument("--max-steps", type=POSITIVE, default=None, help="stop after this many steps (resume later)")
    o.add_argument(
        "--average-last",
        type=_epochs_to_average,
        default=0,
        help="when training ends, average the weights of the last N epoch ends (N >= 2) and keep the average "
        "if it scores better on validation than the best epoch (default: %(default)s, off)",
    )
    o.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the optimizer state and checkpoint.prev when the run finishes (by default they are "
        "removed: a finished run keeps best/ and its last weights; --resume --epochs N then trains on with a "
        "fresh optimizer)",
    )
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_run_args(
    p: argparse.ArgumentParser, output_help: str = "run folder: checkpoint/, best/, metrics.jsonl"
) -> None:
    p.add_argument("--output", type=Path, required=True, help=output_help)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from its last checkpoint (the settings must be the run's; "
        "--epochs may grow)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --output")


def add_pair_args(p: argparse.ArgumentParser, source: str, target: str) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        required=True,
        help="a CSV / TSV / JSONL / Parquet file, a pattern with {split} naming one file per split "
        "(e.g. corpus.{split}.tsv), or aclsum",
    )
    g.add_argument("--source-column", default=source, help=f"column holding the input (default: {source})")
    g.add_argument("--target-column", default=target, help=f"column holding the output (default: {target})")
    g.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: %(default)s)")
    g.add_argument(
        "--data-seed", type=NON_NEGATIVE, default=0, help="seed of a random split of one file (default: %(default)s)"
    )
    g.add_argument(
        "--max-train", type=POSITIVE, default=None, help="train on a seeded random subset of this many pairs"
    )


def lr_help(parser: argparse.ArgumentParser, text: str) -> None:
    for action in parser._actions:
        if action.dest == "lr":
            action.help = f"peak learning rate of AdamW (default: {text})"


def markers(text: Optional[str]):
    return None if text is None else [m.strip() for m in text.split(",") if m.strip()]


def load_splits(args, seed: int):
    return load_text_dataset(
        args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        split_column=args.split_column,
        group_column=args.group_column,
        seed=seed,
        encoding=args.encoding,
        confidence_column=getattr(args, "confidence_column", None),
    )


def train_config(args):
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        clip_norm=args.clip_norm,
        patience=args.patience,
        min_epoch_steps=args.min_epoch_steps,
        seed=args.seed,
        amp=args.amp,
        checkpoint_every=args.checkpoint_every,
        max_steps=args.max_steps,
        progress=not args.no_progress,
        average_last=args.average_last,
        keep_checkpoints=getattr(args, "keep_checkpoints", False),
    )


def batches(items, size: int = 256):
    """``items`` in consecutive lists of at most ``size`` (predict runs one at a time: memory bounded)."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def add_length_penalty(p) -> None:
    """``--length-penalty`` for the commands that decode translations or summaries with beam search."""
    p.add_argument(
        "--length-penalty",
        type=number(float, 0.0, 5.0),
        default=1.0,
        help="translation / summarization: beam search ranks a hypothesis by log-probability / length ** this; "
        "above 1 favours longer outputs (default: %(default)s)",
    )


def add_no_repeat_ngram(p, default) -> None:
    """``--no-repeat-ngram``: the decoding guard against loops; ``train`` stores its value with the run,
    ``evaluate`` / ``predict`` use the run's unless given."""
    p.add_argument(
        "--no-repeat-ngram",
        type=number(int, 0, 16),
        default=default,
        help="translation / summarization: never decode a token that repeats an n-gram of the output so far "
        "(0: off; the guard against outputs looping on one phrase) "
        + ("(default: %(default)s, stored with the run)" if default is not None else "(default: the run's)"),
    )


def add_series_data_args(q) -> None:
    """The flags that name a series table (``train impute`` / ``train forecast``): a wide CSV, or a long one."""
    add_run_args(q, "run folder")
    q.add_argument("--data", required=True, help="a CSV: one row per time, one column per variable (blank = missing)")
    q.add_argument("--format", choices=("wide", "long"), default="wide", help="(default: %(default)s)")
    q.add_argument("--time-column", default=None, help="time column (default: the first column)")
    q.add_argument("--variable-column", default="variable", help="long format: variable column (default: %(default)s)")
    q.add_argument("--value-column", default="value", help="long format: value column (default: %(default)s)")
    q.add_argument(
        "--id-column",
        default=None,
        help="a panel file: one row per (entity, time), one column per variable (one row per station and hour); "
        "this column names the entity. The model learns every entity's variables at once ('ENTITY | VARIABLE')",
    )


def read_series_table(args):
    """The table the flags of :func:`add_series_data_args` name, wide (time x variables, float64)."""
    from ..data.panel import read_panel
    from ..data.series import read_long_csv, read_wide_csv

    if getattr(args, "id_column", None) is not None:
        if args.format == "long":
            raise DataError("--id-column reads a panel file (a column per variable); --format long is another layout")
        return read_panel(args.data, args.id_column, args.time_column)
    if args.format == "wide":
        return read_wide_csv(args.data, args.time_column)
    return read_long_csv(args.data, args.time_column or "time", args.variable_column, args.value_column)


def add_series_model_args(q, d_model: int) -> None:
    m = q.add_argument_group("model")
    m.add_argument(
        "--arch",
        choices=("transformer", "lstm", "gru", "grud"),
        default="transformer",
        help="(default: %(default)s)",
    )
    m.add_argument(
        "--method",
        choices=method_names("series"),
        default="dynamic",
        help="transformer: dynamic mask or the static baseline (default: %(default)s)",
    )
    m.add_argument("--d-model", type=number(int, 2, 8192), default=d_model, help="model width (default: %(default)s)")
    m.add_argument("--heads", type=number(int, 1, 256), default=4, help="attention heads (default: %(default)s)")
    m.add_argument("--layers", type=LAYERS, default=2, help="layers (default: %(default)s)")
    m.add_argument("--d-ff", type=SIZE, default=None, help="feed-forward width (default: 2 × --d-model)")
    m.add_argument("--dropout", type=DROPOUT, default=0.1, help="dropout (default: %(default)s)")
    m.add_argument(
        "--time-gaps",
        action="store_true",
        help="also feed the time since each variable was last observed (irregular series)",
    )


def series_model(args) -> dict:
    return dict(
        arch=args.arch,
        method=args.method,
        d_model=args.d_model,
        n_heads=args.heads,
        n_layers=args.layers,
        d_ff=args.d_ff or 2 * args.d_model,
        dropout=args.dropout,
        time_gaps=args.time_gaps,
        **({"interval": args.intervals} if getattr(args, "intervals", 0.0) else {}),
        **({"residual": True} if getattr(args, "residual", False) else {}),
        **(
            {"residual_gate": True}
            if getattr(args, "residual", False) and getattr(args, "residual_gate", False)
            else {}
        ),
        **({"normalize": args.normalize} if getattr(args, "normalize", "none") != "none" else {}),
    )


def run_data(args, config: dict, defaults: dict) -> dict:
    """The data arguments for ``evaluate``: each one given on the command line, else the run's own."""
    saved = config.get("data", {}) if isinstance(config.get("data"), dict) else {}
    out = {}
    for key, fallback in defaults.items():
        given = getattr(args, key, None)
        out[key] = given if given is not None else saved.get(key, fallback)
    if args.data is None:
        if "data" not in saved:
            raise DataError("this run predates saved data locations: pass --data (and its columns)")
        out["data"] = saved["data"]
    return out
