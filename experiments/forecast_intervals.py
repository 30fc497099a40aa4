"""Probes for the forecast intervals' coverage under a shift (issue 37): the factor ``dynmask forecast
--interval`` ships against two others, measured on the test forecasts of the benchmark's runs.

    python benchmarks/forecasting.py dynmask --dataset uschange     # the three seeds' runs
    python experiments/forecast_intervals.py --dataset uschange     # results/forecast-uschange/interval_probes.*

* **shipped**: the model's quantile interval widened by the conformal factor of the run's level of history
  missingness nearest the history's own; on a short validation range (US change) calibrated on the
  validation forecasts pooled with the out-of-fold forecasts of 4 blocked cross-validation models
  (``folds.py``), elsewhere (PM10) on validation alone.
* **validation alone** (US change: what shipped before the folds): the same levels calibrated on the
  validation forecasts only (``validate_regimes`` without the fold models; the model is the same).
* **own history** (adaptive): the factor measured on backtests inside each history itself (forecasting
  every ``horizon`` steps of the benchmark's long history from the ``context`` steps before them, the
  model's raw interval, split-conformal rank), so a history that has just swung gets a wider interval.

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
from dynmask.tasks.forecast.regimes import history_missing, nearest_regime  # noqa: E402
from dynmask.tasks.forecast.trained import load_forecaster  # noqa: E402
from dynmask.tasks.impute.calibration import conformal_scale, interval_metrics, widen_interval  # noqa: E402

INTERVAL, SETTINGS, SEEDS = 0.9, ("real gaps", "+40% values"), (0, 1, 2)


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


def validation_alone(run: Path, trained) -> list:
    """The run's levels (``Regime``) as validation alone calibrates them (US change: the data rebuilt as the
    run prepared it)."""
    from dynmask.tasks.forecast.regimes import Regime, validate_regimes
    from dynmask.tasks.forecast.task import ForecastTask

    config = json.loads((run / "best" / "config.json").read_text())
    task = ForecastTask(_uschange_data(config), config["history_holes"], seed=config["train"]["seed"],
                        missing_unit=config["missing_unit"], block_length=config["block_length"])  # fmt: skip
    rows = validate_regimes(task, trained.model)
    return [Regime(r["missing"], r["fallback"], r["interval_scale"], r["fallback_interval_scale"]) for r in rows]


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
        folds = json.loads((run / "best" / "calibration.json").read_text()).get("folds", 0)
        alone = validation_alone(run, trained) if folds else None  # else the shipped factor is validation's
        for setting in SETTINGS:
            test = w["test"].copy()
            test[w[f"holes/{setting}"]] = np.nan
            long, truth = test[:, :history][:, :, keep], w["test"][:, history:][:, :, keep]  # (N, T, F), (N, H, F)
            point, lower, upper = raw_forecasts(trained, long[:, -trained.context :])
            factors = {
                "shipped": np.array([trained.regime(h).interval_scale for h in long]),
                **({"validation alone": np.array([nearest_regime(alone, history_missing(h[-trained.context :]))
                                                  .interval_scale for h in long])} if alone else {}),
                "own history": own_history_factors(trained, long),
            }  # fmt: skip
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
        shipped = [r for r in rows if r["setting"] == SETTINGS[0] and r["factor"] == "shipped"]
        lines += ["", "| forecast origin | " + " | ".join(f"seed {r['seed']}" for r in shipped) + " |",
                  "|---|" + "---|" * len(shipped)]  # fmt: skip
        for i, date in enumerate(meta["dates"]):
            lines.append(f"| {date} | " + " | ".join(f"{r['coverage_by_origin'][i]:.0%}" for r in shipped) + " |")
    (out / "interval_probes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
