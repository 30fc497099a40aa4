"""Forecasting from gappy history (issue 37): the baselines, the time axis, the guarantee (what a missing
history value holds never changes a forecast), and both commands end to end: gaps, a variable missing
from the whole history, a history shorter than the context, intervals, the fallback, ONNX, bad input."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask
from dynmask.baselines.forecast import last_value, linear_trend, season_mean, seasonal_naive
from dynmask.cli import main
from dynmask.models.series import SeriesConfig, SeriesImputer
from dynmask.tasks.forecast.data import (
    MIN_VALID_FORECASTS,
    continue_time,
    default_context,
    history_holes,
    prepare_forecast_data,
    season_of,
)
from dynmask.tasks.forecast.trained import load_forecaster
from dynmask.training.run_folders import RunFolderError, write_manifest

NAN = float("nan")


# ------------------------------------------------------------------------------------------------ baselines
def test_baselines_read_only_observed_history():
    # one window, 8 steps, 2 variables; variable 1 never observed
    h = np.array([[1, 2, NAN, 4, 5, NAN, 7, NAN]], dtype=float).T[None]  # (1, 8, 1)
    h = np.concatenate([h, np.full_like(h, NAN)], axis=2)  # (1, 8, 2)
    fill = np.array([0.0, 42.0])
    assert last_value(h, 3, 1, fill)[0].tolist() == [[7, 42]] * 3  # the last *observed* value, then the mean
    # season 3, last step t = 7: step 1 reads t-2 (missing, and t-5: missing -> the last value 7), step 2 reads
    # t-1 (7), step 3 reads t (missing -> one season further back, t-3: 5)
    assert seasonal_naive(h, 3, 3, fill)[0, :, 0].tolist() == [7, 7, 5]
    assert season_mean(h, 2, 7, fill)[0, :, 0].tolist() == [pytest.approx((2 + 4 + 5 + 7) / 4)] * 2
    line = linear_trend(h, 2, 1, fill)[0, :, 0]  # the observed points lie on y = t + 1: the line goes on
    assert line == pytest.approx([9.0, 10.0]) and linear_trend(h, 2, 1, fill)[0, 0, 1] == 42


def test_season_step_and_time_continuation():
    days = [str(d.date()) for d in pd.date_range("2021-01-01", periods=20, freq="D")]
    hours = [str(t) for t in pd.date_range("2021-01-01", periods=50, freq="h")]
    months = [str(d.date()) for d in pd.date_range("2021-01-01", periods=24, freq="MS")]
    assert (season_of(days), season_of(hours), season_of(months), season_of(list(range(10)))) == (7, 24, 12, 1)
    assert continue_time(days, 2) == ["2021-01-21", "2021-01-22"]
    assert continue_time(hours, 1) == ["2021-01-03 02:00:00"]
    assert continue_time(months, 2) == ["2023-01-01", "2023-02-01"]
    assert continue_time([10, 20, 30], 2) == ["40", "50"]
    assert continue_time(["a", "b"], 2) == ["+1", "+2"]
    assert default_context(7, 7, 3000) == 28 and default_context(7, 7, 40) == 10


def test_history_holes_leave_the_horizon_alone():
    w = np.arange(2 * 10 * 3, dtype=float).reshape(2, 10, 3)
    for pattern in ("uniform", "blocks"):
        out = history_holes(w, 7, 0.4, pattern, seed=0)
        assert np.array_equal(out[:, 7:], w[:, 7:]) and np.isnan(out[:, :7]).mean() > 0.1


def test_a_short_validation_range_validates_from_a_rolling_origin():
    # 190 quarters, horizon 4, context 16: 19 validation steps hold 4 non-overlapping forecasts, too few to
    # choose a fallback or calibrate an interval on, so validation forecasts start every quarter
    values = np.arange(190 * 2, dtype=float).reshape(190, 2)
    short = prepare_forecast_data(values, 4, 16, season=4)
    (start, end), origins = short["ranges"]["valid"], short["valid_origins"]
    assert short["valid_step"] == 1 and origins == list(range(start, end - 4 + 1))
    assert short["valid"].shape == (len(origins), 20, 2)
    for window, t in zip(short["valid"], origins):  # each window: its context, then its horizon
        assert np.array_equal(window, values[t - 16 : t + 4])
    assert np.diff(short["test_origins"]).tolist() == [4] * (len(short["test_origins"]) - 1)  # test: unchanged
    # a long range keeps non-overlapping validation forecasts; a middling one the largest step giving enough
    long = prepare_forecast_data(np.zeros((3000, 1)), 7, 28, season=7)
    assert long["valid_step"] == 7 and set(np.diff(long["valid_origins"])) == {7} and len(long["valid_origins"]) == 42
    middle = prepare_forecast_data(np.zeros((1500, 1)), 7, 28, season=7)
    assert middle["valid_step"] == 4 and len(middle["valid_origins"]) >= MIN_VALID_FORECASTS


# ------------------------------------------------------------------------------------------------ the guarantee
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), fill=st.sampled_from([0.0, 1e30, -1e30, NAN, float("inf")]))
def test_missing_history_values_never_change_a_forecast(seed, fill):
    g = torch.Generator().manual_seed(seed)
    context, horizon, features = 12, 4, 3
    torch.manual_seed(0)
    config = SeriesConfig(features, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=16, residual=True,
                          residual_gate=True, normalize="window", interval=0.8)  # fmt: skip
    model = SeriesImputer(config).eval()
    x = torch.randn(2, context + horizon, features, generator=g)
    missing = torch.rand(x.shape, generator=g) < 0.4
    missing[:, context:] = True  # the horizon is what the model fills
    missing[1, :, 2] = True  # a variable missing from the whole history
    pattern = torch.where(missing, torch.tensor(NAN), x)
    mask = Mask.from_nan(pattern)
    outs, grads = [], []
    for values in (
        torch.where(missing, torch.randn(x.shape, generator=g), x),
        torch.where(missing, torch.tensor(fill), x),
    ):
        values = values.clone().requires_grad_(True)
        point, lower, upper = model.forward_with_interval(values, mask)
        forecast = torch.stack([point, lower, upper])[:, :, context:]
        (forecast * torch.randn(forecast.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
        outs.append(forecast.detach())
        grads.append(values.grad)
    assert torch.isfinite(outs[1]).all() and torch.equal(outs[0], outs[1])
    assert torch.equal(grads[1][missing], torch.zeros_like(grads[1][missing]))


# ------------------------------------------------------------------------------------------------ end to end
def _seasonal_csv(path, n=420, missing=0.25, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frame = pd.DataFrame({"date": [str(d.date()) for d in pd.date_range("2020-01-01", periods=n, freq="D")]})
    for j, name in enumerate(("north", "south", "east")):
        v = 20 + 5 * np.sin(2 * np.pi * t / 7 + j) + 0.02 * t + rng.normal(0, 0.5, n)
        frame[name] = np.where(rng.random(n) < missing, np.nan, np.round(v, 3))
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fc")
    data = _seasonal_csv(folder / "train.csv")
    run = folder / "run"
    argv = ["train", "forecast", "--data", str(data), "--output", str(run), "--horizon", "5", "--epochs", "1",
            "--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return run, data


def test_training_scores_the_model_beside_every_baseline(forecaster):
    run, _ = forecaster
    results = json.loads((run / "test_results.json").read_text())
    assert set(results) >= {
        "dynmask",
        "last_value",
        "seasonal_naive",
        "season_mean",
        "linear_trend",
        "dynmask_or_fallback",
    }
    for name in ("dynmask", "seasonal_naive"):
        assert len(results[name]["mae_per_step"]) == 5 and results[name]["mase"] > 0
    assert results["dynmask"]["n"] == results["last_value"]["n"]  # the same values scored
    assert 0 <= results["dynmask"]["coverage"] <= 1 and results["dynmask"]["interval"] == 0.9
    assert 0 <= results["dynmask_or_fallback"]["coverage"] <= 1  # the interval `dynmask forecast` gives
    raw = np.load(run / "test_forecasts.npz")
    assert raw["dynmask"].shape == raw["truth"].shape == raw["last_value"].shape
    m = np.isfinite(raw["truth"])  # the committed raw forecasts re-score to the table
    assert np.abs(raw["dynmask"] - raw["truth"])[m].mean() == pytest.approx(results["dynmask"]["mae"])
    trained = load_forecaster(run)
    assert (trained.context, trained.horizon, trained.season) == (28, 5, 7)


def test_a_short_series_trains_epochs_of_at_least_100_steps(forecaster):
    """~20 training batches a pass: the forecast command's epoch passes over them until it holds 100 steps
    (before, an epoch of a short series was a handful of steps and training stopped while still improving)."""
    run, _ = forecaster
    assert json.loads((run / "best" / "config.json").read_text())["train"]["min_epoch_steps"] == 100
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (valid,) = [r for r in records if r["kind"] == "valid"]  # --epochs 1
    assert 100 <= valid["step"] < 200


def test_forecast_writes_the_next_rows_with_gaps_short_and_missing_histories(forecaster, tmp_path, capsys):
    run, data = forecaster
    frame = pd.read_csv(data)
    history = frame.iloc[:60].copy()
    history.loc[history.index[-30:], "east"] = np.nan  # east missing from the whole context (28 steps)
    history.to_csv(tmp_path / "h.csv", index=False)
    out = tmp_path / "next.csv"
    capsys.readouterr()
    assert (
        main(
            [
                "forecast",
                "--model",
                str(run),
                "--input",
                str(tmp_path / "h.csv"),
                "--output",
                str(out),
                "--interval",
                "--use-model",
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    got = pd.read_csv(out)
    assert list(got["date"]) == [str(d.date()) for d in pd.date_range(frame["date"][59], periods=6, freq="D")[1:]]
    assert list(got.columns) == ["date"] + [f"{c}{s}" for c in ("north", "south", "east") for s in ("", "_lo", "_hi")]
    assert np.isfinite(got.iloc[:, 1:].to_numpy()).all()
    assert ((got["north_lo"] <= got["north"]) & (got["north"] <= got["north_hi"])).all()
    assert "never observed in the history read: ['east']" in said
    short = tmp_path / "short.csv"
    frame.iloc[:6].to_csv(short, index=False)  # fewer rows than the context (28)
    assert main(["forecast", "--model", str(run), "--input", str(short), "--output", str(tmp_path / "s.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 5
    empty = frame.iloc[:10].copy()
    empty[["north", "south", "east"]] = np.nan
    empty.to_csv(tmp_path / "empty.csv", index=False)
    assert (
        main(
            [
                "forecast",
                "--model",
                str(run),
                "--input",
                str(tmp_path / "empty.csv"),
                "--output",
                str(tmp_path / "e.csv"),
            ]
        )
        == 2
    )
    assert "no observed value" in capsys.readouterr().err and not (tmp_path / "e.csv").exists()
    frame.iloc[:30].rename(columns={"east": "west"}).to_csv(tmp_path / "other.csv", index=False)
    assert (
        main(
            [
                "forecast",
                "--model",
                str(run),
                "--input",
                str(tmp_path / "other.csv"),
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )
    assert "east" in capsys.readouterr().err


def test_the_fallback_forecasts_and_says_so(forecaster, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(forecaster[0], run)
    (run / "best" / "fallback.json").write_text(json.dumps({"fallback": "seasonal_naive"}))
    write_manifest(run / "best")
    frame = pd.read_csv(forecaster[1]).iloc[:40]
    frame.to_csv(tmp_path / "h.csv", index=False)
    capsys.readouterr()
    assert (
        main(["forecast", "--model", str(run), "--input", str(tmp_path / "h.csv"), "--output", str(tmp_path / "n.csv")])
        == 0
    )
    assert "by seasonal_naive" in capsys.readouterr().out
    got = pd.read_csv(tmp_path / "n.csv")
    expected = seasonal_naive(frame[["north", "south", "east"]].to_numpy()[None], 5, 7, np.zeros(3))[0]
    assert np.allclose(got[["north", "south", "east"]].to_numpy(), expected)
    assert (
        main(
            [
                "forecast",
                "--model",
                str(run),
                "--input",
                str(tmp_path / "h.csv"),
                "--output",
                str(tmp_path / "i.csv"),
                "--interval",
            ]
        )
        == 2
    )
    assert "--use-model" in capsys.readouterr().err


def test_exported_forecaster_agrees_with_the_run(forecaster, tmp_path):
    pytest.importorskip("onnxruntime")
    run, data = forecaster
    onnx = tmp_path / "f.onnx"
    assert main(["export", "--model", str(run), "--output", str(onnx)]) == 0
    history = pd.read_csv(data).iloc[:50]
    history.to_csv(tmp_path / "h.csv", index=False)
    for model, out in ((run, "a.csv"), (onnx, "b.csv")):
        assert (
            main(
                ["forecast", "--model", str(model), "--input", str(tmp_path / "h.csv"), "--output", str(tmp_path / out)]
            )
            == 0
        )
    a, b = (pd.read_csv(tmp_path / n) for n in ("a.csv", "b.csv"))
    assert np.abs(a.iloc[:, 1:].to_numpy() - b.iloc[:, 1:].to_numpy()).max() < 1e-3


def test_evaluate_names_where_forecast_scores_are(forecaster, capsys):
    assert main(["evaluate", "--model", str(forecaster[0])]) == 2
    assert "test_results.json" in capsys.readouterr().err


def test_a_run_validates_at_three_levels_of_history_missingness(forecaster):
    """fallback.json records, per level (the validation history as it is, then 20% / 40% more hidden), its
    missing share, the fallback chosen there and the conformal factor measured there; the loaded
    forecaster reads them, and test_results.json scores the per-window choice."""
    from dynmask.tasks.forecast.regimes import EXTRA_HOLES

    run, _ = forecaster
    saved = json.loads((run / "best" / "fallback.json").read_text())
    levels = saved["by_history_missing"]
    assert [lv["extra_holes"] for lv in levels] == list(EXTRA_HOLES)
    shares = [lv["missing"] for lv in levels]
    assert shares == sorted(shares) and shares[2] - shares[0] > 0.25  # more holes, a larger missing share
    for lv in levels:
        valid = lv["valid"]
        best = min(valid, key=lambda k: valid[k]["mae"])
        assert lv["fallback"] == (None if best == "dynmask" else best)  # the level's own winner
        assert lv["interval_scale"] > 0
        # a fallback gets its own factor (its interval: the model's, moved onto its forecast); the model none
        assert (lv["fallback_interval_scale"] is None) == (lv["fallback"] is None)
    scales = [lv["interval_scale"] for lv in levels]
    assert scales == sorted(scales)  # a gappier history never gets a narrower interval
    trained = load_forecaster(run)
    assert [(r.missing, r.fallback, r.interval_scale, r.fallback_interval_scale) for r in trained.regimes] == [
        (lv["missing"], lv["fallback"], lv["interval_scale"], lv["fallback_interval_scale"]) for lv in levels
    ]
    results = json.loads((run / "test_results.json").read_text())
    assert [lv["missing"] for lv in results["dynmask_or_fallback"]["fallback_by_history_missing"]] == shares


def test_a_gappier_history_takes_the_choices_of_its_level(forecaster, tmp_path, capsys):
    """A history as gappy as a level's validation histories gets that level's fallback and interval factor."""
    import shutil

    from dynmask.tasks.forecast.regimes import Regime

    run = tmp_path / "run"
    shutil.copytree(forecaster[0], run)
    levels = [
        {"missing": 0.1, "fallback": None, "interval_scale": 1.0},
        {"missing": 0.6, "fallback": "season_mean", "interval_scale": 3.0, "fallback_interval_scale": 2.0},
    ]
    (run / "best" / "fallback.json").write_text(json.dumps({"fallback": None, "by_history_missing": levels}))
    write_manifest(run / "best")
    trained = load_forecaster(run)
    assert trained.regimes == [Regime(0.1, None, 1.0), Regime(0.6, "season_mean", 3.0, 2.0)]
    frame = pd.read_csv(forecaster[1]).iloc[:60]
    values = frame[["north", "south", "east"]].to_numpy()
    history = values[-trained.context :].copy()
    history[~np.isfinite(history)] = 1.0  # complete: nearest the first level
    gappy = history.copy()
    gappy[np.random.default_rng(0).random(gappy.shape) < 0.6] = np.nan  # ~60% missing: the second level
    assert trained.choices(history) == (None, 1.0) and trained.choices(gappy) == ("season_mean", 3.0)
    fill = trained.scaler.mean.astype(np.float64)
    assert np.allclose(trained.forecast(gappy), season_mean(gappy[None], 5, 7, fill)[0])
    point, lo, hi = trained.forecast(gappy, intervals=True, use_model=True)
    base = dataclasses.replace(trained, regimes=[], interval_scale=1.0)
    p1, lo1, hi1 = base.forecast(gappy, intervals=True, use_model=True)
    assert np.allclose(point, p1) and np.allclose(hi - point, 3.0 * (hi1 - p1))  # the level's factor
    assert np.allclose(trained.forecast(history), base.forecast(history))  # the model, at the first level
    # the fallback's interval: the model's raw interval moved onto the fallback's forecast, widened by its factor
    centre, c_lo, c_hi = trained.forecast(gappy, intervals=True)
    assert np.allclose(centre, season_mean(gappy[None], 5, 7, fill)[0])
    assert np.allclose(c_hi - centre, 2.0 * (hi1 - p1)) and np.allclose(centre - c_lo, 2.0 * (p1 - lo1))
    for bad in (-1.0, "wide", True):
        damaged = [levels[0], {**levels[1], "fallback_interval_scale": bad}]
        (run / "best" / "fallback.json").write_text(json.dumps({"fallback": None, "by_history_missing": damaged}))
        write_manifest(run / "best")
        with pytest.raises(RunFolderError, match="by_history_missing"):
            load_forecaster(run)
    (run / "best" / "fallback.json").write_text(json.dumps({"fallback": None, "by_history_missing": levels}))
    write_manifest(run / "best")
    pd.DataFrame(gappy, columns=["north", "south", "east"]).assign(date=frame["date"].iloc[-trained.context :].values)[
        ["date", "north", "south", "east"]
    ].to_csv(tmp_path / "g.csv", index=False)
    capsys.readouterr()
    out = tmp_path / "n.csv"
    assert main(["forecast", "--model", str(run), "--input", str(tmp_path / "g.csv"), "--output", str(out)]) == 0
    assert "by season_mean" in capsys.readouterr().out
    (run / "best" / "fallback.json").write_text(json.dumps({"by_history_missing": [{"missing": 2.0}]}))
    write_manifest(run / "best")
    with pytest.raises(RunFolderError, match="by_history_missing"):
        load_forecaster(run)


def test_a_combination_forecasts_the_mean_of_the_model_and_its_baseline(forecaster, tmp_path, capsys):
    """A level whose validation winner is "model+season_mean" forecasts (model + season mean) / 2, bounds it
    with the model's interval moved onto that mean and widened by its own factor, says so, and keeps the
    guarantee: values at missing history positions change nothing."""
    import shutil

    from dynmask.tasks.impute.trained import choose_fallback

    run = tmp_path / "run"
    shutil.copytree(forecaster[0], run)
    levels = [{"missing": 0.0, "fallback": "model+season_mean", "interval_scale": 1.5, "fallback_interval_scale": 2.0}]
    (run / "best" / "fallback.json").write_text(
        json.dumps({"fallback": "model+season_mean", "by_history_missing": levels})
    )
    write_manifest(run / "best")
    trained = load_forecaster(run)
    frame = pd.read_csv(forecaster[1]).iloc[:60]
    history = frame[["north", "south", "east"]].to_numpy()[-trained.context :].copy()
    history[np.random.default_rng(1).random(history.shape) < 0.3] = np.nan
    model = trained.forecast(history, use_model=True)
    fill = trained.scaler.mean.astype(np.float64)
    mean = (model + season_mean(history[None], 5, 7, fill)[0]) / 2
    assert np.allclose(trained.forecast(history), mean) and not np.allclose(mean, model)
    base = dataclasses.replace(trained, regimes=[], interval_scale=1.0)
    p1, lo1, hi1 = base.forecast(history, intervals=True, use_model=True)
    centre, lo, hi = trained.forecast(history, intervals=True)
    assert np.allclose(centre, mean)
    assert np.allclose(hi - centre, 2.0 * (hi1 - p1)) and np.allclose(centre - lo, 2.0 * (p1 - lo1))
    for junk in (np.inf, -np.inf):  # the guarantee through the combination: a missing value is never read
        gappy = np.where(np.isnan(history), junk, history)
        assert np.array_equal(trained.forecast(gappy), trained.forecast(history))
        assert all(np.array_equal(a, b) for a, b in zip(trained.forecast(gappy, intervals=True), (centre, lo, hi)))
    pd.DataFrame(history, columns=["north", "south", "east"]).assign(
        date=frame["date"].iloc[-trained.context :].values
    )[["date", "north", "south", "east"]].to_csv(tmp_path / "g.csv", index=False)
    capsys.readouterr()
    out = tmp_path / "n.csv"
    assert main(["forecast", "--model", str(run), "--input", str(tmp_path / "g.csv"), "--output", str(out)]) == 0
    assert "by model+season_mean" in capsys.readouterr().out
    assert np.allclose(pd.read_csv(out)[["north", "south", "east"]].to_numpy(), mean)
    # the choice: the lowest validation MAE among the candidates, when it is below the model's
    assert choose_fallback({"mae": 2.0}, {"last_value": {"mae": 2.5}, "model+last_value": {"mae": 1.9}}) == (
        "model+last_value"
    )
    assert choose_fallback({"mae": 1.0}, {"last_value": {"mae": 2.5}, "model+last_value": {"mae": 1.9}}) is None
    for bad in ("model+nonsense", "model+", "model"):
        damaged = [{**levels[0], "fallback": bad}]
        (run / "best" / "fallback.json").write_text(json.dumps({"fallback": None, "by_history_missing": damaged}))
        write_manifest(run / "best")
        with pytest.raises(RunFolderError, match="by_history_missing"):
            load_forecaster(run)


# ------------------------------------------------------------------------------------------------ calibration folds
def test_calibration_folds_hold_out_blocks_that_no_kept_window_touches():
    """Each block's held windows forecast non-overlapping horizons; no window a fold model trains on shares
    a step with them; the blocks follow each other in time and every window is held at most once."""
    import itertools

    from dynmask.tasks.forecast.folds import fold_blocks

    for n, width, horizon, stride in ((130, 20, 4, 1), (61, 35, 7, 3), (40, 12, 5, 2)):
        blocks = fold_blocks(n, width, horizon, stride, 4)
        assert len(blocks) == 4
        starts = np.arange(n) * stride
        steps = [set(range(s, s + width)) for s in starts]  # the steps each window covers
        held_all = np.concatenate([held for _, held in blocks])
        assert len(set(held_all.tolist())) == len(held_all) and np.all(np.diff(held_all) > 0)
        for kept, held in blocks:
            touched = set().union(*(steps[i] for i in held))
            assert len(kept) > 0 and all(not steps[i] & touched for i in kept)
            futures = [set(range(starts[i] + width - horizon, starts[i] + width)) for i in held]
            assert all(not a & b for a, b in itertools.combinations(futures, 2))
            untouched = [i for i in range(n) if not steps[i] & touched]
            assert len(kept) >= len(untouched) - 2 * (width // stride + 1)  # little more left out than overlaps


def test_calibration_folds_default_to_short_validation_ranges_with_an_interval():
    from dynmask.tasks.forecast.folds import DEFAULT_FOLDS, auto_folds

    short = prepare_forecast_data(np.random.default_rng(0).normal(size=(190, 2)), 4, 16, season=4)
    long = prepare_forecast_data(np.random.default_rng(0).normal(size=(3000, 1)), 7, 28, season=7)
    assert auto_folds(short, intervals=True) == DEFAULT_FOLDS and auto_folds(short, intervals=False) == 0
    assert auto_folds(long, intervals=True) == 0


def _rebuilt(run, data_csv):
    """The run's task, as the command prepared its data, and its best model."""
    from dynmask.tasks.forecast.task import ForecastTask

    config = json.loads((run / "best" / "config.json").read_text())
    frame = pd.read_csv(data_csv, index_col=0)
    d = config["data"]
    data = prepare_forecast_data(frame.to_numpy(), d["horizon"], d["context"], season=d["season"],
                                 names=list(frame.columns), stride=d["stride"])  # fmt: skip
    task = ForecastTask(data, config["history_holes"], seed=config["train"]["seed"],
                        missing_unit=config["missing_unit"], block_length=config["block_length"])  # fmt: skip
    return data, task, load_forecaster(run).model


def test_a_short_series_calibrates_its_interval_on_out_of_fold_forecasts_too(forecaster):
    """The fixture's validation range holds 8 non-overlapping forecasts: the run trains 4 fold models, each
    without one block of the training windows (and their neighbours), and its conformal factors are those of
    the validation forecasts pooled with the fold models' forecasts of the windows they never saw."""
    from dynmask.tasks.forecast.folds import fold_blocks
    from dynmask.tasks.forecast.regimes import validate_regimes
    from dynmask.training.run_folders import fingerprint

    run, data_csv = forecaster
    calibration = json.loads((run / "best" / "calibration.json").read_text())
    assert calibration["folds"] == 4 and "blocked-CV" in calibration["method"]
    data, task, best = _rebuilt(run, data_csv)
    blocks = fold_blocks(len(data["train"]), 33, 5, 1, 4)
    folds = []
    for k, (kept, held) in enumerate(blocks):
        folder = run / "calibration" / f"fold{k + 1}of4"
        saved = json.loads((folder / "best" / "config.json").read_text())
        assert saved["calibration_fold"]["held"] == held.tolist()  # trained without them and their neighbours:
        assert saved["data"]["fingerprint"] == fingerprint(data["train"][kept], data["valid"], data["train"][held])
        folds.append((load_forecaster(folder).model, data["train"][held]))
    saved = json.loads((run / "best" / "fallback.json").read_text())["by_history_missing"]
    pooled = validate_regimes(task, best, folds=folds)
    alone = validate_regimes(task, best)
    assert [lv["interval_scale"] for lv in pooled] == pytest.approx([lv["interval_scale"] for lv in saved])
    assert [lv["fallback"] for lv in pooled] == [lv["fallback"] for lv in alone] == [lv["fallback"] for lv in saved]
    assert [lv["interval_scale"] for lv in alone] != pytest.approx([lv["interval_scale"] for lv in saved])


def test_calibration_folds_change_on_resume_without_retraining_the_model(forecaster, tmp_path):
    """--calibration-folds is what happens after training: a finished run resumes under another count (its
    model untouched, the folds in folders of their own); 0 calibrates on validation alone."""
    import shutil

    from dynmask.tasks.forecast.regimes import validate_regimes

    run = tmp_path / "run"
    shutil.copytree(forecaster[0], run)
    weights = (run / "best" / "model.safetensors").read_bytes()
    argv = ["train", "forecast", "--data", str(forecaster[1]), "--output", str(run), "--horizon", "5", "--epochs", "1",
            "--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress", "--resume"]  # fmt: skip
    assert main([*argv, "--calibration-folds", "0"]) == 0
    assert (run / "best" / "model.safetensors").read_bytes() == weights
    assert json.loads((run / "best" / "calibration.json").read_text())["folds"] == 0
    _, task, best = _rebuilt(run, forecaster[1])
    saved = json.loads((run / "best" / "fallback.json").read_text())["by_history_missing"]
    alone = validate_regimes(task, best)
    assert [lv["interval_scale"] for lv in saved] == pytest.approx([lv["interval_scale"] for lv in alone])
    assert main([*argv, "--calibration-folds", "2"]) == 0
    names = {"fold1of2", "fold2of2", "fold1of4", "fold2of4", "fold3of4", "fold4of4"}
    assert {p.name for p in (run / "calibration").iterdir()} == names
    assert json.loads((run / "best" / "calibration.json").read_text())["folds"] == 2
    assert (run / "best" / "model.safetensors").read_bytes() == weights


def test_calibration_folds_need_an_interval(tmp_path):
    from dynmask.tasks.forecast.task import train_forecaster
    from dynmask.training import TrainConfig

    data = prepare_forecast_data(np.random.default_rng(0).normal(size=(190, 2)), 4, 16, season=4)
    with pytest.raises(ValueError, match="calibration_folds"):
        train_forecaster(data, tmp_path / "run", {"d_model": 16, "n_heads": 2, "n_layers": 1, "interval": 0.0},
                         TrainConfig(epochs=1, progress=False), calibration_folds=2)  # fmt: skip
    assert not (tmp_path / "run").exists()  # refused before a run folder is made
