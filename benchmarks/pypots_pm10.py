"""PyPOTS imputers on exactly dynmask's PM10 windows, split, standardisation and held-out values:
MAE / RMSE / MRE, training seconds, and the scored test cells of every run.

Runs in its own environment (the project never depends on pypots):

    python3 -m venv /tmp/pypots-venv
    /tmp/pypots-venv/bin/pip install torch==2.13.0 pypots tokenizers safetensors pandas
    /tmp/pypots-venv/bin/python benchmarks/pypots_pm10.py --models saits,brits,itransformer,timesnet,imputeformer,csdi
    /tmp/pypots-venv/bin/python benchmarks/pypots_pm10.py --pattern blocks --seeds 0     # another held-out pattern
    /tmp/pypots-venv/bin/python benchmarks/pypots_pm10.py --budget seconds --also-score blocks,variables
        # one training per seed (best epoch chosen on the --pattern validation), scored on every pattern

Writes ``results/imputation-pm10/pypots/{model}-{pattern}-{budget}.json`` and the scored cells
``results/imputation-pm10/heldout/{model}-seed{S}.csv`` (``{model}-{budget}-seed{S}.csv`` for a budget other
than ``published``; pattern ``values``; other patterns in
``heldout/{pattern}/``), columns date, station, truth, prediction (µg/m³). Finished runs are skipped.

Settings ("published"): TSI-Bench's tuned BeijingAir settings (Du et al., 2024; hpo_results/beijing_air.py
of WenjieDu/Awesome_Imputation: 100 epochs, patience 10, their learning rates) for SAITS, BRITS,
iTransformer and TimesNet; CSDI as in its paper (Tashiro et al., 2021: 4 residual layers, 64 channels,
8 heads, 50 diffusion steps, quadratic schedule 1e-4 to 0.5, time / feature embeddings 128 / 16, lr
1e-3), its point prediction the median of ``--csdi-samples`` samples, which also give its 90% interval;
ImputeFormer with PyPOTS' documented example sizes (TSI-Bench has no BeijingAir entry for it).
``--budget dynmask``: the same models with dynmask's training budget in epochs (150 epochs, patience 25).
``--budget seconds``: dynmask's training budget in *time* (``--seconds``, default 232: dynmask's mean training
seconds on values): one timed epoch per model (seed 0) sets the epochs, ``floor(seconds / s per epoch)``
(at least 1), with no early stop before them; the best epoch on validation is kept, as in every budget.
The epochs are fixed before training, so the measured ``train_seconds`` (reported) can differ from the
target: SAITS's one-epoch probe took 11 s, its 21 epochs 482 s.
Every model: batch 32, Adam, early stopping on the validation held-out values, CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dynmask.data.series import read_wide_csv, window_starts  # noqa: E402
from dynmask.tasks.impute.calibration import imputation_metrics, interval_metrics  # noqa: E402
from dynmask.tasks.impute.task import prepare_imputation_data  # noqa: E402

PM10 = ROOT.parent / "shared" / "datasets" / "timeseries" / "pm10-germany-rural.csv"
OUT = ROOT / "results" / "imputation-pm10"

# (constructor settings, learning rate); n_steps / n_features / epochs / patience are added per run
PUBLISHED = {
    "saits": (
        dict(n_layers=1, d_model=64, d_ffn=256, n_heads=4, d_k=256, d_v=64, dropout=0.1, attn_dropout=0.1),
        0.00125059883141597,
    ),
    "brits": (dict(rnn_hidden_size=512), 0.006242554068503864),
    "itransformer": (
        dict(n_layers=3, d_model=256, d_ffn=4096, n_heads=8, d_k=32, d_v=128, dropout=0.0, attn_dropout=0.0),
        0.0004619505533241738,
    ),
    "timesnet": (
        dict(n_layers=2, top_k=1, d_model=1024, d_ffn=128, n_kernels=5, dropout=0.1),
        0.000737615359931056,
    ),
    "imputeformer": (
        dict(n_layers=3, d_input_embed=32, d_learnable_embed=96, d_proj=10, d_ffn=256, n_temporal_heads=4, dropout=0.1),
        1e-3,
    ),
    "csdi": (
        dict(
            n_layers=4,
            n_heads=8,
            n_channels=64,
            d_time_embedding=128,
            d_feature_embedding=16,
            d_diffusion_embedding=128,
            n_diffusion_steps=50,
            schedule="quad",
            beta_start=0.0001,
            beta_end=0.5,
        ),
        1e-3,
    ),
}
BUDGETS = {"published": (100, 10), "dynmask": (150, 25), "seconds": (None, None)}  # seconds: set per model
DYNMASK_TRAIN_SECONDS = 232  # dynmask-intervals on values, mean of 3 seeds (results/imputation-pm10/dynmask/)


def _model(name: str, n_steps: int, n_features: int, epochs: int, patience: int, verbose: bool = False):
    import pypots.imputation as imp
    from pypots.optim import Adam

    cls = {
        "saits": imp.SAITS,
        "brits": imp.BRITS,
        "itransformer": imp.iTransformer,
        "timesnet": imp.TimesNet,
        "imputeformer": imp.ImputeFormer,
        "csdi": imp.CSDI,
    }[name]
    settings, lr = PUBLISHED[name]
    return cls(
        n_steps=n_steps,
        n_features=n_features,
        batch_size=32,
        epochs=epochs,
        patience=patience,
        optimizer=Adam(lr=lr),
        device="cpu",
        verbose=verbose,
        **settings,
    )


def pm10_data(pattern: str = "values"):
    """(frame, data): dynmask's PM10 windows, split, standardisation and held-out values (the settings of
    experiments/series.py); for ``values`` the held-out mask must equal the committed one."""
    frame = read_wide_csv(PM10)
    data = prepare_imputation_data(
        frame.to_numpy(), 30, 5, holdout=0.1, seed=0, drop_unobserved=True, holdout_pattern=pattern
    )
    if pattern == "values":  # the very held-out values dynmask and the baselines were scored on
        np.testing.assert_array_equal(np.load(OUT / "test_holdout_mask.npy"), data["test_holdout"])
    return frame, data


def pypots_inputs(data: dict):
    """PyPOTS's inputs, standardised: (train, valid with held-out values hidden, valid truth, test with
    held-out values hidden)."""
    scaler = data["scaler"]
    valid_truth = scaler.transform(data["valid"])
    valid_in = np.where(data["valid_holdout"], np.nan, valid_truth)
    test_in = np.where(data["test_holdout"], np.nan, scaler.transform(data["test"]))
    return scaler.transform(data["train"]), valid_in, valid_truth, test_in


def heldout_table(frame, data: dict, pred: np.ndarray):
    """The scored test cells as a table: date, station, truth, prediction (data units)."""
    import pandas as pd

    a, b = data["ranges"]["test"]
    length = data["window"]
    starts = window_starts(b - a, length, length)  # test windows do not overlap (but the last may)
    dates = np.array([[str(frame.index[a + s + i]) for i in range(length)] for s in starts])  # (N, L)
    stations = np.array([str(frame.columns[i]) for i in data["kept_columns"]])  # (F,)
    w, t, f = np.nonzero(data["test_holdout"])
    return pd.DataFrame(
        {"date": dates[w, t], "station": stations[f], "truth": data["test"][w, t, f], "prediction": pred[w, t, f]}
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(PUBLISHED), help="comma-separated (default: all)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pattern", choices=("values", "blocks", "variables"), default="values")
    p.add_argument("--budget", choices=tuple(BUDGETS), default="published")
    p.add_argument(
        "--also-score",
        default="",
        help="comma-separated held-out patterns the same trained model is also scored on (its test windows with "
        "that pattern's held-out cells hidden); kept under the run as 'also'",
    )
    p.add_argument("--csdi-samples", type=int, default=20, help="CSDI samples per window (median, 5%% / 95%%)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--probe-epochs",
        type=int,
        default=0,
        help="plan a run: train each model this many epochs (seed 0), print seconds per epoch, write nothing",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=DYNMASK_TRAIN_SECONDS,
        help="with --budget seconds: the training time each model gets (default: dynmask's, %(default)s)",
    )
    args = p.parse_args()
    if args.seconds <= 0:  # before the data and models are loaded
        p.error(f"--seconds must be > 0, got {args.seconds}")
    import torch
    from pypots.utils.random import set_random_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    also = [q for q in args.also_score.split(",") if q]
    bad = [q for q in also if q not in ("values", "blocks", "variables") or q == args.pattern]
    if bad:
        p.error(
            f"--also-score takes patterns other than --pattern {args.pattern!r} (values, blocks, variables); got {bad}"
        )
    frame, data = pm10_data(args.pattern)
    scaler = data["scaler"]
    train, valid_in, valid_truth, test_in = pypots_inputs(data)
    tests = {args.pattern: (data, test_in)}  # pattern -> (its data, the test windows with its cells hidden)
    for q in also:
        other = pm10_data(q)[1]
        np.testing.assert_array_equal(other["test"], data["test"])  # the same windows, other cells held out
        tests[q] = (other, pypots_inputs(other)[3])
    epochs, patience = BUDGETS[args.budget]

    def seconds_per_epoch(name: str, n_epochs: int) -> float:
        """Train ``name`` for ``n_epochs`` (seed 0, validation included), timed; the model is discarded."""
        set_random_seed(0)
        model = _model(name, train.shape[1], train.shape[2], n_epochs, n_epochs, verbose=bool(args.probe_epochs))
        t0 = time.perf_counter()
        model.fit({"X": train}, {"X": valid_in, "X_ori": valid_truth})
        return (time.perf_counter() - t0) / n_epochs

    if args.probe_epochs:
        for name in args.models.split(","):
            per_epoch = seconds_per_epoch(name, args.probe_epochs)
            minutes = per_epoch * (epochs or 100) / 60
            print(f"{name}: {per_epoch:.1f} s per epoch (with validation); {epochs or 100} epochs <= {minutes:.0f} min")
        return
    (OUT / "pypots").mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        result_file = OUT / "pypots" / f"{name}-{args.pattern}-{args.budget}.json"
        record = json.loads(result_file.read_text()) if result_file.exists() else {"runs": []}
        done = {r["seed"] for r in record["runs"] if set(also) <= set(r.get("also", {}))}
        if all(int(s) in done for s in args.seeds.split(",")):
            continue
        if args.budget == "seconds":
            if record.get("seconds") != args.seconds:  # a finished run keeps the epochs it was given
                if record["runs"]:
                    p.error(f"{result_file} was run with --seconds {record.get('seconds')}; not {args.seconds}")
                record["seconds_per_epoch"] = seconds_per_epoch(name, 1)
                record["seconds"] = args.seconds
            epochs = patience = max(1, int(args.seconds // record["seconds_per_epoch"]))
        record.update(
            model=name, pattern=args.pattern, budget=args.budget, epochs=epochs, patience=patience,
            settings=PUBLISHED[name][0], lr=PUBLISHED[name][1],
        )  # fmt: skip
        for seed in (int(s) for s in args.seeds.split(",")):
            if seed in done:
                continue
            set_random_seed(seed)
            model = _model(name, train.shape[1], train.shape[2], epochs, patience)
            t0 = time.perf_counter()
            model.fit({"X": train}, {"X": valid_in, "X_ori": valid_truth})
            seconds = time.perf_counter() - t0
            scored = {}  # pattern -> (metrics, imputed test windows in data units)
            for q, (qdata, q_in) in tests.items():
                extra = {}
                if name == "csdi":
                    samples = model.predict({"X": q_in}, n_sampling_times=args.csdi_samples)["imputation"]
                    # (N, S, L, F) -> (S, N, L, F), data units
                    samples = scaler.inverse(samples.transpose(1, 0, 2, 3))
                    imputed = np.median(samples, axis=0)
                    lower, upper = np.quantile(samples, 0.05, axis=0), np.quantile(samples, 0.95, axis=0)
                    extra = interval_metrics(lower, upper, qdata["test"], qdata["test_holdout"], 0.9)
                    extra["samples"] = args.csdi_samples
                else:
                    imputed = scaler.inverse(model.predict({"X": q_in})["imputation"])
                scored[q] = ({**imputation_metrics(imputed, qdata["test"], qdata["test_holdout"]), **extra}, imputed)
            predict_seconds = time.perf_counter() - t0 - seconds
            run = {
                "seed": seed,
                **scored[args.pattern][0],
                "train_seconds": seconds,
                "predict_seconds": predict_seconds,
            }
            if also:
                run["also"] = {q: scored[q][0] for q in also}
            record["runs"] = [r for r in record["runs"] if r["seed"] != seed] + [run]  # replaces a run without 'also'
            budget = "" if args.budget == "published" else f"-{args.budget}"  # e.g. saits-seconds-seed0.csv
            for q, (_, imputed) in scored.items():
                folder = OUT / "heldout" if q == "values" else OUT / "heldout" / q
                folder.mkdir(parents=True, exist_ok=True)
                table = heldout_table(frame, tests[q][0], imputed)
                selected = "" if q == args.pattern else f"-selected-on-{args.pattern}"
                table.to_csv(folder / f"{name}{budget}{selected}-seed{seed}.csv", index=False, float_format="%.6g")
            result_file.write_text(json.dumps(record, indent=2))
            print(name, args.pattern, run, flush=True)


if __name__ == "__main__":
    main()
