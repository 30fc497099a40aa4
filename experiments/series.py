"""Time series experiments: JapaneseVowels classification vs missing rate (dynamic vs static, and
LSTM / GRU / GRU-D / Transformer), and PM10 imputation (dynmask vs the simple baselines).

    python experiments/series.py classify    # results/series-{japanese_vowels,basic_motions}[-steps]/
    python experiments/series.py tune        # results/imputation-pm10/tuning.{json,md} (validation MAE only)
    python experiments/series.py impute      # results/imputation-pm10/

Finished runs are skipped when run again.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from dynmask.data.series import load_series_classification, read_wide_csv
from dynmask.seed_stats import format_mean_sd, mean_sd
from dynmask.tasks.classify_series.task import train_series_classifier
from dynmask.tasks.impute.task import prepare_imputation_data, train_imputer
from dynmask.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
PM10 = ROOT.parent / "shared" / "datasets" / "timeseries" / "pm10-germany-rural.csv"
RATES = (0.0, 0.2, 0.4, 0.6)
SEEDS = (0, 1, 2)
SMALL = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.1)
CLASSIFIERS = {
    "transformer, dynamic mask": dict(arch="transformer", method="dynamic"),
    "transformer, static baseline": dict(arch="transformer", method="static"),
    "lstm (masked)": dict(arch="lstm", method="dynamic"),
    "lstm, static baseline": dict(arch="lstm", method="static"),
    "gru (masked)": dict(arch="gru", method="dynamic"),
    "gru, static baseline": dict(arch="gru", method="static"),
    "gru-d": dict(arch="grud", method="dynamic"),
}
# (data set, hidden unit) -> results folder. "value": each value hidden on its own draw, so a step is a
# missing position only when all its variables are hidden; "step": whole steps hidden.
CLASSIFY_SETS = {
    ("japanese_vowels", "value"): "series-japanese_vowels",
    ("japanese_vowels", "step"): "series-japanese_vowels-steps",
    ("basic_motions", "value"): "series-basic_motions",
    ("basic_motions", "step"): "series-basic_motions-steps",
}
RUN_PREFIX = {"japanese_vowels": "series-jv", "basic_motions": "series-bm8"}
# BasicMotions has 32 training series: batches of 8 and 100 epochs give 400 optimizer steps
# (batches of 32 and 60 epochs would give 60).
TRAINING = {
    "japanese_vowels": dict(epochs=60, batch_size=32, lr=2e-3, patience=15),
    "basic_motions": dict(epochs=100, batch_size=8, lr=1e-3, patience=30),
}


def classify() -> None:
    for (name, unit), folder_name in CLASSIFY_SETS.items():
        classify_one(name, unit, ROOT / "results" / folder_name)


def classify_one(name: str, unit: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    splits = load_series_classification(name, seed=0)
    rows = {}
    for label, kw in CLASSIFIERS.items():
        runs = []
        for seed in SEEDS:
            suffix = "" if unit == "value" else f"-{unit}"
            folder = ROOT / "runs" / RUN_PREFIX[name] / f"{kw['arch']}-{kw['method']}{suffix}-seed{seed}"
            done = folder / "result.json"
            if done.exists():
                runs.append(json.loads(done.read_text()))
                continue
            t0 = time.perf_counter()
            summary = train_series_classifier(
                splits,
                folder,
                {**SMALL, **kw},
                TrainConfig(seed=seed, progress=False, **TRAINING[name]),
                train_missing=0.3,
                schedule="dynamic",
                resume=True,
                test_rates=RATES,
                missing_unit=unit,
            )
            result = {
                "test": summary["test"],
                "seconds": time.perf_counter() - t0,
                "samples_per_s": summary["train_samples_per_s"],
            }
            done.write_text(json.dumps(result))
            runs.append(result)
        rows[label] = {
            "accuracy": {f"{r:g}": mean_sd([run["test"][i]["accuracy"] for run in runs]) for i, r in enumerate(RATES)},
            "samples_per_s": mean_sd([run["samples_per_s"] for run in runs]),
        }
        print(name, unit, label, {k: round(v[0], 3) for k, v in rows[label]["accuracy"].items()}, flush=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "data": name,
                "missing_unit": unit,
                "seeds": SEEDS,
                "train_missing": 0.3,
                "model": SMALL,
                "training": TRAINING[name],
                "rows": rows,
            },
            indent=2,
        )
    )
    lines = [
        "| model | " + " | ".join(f"missing {r:g}" for r in RATES) + " | train samples/s |",
        "|" + " --- |" * (len(RATES) + 2),
    ]
    for label, row in rows.items():
        cells = [format_mean_sd(m, s, scale=100) for m, s in row["accuracy"].values()]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {row['samples_per_s'][0]:.0f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _pm10_data():
    frame = read_wide_csv(PM10)
    return prepare_imputation_data(frame.to_numpy(), 30, 5, holdout=0.1, seed=0, drop_unobserved=True)


# Imputer settings tried on PM10, seed 0, chosen by the MAE on the *validation* held-out values only
# (the test values are never looked at while choosing).
TUNING = {
    "d128 L2, 40 epochs (first setting)": dict(
        model=dict(d_model=128, n_heads=4, n_layers=2, d_ff=256, dropout=0.1),
        epochs=40,
        patience=10,
        lr=1e-3,
        artificial=0.2,
    ),
    "d128 L2, 150 epochs": dict(
        model=dict(d_model=128, n_heads=4, n_layers=2, d_ff=256, dropout=0.1),
        epochs=150,
        patience=25,
        lr=1e-3,
        artificial=0.2,
    ),
    "d256 L2, 150 epochs": dict(
        model=dict(d_model=256, n_heads=4, n_layers=2, d_ff=512, dropout=0.1),
        epochs=150,
        patience=25,
        lr=1e-3,
        artificial=0.2,
    ),
    "d256 L4, 150 epochs": dict(
        model=dict(d_model=256, n_heads=4, n_layers=4, d_ff=512, dropout=0.1),
        epochs=150,
        patience=25,
        lr=5e-4,
        artificial=0.2,
    ),
    "d256 L2, 150 epochs, dropout 0": dict(
        model=dict(d_model=256, n_heads=4, n_layers=2, d_ff=512, dropout=0.0),
        epochs=150,
        patience=25,
        lr=1e-3,
        artificial=0.2,
    ),
    "d256 L2, 150 epochs, 30% artificial": dict(
        model=dict(d_model=256, n_heads=4, n_layers=2, d_ff=512, dropout=0.1),
        epochs=150,
        patience=25,
        lr=1e-3,
        artificial=0.3,
    ),
    "d256 L2, 150 epochs, 40% artificial": dict(
        model=dict(d_model=256, n_heads=4, n_layers=2, d_ff=512, dropout=0.1),
        epochs=150,
        patience=25,
        lr=1e-3,
        artificial=0.4,
    ),
    "d256 L2, 150 epochs, 50% artificial": dict(
        model=dict(d_model=256, n_heads=4, n_layers=2, d_ff=512, dropout=0.1),
        epochs=150,
        patience=25,
        lr=1e-3,
        artificial=0.5,
    ),
}


def tune() -> None:
    out = ROOT / "results" / "imputation-pm10"
    out.mkdir(parents=True, exist_ok=True)
    data = _pm10_data()
    rows = {}
    for i, (name, cfg) in enumerate(TUNING.items()):
        folder = ROOT / "runs" / "imputation-pm10-tuning" / f"setting{i}"
        done = folder / "valid.json"
        if not done.exists():
            summary = train_imputer(
                data,
                folder,
                cfg["model"],
                TrainConfig(
                    epochs=cfg["epochs"], batch_size=32, lr=cfg["lr"], seed=0, patience=cfg["patience"], progress=False
                ),
                artificial=cfg["artificial"],
                schedule="dynamic",
                resume=True,
            )
            log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
            best = min((r for r in log if r["kind"] == "valid"), key=lambda r: r["mae"])
            done.write_text(
                json.dumps(
                    {
                        "valid_mae": best["mae"],
                        "valid_rmse": best["rmse"],
                        "best_epoch": best["epoch"],
                        "train_seconds": summary["train_seconds"],
                    }
                )
            )
        rows[name] = {**json.loads(done.read_text()), **cfg}
        print(name, rows[name], flush=True)
    (out / "tuning.json").write_text(json.dumps(rows, indent=2))
    lines = ["| setting | valid MAE | valid RMSE | best epoch | train s |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {n} | {r['valid_mae']:.3f} | {r['valid_rmse']:.3f} | {r['best_epoch']} | {r['train_seconds']:.0f} |"
        for n, r in rows.items()
    ]
    (out / "tuning.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def impute() -> None:
    """3 seeds of the setting with the lowest validation MAE in tuning.json, dynamic vs static artificial
    holes, scored on the test split's held-out values with the simple baselines and SAITS's results."""
    out = ROOT / "results" / "imputation-pm10"
    out.mkdir(parents=True, exist_ok=True)
    tuning = json.loads((out / "tuning.json").read_text())  # written by `python experiments/series.py tune`
    chosen = min(tuning, key=lambda name: tuning[name]["valid_mae"])
    cfg = TUNING[chosen]
    data = _pm10_data()
    configs = {"dynmask (dynamic artificial holes)": "dynamic", "dynmask (static artificial holes)": "static"}
    rows, baselines = {}, None
    for name, schedule in configs.items():
        runs = []
        for seed in SEEDS:
            folder = ROOT / "runs" / "imputation-pm10-tuned" / f"{schedule}-seed{seed}"
            done = folder / "result.json"
            if done.exists():
                runs.append(json.loads(done.read_text()))
                continue
            summary = train_imputer(
                data,
                folder,
                cfg["model"],
                TrainConfig(
                    epochs=cfg["epochs"],
                    batch_size=32,
                    lr=cfg["lr"],
                    seed=seed,
                    patience=cfg["patience"],
                    progress=False,
                ),
                artificial=cfg["artificial"],
                schedule=schedule,
                resume=True,
            )
            result = {
                "test": summary["test"],
                "baselines": summary["baselines"],
                "train_seconds": summary["train_seconds"],
                "epochs_done": summary["epochs_done"],
            }
            done.write_text(json.dumps(result))
            runs.append(result)
        baselines = runs[0]["baselines"]
        rows[name] = {k: mean_sd([run["test"][k] for run in runs]) for k in ("mae", "rmse", "mre")}
        rows[name]["train_seconds"] = mean_sd([run["train_seconds"] for run in runs])
        print(name, rows[name], flush=True)
    # written by benchmarks/saits_pm10.py (its own environment)
    for file, label in (
        ("saits.json", "PyPOTS SAITS (published defaults: 100 epochs, patience 10)"),
        ("saits-150-epochs.json", "PyPOTS SAITS (dynmask's budget: 150 epochs, patience 25)"),
    ):
        if (out / file).exists():
            saits = json.loads((out / file).read_text())["runs"]
            rows[label] = {k: mean_sd([r[k] for r in saits]) for k in ("mae", "rmse", "mre", "train_seconds")}
    (out / "results.json").write_text(
        json.dumps(
            {
                "window": 30,
                "stride": 5,
                "holdout": 0.1,
                "split": data["ranges"],
                "dropped_columns": data["dropped"],
                "held_out_values": baselines["mean"]["n"],
                "seeds": SEEDS,
                "setting": chosen,
                "config": cfg,
                "rows": rows,
                "baselines": baselines,
            },
            indent=2,
        )
    )
    import numpy as np

    np.save(out / "test_holdout_mask.npy", data["test_holdout"])
    lines = ["| method | MAE | RMSE | MRE | train s |", "| --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {format_mean_sd(*row['mae'], digits=3)} | {format_mean_sd(*row['rmse'], digits=3)} | "
            f"{format_mean_sd(*row['mre'], digits=3)} | "
            f"{row['train_seconds'][0]:.0f} |"
        )
    for name, m in baselines.items():
        lines.append(f"| {name} | {m['mae']:.3f} | {m['rmse']:.3f} | {m['mre']:.3f} | – |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    {"classify": classify, "tune": tune, "impute": impute}[sys.argv[1]]()
