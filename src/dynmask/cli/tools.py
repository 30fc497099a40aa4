"""``dynmask export``, ``embed``, ``data`` and ``guarantee``."""

from __future__ import annotations

from pathlib import Path

from ..data.sources import SOURCES, cache_dir, fetch
from ..demos.guarantee import guarantee_demo
from ..errors import DataError
from ..export import export_run
from ..tasks.arguments import FRACTION, NON_NEGATIVE, POSITIVE, SIZE, markers
from ..tasks.pretrained import embed_file


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to ONNX, the mask built inside the graph")
    p.set_defaults(handler=run_export)
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
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="store the matrix weights as int8 (onnxruntime dynamic quantization; a quarter of the size; "
        "its accuracy cost and speed are measured in benchmarks/onnx_int8.py)",
    )
    p.add_argument(
        "--confidence-input",
        action="store_true",
        help="text classifiers: the graph also takes a confidence per token (float, 0 = missing, else a "
        "log-prior on attention), for OCR / speech engine output",
    )

    # embed --------------------------------------------------------------------------------------
    p = sub.add_parser("embed", help="sentence embeddings of a file's lines with a pretrained encoder (JSONL out)")
    p.set_defaults(handler=run_embed)
    p.add_argument("--pretrained", required=True, help="minilm or a Hugging Face checkpoint folder")
    p.add_argument(
        "--input",
        type=Path,
        required=True,
        help="one text per line; or engine output with a confidence per word (a CSV / TSV with --text-column "
        "and --confidence-column, words/confidences JSONL, tesseract TSV, pocketsphinx JSON)",
    )
    p.add_argument("--text-column", default="text", help="--input table: the text column (default: %(default)s)")
    p.add_argument("--confidence-column", default=None, help="--input table: space-separated confidences per word")
    p.add_argument(
        "--confidence-threshold", type=FRACTION, default=None, help="words below this confidence are missing"
    )
    p.add_argument(
        "--lexicon",
        type=Path,
        default=None,
        help="a word list, one word per line (e.g. a run's lexicon.txt, or your domain's vocabulary): an engine's "
        "word it does not hold (lowercased, punctuation around it stripped) counts as confidence 0, so any "
        "--confidence-threshold above 0 reads it as missing",
    )
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
    p.set_defaults(handler=run_data)
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    dsub.add_parser("list", help="list the built-in sets, their source packages and cache state")
    f = dsub.add_parser("fetch", help="download, check and cache a built-in set")
    f.add_argument("name", help="a name from `dynmask data list`, or all")

    # guarantee ----------------------------------------------------------------------------------
    p = sub.add_parser("guarantee", help="show the guarantee per method on a NaN batch, and the compaction speed-up")
    p.set_defaults(handler=run_guarantee)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("runs") / "guarantee",
        help="folder for guarantee.json (default: %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="random seed (default: %(default)s)")


def run_data(args) -> None:
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
            raise DataError(f"unknown data set {name!r}; choose from {list(SOURCES)} or all")
        for part, src in SOURCES[name].items():
            print(f"{name} {part}: {fetch(src)}")


def run_export(args) -> None:
    path = export_run(
        args.model, args.output, backend=args.backend, confidences=args.confidence_input, quantize=args.quantize
    )
    data = Path(str(path) + ".data")
    weights = f", {data.name} (the weights: keep it beside the graph)" if data.exists() else ""
    int8 = ", int8 weights" if args.quantize else ""
    print(f"wrote {path}{weights} and {path}.assets/ ({args.backend} backend{int8}; batch and length dynamic)")


def run_embed(args) -> None:
    n = embed_file(
        args.pretrained,
        args.input,
        args.output,
        normalize=args.normalize,
        max_len=args.max_len,
        batch_size=args.batch_size,
        missing_markers=markers(args.missing_markers),
        text_column=args.text_column,
        confidence_column=args.confidence_column,
        confidence_threshold=args.confidence_threshold,
        lexicon_file=args.lexicon,
    )
    print(f"wrote {n} embeddings to {args.output}")


def run_guarantee(args) -> None:
    guarantee_demo(args.output, args.quick, args.seed)
