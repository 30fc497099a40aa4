"""``dynmask demo``: train and compare the masking methods on the default data."""

from __future__ import annotations

from pathlib import Path

from ..demos.text import run_demo
from ..errors import DataError
from ..methods import method_names
from ..tasks.arguments import POSITIVE, SIZE, add_data_args, add_missing_args, load_splits, number


def register(sub) -> None:
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
        "--seeds", type=number(int, 1, 100), default=3, help="number of training seeds (default: %(default)s)"
    )
    p.add_argument("--epochs", type=POSITIVE, default=4, help="training epochs per run (default: %(default)s)")
    p.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated methods to compare (default: {','.join(method_names('text'))}; with --pretrained: "
        f"{','.join(method_names('pretrained'))})",
    )
    p.add_argument("--max-len", type=SIZE, default=64, help="tokens kept per text (default: %(default)s)")
    p.add_argument("--d-model", type=number(int, 2, 8192), default=None, help="model width (default: 64)")
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
    add_data_args(p)
    add_missing_args(p)
    p.set_defaults(handler=run)


def run(args) -> None:
    METHODS = method_names("text" if args.pretrained is None else "pretrained")
    methods = list(METHODS) if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise DataError(f"--methods: unknown {unknown or methods}; choose from {', '.join(METHODS)}")
    model = None
    if args.pretrained is None:  # the demo's own model, a wider one only when asked for
        model = {"arch": args.arch}
        if args.d_model is not None:
            model.update(d_model=args.d_model, d_ff=2 * args.d_model)
    run_demo(
        args.output,
        data=load_splits(args, args.data_seed),
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
        model=model,
    )
