"""Rotten Tomatoes with missing tokens: masked LSTM and GRU against the Transformer (dynamic mask vs
static placeholders for each) and GRU-D (which handles missing tokens itself: dynamic only), 3 seeds,
plus each model's training throughput.

    python experiments/rnn_text.py      # results/rnn-rotten_tomatoes/ (finished runs are reused)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from dynmask.demos.text import run_demo
from dynmask.seed_stats import format_mean_sd

ROOT = Path(__file__).resolve().parent.parent
RATES = (0.0, 0.2, 0.4, 0.6)


def main() -> None:
    out = ROOT / "results" / "rnn-rotten_tomatoes"
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "| model | method | " + " | ".join(f"missing {r:g}" for r in RATES) + " | train samples/s |",
        "|" + " --- |" * (len(RATES) + 3),
    ]
    combined = {}
    for arch in ("transformer", "lstm", "gru", "grud"):
        folder = ROOT / "runs" / ("demo-transformer2" if arch == "transformer" else f"demo-{arch}")
        methods = ("dynamic",) if arch == "grud" else ("dynamic", "static")
        result = run_demo(folder, methods=methods, test_rates=RATES, model={"arch": arch})
        combined[arch] = result["summary"]
        for method, rows in result["summary"].items():
            speeds = []
            for seed in result["seeds"]:
                log = folder / "runs" / f"{method}-seed{seed}" / "metrics.jsonl"
                summaries = [json.loads(line) for line in log.read_text().splitlines() if '"summary"' in line]
                speeds += [s["train_samples_per_s"] for s in summaries if s["train_samples_per_s"] > 0]
            cells = [
                format_mean_sd(rows[f"{r:g}"]["accuracy_mean"], rows[f"{r:g}"]["accuracy_std"], scale=100)
                for r in RATES
            ]
            lines.append(f"| {arch} | {method} | " + " | ".join(cells) + f" | {statistics.fmean(speeds):.0f} |")
    (out / "results.json").write_text(json.dumps(combined, indent=2))
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
