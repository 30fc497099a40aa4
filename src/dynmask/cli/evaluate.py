"""``dynmask evaluate`` and ``dynmask predict``: score a trained run, or label / translate / summarise texts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data.confidence import mark_low_confidence, read_engine_output
from ..errors import DataError
from ..export import is_onnx, load_onnx
from ..tasks import TASKS, task_of
from ..tasks.arguments import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    PROCESS_CHOICES,
    SIZE,
    add_length_penalty,
    add_no_repeat_ngram,
    batches,
    number,
    rates,
)
from ..tasks.common import run_reading


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained classifier or seq2seq model at test-time missing rates")
    p.set_defaults(handler=_evaluate)
    p.add_argument("--model", type=Path, required=True, help="a training run's --output folder (or its best/)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="(default: %(default)s)")
    p.add_argument(
        "--json", action="store_true", help="print the scores as JSON, for scripts (without it: a table, for people)"
    )
    p.add_argument(
        "--missing",
        type=rates,
        default="0,0.2,0.4,0.6",
        help="test-time missing rates, comma-separated (default: %(default)s)",
    )
    p.add_argument("--missing-process", choices=PROCESS_CHOICES, default="uniform", help="(default: %(default)s)")
    p.add_argument(
        "--mean-span", type=number(float, 1), default=3.0, help="mean span length for spans (default: %(default)s)"
    )
    p.add_argument(
        "--beam",
        type=number(int, 1, 64),
        default=4,
        help="translation / summarization: beam size (default: %(default)s)",
    )
    p.add_argument("--limit", type=POSITIVE, default=None, help="translation / summarization: first N examples only")
    add_length_penalty(p)
    add_no_repeat_ngram(p, None)
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
    g.add_argument("--confidence-column", default=None, help="engine confidences per word (default: the run's)")
    g.add_argument(
        "--confidence-threshold",
        type=FRACTION,
        default=None,
        help="words below this confidence are missing (default: the threshold the run chose on validation)",
    )

    # predict ------------------------------------------------------------------------------------
    p = sub.add_parser("predict", help="label, translate or summarise texts: one JSON line per text")
    p.set_defaults(handler=_predict)
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        help="a training run's --output folder (or its best/), or a classifier exported to .onnx",
    )
    p.add_argument("--text", action="append", default=None, help="a text to label (repeatable)")
    p.add_argument(
        "--input",
        default=None,
        help="a file with one text per line, or - for standard input; or engine output with a confidence per "
        'word: a CSV / TSV (--text-column, --confidence-column), JSONL {"words": [...], "confidences": [...]}, '
        "tesseract's TSV or pocketsphinx's JSON lines (recognised by their content)",
    )
    p.add_argument("--text-column", default="text", help="--input table: the text column (default: %(default)s)")
    p.add_argument(
        "--confidence-column",
        default=None,
        help="--input table: a column of space-separated confidences in [0, 1], one per word of the text",
    )
    p.add_argument(
        "--confidence-threshold",
        type=FRACTION,
        default=None,
        help="words whose confidence is below this are missing (default: the threshold the run chose on "
        "validation, when it stores one)",
    )
    p.add_argument("--encoding", default="utf-8", help="of --input (default: %(default)s)")
    p.add_argument(
        "--beam",
        type=number(int, 1, 64),
        default=4,
        help="translation / summarization: beam size (default: %(default)s)",
    )
    p.add_argument("--max-len", type=SIZE, default=None, help="translation / summarization: longest output")
    add_length_penalty(p)
    add_no_repeat_ngram(p, None)
    p.add_argument(
        "--no-fuzzy-match",
        action="store_true",
        help="translation / summarization: the model's output only, even where the run chose a fuzzy-match "
        "threshold (train --fuzzy-match)",
    )
    p.add_argument(
        "--use-model",
        action="store_true",
        help="translation / summarization: decode with the model even where a trivial baseline beat it on "
        "validation (the run then answers with that baseline and says so)",
    )


def _evaluate(args) -> list:
    spec = task_of(args.model)
    if spec.evaluate is None:
        why = spec.unsupported or f"evaluate does not cover {spec.name!r} runs"
        raise DataError(f"--model {args.model} is a {spec.name} run: {why}")
    return spec.evaluate(args)


def _read_texts(args) -> list[str]:
    try:
        return _read_texts_decoded(args)
    except UnicodeDecodeError as e:
        raise DataError(
            f"--input {args.input} is not {args.encoding} text (byte {e.object[e.start : e.start + 1]!r} at offset "
            f"{e.start}); pass its encoding with --encoding, e.g. --encoding latin-1"
        ) from None


def _read_texts_decoded(args) -> list[str]:
    texts = list(args.text or [])
    if args.input is not None:
        if args.input != "-" and not Path(args.input).is_file():
            raise DataError(f"--input {args.input} is not a file")
        engine = (
            None
            if args.input == "-"
            else read_engine_output(
                args.input,
                text_column=args.text_column,
                confidence_column=args.confidence_column,
                encoding=args.encoding,
            )
        )
        if engine is not None:
            # words outside the run's lexicon read as confidence 0, if it chose so
            threshold, lexicon = run_reading(args.confidence_threshold, args.model, f"--input {args.input}")
            texts.extend(mark_low_confidence(text, c, threshold, lexicon=lexicon) for text, c in engine)
        else:
            stream = sys.stdin if args.input == "-" else open(args.input, encoding=args.encoding)
            with stream:
                texts.extend(line.rstrip("\n") for line in stream)
    if not texts:
        if args.input is not None:
            raise DataError(f"--input {args.input} holds no text to predict")
        raise DataError("nothing to predict: pass --text TEXT or --input FILE (or - for standard input)")
    return texts


def _predict(args) -> list:
    texts = _read_texts(args)
    if is_onnx(args.model):
        runner = load_onnx(args.model)
        if runner.meta["task"] != "classify":
            raise DataError(
                f"--model {args.model} is an exported {runner.meta['task']!r} model; predict "
                "labels texts with an exported 'classify' model"
            )
        rows = []
        for chunk in batches(texts):  # memory bounded by a batch, not by the input
            for row in runner.predict(chunk):
                print(json.dumps(row, ensure_ascii=False, allow_nan=False))
                rows.append(row)
        return rows
    spec = task_of(args.model)
    if spec.predict is None:
        text_tasks = " / ".join(repr(name) for name, t in TASKS.items() if t.predict is not None)
        raise DataError(
            f"--model {args.model} is a {spec.name!r} run; predict labels, translates or summarises texts "
            f"with a {text_tasks} run" + ("; fill a CSV with `dynmask impute`" if spec.name == "impute" else "")
        )
    return spec.predict(args, texts)
