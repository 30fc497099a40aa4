"""PM10 held-out cells, one CSV per method and seed, so anyone can re-score them:
``results/imputation-pm10/heldout/{method}-seed{S}.csv`` (pattern ``values``; other patterns in
``heldout/{pattern}/``), columns date, station, truth, prediction (µg/m³). The same windows,
standardisation and held-out mask as experiments/series.py and benchmarks/pypots_pm10.py (asserted
for ``values``).

    python experiments/pm10_heldout.py baselines --pattern values        # mean / LOCF / linear
    python experiments/pm10_heldout.py dynmask --pattern values --seeds 0,1,2 --intervals 0.9
    python experiments/pm10_heldout.py dynmask --pattern blocks --missing-process blocks
    python experiments/pm10_heldout.py calibrate --pattern values --intervals 0.9   # runs trained before calibration
    python experiments/pm10_heldout.py halves --pattern values --intervals 0.9   # calibration under a time shift
    python experiments/pm10_heldout.py input --pattern values --intervals 0.9   # calibration on the test input
    python experiments/pm10_heldout.py table     # results/imputation-pm10/head-to-head.{md,json}
    python experiments/pm10_heldout.py plot --pattern blocks --intervals 0.9   # imputation-{pattern}.png

``dynmask`` trains the setting with the lowest validation MAE in results/imputation-pm10/tuning.json
(runs in runs/imputation-pm10-heldout/, resumable) and writes its scores, with the interval coverage
when ``--intervals`` is given, to results/imputation-pm10/dynmask/{name}-{pattern}.json.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from series import ROOT, TUNING

from dynmask.baselines.series import impute_linear, impute_locf, impute_mean
from dynmask.missingness import TRAINING_HOLES
from dynmask.seed_stats import format_mean_sd, mean_sd
from dynmask.tasks.impute.calibration import imputation_metrics
from dynmask.tasks.impute.task import ImputationTask, calibrate_run, train_imputer
from dynmask.tasks.impute.trained import load_imputer
from dynmask.training import TrainConfig

sys.path.insert(0, str(ROOT / "benchmarks"))
from pypots_pm10 import heldout_table, pm10_data  # noqa: E402

OUT = ROOT / "results" / "imputation-pm10"


def _cells(pattern: str):
    folder = OUT / "heldout" if pattern == "values" else OUT / "heldout" / pattern
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def baselines(args) -> None:
    frame, data = pm10_data(args.pattern)
    windows = data["test"].copy()
    windows[data["test_holdout"]] = np.nan
    mean = ImputationTask(data).scaler.mean
    scores = {}
    for name, fill in (("mean", impute_mean), ("locf", impute_locf), ("linear", impute_linear)):
        pred = fill(windows, mean)
        table = heldout_table(frame, data, pred)
        table.to_csv(_cells(args.pattern) / f"{name}-seed0.csv", index=False, float_format="%.6g")
        scores[name] = imputation_metrics(pred, data["test"], data["test_holdout"])
        print(args.pattern, name, scores[name])
    (OUT / "dynmask").mkdir(exist_ok=True)
    (OUT / "dynmask" / f"baselines-{args.pattern}.json").write_text(json.dumps(scores, indent=2))


def dynmask(args) -> None:
    frame, data = pm10_data(args.pattern)
    tuning = json.loads((OUT / "tuning.json").read_text())
    cfg = TUNING[min(tuning, key=lambda name: tuning[name]["valid_mae"])]
    model = dict(cfg["model"], **({"interval": args.intervals} if args.intervals else {}))
    model.update({"normalize": args.normalize} if args.normalize != "none" else {})
    model.update({"residual": True} if args.residual else {})
    model.update({"residual_gate": True} if args.residual_gate else {})
    unit = TRAINING_HOLES[args.missing_process]
    name = _name(args)
    result_file = OUT / "dynmask" / f"{name}-{args.pattern}.json"
    result_file.parent.mkdir(exist_ok=True)
    record = json.loads(result_file.read_text()) if result_file.exists() else {"runs": []}
    record.update(pattern=args.pattern, model=model, training=cfg, missing_process=args.missing_process)
    done = {r["seed"] for r in record["runs"]}
    for seed in args.seeds:
        if seed in done:
            continue
        folder = _run_folder(args, seed)
        config = TrainConfig(
            epochs=cfg["epochs"], batch_size=32, lr=cfg["lr"], seed=seed, patience=cfg["patience"], progress=False
        )
        summary = train_imputer(
            data,
            folder,
            model,
            config,
            artificial=cfg["artificial"],
            schedule="dynamic",
            resume=(folder / "checkpoint").exists(),
            overwrite=not (folder / "checkpoint").exists(),
            missing_unit=unit,
        )
        pred = ImputationTask(data).predict(load_imputer(folder).model, "test")  # (N, L, F) data units
        table = heldout_table(frame, data, pred)
        table.to_csv(_cells(args.pattern) / f"{name}-seed{seed}.csv", index=False, float_format="%.6g")
        run = {
            "seed": seed,
            **summary["test"],
            "fallback_on_validation": summary["fallback"],
            "valid": summary["valid"],
            "train_seconds": summary["train_seconds"],
            "epochs_done": summary["epochs_done"],
        }
        record["runs"].append(run)
        result_file.write_text(json.dumps(record, indent=2))
        print(name, args.pattern, {k: v for k, v in run.items() if not isinstance(v, dict)}, flush=True)


def _name(args) -> str:
    block = "" if args.missing_process == "values" else f"-{TRAINING_HOLES[args.missing_process]}-holes"
    variant = ("-window-norm" if args.normalize == "window" else "") + ("-residual" if args.residual else "")
    variant += "-gated" if args.residual_gate else ""
    return "dynmask" + block + variant + ("-intervals" if args.intervals else "")


def _run_folder(args, seed: int):
    """The run of this method (``_name``), held-out pattern and seed."""
    return ROOT / "runs" / "imputation-pm10-heldout" / args.pattern / f"{_name(args)}-seed{seed}"


def calibrate(args) -> None:
    """Conformal calibration, on validation, of the interval runs trained before dynmask calibrated
    (new runs calibrate at the end of training); re-scores their test coverage in the result file."""
    _, data = pm10_data(args.pattern)
    task = ImputationTask(data)
    name = _name(args)
    result_file = OUT / "dynmask" / f"{name}-{args.pattern}.json"
    record = json.loads(result_file.read_text())
    for run in record["runs"]:
        if "interval_scale" in run:
            continue
        folder = _run_folder(args, run["seed"])
        scale = calibrate_run(folder, task)
        test = task.evaluate(load_imputer(folder).model, "test", interval_scale=scale)
        run.update({k: v for k, v in test.items() if "coverage" in k or "interval" in k})
        result_file.write_text(json.dumps(record, indent=2))
        print(name, args.pattern, run["seed"], {k: v for k, v in test.items() if "interval" in k or "coverage" in k})


def halves(args) -> None:
    """Is under-coverage a time shift? Calibrate on the first half of the validation windows (in time)
    and score the coverage on the second half, per seed; beside it, full validation -> test."""
    from dynmask.tasks.impute.calibration import conformal_scale, interval_metrics, widen_interval

    _, data = pm10_data(args.pattern)
    task = ImputationTask(data)
    truth, scored = data["valid"], data["valid_holdout"]
    half = truth.shape[0] // 2
    first, second = scored.copy(), scored.copy()
    first[half:], second[:half] = False, False  # (N, L, F): windows before / after the middle
    rows = []
    for seed in args.seeds:
        folder = _run_folder(args, seed)
        trained = load_imputer(folder)
        point, lower, upper = task.predict_with_intervals(trained.model, "valid")
        scale = conformal_scale(point, lower, upper, truth, first, 0.9)
        later = interval_metrics(*widen_interval(point, lower, upper, scale), truth, second, 0.9)["coverage"]
        test = task.evaluate(trained.model, "test", interval_scale=trained.interval_scale)["coverage"]
        rows.append({"seed": seed, "first_half_to_second_half": later, "valid_to_test": test})
        print(rows[-1], flush=True)
    out = OUT / "dynmask" / f"calibration-halves-{args.pattern}.json"
    out.write_text(json.dumps({"pattern": args.pattern, "runs": rows}, indent=2))


def on_input(args) -> None:
    """Calibrate on the test input itself: hide 10% more of the test values the model sees (never the
    held-out truth) in each calibration pattern, calibrate on them, and score the held-out coverage;
    beside it, the validation-calibrated coverage. Writes calibration-input-{method}-{pattern}.json."""
    from dynmask.tasks.impute.calibration import interval_metrics, widen_interval

    _, data = pm10_data(args.pattern)
    task = ImputationTask(data)
    truth, scored = data["test"], data["test_holdout"]
    rows = []
    for seed in args.seeds:
        trained = load_imputer(_run_folder(args, seed))
        point, lower, upper = task.predict_with_intervals(trained.model, "test")
        row = {"seed": seed, "validation": {"scale": trained.interval_scale}}
        row["validation"].update(interval_metrics(*widen_interval(point, lower, upper, trained.interval_scale),
                                                  truth, scored, 0.9))  # fmt: skip
        for pattern in ("values", "blocks", "variables"):
            scale, n = task.calibrate_on_input(trained.model, "test", pattern)
            widened = widen_interval(point, lower, upper, scale)
            row[f"input-{pattern}"] = {"scale": scale, "n": n, **interval_metrics(*widened, truth, scored, 0.9)}
        rows.append(row)
        print(seed, {k: (round(v["coverage"], 4), round(v["scale"], 3)) for k, v in row.items() if k != "seed"})
    out = OUT / "dynmask" / f"calibration-input-{_name(args)}-{args.pattern}.json"
    out.write_text(json.dumps({"pattern": args.pattern, "method": _name(args), "runs": rows}, indent=2))


def plot(args) -> None:
    """results/imputation-pm10/imputation-{pattern}.png: the first 120 test days of the three stations
    with the most held-out values: observed values, held-out truth, seed 0's fills and calibrated
    intervals."""
    from dynmask.plots import plot_imputation
    from dynmask.tasks.impute.calibration import widen_interval

    frame, data = pm10_data(args.pattern)
    folder = _run_folder(args, 0)
    trained = load_imputer(folder)
    point, lower, upper = ImputationTask(data).predict_with_intervals(trained.model, "test")  # (N, L, F) each
    lower, upper = widen_interval(point, lower, upper, trained.interval_scale)
    days = 120 // data["window"]  # whole windows; test windows do not overlap
    flat = lambda w: w[:days].reshape(-1, w.shape[-1])  # (N, L, F) -> (days * L, F)
    holdout = flat(data["test_holdout"])
    observed = np.where(holdout, np.nan, flat(data["test"]))
    names = [str(frame.columns[i]) for i in data["kept_columns"]]
    busiest = [names[j] for j in np.argsort(-holdout.sum(0), kind="stable")[:3]]
    a = data["ranges"]["test"][0]
    times = [str(frame.index[a + i])[:10] for i in range(observed.shape[0])]
    out = OUT / f"imputation-{args.pattern}.png"
    scored = lambda w: np.where(holdout, flat(w), np.nan)  # (days * L, F), NaN away from the held-out cells
    title = f"PM10, held-out {args.pattern}: dynmask fills and calibrated 90% intervals (seed 0)"
    plot_imputation(out, times, names, observed, scored(point), truth=scored(data["test"]),
                    lower=scored(lower), upper=scored(upper), variables=busiest, title=title)  # fmt: skip
    print(out)


def _mean_sd(xs: list) -> str:
    return format_mean_sd(*mean_sd(xs), digits=3)


def table(args) -> None:
    """results/imputation-pm10/head-to-head.{md,json}: every method on every held-out pattern run so far."""
    rows = []
    for pattern in ("values", "blocks", "variables"):
        entries = []
        for f in sorted((OUT / "dynmask").glob(f"*-{pattern}.json")):
            if f.name.startswith(("baselines-", "calibration-")):
                continue
            rec = json.loads(f.read_text())
            label = f.name[: -len(f"-{pattern}.json")]
            entries.append((label, rec["runs"], "dynmask"))
        for f in sorted((OUT / "pypots").glob("*.json")):
            rec = json.loads(f.read_text())
            budget = (
                f"dynmask's training time: {rec['epochs']} ep from a {rec['seconds_per_epoch']:.0f} s probe epoch"
                if rec["budget"] == "seconds"
                else f"{rec['budget']}: {rec['epochs']} ep, patience {rec['patience']}"
            )
            if rec["pattern"] == pattern:
                entries.append((f"PyPOTS {rec['model']} ({budget})", rec["runs"], "pypots"))
                continue
            # the same trained models (epoch chosen on rec's pattern), scored on this pattern's held-out cells
            runs = [
                {**r["also"][pattern], "train_seconds": r["train_seconds"]}
                for r in rec["runs"]
                if pattern in r.get("also", {})
            ]
            label = f"PyPOTS {rec['model']} ({budget}; epoch chosen on held-out {rec['pattern']})"
            entries.append((label, runs, "pypots"))
        for label, runs, kind in entries:
            if not runs:
                continue
            row = {"pattern": pattern, "method": label, "seeds": len(runs)}
            for k in ("mae", "rmse", "mre", "train_seconds"):
                row[k] = [r[k] for r in runs]
            cov = [r["coverage"] for r in runs if "coverage" in r]
            row["coverage_90"] = cov
            on_input = OUT / "dynmask" / f"calibration-input-{label}-{pattern}.json"
            if kind == "dynmask" and on_input.exists():
                calibrated = json.loads(on_input.read_text())["runs"]  # calibrated on the test input, same pattern
                row["coverage_90_input"] = [r[f"input-{pattern}"]["coverage"] for r in calibrated]
            rows.append(row)
        base = OUT / "dynmask" / f"baselines-{pattern}.json"
        if base.exists():
            for name, m in json.loads(base.read_text()).items():
                rows.append({"pattern": pattern, "method": name, "seeds": 1, "mae": [m["mae"]], "rmse": [m["rmse"]],
                             "mre": [m["mre"]], "train_seconds": [], "coverage_90": []})  # fmt: skip
    lines = [
        "| held-out pattern | method | seeds | MAE | RMSE | MRE | 90% interval coverage: validation-calibrated / "
        "input-calibrated | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    pct = lambda xs: f"{100 * sum(xs) / len(xs):.1f}%" if xs else "–"
    for r in rows:
        cov = pct(r["coverage_90"]) + (f" / {pct(r['coverage_90_input'])}" if r.get("coverage_90_input") else "")
        secs = f"{sum(r['train_seconds']) / len(r['train_seconds']):.0f}" if r["train_seconds"] else "–"
        lines.append(
            f"| {r['pattern']} | {r['method']} | {r['seeds']} | {_mean_sd(r['mae'])} | {_mean_sd(r['rmse'])} | "
            f"{_mean_sd(r['mre'])} | {cov} | {secs} |"
        )
    (OUT / "head-to-head.md").write_text("\n".join(lines) + "\n")
    (OUT / "head-to-head.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("baselines", "dynmask", "calibrate", "halves", "input", "table", "plot"))
    p.add_argument("--pattern", choices=("values", "blocks", "variables"), default="values")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--intervals", type=float, default=0.0, help="also learn this prediction interval (e.g. 0.9)")
    p.add_argument("--missing-process", choices=tuple(TRAINING_HOLES), default="values", help="training holes")
    p.add_argument("--normalize", choices=("none", "window"), default="none", help="dynmask: per-window normalisation")
    p.add_argument("--residual", action="store_true", help="dynmask: a correction to linear interpolation")
    p.add_argument("--residual-gate", action="store_true", help="dynmask: gate the interpolation per value")
    args = p.parse_args()
    commands = dict(
        baselines=baselines, dynmask=dynmask, calibrate=calibrate, halves=halves, input=on_input, table=table, plot=plot
    )
    commands[args.what](args)


if __name__ == "__main__":
    main()
