"""The imputer on data it was never tuned on, where linear interpolation is hard to beat (issue 14,
item 2): synthetic tables generated with fixed seeds, trained through ``dynmask train impute`` with
the README's defaults (window from the data's length) unless a set says otherwise, plain
(``--no-residual``) and residual, with and without ``--normalize window``.

  trending   230 monthly series, 187 steps, levels 1e4..1e8, exponential or linear growth of 0.2-3%
             a month, yearly seasonality, 2% noise; 30% of the series start late; 10% of values missing.
             A chronological split puts the test years above every training value.
  weather    27 hourly variables, 2,000 steps: a shared daily cycle, a slow seasonal drift, correlated
             weather fronts (AR(1)), noise; 10% of values missing plus 12-48 hour sensor outages.
  smooth     a noiseless sine and cosine, 300 steps, 20% missing (window 20, d=16, 20 epochs)
  noisy      two noisy sines, 400 steps, 15% missing (window 24, d=32, 15 epochs)

The first two are shaped like the outside tables issue 14 reports; the last two are where linear
interpolation is nearly exact (smooth) or as good as anything (noisy).

    python experiments/imputer_trends.py [--sets trending,weather,smooth,noisy] [--variants plain,residual]
        # results/imputation-synthetic/trends.{json,md}

Test MAE (data units) of every variant next to mean / LOCF / linear interpolation, and the fallback
each run chose on its validation values (what ``dynmask impute`` would then use).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dynmask.cli import main as cli

OUT = Path(__file__).resolve().parent.parent / "results" / "imputation-synthetic"


def trending(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, k = 187, 230
    t = np.arange(n)[:, None]  # (T, 1)
    level = np.exp(rng.uniform(np.log(1e4), np.log(1e8), k))  # (K,)
    growth = rng.uniform(0.002, 0.03, k)
    exponential = rng.random(k) < 0.7
    trend = np.where(exponential, np.exp(growth * t), 1 + 1.5 * growth * t)  # (T, K)
    season = rng.uniform(0.02, 0.15, k) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 2 * np.pi, k))
    values = level * trend * (1 + season + rng.normal(0, 0.02, (n, k)))
    late = rng.random(k) < 0.3
    start = np.where(late, rng.integers(12, 80, k), 0)
    values[t < start] = np.nan
    values[rng.random(values.shape) < 0.1] = np.nan
    months = pd.period_range("2005-01", periods=n, freq="M").astype(str)
    return pd.DataFrame(values, index=pd.Index(months, name="month"), columns=[f"s{i:03d}" for i in range(k)])


def weather(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, k = 2000, 27
    t = np.arange(n)[:, None]
    daily = np.sin(2 * np.pi * (t % 24) / 24 + rng.uniform(0, 2 * np.pi, k)) * rng.uniform(0.5, 5, k)
    drift = rng.uniform(-8, 8, k) * np.sin(2 * np.pi * t / 8760)  # the season moving over 83 days
    fronts = np.zeros((n, 3))
    for i in range(1, n):  # three weather systems, each variable loads on them
        fronts[i] = 0.97 * fronts[i - 1] + rng.normal(0, 0.4, 3)
    loads = rng.normal(0, 1.5, (3, k))
    values = rng.uniform(-10, 1000, k) + daily + drift + fronts @ loads + rng.normal(0, 0.3, (n, k))
    values[rng.random(values.shape) < 0.1] = np.nan
    for _ in range(60):  # sensor outages of 12-48 hours
        j, a = rng.integers(k), rng.integers(n - 48)
        values[a : a + rng.integers(12, 49), j] = np.nan
    hours = pd.date_range("2020-01-01", periods=n, freq="h").astype(str)
    return pd.DataFrame(values, index=pd.Index(hours, name="time"), columns=[f"v{i:02d}" for i in range(k)])


def smooth(seed: int = 0) -> pd.DataFrame:
    t = np.arange(300)
    values = np.stack([np.sin(t / 20), 2 * np.cos(t / 25)], 1)  # (T, 2)
    values[np.random.default_rng(seed).random(values.shape) < 0.2] = np.nan
    return pd.DataFrame(values, index=pd.Index(t, name="t"), columns=["a", "b"])


def noisy(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(400)
    values = np.stack([np.sin(t / 8) + rng.normal(0, 0.3, 400), np.cos(t / 11) + rng.normal(0, 0.3, 400)], 1)
    values[rng.random(values.shape) < 0.15] = np.nan
    return pd.DataFrame(values, index=pd.Index(t, name="t"), columns=["a", "b"])


SMALL = ["--heads", "2", "--layers", "1"]
SETS = {  # name -> (table, the set's own `dynmask train impute` arguments)
    "trending": (trending, []),
    "weather": (weather, []),
    "smooth": (smooth, [*SMALL, "--window", "20", "--epochs", "20", "--d-model", "16"]),
    "noisy": (noisy, [*SMALL, "--window", "24", "--stride", "4", "--epochs", "15", "--d-model", "32", "--lr", "3e-3"]),
}
SINGLE = ["--missing-process", "values"]  # single-value training holes (the CLI's default before stop 22)
MIXED = ["--missing-process", "mixed"]  # value, block or variable holes per window (the default since stop 22)
VARIANTS = {  # every choice explicit: the CLI's defaults changed in stops 21 and 22
    "plain": ["--no-residual", *SINGLE],
    "residual": ["--residual", "--no-residual-gate", *SINGLE],
    "window": ["--normalize", "window", "--no-residual", *SINGLE],
    "window+residual": ["--normalize", "window", "--residual", "--no-residual-gate", *SINGLE],
    "plain+mixed": ["--no-residual", *MIXED],
    "residual+mixed": ["--residual", "--no-residual-gate", *MIXED],
    "gated+mixed": ["--residual", "--residual-gate", *MIXED],  # the default since stop 22
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0", help="training seeds (the data are the same for every seed)")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    result_file = OUT / "trends.json"
    rows = json.loads(result_file.read_text()) if result_file.exists() else []
    done = {(r["set"], r["variant"], r["seed"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            csv = Path(tmp) / f"{name}.csv"
            make, set_args = SETS[name]
            make().to_csv(csv)
            for variant in args.variants.split(","):
                for seed in (int(s) for s in args.seeds.split(",")):
                    if (name, variant, seed) in done:
                        continue
                    run = Path(tmp) / f"{name}-{variant}-{seed}"
                    t0 = time.perf_counter()
                    code = cli(
                        ["train", "impute", "--data", str(csv), "--output", str(run), "--seed", str(seed),
                         "--no-progress", *set_args, *VARIANTS[variant]]
                    )  # fmt: skip
                    if code != 0:
                        raise SystemExit(f"{name} {variant}: dynmask train impute failed ({code})")
                    r = json.loads((run / "test_results.json").read_text())
                    chosen = r["dynmask_or_fallback"]
                    rows.append(
                        {
                            "set": name,
                            "variant": variant,
                            "seed": seed,
                            "mae": r["dynmask"]["mae"],
                            "rmse": r["dynmask"]["rmse"],
                            **{f"{b}_mae": r[b]["mae"] for b in ("mean", "locf", "linear")},
                            "fallback": chosen["fallback"],
                            "chosen_mae": chosen["mae"],
                            "seconds": time.perf_counter() - t0,  # training and scoring
                        }
                    )
                    result_file.write_text(json.dumps(rows, indent=2))
                    print(rows[-1], flush=True)
    lines = [
        "| set | imputer | seed | dynmask MAE | mean | LOCF | linear | model / linear "
        "| fallback chosen on validation | MAE of what `impute` uses |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['set']} | {r['variant']} | {r['seed']} | {r['mae']:.4g} | {r['mean_mae']:.4g} | "
        f"{r['locf_mae']:.4g} | {r['linear_mae']:.4g} | {r['mae'] / r['linear_mae']:.3f} | "
        f"{r['fallback'] or 'none'} | {r['chosen_mae']:.4g} |"
        for r in rows
    ]
    (OUT / "trends.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
