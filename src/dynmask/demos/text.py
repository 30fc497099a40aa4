"""``dynmask demo``: the main job. Train and compare, on the default data, at test missing rates
0 / 0.2 / 0.4 / 0.6: the dynamic mask, the ``static`` baseline, the ``seed_literal`` variant, and a
model that deletes the missing tokens. Prints a table (accuracy and macro-F1, mean ± std over seeds),
writes ``results.json`` and ``accuracy_vs_missing.png`` into the output folder.

Finished runs are kept under ``OUTPUT/runs/``; running the demo again resumes where it stopped.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from ..data.text import TextSplits, load_text_dataset
from ..extras import require
from ..methods import get_method, method_names
from ..seed_stats import format_mean_sd, mean_sd
from ..tasks.classify.task import MissingSpec, train_text_classifier
from ..training import TrainConfig
from ..training.run_folders import RunFolderError

__all__ = ["run_demo", "summarise", "format_table", "plot"]

MODEL = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.1, pooling="mean")
QUICK_MODEL = dict(d_model=32, n_heads=2, n_layers=1, d_ff=64, dropout=0.1, pooling="mean")


QUICK_NOTE = (
    "--quick is a smoke test of the pipeline (600 training texts, 1 epoch, 1 seed): its accuracies sit "
    "near chance and are not results; run without --quick for the comparison"
)


def _check_settings(output: Path, settings: dict) -> None:
    """Runs finished in ``output`` are reused only by a demo with the same settings."""
    path = output / "demo_settings.json"
    if path.exists():
        saved = json.loads(path.read_text())
        changed = [k for k in sorted(set(saved) | set(settings)) if saved.get(k) != settings.get(k)]
        if changed:
            k = changed[0]
            raise RunFolderError(
                f"{output} holds demo runs made with other settings ({k}: {saved.get(k)!r} then, "
                f"{settings.get(k)!r} now); pass another --output or remove that folder"
            )
    else:
        path.write_text(json.dumps(settings, indent=2))


def _subsample(splits: TextSplits, n_train: int, n_eval: int, seed: int) -> TextSplits:
    rng = random.Random(seed)
    pick = lambda xs, n: rng.sample(xs, min(n, len(xs)))
    return replace(
        splits, train=pick(splits.train, n_train), valid=pick(splits.valid, n_eval), test=pick(splits.test, n_eval)
    )


def summarise(runs: list[dict], methods: Sequence[str], rates: Sequence[float]) -> dict:
    """mean and sample std over seeds, per method and test missing rate; std is None for one seed."""
    table = {}
    for method in methods:
        rows = {}
        for rate in rates:
            found = [
                r
                for run in runs
                if run["method"] == method
                for r in run["test"]
                if abs(r["missing_rate"] - rate) < 1e-9
            ]
            accs = [r["accuracy"] for r in found]
            f1s = [r["macro_f1"] for r in found]
            acc_mean, acc_sd = mean_sd(accs)
            f1_mean, f1_sd = mean_sd(f1s)
            rows[f"{rate:g}"] = {
                "accuracy_mean": acc_mean,
                "accuracy_std": acc_sd,  # None for one seed: unknown, not 0
                "macro_f1_mean": f1_mean,
                "macro_f1_std": f1_sd,
                "n": len(accs),
            }
        table[method] = rows
    return table


def format_table(summary: dict, rates: Sequence[float]) -> str:
    head = "| method | " + " | ".join(f"missing {r:g}: acc / macro-F1" for r in rates) + " |"
    lines = [head, "|" + " --- |" * (len(rates) + 1)]
    for method, rows in summary.items():
        cells = []
        for r in rates:
            x = rows[f"{r:g}"]
            cells.append(
                f"{format_mean_sd(x['accuracy_mean'], x['accuracy_std'], scale=100)} / "
                f"{format_mean_sd(x['macro_f1_mean'], x['macro_f1_std'], scale=100)}"
            )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: dict, rates: Sequence[float], path: Path, title: str) -> None:
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for method, rows in summary.items():
        mean = [100 * rows[f"{r:g}"]["accuracy_mean"] for r in rates]
        sds = [rows[f"{r:g}"]["accuracy_std"] for r in rates]
        yerr = None if None in sds else [100 * sd for sd in sds]  # no bars for one seed
        ax.errorbar(rates, mean, yerr=yerr, marker="o", capsize=3, label=method)
    ax.set_xlabel("test-time missing rate (share of tokens)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_demo(
    output: Path,
    *,
    data: "str | TextSplits" = "rotten_tomatoes",
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = method_names("text"),
    test_rates: Sequence[float] = (0.0, 0.2, 0.4, 0.6),
    train_missing: float = 0.3,
    missing_process: str = "uniform",
    schedule: str = "dynamic",
    epochs: int = 4,
    quick: bool = False,
    text_column: str = "text",
    label_column: str = "label",
    model: Optional[dict] = None,
    max_len: int = 64,
    vocab_size: int = 8000,
    batch_size: int = 64,
    lr: Optional[float] = None,
    pooling: str = "mean",
    progress: bool = True,
    pretrained: Optional[str] = None,
) -> dict:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    splits = (
        data
        if isinstance(data, TextSplits)
        else load_text_dataset(data, text_column=text_column, label_column=label_column, seed=0)
    )
    if pretrained is not None:  # fine-tuning: the encoder is given; a small learning rate
        model, lr = {"pooling": pooling, **(model or {})}, 5e-5 if lr is None else lr
        batch_size = min(batch_size, 32)
    else:
        model, lr = dict(QUICK_MODEL if quick else MODEL, pooling=pooling, **(model or {})), 2e-3 if lr is None else lr
    arch = model.get("arch", "transformer") if pretrained is None else "transformer"
    kind = "text" if pretrained is None else "pretrained"
    for method in [m for m in methods if arch not in get_method(m, kind).applies_to[kind]]:
        methods = tuple(m for m in methods if m != method)  # seed_literal: an attention formula, no recurrent form
        print(f"{method} is left out: it {get_method(method).arch_note or 'does not run'} on arch={arch!r}")
    if quick:
        splits, epochs, seeds = _subsample(splits, 600, 200, 0), 1, tuple(seeds)[:1]
        print(QUICK_NOTE, flush=True)
    settings = {
        "data": splits.name,
        "sizes": {k: len(splits.split(k)) for k in ("train", "valid", "test")},
        "model": model,
        "epochs": epochs,
        "train_missing": train_missing,
        "missing_process": missing_process,
        "schedule": schedule,
        "test_rates": list(test_rates),
        "max_len": max_len,
        "vocab_size": vocab_size,
        "batch_size": batch_size,
        "lr": lr,
        "quick": quick,
        "pretrained": pretrained,
    }
    _check_settings(output, settings)
    print(
        f"data {splits.name}: {len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test, "
        f"{len(splits.labels)} classes; methods {', '.join(methods)}; seeds {list(seeds)}",
        flush=True,
    )
    runs = []
    total = len(seeds) * len(methods)
    for seed in seeds:
        for method in methods:
            count = f"[{len(runs) + 1}/{total}]"  # which run of how many: each has its own epoch bars
            folder = output / "runs" / f"{method}-seed{seed}"
            done = folder / "test_results.json"
            if done.exists():
                test = json.loads(done.read_text())
                print(f"  {count} {method:<12} seed {seed}: already done", flush=True)
            else:
                if progress:
                    print(f"  {count} {method}, seed {seed}: training", flush=True)
                start = time.perf_counter()
                summary = train_text_classifier(
                    splits,
                    folder,
                    dict(model, method=method),
                    TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress),
                    MissingSpec(train_missing, missing_process, schedule),
                    vocab_size=vocab_size,
                    max_len=max_len,
                    resume=folder.exists(),
                    test_rates=test_rates,
                    pretrained=pretrained,
                )
                test = summary["test"]
                accs = " ".join(f"{r['accuracy']:.3f}" for r in test)
                print(
                    f"  {count} {method:<12} seed {seed}: test accuracy at {list(test_rates)} = {accs} "
                    f"({time.perf_counter() - start:.0f} s, {summary['train_samples_per_s']:.0f} samples/s)",
                    flush=True,
                )
            runs.append({"method": method, "seed": seed, "test": test})
    summary = summarise(runs, methods, test_rates)
    table = format_table(summary, test_rates)
    title = f"{splits.name}: trained with {train_missing:g} {missing_process} missing ({schedule})"
    plot(summary, test_rates, output / "accuracy_vs_missing.png", title)
    result = {
        "data": splits.name,
        "sizes": {k: len(splits.split(k)) for k in ("train", "valid", "test")},
        "model": model,
        "epochs": epochs,
        "train_missing": train_missing,
        "missing_process": missing_process,
        "schedule": schedule,
        "seeds": list(seeds),
        "test_rates": list(test_rates),
        "runs": runs,
        "summary": summary,
        "seconds": time.perf_counter() - t0,
    }
    (output / "results.json").write_text(json.dumps(result, indent=2))
    (output / "results.md").write_text((QUICK_NOTE + "\n\n" if quick else "") + table + "\n")
    print("\n" + table)
    if quick:
        print("\n" + QUICK_NOTE)
    print(
        f"\nwrote {output / 'results.json'}, {output / 'results.md'}, {output / 'accuracy_vs_missing.png'} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return result
