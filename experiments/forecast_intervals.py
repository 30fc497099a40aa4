"""Probes for the forecast intervals' coverage under a shift (issue 37): two ways to widen the interval
beyond the validation-calibrated factor, measured on the test forecasts of the benchmark's runs.

    python benchmarks/forecasting.py dynmask --dataset uschange     # the three seeds' runs (seconds each)
    python experiments/forecast_intervals.py --dataset uschange     # results/forecast-uschange/interval_probes.*

* **validation** (what ``dynmask forecast --interval`` ships): the model's quantile interval widened by the
  conformal factor of the run's validation level nearest the history's missing share.
* **own history** (adaptive): the factor measured on backtests inside each history itself (forecasting
  every ``horizon`` steps of the benchmark's long history from the ``context`` steps before them, the
  model's raw interval, split-conformal rank), so a history that has just swung gets a wider interval.
* **blocked CV** (US change only: four more trainings a seed): K = 4 models, each trained without one
  block of the training windows (and the windows overlapping it), forecast their block; the factor is
  calibrated on those out-of-fold forecasts pooled with the validation ones.

Coverage and the interval score (Gneiting & Raftery 2007, lower is better) of the 90% interval, model
forecasts (no fallback), per seed, with the real gaps and with 40% more history values removed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dynmask.masks import Mask  # noqa: E402
from dynmask.tasks.forecast.trained import load_forecaster  # noqa: E402
from dynmask.tasks.impute.calibration import conformal_scale, interval_metrics, widen_interval  # noqa: E402

INTERVAL, SETTINGS, SEEDS, FOLDS = 0.9, ("real gaps", "+40% values"), (0, 1, 2), 4


def raw_forecasts(trained, histories: np.ndarray) -> list[np.ndarray]:
    """[point, lower, upper], each float64[N, H, F], the model's raw interval after ``histories`` (N, C, F)."""
    n, _, features = histories.shape
    window = np.concatenate([histories, np.full((n, trained.horizon, features), np.nan)], axis=1)  # (N, C + H, F)
    x = torch.from_numpy(trained.scaler.transform(window)).float()
    with torch.no_grad():
        outs = trained.model.forward_with_interval(x, Mask.from_nan(x))
    return [trained.scaler.inverse(o[:, trained.context :].double().numpy()) for o in outs]


def own_history_factors(trained, long: np.ndarray) -> np.ndarray:
    """float[N]: per history (N, T, F), the conformal factor of backtests inside it."""
    context, horizon = trained.context, trained.horizon
    origins = list(range(context, long.shape[1] - horizon + 1, horizon))
    out = []
    for history in long:
        backtests = np.stack([history[o - context : o] for o in origins])  # (K, C, F)
        truth = np.stack([history[o : o + horizon] for o in origins])  # (K, H, F)
        out.append(_factor([(*raw_forecasts(trained, backtests), truth)]))
    return np.array(out)


def _factor(parts: list) -> float:
    """The split-conformal factor of the pooled ``parts`` ((point, lower, upper, truth), each (N, H, F))."""
    point, lower, upper, truth = (np.concatenate(a) for a in zip(*parts))
    return conformal_scale(point, lower, upper, truth, np.isfinite(truth), INTERVAL)


def blocked_cv_factor(dataset: str, seed: int, run: Path) -> float:
    """The factor calibrated on out-of-fold forecasts of FOLDS blocked-CV models pooled with validation."""
    from dynmask.tasks.forecast.task import ForecastTask, train_forecaster
    from dynmask.training import TrainConfig

    config = json.loads((run / "best" / "config.json").read_text())
    rebuilt = _uschange_data(config)
    train_config = TrainConfig(**{**config["train"], "progress": False})
    model_config = {k: v for k, v in config["model"].items() if k not in ("num_features", "max_len")}
    kwargs = {k: config[k] for k in ("history_holes", "missing_unit", "block_length")}
    parts = []
    full = load_forecaster(run)
    task = ForecastTask(rebuilt, seed=seed)
    parts.append((*raw_forecasts(full, rebuilt["valid"][:, : full.context]), task.truth("valid")))
    width, n = rebuilt["context"] + rebuilt["horizon"], rebuilt["train"].shape[0]
    edges = np.linspace(0, n, FOLDS + 1).astype(int)
    for k in range(FOLDS):
        lo, hi = edges[k], edges[k + 1]
        keep = [i for i in range(n) if i + width <= lo or i >= hi + width - 1]  # no window overlapping the block
        held = list(range(lo, hi, rebuilt["horizon"]))
        fold = dict(rebuilt, train=rebuilt["train"][keep], test=rebuilt["train"][held], test_origins=held)
        folder = ROOT / "runs" / f"forecast-{dataset}-cv" / f"seed{seed}-fold{k}"
        train_forecaster(fold, folder, model_config, train_config, overwrite=True, **kwargs)
        model = load_forecaster(folder)
        parts.append((*raw_forecasts(model, fold["test"][:, : model.context]), fold["test"][:, model.context :]))
    return _factor(parts)


def _uschange_data(config: dict) -> dict:
    """US change's windows as the run ``config`` prepared them (the benchmark's copy of the data)."""
    import pandas as pd

    from dynmask.tasks.forecast.data import prepare_forecast_data

    path = ROOT / "results" / "forecast-uschange" / "uschange.csv"
    frame = pd.read_csv(path, index_col=0)
    d = config["data"]
    return prepare_forecast_data(frame.to_numpy(), d["horizon"], d["context"], season=d["season"],
                                 names=[str(c) for c in frame.columns], stride=d["stride"])  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("pm10", "uschange"), default="uschange")
    args = p.parse_args(argv)
    out = ROOT / "results" / f"forecast-{args.dataset}"
    w, meta = np.load(out / "windows.npz"), json.loads((out / "windows.json").read_text())
    history = meta["history"]
    rows = []
    for seed in SEEDS:
        run = ROOT / "runs" / f"forecast-{args.dataset}" / f"seed{seed}"
        trained = load_forecaster(run)
        keep = [meta["columns"].index(c) for c in trained.column_names]
        cv = blocked_cv_factor(args.dataset, seed, run) if args.dataset == "uschange" else None
        for setting in SETTINGS:
            test = w["test"].copy()
            test[w[f"holes/{setting}"]] = np.nan
            long, truth = test[:, :history][:, :, keep], w["test"][:, history:][:, :, keep]  # (N, T, F), (N, H, F)
            point, lower, upper = raw_forecasts(trained, long[:, -trained.context :])
            factors = {
                "validation": np.array([trained.regime(h).interval_scale for h in long]),
                "own history": own_history_factors(trained, long),
                **({"blocked CV": np.full(len(long), cv)} if cv is not None else {}),
            }
            for name, f in factors.items():
                lo, hi = widen_interval(point, lower, upper, f[:, None, None])
                m = interval_metrics(lo, hi, truth, np.isfinite(truth), INTERVAL)
                covered, scored = (truth >= lo) & (truth <= hi), np.isfinite(truth)
                by_origin = [float(covered[i][scored[i]].mean()) for i in range(len(truth))]  # one per test forecast
                rows.append({"seed": seed, "setting": setting, "factor": name, "mean_factor": float(np.mean(f)), **m,
                             "coverage_by_origin": by_origin})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    (out / "interval_probes.json").write_text(json.dumps(rows, indent=1))
    names = list(dict.fromkeys(r["factor"] for r in rows))
    lines = ["| setting | factor | coverage (seeds 0 / 1 / 2) | interval score | mean factor |"]
    lines.append("|---|---|---|---|---|")
    for setting in SETTINGS:
        for name in names:
            cells = [r for r in rows if r["setting"] == setting and r["factor"] == name]
            cov = " / ".join(f"{r['coverage']:.1%}" for r in cells)
            score = " / ".join(f"{r['interval_score']:.3g}" for r in cells)
            factor = " / ".join(f"{r['mean_factor']:.2f}" for r in cells)
            lines.append(f"| {setting} | {name} | {cov} | {score} | {factor} |")
    if len(meta["dates"]) <= 12:  # a table of the coverage of each test forecast (the shipped factor, real gaps)
        shipped = [r for r in rows if r["setting"] == SETTINGS[0] and r["factor"] == "validation"]
        lines += ["", "| forecast origin | " + " | ".join(f"seed {r['seed']}" for r in shipped) + " |",
                  "|---|" + "---|" * len(shipped)]  # fmt: skip
        for i, date in enumerate(meta["dates"]):
            lines.append(f"| {date} | " + " | ".join(f"{r['coverage_by_origin'][i]:.0%}" for r in shipped) + " |")
    (out / "interval_probes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
