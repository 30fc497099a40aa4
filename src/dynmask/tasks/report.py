"""What ``dynmask train`` says to a person: the data it read before training, and after it a short table of
the model beside its trivial baselines, a warning when a baseline wins, and the next command to run (the
full summary goes to ``summary.json`` in the run folder instead of the terminal)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

__all__ = [
    "text_data_summary",
    "classify_report",
    "seq2seq_report",
    "seq2seq_table",
    "classify_table",
    "majority_class",
    "series_data_summary",
    "series_classify_report",
    "pair_data_summary",
    "impute_report",
    "forecast_report",
    "save_summary",
]


def save_summary(output: Path, summary: dict) -> Path:
    """The run's summary as JSON in ``output/summary.json`` (what the terminal used to get)."""
    path = Path(output) / "summary.json"
    if path.parent.exists():
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return path


def _share(counter: Counter, total: int, top: int = 6) -> str:
    parts = [f"{name} {n / max(total, 1):.0%}" for name, n in counter.most_common(top)]
    return ", ".join(parts) + (f", ... ({len(counter)} labels)" if len(counter) > top else "")


def majority_class(train_labels: Sequence[int], scored_labels: Sequence[int]) -> tuple[int, float]:
    """(the most frequent training label, its share of ``scored_labels``): the trivial classifier's accuracy."""
    label = Counter(train_labels).most_common(1)[0][0]
    return label, sum(y == label for y in scored_labels) / max(len(scored_labels), 1)


def text_data_summary(splits, markers: Sequence[str]) -> str:
    """One line: sizes of the splits, the training labels' shares, the share of words marked missing."""
    train = splits.split("train")
    labels = Counter(splits.labels[e.label] for e in train)
    words = [w for e in train for w in e.text.split()]
    return (
        f"data {splits.name}: {len(train):,} train / {len(splits.valid):,} valid / {len(splits.test):,} test texts; "
        f"labels {_share(labels, len(train))}; {_marked_share(words, markers):.1%} of training words marked missing"
    )


def _marked_share(words: Sequence[str], markers: Sequence[str]) -> float:
    """The share of ``words`` that are one of the ``markers`` (case-insensitive); 0 for no words."""
    marks = {m.lower() for m in markers}
    return sum(w.lower() in marks for w in words) / max(len(words), 1)


def pair_data_summary(splits, markers: Sequence[str]) -> str:
    """One line: sizes of the splits, the mean source and target length in words, the share of source
    words marked missing."""
    train = splits.split("train")
    src = [w for p in train for w in p.source.split()]
    return (
        f"data {splits.name}: {len(train):,} train / {len(splits.valid):,} valid / {len(splits.test):,} test pairs; "
        f"{len(src) / max(len(train), 1):.1f} source and "
        f"{sum(len(p.target.split()) for p in train) / max(len(train), 1):.1f} target words on average; "
        f"{_marked_share(src, markers):.1%} of training source words marked missing"
    )


def classify_report(summary: dict, splits, output: Path) -> str:
    """The test accuracy at each missing rate beside the majority class (its share of the test texts)."""
    train_major, majority = majority_class([e.label for e in splits.train], [e.label for e in splits.test])
    lines = []
    results = summary.get("test") or []
    if results:
        lines.append("test accuracy    model   majority class (" + splits.labels[train_major] + ")")
        for r in results:
            lines.append(f"  {r['missing_rate']:>4.0%} missing  {r['accuracy']:6.1%}   {majority:6.1%}")
        if results[0]["accuracy"] <= majority:
            lines.append(
                "warning: the model is no better than always answering the majority class: train longer "
                "(--epochs), on more data, or check the labels"
            )
    if summary.get("best_score") not in (None, float("-inf")):
        lines.append(f"best validation accuracy {summary['best_score']:.1%}")
    lines.append(f"saved: {Path(output) / 'best'} (the model), test_results.json, summary.json, metrics.jsonl")
    lines.append(f'next: dynmask predict --model {output} --text "a ??? film"   |   dynmask evaluate --model {output}')
    return "\n".join(lines)


def series_data_summary(splits) -> str:
    """One line: sizes of the splits, variables, lengths, labels and the share of missing values."""
    import numpy as np

    train = splits.split("train")
    values = np.concatenate([x.reshape(-1) for x, _ in train]) if train else np.zeros(0)
    lengths = [len(x) for x, _ in train]
    labels = Counter(splits.labels[y] for _, y in train)
    return (
        f"data {splits.name}: {len(train):,} train / {len(splits.valid):,} valid / {len(splits.test):,} test series, "
        f"{splits.num_features} variables, {min(lengths, default=0)}-{max(lengths, default=0)} steps; labels "
        f"{_share(labels, len(train))}; {np.isnan(values).mean() if values.size else 0:.1%} of values missing"
    )


def series_classify_report(summary: dict, splits, output: Path) -> str:
    """The test accuracy at each missing rate beside the majority class, and the next command."""
    train_major, majority = majority_class([y for _, y in splits.train], [y for _, y in splits.test])
    results = summary.get("test") or []
    lines = classify_table(results, majority, splits.labels[train_major]) if results else []
    if lines:
        lines[0] = "test" + lines[0][4:]
    if summary.get("best_score") not in (None, float("-inf")):
        lines.append(f"best validation accuracy {summary['best_score']:.1%}")
    lines.append(f"saved: {Path(output) / 'best'} (the model), test_results.json, summary.json, metrics.jsonl")
    lines.append(f"next: python -c \"import dynmask; print(dynmask.from_pretrained('{output}').labels)\"")
    return "\n".join(lines)


def seq2seq_table(results: list) -> list[str]:
    """Lines: BLEU / chrF (or ROUGE-1 / ROUGE-L) at each missing rate, the model beside its baselines."""
    if not results:
        return []
    keys = ("bleu", "chrf") if "bleu" in results[0] else ("rouge1", "rougeL")
    names = ["model", *results[0].get("baselines", {})] + (["fuzzy match"] if "fuzzy_match" in results[0] else [])
    lines = [f"{' / '.join(keys)}".ljust(22) + "".join(f"{n:>22}" for n in names)]
    for r in results:
        cells = [r, *r.get("baselines", {}).values()] + ([r["fuzzy_match"]] if "fuzzy_match" in r else [])
        scores = [f"{c.get(keys[0], float('nan')):.1f} / {c.get(keys[1], float('nan')):.1f}" for c in cells]
        lines.append(f"  {r['missing_rate']:>4.0%} missing".ljust(22) + "".join(f"{x:>22}" for x in scores))
    base = results[0].get("baselines", {})
    if base and max(b.get(keys[0], 0.0) for b in base.values()) >= results[0].get(keys[0], 0.0):
        lines.append("warning: a trivial baseline scores at least as well as the model with nothing missing")
    return lines


def seq2seq_report(summary: dict, output: Path) -> str:
    """Test BLEU / chrF (or ROUGE) at each missing rate beside the baselines fed the same gappy sources,
    the validation comparison and the fallback it chose, and the next command."""
    table = seq2seq_table(summary.get("test") or [])
    lines = ["test " + table[0], *table[1:]] if table else []
    valid = summary.get("validation")
    if valid:
        shown = ", ".join(f"{name} {score:.1f}" for name, score in valid["valid"].items())
        lines.append(f"validation {valid['metric']}: {shown}")
        if valid.get("fallback"):
            lines.append(
                f"note: {valid['fallback']} beat the model on validation: `dynmask predict` answers with it and "
                "says so (--use-model for the model); train longer (--epochs) or warm-start (--pretrained minilm)"
            )
    lines.append(f"saved: {Path(output) / 'best'} (the model), test_results.json, test_hypotheses/, summary.json")
    lines.append(f'next: echo "a source ??? text" | dynmask predict --model {output} --input -')
    return "\n".join(lines)


def classify_table(results: list, majority: float, majority_label: str) -> list[str]:
    """Lines: accuracy and macro-F1 at each missing rate beside the majority class."""
    lines = [f"{'':<14}accuracy  macro-F1   majority class ({majority_label})"]
    for r in results:
        lines.append(
            f"  {r['missing_rate']:>4.0%} missing  {r['accuracy']:7.1%}  {r['macro_f1']:8.1%}   {majority:7.1%}"
        )
    if results and results[0]["accuracy"] <= majority:
        lines.append("warning: the model is no better than always answering the majority class")
    return lines


def impute_report(summary: dict, output: Path, input_flags: str = "") -> str:
    """Test MAE of the model beside mean / LOCF / linear, on the same held-out values."""
    test, baselines = summary.get("test"), summary.get("baselines") or {}
    lines = []
    if test:
        lines.append("held-out test values   MAE       (the same values for each)")
        lines.append(f"  dynmask               {test['mae']:.4g}")
        for name, m in baselines.items():
            lines.append(f"  {name:<20}  {m['mae']:.4g}")
        if "coverage" in test:
            lines.append(f"  interval {test['interval']:.0%}: coverage {test['coverage']:.1%}")
        best = min(baselines.items(), key=lambda kv: kv[1]["mae"]) if baselines else None
        if best and best[1]["mae"] < test["mae"]:
            lines.append(f"warning: {best[0]} beats the model on the test values")
    per = summary.get("per_variable") or {}
    if per:
        shown = sorted(per.items(), key=lambda kv: -kv[1]["mae_std"])[:8]  # the hardest variables first
        lines.append("per variable (held-out test values)   n      MAE   MAE / sd   linear MAE")
        for name, m in shown:
            lines.append(
                f"  {str(name)[:32]:<32} {m['n']:>6} {m['mae']:>8.4g} {m['mae_std']:>10.3f} {m['linear_mae']:>12.4g}"
            )
        if len(per) > len(shown):
            lines.append(f"  ... {len(per) - len(shown)} more in test_results.json (per_variable)")
    if summary.get("fallback"):
        lines.append(f"note: {summary['fallback']} beat the model on validation: `dynmask impute` fills with it")
    lines.append(f"saved: {Path(output) / 'best'} (the model), test_results.json, summary.json")
    lines.append(f"next: dynmask impute --model {output} --input YOUR.csv --output FILLED.csv{input_flags}")
    return "\n".join(lines)


def forecast_report(summary: dict, output: Path) -> str:
    """The test MAE and MASE of the model and the baselines on the same forecasts, the interval's
    coverage, the fallback, and the next command."""
    if "test" not in summary:
        lines = [json.dumps(summary, indent=2)]
    else:
        rows = {"dynmask": summary["test"], **summary.get("baselines", {})}
        lines = ["test forecasts     MAE      MASE"]
        for name, m in rows.items():
            lines.append(f"  {name:<15} {m['mae']:8.4g} {m['mase']:8.4g}")
        if "coverage" in summary["test"]:
            t = summary["test"]
            lines.append(
                f"  interval {t['interval']:.0%}: coverage {t['coverage']:.1%}, mean width {t['interval_width']:.4g}"
            )
        if summary.get("fallback"):
            from .forecast.combination import describe

            lines.append(f"  note: {describe(summary['fallback'])} beat the model on validation: forecasts use it")
    lines.append(f"next: dynmask forecast --model {output} --input HISTORY.csv --output NEXT.csv")
    return "\n".join(lines)
