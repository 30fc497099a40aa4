"""Translation (LibreOffice help EN→DE) and summarization (Debian descriptions) with missing source
tokens: dynamic vs static vs seed_literal, scored at source missing rates 0 / 0.2 / 0.4.

Reads the prepared sets in ../shared/datasets (see ../shared/DATA.md). Finished runs are skipped when
the script is run again (each run also resumes from its checkpoint).

    python experiments/seq2seq.py --task translate     # results/seq2seq-translate/
    python experiments/seq2seq.py --task summarize     # results/seq2seq-summarize/
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dynmask.data.pairs import load_pairs
from dynmask.tasks.classify.task import MissingSpec
from dynmask.tasks.pretrained import resolve_pretrained
from dynmask.tasks.seq2seq.train import train_seq2seq
from dynmask.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"
DATA = {
    "translate": dict(
        data=str(SHARED / "translation" / "libreoffice-help.en-de.{split}.tsv"),
        source_column="source",
        target_column="target",
        max_src_len=96,
        max_tgt_len=96,
    ),
    "summarize": dict(
        data=str(SHARED / "summarization" / "debian-descriptions.{split}.tsv"),
        source_column="document",
        target_column="summary",
        max_src_len=128,
        max_tgt_len=32,
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=tuple(DATA), required=True)
    p.add_argument("--methods", default="dynamic,static,seed_literal")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--max-train", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-missing", type=float, default=0.3)
    p.add_argument("--test-limit", type=int, default=None, help="first N test pairs (default: the full test set)")
    p.add_argument("--copy", action="store_true", help="pointer-generator output (copies observed source tokens)")
    p.add_argument("--memory", action="store_true", help="the model also reads the nearest training pair's target")
    p.add_argument(
        "--fuzzy-match",
        action="store_true",
        help="also score the fuzzy-match hybrid (threshold chosen on validation); added to finished runs too",
    )
    p.add_argument("--tag", default="", help="suffix of the run name, e.g. a budget")
    p.add_argument(
        "--average-last",
        type=int,
        default=0,
        help="average the last N epoch ends' weights when training ends; kept if validation prefers them",
    )
    p.add_argument("--beam", type=int, default=4)
    p.add_argument(
        "--pretrained",
        default=None,
        help="warm-start BERT2BERT-style (e.g. minilm): its tokenizer, encoder and --layers decoder layers",
    )
    args = p.parse_args()

    spec = DATA[args.task]
    splits = load_pairs(
        spec["data"], source_column=spec["source_column"], target_column=spec["target_column"], max_train=args.max_train
    )
    out = ROOT / "results" / f"seq2seq-{args.task}"
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seeds):
        for method in args.methods.split(","):
            warm = f"-{Path(args.pretrained).name}" if args.pretrained else ""
            label = (
                method
                + warm
                + ("-copy" if args.copy else "")
                + ("-memory" if args.memory else "")
                + (f"-{args.tag}" if args.tag else "")
            )
            folder = ROOT / "runs" / f"seq2seq-{args.task}" / f"{label}-seed{seed}"
            done = folder / "test_results.json"
            t0 = time.perf_counter()
            finished = done.exists() and (folder / "summary.json").exists()
            if finished and args.fuzzy_match:  # a finished run gets the hybrid (its decoded rates are kept)
                finished = all("fuzzy_match" in t for t in json.loads(done.read_text()))
            if finished:
                test = json.loads(done.read_text())
                summary = json.loads((folder / "summary.json").read_text())
            else:
                model = dict(
                    method=method,
                    d_model=args.d_model,
                    n_heads=4,
                    enc_layers=args.layers,
                    dec_layers=args.layers,
                    d_ff=4 * args.d_model,
                    dropout=0.1,
                    copy=args.copy,
                )
                config = TrainConfig(
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    seed=seed,
                    progress=False,
                    patience=args.epochs,
                    average_last=args.average_last,
                )
                summary = train_seq2seq(
                    splits,
                    folder,
                    args.task,
                    model,
                    config,
                    MissingSpec(args.train_missing),
                    vocab_size=8000,
                    max_src_len=spec["max_src_len"],
                    max_tgt_len=spec["max_tgt_len"],
                    resume=folder.exists(),
                    test_rates=(0.0, 0.2, 0.4),
                    beam=args.beam,
                    test_limit=args.test_limit,
                    pretrained=resolve_pretrained(args.pretrained) if args.pretrained else None,
                    memory=args.memory,
                    fuzzy_match=args.fuzzy_match,
                )
                test = summary.pop("test")
                if (folder / "summary.json").exists():  # a finished run, given the hybrid: its timing stays
                    summary = json.loads((folder / "summary.json").read_text())
                summary["seconds"] = summary.get("seconds") or time.perf_counter() - t0
                (folder / "summary.json").write_text(json.dumps(summary, indent=2))
            hyp_out = out / "hypotheses"
            hyp_out.mkdir(exist_ok=True)
            for hyp in sorted((folder / "test_hypotheses").glob("missing*.txt")):
                (hyp_out / f"{label}-seed{seed}-{hyp.stem}.txt").write_text(hyp.read_text())
            for hyp in sorted((folder / "test_hypotheses").glob("fuzzy-missing*.txt")):  # the hybrid's outputs
                rate = hyp.stem.removeprefix("fuzzy-")
                (hyp_out / f"{label}-fuzzy-seed{seed}-{rate}.txt").write_text(hyp.read_text())
            record = {"method": label, "seed": seed, "args": vars(args), "test": test, "train": summary}
            (out / "runs").mkdir(exist_ok=True)
            (out / "runs" / f"{label}-seed{seed}.json").write_text(json.dumps(record, indent=2))
            print(
                label, seed, [{k: round(v, 2) for k, v in r.items() if isinstance(v, float)} for r in test], flush=True
            )
    table(args.task, out, {k: len(splits.split(k)) for k in ("train", "valid", "test")})


def table(task: str, out: Path, sizes: dict) -> None:
    """results.{json,md} from every finished run in ``out/runs``, the baselines (fed the same gappy
    sources) beside them."""
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    metric = ["bleu", "chrf"] if task == "translate" else ["rouge1", "rouge2", "rougeL"]
    rates = (0.0, 0.2, 0.4)
    lines = [
        "| method | test pairs | "
        + " | ".join(f"missing {r:g}: {' / '.join(metric)}" for r in rates)
        + " | train min (with test decoding) | decode tokens/s |",
        "|" + " --- |" * 7,
    ]
    for run in runs:
        test = [t for t in run["test"] if "missing_rate" in t]
        cells = [" / ".join(f"{t[m]:.1f}" for m in metric) for t in test]
        tps = sum(t["tokens_per_s"] for t in test) / len(test)
        pairs = run["args"].get("test_limit") or sizes["test"]
        lines.append(
            f"| {run['method']} (seed {run['seed']}, {run['args']['epochs']} ep, "
            f"{run['args'].get('max_train') or 'all'} train) | {pairs} | "
            + " | ".join(cells)
            + f" | {_train_minutes(run)} ({run['train'].get('seconds', 0) / 60:.0f}) | {tps:.0f} |"
        )
    for run in runs:  # the fuzzy-match hybrid: the run's model, the memory above its validation threshold
        test = [t for t in run["test"] if "fuzzy_match" in t]
        if test:
            cells = [" / ".join(f"{t['fuzzy_match'][m]:.1f}" for m in metric) for t in test]
            share = " / ".join(f"{100 * t['fuzzy_match']['share_from_memory']:.0f}%" for t in test)
            lines.append(
                f"| {run['method']} + fuzzy match ≥ {test[0]['fuzzy_match']['threshold']:g} (seed {run['seed']}; "
                f"from the memory: {share}) | {run['args'].get('test_limit') or sizes['test']} | "
                + " | ".join(cells)
                + " | | |"
            )
    full = [r for r in runs if not r["args"].get("test_limit")]
    if full:  # the baselines on the full test set, the same holes as the models
        test = [t for t in full[0]["test"] if "missing_rate" in t]
        for name in test[0]["baselines"]:
            cells = [" / ".join(f"{t['baselines'][name][m]:.1f}" for m in metric) for t in test]
            lines.append(f"| baseline: {name} | {sizes['test']} | " + " | ".join(cells) + " | | |")
    lines += _seed_means(runs, metric, rates, sizes)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"sizes": sizes, "runs": runs}, indent=2))
    print("\n".join(lines))


def _train_minutes(run: dict) -> str:
    """Training alone: the samples seen over the trainer's measured samples/s (``seconds`` also counts
    the test decoding)."""
    train = run["train"]
    rate = train.get("train_samples_per_s") or 0
    if not rate:
        return "?"
    return f"{train['global_step'] * run['args']['batch_size'] / rate / 60:.0f}"


def _seed_means(runs: list, metric: list, rates: tuple, sizes: dict) -> list:
    """Markdown lines: mean ± sd over seeds of every setting run with more than one seed, and the
    baselines on the same test pairs and holes."""
    import statistics

    groups: dict = {}
    for run in runs:
        key = (run["method"], run["args"]["epochs"], run["args"].get("max_train"), run["args"].get("test_limit"))
        groups.setdefault(key, []).append(run)
    lines = []
    for (label, epochs, max_train, limit), group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len(group) < 2:
            continue
        if not lines:
            lines = ["", "Mean ± sd over seeds:", "", lines_header(metric, rates), "|" + " --- |" * 5]
        cells = []
        for i in range(len(rates)):
            parts = []
            for m in metric:
                xs = [[t for t in r["test"] if "missing_rate" in t][i][m] for r in group]
                parts.append(f"{statistics.fmean(xs):.1f} ± {statistics.stdev(xs):.1f}")
            cells.append(" / ".join(parts))
        pairs = limit or sizes["test"]
        lines.append(f"| {label} ({len(group)} seeds, {epochs} ep, {max_train or 'all'} train) | {pairs} | "
                     + " | ".join(cells) + " |")  # fmt: skip
        first = [t for t in group[0]["test"] if "missing_rate" in t]
        for name in first[0].get("baselines", {}):
            row = " | ".join(" / ".join(f"{t['baselines'][name][m]:.1f}" for m in metric) for t in first)
            lines.append(f"| baseline: {name} (same pairs) | {pairs} | {row} |")
    return lines


def lines_header(metric: list, rates: tuple) -> str:
    return "| setting | test pairs | " + " | ".join(f"missing {r:g}: {' / '.join(metric)}" for r in rates) + " |"


if __name__ == "__main__":
    main()
