"""``dynmask evaluate`` and ``dynmask predict``: score a trained run, or label / translate / summarise texts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..training.run_folders import task_of
from .arguments import (
    NON_NEGATIVE,
    POSITIVE,
    PROCESS_CHOICES,
    SIZE,
    add_length_penalty,
    number,
    rates,
)


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained classifier or seq2seq model at test-time missing rates")
    p.set_defaults(handler=_evaluate)
    p.add_argument("--model", type=Path, required=True, help="a training run's --output folder (or its best/)")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="(default: %(default)s)")
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
    p.set_defaults(handler=_predict)
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
        type=number(int, 1, 64),
        default=4,
        help="translation / summarization: beam size (default: %(default)s)",
    )
    p.add_argument("--max-len", type=SIZE, default=None, help="translation / summarization: longest output")
    add_length_penalty(p)
    p.add_argument(
        "--no-fuzzy-match",
        action="store_true",
        help="translation / summarization: the model's output only, even where the run chose a fuzzy-match "
        "threshold (train --fuzzy-match)",
    )


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
    from ..data.pairs import load_pairs
    from ..tasks.classify_text import MissingSpec
    from ..tasks.seq2seq import Seq2SeqTask, load_seq2seq, score_fuzzy_match

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
        memory=config["loaded_memory"] is not None,  # rebuilt from the run's own training pairs
    )
    results = []
    for rate in args.missing:
        spec = MissingSpec(rate, args.missing_process, "static", args.mean_span)  # seeded test holes
        hyps, refs, timing = task.generate(
            model,
            args.split,
            spec,
            beam=args.beam,
            length_penalty=args.length_penalty,
            limit=args.limit,
        )
        result = {"missing_rate": rate, **task.score(hyps, refs), **timing}
        if config["loaded_fuzzy_match"] is not None:  # the run's fuzzy-match hybrid, beside the model
            choice, memory = config["loaded_fuzzy_match"]
            result["fuzzy_match"] = score_fuzzy_match(task, args.split, spec, hyps, choice, memory, args.limit)[1]
        results.append(result)
    print(json.dumps(results, indent=2))
    return results


def _evaluate(args) -> list[dict]:
    from ..data.text import load_text_dataset
    from ..tasks.classify_text import MissingSpec, TextClassificationTask, load_classifier
    from ..training.run_folders import read_json

    task_name = task_of(args.model)
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
    from ..tasks.classify_text import load_classifier, predict_texts

    texts = list(args.text or [])
    if args.input is not None:
        if args.input != "-" and not Path(args.input).is_file():
            raise SystemExit(f"error: --input {args.input} is not a file")
        stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
        with stream:
            texts.extend(line.rstrip("\n") for line in stream)
    if not texts:
        raise SystemExit("error: nothing to predict: pass --text TEXT or --input FILE (or - for standard input)")
    from ..export import is_onnx, load_onnx

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
    task = task_of(args.model)
    if task in ("classify-series", "impute"):
        raise SystemExit(
            f"error: --model {args.model} is a {task!r} run; predict labels texts with a 'classify' run "
            "or translates / summarises with a 'translate' / 'summarize' run"
            + ("; fill a CSV with `dynmask impute`" if task == "impute" else "")
        )
    if task != "classify":
        from ..tasks.seq2seq import fuzzy_match_texts, generate_texts, load_seq2seq

        model, tokenizer, config = load_seq2seq(args.model)
        outputs = generate_texts(
            model,
            tokenizer,
            texts,
            beam=args.beam,
            length_penalty=args.length_penalty,
            max_len=args.max_len or config["max_tgt_len"],
            max_src_len=config["max_src_len"],
            memory=config["loaded_memory"],
            memory_len=config["max_tgt_len"],
        )
        if config["loaded_fuzzy_match"] is not None and not args.no_fuzzy_match:
            fuzzy = fuzzy_match_texts(tokenizer, texts, outputs, config["loaded_fuzzy_match"], config["max_src_len"])
            rows = [{"text": t, **f} for t, f in zip(texts, fuzzy)]
        else:
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
