"""Interval calibration of short series on data the forecaster was never developed on (issue 37).

Three public series that statsmodels' wheel ships (pinned, sha256-checked), none used while building
``dynmask train forecast``: US macro growth (``macrodata``: 1959-2009, quarterly; the 100 x log-changes of
real GDP, consumption, investment and disposable income, and the change of unemployment; 4 quarters
ahead), yearly sunspot numbers (``sunspots``: 1700-2008; 5 years ahead) and monthly Niño sea surface
temperatures (``elnino``: 1950-2010, one series; 12 months ahead). Each has a validation range too short
for 30 non-overlapping forecasts, so ``dynmask train forecast`` calibrates its interval on validation
pooled with the out-of-fold forecasts of 4 blocked cross-validation models (``folds.py``). Each run is
then resumed with ``--calibration-folds 0`` (validation alone; the model is not retrained), and both
calibrations are scored on the test forecasts: coverage of the 90% interval, its width and the interval
score, for the model and for what ``dynmask forecast`` gives (the model or its validation fallback), with
the MAE of the model, the default and the best naive baseline beside them.

    python experiments/forecast_calibration_unseen.py         # results/forecast-calibration/unseen.{json,md}
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dynmask.cli import main as dynmask  # noqa: E402
from dynmask.data.sources import Source, fetch  # noqa: E402

OUT, RUNS = ROOT / "results" / "forecast-calibration", ROOT / "runs" / "forecast-calibration"
SEEDS = (0, 1, 2)
LICENCE = "BSD-3-Clause (statsmodels); public-domain data"
SOURCES = {
    "macrodata": Source(
        "statsmodels",
        "0.14.4",
        "statsmodels/datasets/macrodata/macrodata.csv",
        "d93c0d3a7a77ef83c3af14e46032bb1d02ae3a512b22ab94159a8ca226fcf708",
        LICENCE,
        "US macroeconomic data 1959Q1-2009Q3",
    ),
    "sunspots": Source(
        "statsmodels",
        "0.14.4",
        "statsmodels/datasets/sunspots/sunspots.csv",
        "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b",
        LICENCE,
        "yearly sunspot numbers 1700-2008",
    ),
    "elnino": Source(
        "statsmodels",
        "0.14.4",
        "statsmodels/datasets/elnino/elnino.csv",
        "b647be00e0fd264be9764e317e6b963f35030014ecca2b21b204521716e463ad",
        LICENCE,
        "monthly Nino sea surface temperatures 1950-2010",
    ),
}
HORIZONS = {"macrodata": 4, "sunspots": 5, "elnino": 12}


def wide_csv(name: str) -> Path:
    """The data set as a wide CSV (a date column, one column per variable), written once."""
    import pandas as pd

    path = OUT / f"{name}.csv"
    if path.exists():
        return path
    raw = pd.read_csv(fetch(SOURCES[name]))
    if name == "macrodata":
        dates = [f"{y}-{3 * (q - 1) + 1:02d}-01" for y, q in zip(raw["year"], raw["quarter"])]
        frame = pd.DataFrame(index=pd.Index(dates, name="date"))
        for column in ("realgdp", "realcons", "realinv", "realdpi"):
            frame[column] = 100 * np.log(raw[column].to_numpy()).astype(float)
        frame = frame.diff()
        frame["unemp"] = raw["unemp"].diff().to_numpy()
        frame = frame.iloc[1:].round(4)
    elif name == "sunspots":
        frame = pd.DataFrame({"sunactivity": raw["SUNACTIVITY"].to_numpy()},
                             index=pd.Index([f"{int(y)}-01-01" for y in raw["YEAR"]], name="date"))  # fmt: skip
    else:  # a year a row, a month a column: one monthly series
        months = raw.drop(columns="YEAR").to_numpy().reshape(-1)  # (years * 12,)
        dates = [f"{int(y)}-{m:02d}-01" for y in raw["YEAR"] for m in range(1, 13)]
        frame = pd.DataFrame({"sst": months}, index=pd.Index(dates, name="date"))
    OUT.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)
    return path


def train(name: str, seed: int) -> dict:
    """Scores of the default run (validation + folds) and of the same model resumed with validation alone."""
    run, alone = RUNS / name / f"seed{seed}", RUNS / name / f"seed{seed}-validation"
    argv = ["train", "forecast", "--data", str(wide_csv(name)), "--horizon", str(HORIZONS[name]), "--seed", str(seed),
            "--no-progress"]  # fmt: skip
    if not (run / "test_results.json").exists():
        t0 = time.perf_counter()
        assert dynmask([*argv, "--output", str(run), *(["--resume"] if run.exists() else [])]) == 0
        (run / "wall_seconds.json").write_text(json.dumps({"train_and_score": time.perf_counter() - t0}))
    if not (alone / "test_results.json").exists():
        shutil.rmtree(alone, ignore_errors=True)
        shutil.copytree(run, alone, ignore=shutil.ignore_patterns("calibration", "test_results.json"))
        assert dynmask([*argv, "--output", str(alone), "--resume", "--calibration-folds", "0"]) == 0
    rows = {}
    for label, folder in (("validation + 4 folds", run), ("validation alone", alone)):
        results = json.loads((folder / "test_results.json").read_text())
        calibration = json.loads((folder / "best" / "calibration.json").read_text())
        naive = min((k for k in results if not k.startswith("dynmask")), key=lambda k: results[k]["mae"])
        rows[label] = {
            "folds": calibration["folds"],
            "model": {k: results["dynmask"][k] for k in ("mae", "coverage", "interval_width", "interval_score")},
            "default": {
                k: results["dynmask_or_fallback"].get(k)
                for k in ("mae", "coverage", "interval_width", "interval_score")
            },
            "best_naive": {"name": naive, "mae": results[naive]["mae"]},
            "n": results["dynmask"]["n"],
        }
    rows["seconds"] = json.loads((run / "wall_seconds.json").read_text())["train_and_score"]
    rows["fold_seconds"] = json.loads((run / "best" / "calibration.json").read_text())["fold_seconds"]
    return rows


def table(results: dict) -> str:
    lines = [
        "Coverage of the 90% interval on the test forecasts, seeds 0 / 1 / 2 (mean), and the interval score "
        "(lower is better); *model*: the model's interval, *default*: what `dynmask forecast` gives.",
        "",
        "| data (values scored) | calibration | model coverage | default coverage | model interval score | "
        "MAE model / default / best naive |",
        "|---|---|---|---|---|---|",
    ]
    for name, seeds in results.items():
        for label in ("validation alone", "validation + 4 folds"):
            cells = [seeds[str(s)][label] for s in SEEDS]

            def per_seed(part, key, fmt):
                values = [c[part][key] for c in cells]
                return " / ".join(fmt(v) for v in values) + f" ({fmt(float(np.mean(values)))})"

            pct = lambda v: f"{v:.1%}"  # noqa: E731
            parts = ("model", "default", "best_naive")
            maes = " / ".join(f"{np.mean([c[p]['mae'] for c in cells]):.3g}" for p in parts)
            lines.append(f"| {name} ({cells[0]['n']}) | {label} | {per_seed('model', 'coverage', pct)} | "
                         f"{per_seed('default', 'coverage', pct)} | "
                         f"{per_seed('model', 'interval_score', lambda v: f'{v:.3g}')} | {maes} |")  # fmt: skip
    seconds = [(n, np.mean([s[str(k)]["seconds"] for k in SEEDS]), np.mean([s[str(k)]["fold_seconds"] for k in SEEDS]))
               for n, s in results.items()]  # fmt: skip
    lines += ["", "Training and scoring a run (seconds, mean of seeds, 2 CPU cores), of which the 4 fold models: "
              + "; ".join(f"{n} {t:.0f} ({f:.0f})" for n, t, f in seconds) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", action="store_true", help="only rewrite the table from the JSON")
    args = p.parse_args(argv)
    path = OUT / "unseen.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.table:
        for name in SOURCES:
            for seed in SEEDS:
                results.setdefault(name, {})[str(seed)] = train(name, seed)
                OUT.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(results, indent=1))
    (OUT / "unseen.md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
