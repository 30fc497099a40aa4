"""Forecasting from gappy history: dynmask, its simple baselines and the peers (statsforecast,
neuralforecast) on exactly the same test forecasts, with the real gaps plus 0 / 20 / 40% of the history
removed (single values or blocks of 7 steps). Two data sets: PM10 (daily, 70 stations, 51% missing, 7 days
ahead) and US change (sktime's copy of fpp2's uschange: quarterly, 5 series, complete; 4 quarters ahead).

    python benchmarks/forecasting.py windows                 # the test windows and their extra holes (npz)
    python benchmarks/forecasting.py dynmask                 # train 3 seeds with `dynmask train forecast`, forecast
    python benchmarks/forecasting.py impute-then-forecast    # dynmask's imputer fills the history first (PM10)
    /tmp/peers/bin/python benchmarks/forecasting.py peers    # statsforecast / neuralforecast (their own venv)
    python benchmarks/forecasting.py table                   # score all: results.{json,md}, plots
    (each with --dataset pm10 (default) or uschange)

The split is dynmask's (chronological 70 / 10 / 20%); the test forecasts start every horizon in the test
range. Each test window holds a long history (PM10: 112 days; dynmask reads its last 28, its context; the
peers may read all of it) and the horizon to forecast; only observed future values are scored, the same ones for
every method. The extra history holes are drawn once per setting (seeded) and shared by every method.
Peers that need a complete history read it linearly interpolated (the last value before a gap, then a
line; a station with no observation in the history: its training mean). Every raw forecast is written to
``results/forecast-{dataset}/forecasts/`` (npz: one array [N, H, F] per method and setting, rounded to
0.1 µg/m³ (US change: 0.001), NaN where nothing was observed afterwards) so anyone can re-score them; the
test windows they are scored against (``windows.npz``, third-party data) are not committed: ``windows``
rebuilds them identically.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "datasets" / "timeseries" / "pm10-germany-rural.csv"
OUT = ROOT / "results" / "forecast-pm10"
RUNS = ROOT / "runs" / "forecast-pm10"
HORIZON, SEASON, CONTEXT, LONG = 7, 7, 28, 112
UNITS = "PM10 (µg/m³)"
DATASETS = {  # name: (horizon, season, dynmask's context (its default), history the peers may read)
    "pm10": (7, 7, 28, 112),
    "uschange": (4, 4, 16, 32),
}


def configure(name: str) -> None:
    """Point the module at data set ``name``: its file (US change: fetched from the sktime wheel, pinned,
    and written as a wide CSV with quarter-start dates), horizon, season, context and folders."""
    global DATA, OUT, RUNS, HORIZON, SEASON, CONTEXT, LONG, UNITS
    HORIZON, SEASON, CONTEXT, LONG = DATASETS[name]
    UNITS = {"pm10": "PM10 (µg/m³)", "uschange": "change (%)"}[name]
    OUT, RUNS = ROOT / "results" / f"forecast-{name}", ROOT / "runs" / f"forecast-{name}"
    if name == "uschange":
        DATA = OUT / "uschange.csv"
        if not DATA.exists():
            import pandas as pd

            from dynmask.data.series import USCHANGE
            from dynmask.data.sources import fetch

            raw = pd.read_csv(fetch(USCHANGE), index_col=0)
            year, quarter = raw["Quarter"].str.split(" Q", expand=True).astype(int).T.to_numpy()
            dates = [f"{y}-{3 * (q - 1) + 1:02d}-01" for y, q in zip(year, quarter)]
            frame = raw.drop(columns="Quarter").set_index(pd.Index(dates, name="date"))
            OUT.mkdir(parents=True, exist_ok=True)
            frame.to_csv(DATA)


SEEDS = (0, 1, 2)
SETTINGS = {  # name: (extra share of history values removed, pattern)
    "real gaps": (0.0, "uniform"),
    "+20% values": (0.2, "uniform"),
    "+40% values": (0.4, "uniform"),
    "+20% blocks": (0.2, "blocks"),
    "+40% blocks": (0.4, "blocks"),
}
HOLES_SEED = 2026


def _frame():
    import pandas as pd

    return pd.read_csv(DATA, index_col=0)


def windows() -> None:
    """The test windows (original units, NaN = missing), the setting's extra holes, the training range."""
    from dynmask.data.series import chronological_split
    from dynmask.tasks.forecast.data import history_holes

    frame = _frame()
    values = frame.to_numpy(dtype=np.float64)
    ranges = chronological_split(len(values))
    (a, b), (s, e) = ranges["train"], ranges["test"]
    origins = list(range(s, e - HORIZON + 1, HORIZON))
    long = np.stack([values[t - LONG : t + HORIZON] for t in origins])  # (N, 112 + 7, F)
    arrays = {"test": long, "origins": np.array(origins), "train": values[a:b]}
    for i, (name, (rate, pattern)) in enumerate(SETTINGS.items()):
        holed = history_holes(long, LONG, rate, pattern, seed=HOLES_SEED + i)
        arrays[f"holes/{name}"] = np.isnan(holed) & ~np.isnan(long)  # the extra holes of this setting
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "windows.npz", **arrays)
    (OUT / "windows.json").write_text(
        json.dumps(
            {
                "columns": list(frame.columns),
                "dates": [str(frame.index[t]) for t in origins],
                "train_range": [a, b],
                "test_range": [s, e],
                "settings": SETTINGS,
                "history": LONG,
                "horizon": HORIZON,
                "context": CONTEXT,
            },
            indent=2,
        )  # fmt: skip
    )
    print(f"{len(origins)} test forecasts x {values.shape[1]} stations -> {OUT / 'windows.npz'}")


def _load_windows():
    w = np.load(OUT / "windows.npz")
    meta = json.loads((OUT / "windows.json").read_text())
    return w, meta


def _setting_windows(w, name: str) -> np.ndarray:
    test = w["test"].copy()
    test[w[f"holes/{name}"]] = np.nan
    return test


def _save(method: str, setting: str, forecasts: np.ndarray, extra: dict | None = None) -> None:
    folder = OUT / "forecasts"
    folder.mkdir(parents=True, exist_ok=True)
    key = _key(method, setting)
    np.savez_compressed(folder / f"{key}.npz", **_compact({"forecast": forecasts, **(extra or {})}))
    index = folder / "index.json"
    table = json.loads(index.read_text()) if index.exists() else {}
    table[key] = {"method": method, "setting": setting}
    index.write_text(json.dumps(table, indent=1, sort_keys=True))


DECIMALS = {"PM10 (µg/m³)": 1, "change (%)": 3}


def _compact(arrays: dict) -> dict:
    """What a forecast file keeps: forecasts (and interval bounds) rounded to 0.1 µg/m³ (0.001 for US
    change), float32, and NaN where nothing was observed afterwards (never scored), so the files stay small."""
    truth = np.load(OUT / "windows.npz")["test"][:, LONG:]  # (N, H, F)
    out = dict(arrays)
    for k in ("forecast", "lower", "upper"):
        if k in out and np.asarray(out[k]).shape == truth.shape:
            a = np.round(np.asarray(out[k], dtype=np.float64), DECIMALS[UNITS])
            out[k] = np.where(np.isfinite(truth), a, np.nan).astype(np.float32)
    return out


def compact_all() -> None:
    """Rewrite every forecast file compactly (files written by an older run of this script)."""
    for path in sorted((OUT / "forecasts").glob("*.npz")):
        data = dict(np.load(path))
        np.savez_compressed(path, **_compact(data))


def dynmask_runs(epochs: int) -> None:
    """Train ``dynmask train forecast`` with its defaults for each seed, then forecast every setting."""
    from dynmask.baselines.forecast import FORECAST_BASELINES
    from dynmask.cli import main
    from dynmask.tasks.forecast.trained import load_forecaster

    w, meta = _load_windows()
    for seed in SEEDS:
        run = RUNS / f"seed{seed}"
        if not (run / "test_results.json").exists():
            argv = ["train", "forecast", "--data", str(DATA), "--horizon", str(HORIZON), "--output", str(run),
                    "--epochs", str(epochs), "--seed", str(seed), "--no-progress"]  # fmt: skip
            if run.exists():
                argv.append("--resume")
            t0 = time.perf_counter()
            assert main(argv) == 0
            (run / "wall_seconds.json").write_text(json.dumps({"train_and_score": time.perf_counter() - t0}))
        trained = load_forecaster(run)
        assert trained.context == CONTEXT, trained.context
        columns = meta["columns"]
        keep = [columns.index(c) for c in trained.column_names]  # the stations the run forecasts
        for name in SETTINGS:
            test = _setting_windows(w, name)[:, LONG - CONTEXT : LONG][:, :, keep]  # (N, 28, F')
            t0 = time.perf_counter()
            point, lower, upper = zip(*(trained.forecast(h, intervals=True, use_model=True) for h in test))
            seconds = time.perf_counter() - t0
            full = lambda a: _scatter(np.stack(a), keep, len(columns))  # noqa: E731
            # "dynmask seed": the model; "dynmask default": what `dynmask forecast` gives (the model, or the
            # simple baseline that beat it on validation)
            # the model, or the baseline it chose on validation, with the interval `--interval` gives
            default, d_lower, d_upper = zip(*(trained.forecast(h, intervals=True) for h in test))
            _save(f"dynmask default seed{seed}", name, full(default), {"lower": full(d_lower), "upper": full(d_upper),
                  "fallback": np.array(str(trained.fallback))})  # fmt: skip
            wall = json.loads((run / "wall_seconds.json").read_text())["train_and_score"]
            _save(f"dynmask seed{seed}", name, full(point), {"lower": full(lower), "upper": full(upper),
                  "seconds": np.array(seconds), "train_seconds": np.array(wall),
                  "fallback": np.array(str(trained.fallback))})  # fmt: skip
    # the simple baselines (no training: one forecast per setting)
    for name in SETTINGS:
        history = _setting_windows(w, name)[:, LONG - CONTEXT : LONG]
        fill = np.nanmean(w["train"], axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        for method, fn in FORECAST_BASELINES.items():
            _save(method, name, fn(history, HORIZON, SEASON, fill))


def impute_then_forecast() -> None:
    """dynmask's own imputer (``dynmask train impute`` with its defaults, seed 0) fills each history first;
    the forecasters of every seed then read the filled history."""
    from dynmask.cli import main
    from dynmask.tasks.forecast.trained import load_forecaster
    from dynmask.tasks.impute.csv_io import fill_windows
    from dynmask.tasks.impute.trained import load_imputer

    run = RUNS / "imputer"
    if not (run / "test_results.json").exists():
        argv = ["train", "impute", "--data", str(DATA), "--output", str(run), "--drop-unobserved", "--no-progress"]
        t0 = time.perf_counter()
        assert main(argv + (["--resume"] if run.exists() else [])) == 0
        (run / "wall_seconds.json").write_text(json.dumps({"train_and_score": time.perf_counter() - t0}))
    imputer = load_imputer(run)
    w, meta = _load_windows()
    columns = meta["columns"]
    for seed in SEEDS:
        trained = load_forecaster(RUNS / f"seed{seed}")
        keep = [columns.index(c) for c in trained.column_names]
        order = [imputer.column_names.index(c) for c in trained.column_names]  # the imputer's variable order
        for name in SETTINGS:
            test = _setting_windows(w, name)[:, LONG - CONTEXT : LONG][:, :, keep]  # (N, 28, F')
            point = []
            for history in test:
                inverse = np.argsort(order)
                fills = fill_windows(imputer.model, imputer.scaler, imputer.window, history[:, inverse])[:, order]
                point.append(trained.forecast(np.where(np.isfinite(history), history, fills), use_model=True))
            _save(
                f"dynmask imputer + dynmask forecaster seed{seed}", name, _scatter(np.stack(point), keep, len(columns))
            )


def _scatter(a: np.ndarray, keep: list[int], width: int) -> np.ndarray:
    out = np.full(a.shape[:-1] + (width,), np.nan)
    out[..., keep] = a
    return out


# ------------------------------------------------------------------------------------------------ peers
def _interpolated(history: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(N, L, F) with each series' gaps filled linearly (nearest value at the edges; ``fill`` if never observed)."""
    import pandas as pd

    out = history.copy()
    for i in range(out.shape[0]):
        out[i] = pd.DataFrame(out[i]).interpolate(limit_direction="both").to_numpy()
    return np.where(np.isnan(out), fill, out)


def peers(which: list[str], max_steps: int) -> None:
    w, meta = _load_windows()
    fill = np.nanmean(w["train"], axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    if "statsforecast" in which:
        _statsforecast(w, fill)
    if "neuralforecast" in which:
        _neuralforecast(w, meta, fill, max_steps)


def _statsforecast(w, fill) -> None:
    """SeasonalNaive and AutoETS on every setting, AutoARIMA on the real gaps; on PM10 (8,750 series per
    setting) on every fifth / tenth forecast only (``*``: scored on that subset, dynmask beside it)."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

    def run(models, history, label_suffix=""):
        n, length, f = history.shape
        frame = pd.DataFrame({
            "unique_id": np.repeat(np.arange(n * f), length),
            "ds": np.tile(np.arange(length), n * f),
            "y": history.transpose(0, 2, 1).reshape(-1),
        })  # fmt: skip
        t0 = time.perf_counter()
        pred = StatsForecast(models=models, freq=1, n_jobs=1).forecast(df=frame, h=HORIZON)
        seconds = time.perf_counter() - t0
        pred = pred.reset_index() if "unique_id" not in pred.columns else pred
        pred = pred.sort_values(["unique_id", "ds"])
        return {type(m).__name__: pred[type(m).__name__].to_numpy().reshape(n, f, HORIZON).transpose(0, 2, 1)
                for m in models}, seconds  # fmt: skip

    n_windows = w["test"].shape[0]
    step = 5 if n_windows > 50 else 1  # PM10: AutoETS takes ~0.1 s a series here, so every fifth forecast
    every = np.arange(0, n_windows, step)
    star = "*" if step > 1 else ""
    for name in SETTINGS:
        if _exists(f"AutoETS{star}", name):
            continue
        history = _interpolated(_setting_windows(w, name)[every, :LONG], fill)  # (n, LONG, F)
        out, seconds = run([SeasonalNaive(season_length=SEASON), AutoETS(season_length=SEASON)], history)
        for model, values in out.items():
            full = np.full((n_windows, HORIZON, history.shape[2]), np.nan)
            full[every] = values
            _save(f"{model}{star}", name, full, {"seconds": np.array(seconds), **({"subset": every} if star else {})})
        print(f"statsforecast {name}: {seconds:.0f} s", flush=True)
    name = "real gaps"  # AutoARIMA (~1 s a series here): every tenth forecast, the real gaps only
    every = np.arange(0, n_windows, 2 * step if step > 1 else 1)
    arima = f"AutoARIMA{star}"
    if not _exists(arima, name):
        history = _interpolated(_setting_windows(w, name)[every, :LONG], fill)
        out, seconds = run([AutoARIMA(season_length=SEASON)], history)
        full = np.full((n_windows, HORIZON, history.shape[2]), np.nan)
        full[every] = out["AutoARIMA"]
        _save(arima, name, full, {"seconds": np.array(seconds), **({"subset": every} if star else {})})
        print(f"AutoARIMA {name}: {seconds:.0f} s", flush=True)


def _exists(method: str, setting: str) -> bool:
    return (OUT / "forecasts" / f"{_key(method, setting)}.npz").exists()


def _key(method: str, setting: str) -> str:
    return f"{method}--{setting}".replace(" ", "_").replace("%", "pct").replace("+", "plus").replace("*", "-subset")


def _neuralforecast(w, meta, fill, max_steps: int) -> None:
    """Global univariate models over the series (one per station), trained on the training range with
    its gaps given as ``available_mask`` (NHITS, PatchTST, DLinear) or linearly interpolated first
    (NHITS); ``input_size`` = dynmask's context; 3 seeds; every setting forecast from the same windows."""
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast.models import NHITS, DLinear, PatchTST

    train = w["train"]  # (T, F) with NaN
    t_len, f = train.shape
    keep = [j for j in range(f) if np.isfinite(train[:, j]).any()]
    configs = [(NHITS, "available_mask"), (PatchTST, "available_mask"), (DLinear, "available_mask"),
               (NHITS, "interpolated")]  # fmt: skip
    for cls, variant in configs:
        label = f"{cls.__name__} ({variant})"
        if variant == "interpolated":
            series, mask = _interpolated(train[None], fill)[0], np.ones_like(train)
        else:
            series, mask = np.where(np.isnan(train), 0.0, train), (~np.isnan(train)).astype(float)
        frame = pd.DataFrame({
            "unique_id": np.repeat(keep, t_len),
            "ds": np.tile(np.arange(t_len), len(keep)),
            "y": series[:, keep].T.reshape(-1),
            "available_mask": mask[:, keep].T.reshape(-1),
        })  # fmt: skip
        steps = max_steps
        if not max_steps:  # dynmask's mean training time per seed as the budget: a timed probe sets the steps
            budget = np.mean([json.loads((RUNS / f"seed{k}" / "wall_seconds.json").read_text())["train_and_score"]
                              for k in SEEDS])  # fmt: skip
            probe = cls(h=HORIZON, input_size=CONTEXT, max_steps=50, random_seed=0, scaler_type="robust",
                        enable_progress_bar=False, enable_model_summary=False, logger=False)  # fmt: skip
            t0 = time.perf_counter()
            NeuralForecast(models=[probe], freq=1).fit(df=frame)
            steps = max(100, int(50 * budget / (time.perf_counter() - t0)))
            print(f"{label}: {steps} steps for a budget of {budget:.0f} s", flush=True)
        for seed in SEEDS:
            if all(_exists(f"{label} seed{seed}", s) for s in SETTINGS):
                continue
            model = cls(h=HORIZON, input_size=CONTEXT, max_steps=steps, random_seed=seed, scaler_type="robust",
                        enable_progress_bar=False, enable_model_summary=False, logger=False)  # fmt: skip
            nf = NeuralForecast(models=[model], freq=1)
            t0 = time.perf_counter()
            nf.fit(df=frame)
            train_seconds = time.perf_counter() - t0
            for name in SETTINGS:
                history = _setting_windows(w, name)[:, LONG - CONTEXT : LONG]  # (N, C, F)
                if variant == "interpolated":
                    hist_y, hist_m = _interpolated(history, fill), np.ones_like(history)
                else:
                    hist_y, hist_m = np.where(np.isnan(history), 0.0, history), (~np.isnan(history)).astype(float)
                n = history.shape[0]
                uids = (np.arange(n)[:, None] * f + np.array(keep)[None, :]).reshape(-1)  # a series per window, station
                rows = pd.DataFrame({
                    "unique_id": np.repeat(uids, CONTEXT),
                    "ds": np.tile(np.arange(CONTEXT), len(uids)),
                    "y": hist_y[:, :, keep].transpose(0, 2, 1).reshape(-1),
                    "available_mask": hist_m[:, :, keep].transpose(0, 2, 1).reshape(-1),
                })  # fmt: skip
                t1 = time.perf_counter()
                pred = nf.predict(df=rows)
                seconds = time.perf_counter() - t1
                pred = pred.reset_index() if "unique_id" not in pred.columns else pred
                col = [c for c in pred.columns if c.startswith(cls.__name__)][0]
                pred = pred.sort_values(["unique_id", "ds"])
                values = pred[col].to_numpy().reshape(len(uids), HORIZON)
                out = np.full((n, HORIZON, f), np.nan)
                out[uids // f, :, uids % f] = values
                extra = {
                    "seconds": np.array(seconds),
                    "train_seconds": np.array(train_seconds),
                    "steps": np.array(steps),
                }
                _save(f"{label} seed{seed}", name, out, extra)
            print(f"{label} seed {seed}: trained in {train_seconds:.0f} s", flush=True)


# ------------------------------------------------------------------------------------------------ scoring
def table() -> None:
    from dynmask.tasks.forecast.data import mase_scale
    from dynmask.tasks.forecast.task import forecast_metrics

    w, meta = _load_windows()
    truth = w["test"][:, LONG:]  # (N, 7, F)
    scale = mase_scale(w["train"], SEASON)
    index = json.loads((OUT / "forecasts" / "index.json").read_text())
    rows: dict = {}
    loaded = {}
    for key, info in sorted(index.items()):
        data = np.load(OUT / "forecasts" / f"{key}.npz")
        if "marker" not in data:
            loaded[key] = (info, data)
    # the same values for every method: observed afterwards, at the stations every method forecasts
    full = [d for _, d in loaded.values() if "subset" not in d]
    observed = np.isfinite(truth)
    stations = np.logical_and.reduce([(np.isfinite(d["forecast"]) | ~observed).all(axis=(0, 1)) for d in full])
    common = np.isfinite(truth) & stations[None, None, :]
    subsets = {}
    for key, (info, data) in loaded.items():
        pred = data["forecast"]
        scored = common
        if "subset" in data:  # a method run on some forecasts only: scored there, dynmask beside it
            scored = common & np.isin(np.arange(truth.shape[0]), data["subset"])[:, None, None]
            subsets[(info["method"], info["setting"])] = scored
        m = forecast_metrics(np.where(scored, pred, 0.0), np.where(scored, truth, np.nan), scale)
        if "lower" in data:
            lo, hi = data["lower"][scored], data["upper"][scored]
            y = truth[scored]
            m["coverage"], m["interval_width"] = float(((y >= lo) & (y <= hi)).mean()), float((hi - lo).mean())
        for k in ("seconds", "train_seconds"):
            if k in data:
                m[k] = float(data[k])
        method = info["method"]
        base = method.rsplit(" seed", 1)[0] if " seed" in method else method
        rows.setdefault(base, {}).setdefault(info["setting"], []).append(m)
    for (method, setting), scored in subsets.items():  # dynmask on exactly the subset's values
        if method.startswith("SeasonalNaive"):
            continue  # the same subset as AutoETS*
        for key, (info, data) in loaded.items():
            if info["method"].startswith("dynmask seed") and info["setting"] == setting:
                m = forecast_metrics(np.where(scored, data["forecast"], 0.0), np.where(scored, truth, np.nan), scale)
                rows.setdefault(f"dynmask, on the {method} forecasts", {}).setdefault(setting, []).append(m)
    summary = {}
    for method, settings in rows.items():
        summary[method] = {}
        for setting, runs in settings.items():
            maes = [r["mae"] for r in runs]
            entry = {"mae": float(np.mean(maes)), "mae_sd": float(np.std(maes, ddof=1)) if len(maes) > 1 else 0.0,
                     "mase": float(np.mean([r["mase"] for r in runs])), "seeds": len(runs), "n": runs[0]["n"],
                     "mae_per_step": np.mean([r["mae_per_step"] for r in runs], axis=0).tolist()}  # fmt: skip
            for k in ("coverage", "interval_width", "seconds", "train_seconds"):
                if k in runs[0]:
                    entry[k] = float(np.mean([r[k] for r in runs]))
            summary[method][setting] = entry
    (OUT / "results.json").write_text(json.dumps(summary, indent=2))
    lines = ["| method | " + " | ".join(SETTINGS) + " |", "|---|" + "---|" * len(SETTINGS)]
    order = sorted(summary, key=lambda k: summary[k].get("real gaps", {}).get("mae", 1e9))
    for method in order:
        cells = []
        for s in SETTINGS:
            e = summary[method].get(s)
            cells.append("" if e is None else f"{e['mae']:.3f}" + (f" ± {e['mae_sd']:.3f}" if e["seeds"] > 1 else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    md = (
        f"MAE ({UNITS}) of {HORIZON}-step forecasts, test split: {int(common.sum()):,} observed values of "
        f"{int(stations.sum())} series, {truth.shape[0]} forecasts (mean ± sd over seeds where trained):\n\n"
        + "\n".join(lines)
    )
    details = ["| method (real gaps) | MAE | MASE | MAE step 1 / last | 90% coverage | train s | forecast s |",
               "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in order:
        e = summary[method].get("real gaps")
        if e is None:
            continue
        cov = f"{e['coverage']:.1%}" if "coverage" in e else ""
        steps = f"{e['mae_per_step'][0]:.2f} / {e['mae_per_step'][-1]:.2f}"
        train_s = f"{e['train_seconds']:.0f}" if "train_seconds" in e else ""
        fc_s = f"{e['seconds']:.1f}" if "seconds" in e else ""
        details.append(f"| {method} | {e['mae']:.3f} | {e['mase']:.3f} | {steps} | {cov} | {train_s} | {fc_s} |")
    md += "\n\n" + "\n".join(details)
    (OUT / "results.md").write_text(md + "\n")
    print(md)
    _plots(w, meta, summary)


def _plots(w, meta, summary) -> None:
    """forecast.png: a test forecast of two stations (history with its gaps, the forecast and its 90%
    interval, what was then observed); mae_vs_missing.png: MAE against the extra history removed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    setting = "real gaps" if UNITS.startswith("PM10") else "+40% values"  # a complete set: show added holes
    key = f"dynmask seed0--{setting}".replace(" ", "_").replace("%", "pct").replace("+", "plus")
    if not (OUT / "forecasts" / f"{key}.npz").exists():
        return
    run = np.load(OUT / "forecasts" / f"{key}.npz")
    test = _setting_windows(w, setting)
    columns, dates = meta["columns"], pd.to_datetime(meta["dates"])
    shown = min(LONG, 56)
    # the window with the most history gaps among those whose horizon is fully observed; two series
    context = test[:, LONG - CONTEXT : LONG]  # (N, C, F)
    gaps = np.isnan(context).mean(axis=1)  # (N, F)
    runs = (np.diff(np.isnan(context).astype(int), axis=1) == 1).sum(axis=1)  # gaps that start inside the context
    ends = np.isfinite(context[:, 0]) & np.isfinite(context[:, -1])  # gaps inside, not at an edge
    seen = np.isfinite(w["test"][:, LONG:]).all(axis=1) & np.isfinite(run["forecast"]).all(axis=1)  # (N, F)
    score = np.where(seen & ends & (gaps > 0.2) & (gaps < 0.5), runs, -1)
    picks = np.dstack(np.unravel_index(np.argsort(-score, axis=None)[:40], score.shape))[0]
    chosen = []
    for i, j in picks:
        if len(chosen) < 2 and all(j != c[1] for c in chosen):
            chosen.append((int(i), int(j)))
    step = {"PM10 (µg/m³)": "days"}.get(UNITS, "quarters")
    fig, axes = plt.subplots(1, len(chosen), figsize=(6 * len(chosen), 3.6), squeeze=False)
    for ax, (i, j) in zip(axes[0], chosen):
        xs = np.arange(-shown, HORIZON) + 1  # steps relative to the first forecast step
        ax.plot(
            xs[:shown], test[i, LONG - shown : LONG, j], "o-", ms=3, color="tab:blue", label="history (gaps: missing)"
        )
        ax.axvspan(xs[shown - CONTEXT], xs[shown - 1], color="0.93", label=f"context read ({CONTEXT} {step})")
        ax.plot(xs[shown:], w["test"][i, LONG:, j], "o", color="black", ms=4, label="observed afterwards")
        ax.plot(xs[shown:], run["forecast"][i, :, j], "-", color="tab:red", label="dynmask forecast")
        ax.fill_between(xs[shown:], run["lower"][i, :, j], run["upper"][i, :, j], color="tab:red", alpha=0.2,
                        label="90% interval")  # fmt: skip
        ax.set_title(f"{columns[j]}, forecast from {dates[i].date()} ({setting})")
        ax.set_ylabel(UNITS)
        ax.set_xlabel(f"{step} from the forecast start")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(OUT / "forecast.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for pattern, style in (("values", "-"), ("blocks", "--")):
        xs = [0, 20, 40]
        names = ["real gaps", f"+20% {pattern}", f"+40% {pattern}"]
        for method in sorted(summary, key=lambda m: summary[m]["real gaps"]["mae"])[:8]:
            ys = [summary[method].get(n, {}).get("mae") for n in names]
            if None in ys:
                continue
            ax.plot(xs, ys, style, marker="o", label=f"{method} ({pattern})")
    ax.set_xlabel("extra history removed (%)")
    ax.set_ylabel(f"MAE, {UNITS}")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(OUT / "mae_vs_missing.png", dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=("windows", "dynmask", "impute-then-forecast", "peers", "table", "compact"))
    p.add_argument("--dataset", choices=tuple(DATASETS), default="pm10")
    p.add_argument("--epochs", type=int, default=30, help="dynmask: --epochs (default: the CLI's 30)")
    p.add_argument("--peers", default="statsforecast,neuralforecast")
    p.add_argument(
        "--max-steps", type=int, default=0, help="neuralforecast: training steps (0: dynmask's training time as budget)"
    )
    args = p.parse_args()
    configure(args.dataset)
    if args.step == "windows":
        windows()
    elif args.step == "dynmask":
        dynmask_runs(args.epochs)
    elif args.step == "impute-then-forecast":
        impute_then_forecast()
    elif args.step == "peers":
        peers(args.peers.split(","), args.max_steps)
    elif args.step == "compact":
        compact_all()
    else:
        table()


if __name__ == "__main__":
    main()
