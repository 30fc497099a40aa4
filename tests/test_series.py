"""Time series: the guarantee for the series models, imputation that never overwrites, shared held-out
masks, training-only standardisation, CSV round trip in original units, .ts files, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_impute_args
from guarantee import check_guarantee, masked_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask
from dynmask.cli import main
from dynmask.data.series import holdout_mask, load_series_classification, read_ts
from dynmask.data.text import DataError
from dynmask.models.series import SERIES_ARCHS, SeriesClassifier, SeriesConfig, SeriesImputer
from dynmask.tasks.impute.csv_io import impute_frame
from dynmask.tasks.impute.task import ImputationTask, prepare_imputation_data

F = 4


def _per_value(mask, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = (torch.rand(*mask.shape, F, generator=g) > 0.3) & mask.observed.unsqueeze(-1)
    return Mask(values.any(-1), mask.valid, values)


@settings(max_examples=30, deadline=None)
@given(
    batch=masked_batches(d_model=F),
    arch=st.sampled_from(SERIES_ARCHS),
    gaps=st.booleans(),
    residual=st.sampled_from(["none", "add", "gated"]),
    normalize=st.sampled_from(["none", "window"]),
)
def test_guarantee_imputer(batch, arch, gaps, residual, normalize):
    x, mask = batch
    mask = _per_value(mask)
    torch.manual_seed(0)
    if arch == "grud":
        residual, normalize = "none", "none"  # GRU-D reads raw values; neither option applies
    model = SeriesImputer(
        SeriesConfig(
            F, arch=arch, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0, time_gaps=gaps,
            residual=residual != "none", residual_gate=residual == "gated", normalize=normalize,
        )
    )  # fmt: skip
    # non-zero corrections, direct predictions and gates, so that every learned part is checked too
    for head in (model.head, model.direct_head, model.gate_head) if residual != "none" else ():
        if head is not None:
            torch.nn.init.normal_(head.weight)
    # every prediction, at observed and missing positions alike, ignores the values at missing entries
    hostile_mask = Mask(mask.observed, mask.valid, mask.observed_values)
    not_observed = ~mask.observed_values

    def run(xi):
        return model(xi, hostile_mask)

    for fill in (0.0, 1e30, float("nan"), float("inf")):
        base = torch.where(not_observed, torch.randn(x.shape) * 50, x)
        hostile = torch.where(not_observed, torch.full_like(x, fill), x)
        a, b = run(base), run(hostile)
        valid = mask.valid.unsqueeze(-1)
        assert torch.isfinite(b[mask.valid]).all()
        assert torch.equal(torch.where(valid, a, 0.0), torch.where(valid, b, 0.0))
        xi = hostile.clone().requires_grad_()
        out = torch.where(valid, run(xi), 0.0)
        if out.requires_grad:
            out.sum().backward()
        grad = xi.grad if xi.grad is not None else torch.zeros_like(xi)  # no path from x at all: zero
        assert torch.equal(grad[not_observed], torch.zeros_like(grad[not_observed]))


@settings(max_examples=20, deadline=None)
@given(batch=masked_batches(d_model=F), arch=st.sampled_from(SERIES_ARCHS))
def test_guarantee_series_classifier(batch, arch):
    x, mask = batch
    torch.manual_seed(0)
    model = SeriesClassifier(SeriesConfig(F, 3, arch=arch, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0))
    full = Mask(mask.observed, mask.valid, mask.observed.unsqueeze(-1).expand(*mask.shape, F).clone())
    check_guarantee(lambda xi: model(xi, full), list(model.parameters()), x, full, empty_is_zero=False)


def test_imputation_never_overwrites_observed_values():
    torch.manual_seed(0)
    model = SeriesImputer(SeriesConfig(F, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    x = torch.randn(2, 6, F)
    x[0, 1, 2] = float("nan")
    x[1, 3] = float("nan")
    out = model.impute(x, Mask.from_nan(x))
    observed = ~torch.isnan(x)
    assert torch.equal(out[observed], x[observed])
    assert torch.isfinite(out).all()


def _series(n=400, f=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    values = (10 + 5 * np.sin(t / 7 + np.arange(f)) + rng.normal(0, 0.5, (n, f))).astype(np.float32)
    values[rng.random((n, f)) < 0.3] = np.nan
    return values


def test_standardisation_uses_training_statistics_only():
    values = _series()
    values[300:] += 1000.0  # a shifted future must not leak into the statistics
    data = prepare_imputation_data(values, 20, 5, valid_fraction=0.1, test_fraction=0.2)
    a, b = data["ranges"]["train"]
    np.testing.assert_allclose(data["scaler"].mean, np.nanmean(values[a:b], axis=0), rtol=1e-5)
    assert data["scaler"].mean.max() < 100


def test_held_out_mask_is_identical_across_runs_and_methods():
    values = _series()
    d1 = prepare_imputation_data(values, 20, 5, seed=3)
    d2 = prepare_imputation_data(values, 20, 5, seed=3)
    assert np.array_equal(d1["test_holdout"], d2["test_holdout"])
    assert d1["test_holdout"].sum() > 0 and not (d1["test_holdout"] & np.isnan(d1["test"])).any()
    share = d1["test_holdout"].sum() / (~np.isnan(d1["test"])).sum()
    assert 0.05 < share < 0.15
    # the baselines and the model are scored on that very mask
    task = ImputationTask(d1)
    n = task.baselines("test")["mean"]["n"]
    torch.manual_seed(0)
    model = SeriesImputer(SeriesConfig(3, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    assert task.evaluate(model, "test")["n"] == n == int(d1["test_holdout"].sum())
    assert np.array_equal(holdout_mask(d1["test"], 0.1, 3 + 2), d1["test_holdout"])


def test_csv_round_trip_keeps_columns_index_and_units():
    values = _series(n=50)
    frame = pd.DataFrame(
        values, index=pd.Index([f"2020-01-{i:02d}" for i in range(1, 51)], name="date"), columns=["a", "b", "c"]
    )
    data = prepare_imputation_data(values, 5, 5)
    torch.manual_seed(0)
    model = SeriesImputer(SeriesConfig(3, d_model=16, n_heads=2, n_layers=1, d_ff=32)).eval()
    with torch.no_grad():  # predict 0 in standard units: the training mean in the data's units
        model.head.weight.zero_()
        model.head.bias.zero_()
    out = impute_frame(model, data["scaler"], 10, frame)
    assert list(out.columns) == ["a", "b", "c"] and out.index.equals(frame.index)
    holes = frame.isna().to_numpy()
    assert not out.isna().to_numpy().any()
    np.testing.assert_array_equal(out.to_numpy()[~holes], values[~holes])
    filled = np.where(holes, out.to_numpy(), np.nan)
    np.testing.assert_allclose(np.nanmax(np.abs(filled - data["scaler"].mean), axis=0), 0, atol=1e-4)


def test_read_ts_with_missing_values_and_variable_lengths(tmp_path):
    body = "@problemName toy\n@dimensions 2\n@classLabel true a b\n@data\n1,2,3:4,?,6:a\n7,8:9,10:b\n"
    (tmp_path / "toy_TRAIN.ts").write_text(body)
    (tmp_path / "toy_TEST.ts").write_text(body)
    series, labels = read_ts(tmp_path / "toy_TRAIN.ts")
    assert labels == ["a", "b"] and series[0].shape == (3, 2) and series[1].shape == (2, 2)
    assert np.isnan(series[0][1, 1]) and series[0][2, 1] == 6.0
    splits = load_series_classification(str(tmp_path / "toy_{split}.ts"), valid_fraction=0.5)
    assert splits.labels == ["a", "b"] and splits.num_features == 2
    (tmp_path / "bad_TRAIN.ts").write_text("@data\n1,x:a\n")
    with pytest.raises(DataError, match="not a number"):
        read_ts(tmp_path / "bad_TRAIN.ts")


def _toy_ts(folder, n=60, seed=0):
    rng = np.random.default_rng(seed)
    lines = ["@problemName toy", "@dimensions 2", "@data"]
    for i in range(n):
        label = i % 2
        length = rng.integers(6, 12)
        t = np.arange(length)
        a = np.sin(t * (0.3 if label else 1.2)) + rng.normal(0, 0.1, length)
        b = rng.normal(label, 0.3, length)
        lines.append(
            ",".join(f"{v:.4f}" for v in a) + ":" + ",".join(f"{v:.4f}" for v in b) + f":{'yes' if label else 'no'}"
        )
    for split in ("TRAIN", "TEST"):
        (folder / f"toy_{split}.ts").write_text("\n".join(lines) + "\n")
    return str(folder / "toy_{split}.ts")


@pytest.mark.parametrize("arch", ["transformer", "grud"])
def test_cli_classify_series(tmp_path, capsys, arch):
    pattern = _toy_ts(tmp_path)
    out = tmp_path / arch
    assert (
        main(
            [
                "train",
                "classify-series",
                "--data",
                pattern,
                "--output",
                str(out),
                "--epochs",
                "15",
                "--arch",
                arch,
                "--d-model",
                "16",
                "--heads",
                "2",
                "--layers",
                "1",
                "--no-progress",
                "--train-missing",
                "0.2",
                "--test-missing",
                "0,0.5",
            ]
        )
        == 0
    )
    results = json.loads((out / "test_results.json").read_text())
    assert [r["missing_rate"] for r in results] == [0.0, 0.5]
    assert results[0]["accuracy"] >= 0.8
    said = capsys.readouterr().out.splitlines()  # what it read, then a table, not a JSON dump (issue 38)
    assert said[0].startswith("data toy") and "2 variables" in said[0] and "majority class (" in said[1]
    assert f"{results[0]['accuracy']:.1%}" in said[2] and (out / "summary.json").exists()
    assert main(["evaluate", "--model", str(out)]) == 2
    assert "is a classify-series run: its test scores are in" in capsys.readouterr().err


@pytest.mark.parametrize("unit", ["value", "step"])
def test_hidden_values_and_steps(tmp_path, unit):
    from dynmask.data.series import load_series_classification
    from dynmask.tasks.classify_series.task import SeriesClassificationTask

    splits = load_series_classification(_toy_ts(tmp_path), seed=0)
    task = SeriesClassificationTask(splits, train_missing=0.4, missing_unit=unit)
    idx = list(range(len(task.data["train"])))
    clean, clean_mask, _ = task._batch("train", idx, 0.0, None, 0)
    x, mask, _ = task.train_batch(idx, draw=3)
    hidden = clean_mask.observed_values & ~mask.observed_values  # (B, L, F)
    assert abs(hidden.sum().item() / clean_mask.observed_values.sum().item() - 0.4) < 0.05
    assert torch.equal(x[mask.observed_values], clean[mask.observed_values])  # the rest is untouched
    partly_hidden = hidden.any(-1) & ~hidden.all(-1)  # steps with some features hidden, others kept
    if unit == "step":
        assert not partly_hidden.any()
        assert torch.equal(mask.observed, clean_mask.observed & ~hidden.any(-1))  # hidden steps: not keys
    else:
        assert partly_hidden.any()
        assert torch.equal(task.train_batch(idx, draw=3)[1].observed_values, mask.observed_values)
    with pytest.raises(ValueError, match="missing_unit must be one of"):
        SeriesClassificationTask(splits, missing_unit="feature")


def test_cli_train_impute_and_fill_a_csv(tmp_path, capsys):
    values = _series(n=300)
    frame = pd.DataFrame(values, columns=["s1", "s2", "s3"])
    frame.insert(0, "day", [f"d{i}" for i in range(300)])
    frame.to_csv(tmp_path / "in.csv", index=False)
    run = tmp_path / "run"
    assert (
        main(
            [
                *small_impute_args(tmp_path / "in.csv", run, epochs=3),
            ]
        )
        == 0
    )
    results = json.loads((run / "test_results.json").read_text())
    assert set(results) == {"dynmask", "mean", "locf", "linear", "dynmask_or_fallback", "per_variable"}
    per = results.pop("per_variable")  # each variable in its units and in training standard deviations
    assert set(per) == {"s1", "s2", "s3"} and sum(m["n"] for m in per.values()) == results["dynmask"]["n"]
    weighted = sum(m["mae"] * m["n"] for m in per.values()) / results["dynmask"]["n"]
    assert weighted == pytest.approx(results["dynmask"]["mae"], rel=1e-5)
    linear = sum(m["linear_mae"] * m["n"] for m in per.values()) / results["linear"]["n"]
    assert linear == pytest.approx(results["linear"]["mae"], rel=1e-5)
    assert all(m["mae_std"] > 0 for m in per.values())
    assert "per variable (held-out test values)" in capsys.readouterr().out
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["model"]["d_ff"] == 32 and config["artificial"] == 0.3  # d_ff follows --d-model
    assert results["dynmask"]["n"] == results["linear"]["n"] == int(np.load(run / "test_holdout_mask.npy").sum())
    assert (
        main(
            ["impute", "--model", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
        )
        == 0
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["day", "s1", "s2", "s3"] and out["day"].tolist() == frame["day"].tolist()
    assert not out[["s1", "s2", "s3"]].isna().any().any()
    # an --output that would destroy something is refused, exit 2, nothing touched (issue 35, item 6)
    (tmp_path / "data.csv.partial").write_bytes((tmp_path / "in.csv").read_bytes())
    weights = (run / "best" / "model.safetensors").read_bytes()
    for source, output in (
        (tmp_path / "data.csv.partial", tmp_path / "data.csv"),  # the input is the output's temporary file
        (tmp_path / "in.csv", run / "best" / "model.safetensors"),  # the run itself
        (tmp_path / "in.csv", tmp_path),  # a folder
    ):
        assert main(["impute", "--model", str(run), "--input", str(source), "--output", str(output)]) == 2
    assert (tmp_path / "data.csv.partial").read_bytes() == (tmp_path / "in.csv").read_bytes()
    assert (run / "best" / "model.safetensors").read_bytes() == weights


@pytest.mark.parametrize("pattern", ["values", "blocks", "variables"])
def test_held_out_patterns_are_seeded_shaped_and_sized(pattern):
    rng = np.random.default_rng(0)
    wins = rng.normal(size=(20, 30, 5))
    wins[rng.random(wins.shape) < 0.3] = np.nan
    mask = holdout_mask(wins, 0.1, seed=4, pattern=pattern)
    assert np.array_equal(mask, holdout_mask(wins, 0.1, seed=4, pattern=pattern))  # seeded
    assert not (mask & np.isnan(wins)).any()  # only observed values are held out
    share = mask.sum() / (~np.isnan(wins)).sum()
    assert 0.07 < share < 0.16, share
    if pattern == "variables":  # whole (window, variable) columns
        touched = mask.any(axis=1)
        assert np.array_equal(mask, touched[:, None, :] & ~np.isnan(wins))
    if pattern == "blocks":  # runs of 3-14 steps of one variable (observed values inside them)
        span = [np.flatnonzero(mask[w, :, f]) for w in range(20) for f in range(5) if mask[w, :, f].any()]
        assert max(s[-1] - s[0] + 1 for s in span) >= 3
    only = holdout_mask(wins, 0.1, seed=4, pattern=pattern, variables=np.array([True, False, False, False, True]))
    assert not only[:, :, 1:4].any() and only.any()


def test_values_pattern_keeps_the_saved_pm10_mask():
    """The default pattern draws exactly as before (the committed PM10 mask stays valid)."""
    rng = np.random.default_rng(1)
    wins = rng.normal(size=(4, 10, 3))
    wins[0, 2] = np.nan
    expected = ~np.isnan(wins) & (np.random.default_rng(7).random(wins.shape) < 0.1)
    assert np.array_equal(holdout_mask(wins, 0.1, seed=7), expected)


def test_block_training_holes_cover_their_rate_in_runs():
    from dynmask.missingness import hide_values

    x = torch.randn(64, 200, 3)
    uniforms = torch.rand(3, 64, 200, generator=torch.Generator().manual_seed(0))
    hidden = torch.isnan(hide_values(x, 0.3, uniforms, unit="block", block_length=7))
    assert 0.25 < hidden.float().mean() < 0.35
    runs = torch.diff(hidden.float(), dim=1).abs().sum() / 2  # number of hidden runs (about)
    assert hidden.sum() / runs > 5  # long runs, not single values
    only = torch.isnan(hide_values(x, 0.3, uniforms, unit="block", variables=torch.tensor([False, True, False])))
    assert only[..., 1].any() and not only[..., [0, 2]].any()


def test_variable_training_holes_hide_whole_windows_of_a_variable():
    from dynmask.missingness import hide_values
    from dynmask.tasks.impute.task import ImputationTask

    x = torch.randn(400, 30, 5)
    x[0, 3, 2] = float("nan")  # really missing stays missing
    uniforms = torch.rand(5, 400, 30, generator=torch.Generator().manual_seed(0))
    hidden = torch.isnan(hide_values(x, 0.3, uniforms, unit="variable"))  # (B, L, F)
    whole = hidden.all(dim=1)  # (B, F): the variable is hidden for the whole window
    partial = hidden.any(dim=1) & ~whole  # (B, F): some steps hidden, not all
    partial[0, 2] = False  # the real NaN, whether or not its variable was drawn
    assert not partial.any()
    assert 0.25 < whole.float().mean() < 0.35
    only = torch.isnan(hide_values(x, 0.3, uniforms, unit="variable", variables=torch.tensor([0, 0, 0, 1, 0]).bool()))
    assert only[..., 3].any() and not only[1:, :, [0, 1, 2, 4]].any()
    with pytest.raises(ValueError, match="missing_unit"):
        ImputationTask({"scaler": None}, missing_unit="variables")


def test_mixed_training_holes_give_each_window_one_unit():
    from dynmask.missingness import hide_values

    x = torch.randn(300, 30, 4)
    uniforms = torch.rand(5, 300, 30, generator=torch.Generator().manual_seed(1))  # (F + 1, B, L)
    mixed = torch.isnan(hide_values(x, 0.3, uniforms, unit="mixed"))
    each = {u: torch.isnan(hide_values(x, 0.3, uniforms[:-1], unit=u)) for u in ("value", "block", "variable")}
    picked = [[u for u, h in each.items() if torch.equal(h[b], mixed[b])] for b in range(300)]
    assert all(len(p) >= 1 for p in picked)  # every window is exactly one unit's pattern
    counts = {u: sum(p == [u] for p in picked) for u in each}
    assert all(70 < n < 130 for n in counts.values()), counts  # about a third each
    assert 0.2 < mixed.float().mean() < 0.4


@pytest.mark.parametrize("process", ["blocks", "mixed"])
def test_cli_impute_with_block_holes_and_chosen_variables(tmp_path, process):
    values = _series(n=300)
    frame = pd.DataFrame(values, columns=["s1", "s2", "s3"])
    frame.insert(0, "day", [f"d{i}" for i in range(300)])
    frame.to_csv(tmp_path / "in.csv", index=False)
    run = tmp_path / "run"
    args = [
        *small_impute_args(tmp_path / "in.csv", run, epochs=2),
        "--holdout-pattern",
        "blocks",
        "--missing-process",
        process,
        "--block-length",
        "4",
        "--hide-variables",
        "s2",
    ]
    assert main(args) == 0
    held = np.load(run / "test_holdout_mask.npy")
    assert held[..., 1].any() and not held[..., [0, 2]].any()
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["missing_unit"] == process.removesuffix("s") and config["data"]["holdout_pattern"] == "blocks"
    assert config["data"]["hide_variables"] == ["s2"]
    assert main([*args[:-1], "nope", "--overwrite"]) == 2  # an unknown variable is refused


def test_interval_metrics_and_pinball_loss():
    from dynmask.tasks.impute.calibration import interval_metrics, pinball_loss

    truth = np.array([[1.0, 2.0, 3.0, 4.0]])
    lower, upper = np.array([[0.0, 2.5, 2.0, 3.0]]), np.array([[2.0, 3.0, 4.0, 5.0]])
    scored = np.array([[True, True, True, False]])
    m = interval_metrics(lower, upper, truth, scored, 0.9)
    assert m["coverage"] == pytest.approx(2 / 3) and m["interval_width"] == pytest.approx(1.5)
    assert m["interval_score"] == pytest.approx((2 + 0.5 + 2 + (2 / 0.1) * 0.5) / 3)
    pred, y = torch.tensor([[[0.0], [2.0]]]), torch.tensor([[[1.0], [1.0]]])
    keep = torch.tensor([[[True], [True]]])
    assert float(pinball_loss(pred, y, keep, 0.9)) == pytest.approx((0.9 * 1 + 0.1 * 1) / 2)


def test_conformal_scale_covers_new_values_at_the_nominal_rate():
    """Split conformal on a too-narrow interval: the factor is the finite-sample quantile of the
    calibration scores, and the widened interval covers fresh values from the same distribution ~90%."""
    from dynmask.errors import TooFewToCalibrate
    from dynmask.tasks.impute.calibration import conformal_scale, interval_metrics, widen_interval

    rng = np.random.default_rng(0)
    n = 4000
    point, lower, upper = np.zeros((1, n)), -np.ones((1, n)), 0.5 * np.ones((1, n))  # asymmetric, too narrow
    truth, fresh = rng.normal(0, 2, (1, n)), rng.normal(0, 2, (1, n))
    scored = np.ones((1, n), dtype=bool)
    scale = conformal_scale(point, lower, upper, truth, scored, 0.9)
    scores = np.where(truth < 0, -truth / 1.0, truth / 0.5)[0]
    assert scale == np.sort(scores)[int(np.ceil((n + 1) * 0.9)) - 1]  # the finite-sample conformal rank
    raw = interval_metrics(lower, upper, fresh, scored, 0.9)["coverage"]
    calibrated = interval_metrics(*widen_interval(point, lower, upper, scale), fresh, scored, 0.9)["coverage"]
    assert raw < 0.4 and 0.88 <= calibrated <= 0.92, (raw, calibrated)
    # where the interval is the point itself (an observed value) nothing moves
    lo, hi = widen_interval(np.ones(3), np.ones(3), np.ones(3), 7.0)
    assert (lo == 1).all() and (hi == 1).all()
    with pytest.raises(TooFewToCalibrate, match="too few"):
        conformal_scale(point[:, :5], lower[:, :5], upper[:, :5], truth[:, :5], scored[:, :5], 0.9)
    with pytest.raises(ValueError, match="interval"):
        conformal_scale(point, lower, upper, truth, scored, 1.0)


def test_a_damaged_calibration_file_is_refused(tmp_path):
    from dynmask.tasks.impute.trained import imputer_from_assets
    from dynmask.training.run_folders import RunFolderError

    assets = {"scaler": {"mean": [0.0], "std": [1.0]}, "window": 8, "columns": [0], "column_names": ["a"]}
    (tmp_path / "series.json").write_text(json.dumps(assets))
    assert imputer_from_assets(None, tmp_path).interval_scale == 1.0  # a run without calibration
    (tmp_path / "calibration.json").write_text(json.dumps({"scale": 1.7}))
    assert imputer_from_assets(None, tmp_path).interval_scale == 1.7
    for bad in (-1.0, 0.0, "2", True, None, 1e400):
        (tmp_path / "calibration.json").write_text(json.dumps({"scale": bad}))
        with pytest.raises(RunFolderError, match="calibration.json"):
            imputer_from_assets(None, tmp_path)


def test_imputer_learns_intervals_and_writes_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(1000)  # long enough for ~40 validation held-out values to calibrate on
    values = np.stack([np.sin(t / 8) + rng.normal(0, 0.3, 1000), np.cos(t / 11) + rng.normal(0, 0.3, 1000)], 1)
    values[rng.random(values.shape) < 0.15] = np.nan
    frame = pd.DataFrame(values, columns=["a", "b"])
    frame.insert(0, "t", t)
    frame.to_csv(tmp_path / "in.csv", index=False)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "impute",
                "--data",
                str(tmp_path / "in.csv"),
                "--output",
                str(run),
                "--window",
                "24",
                "--stride",
                "4",
                "--epochs",
                "15",
                "--d-model",
                "32",
                "--heads",
                "2",
                "--layers",
                "1",
                "--no-progress",
                "--intervals",
                "0.9",
                "--lr",
                "3e-3",
            ]
        )
        == 0
    )
    result = json.loads((run / "test_results.json").read_text())["dynmask"]
    assert 0.6 <= result["coverage"] <= 1.0 and result["interval_width"] > 0, result
    # calibrated on validation: the factor is saved with the run and the test interval is the raw one widened
    calibration = json.loads((run / "best" / "calibration.json").read_text())
    scale = calibration["scale"]
    assert result["interval_scale"] == scale > 0 and calibration["interval"] == 0.9
    assert result["interval_width"] == pytest.approx(scale * result["raw_interval_width"], rel=1e-4)
    assert (
        main(
            [
                "impute",
                "--model",
                str(run),
                "--input",
                str(tmp_path / "in.csv"),
                "--output",
                str(tmp_path / "out.csv"),
                "--intervals",
                "--use-model",
                "--calibrate",
                "validation",
            ]
        )
        == 0
    )
    assert "intervals calibrated on the run's validation values: factor" in capsys.readouterr().out
    # training also scored the test interval calibrated on the test input (what `impute` does by default)
    on_input = result["input_calibration"]
    assert on_input["scale"] > 0 and on_input["n"] > 0 and 0.0 <= on_input["coverage"] <= 1.0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["t", "a", "a_lower", "a_upper", "b", "b_lower", "b_upper"]
    holes = frame["a"].isna().to_numpy()
    assert out["a_lower"][~holes].isna().all() and not out["a_lower"][holes].isna().any()
    assert (out["a_lower"][holes] <= out["a"][holes] + 1e-6).all()
    assert (out["a"][holes] <= out["a_upper"][holes] + 1e-6).all()
    # the written interval is the model's raw interval widened by the saved factor
    from dynmask.tasks.impute.csv_io import fill_windows
    from dynmask.tasks.impute.trained import load_imputer

    trained = load_imputer(run)
    assert trained.interval_scale == scale
    numbers = frame[["a", "b"]].to_numpy()
    fills, _, raw_upper = fill_windows(trained.model, trained.scaler, trained.window, numbers, True)
    expected = fills[holes, 0] + scale * (raw_upper[holes, 0] - fills[holes, 0])
    np.testing.assert_allclose(out["a_upper"][holes].to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_calibration_cells_hide_only_observed_values_in_the_pattern():
    from dynmask.tasks.impute.calibration import calibration_cells

    rng = np.random.default_rng(0)
    windows = rng.normal(size=(20, 30, 4))
    windows[rng.random(windows.shape) < 0.4] = np.nan
    for pattern in ("values", "blocks", "variables"):
        cells = calibration_cells(windows, pattern)
        assert not np.isnan(windows[cells]).any()  # never a cell that is already missing
        assert 0.07 <= cells.sum() / (~np.isnan(windows)).sum() <= 0.2, pattern
    runs = lambda c: np.diff(c.astype(int), axis=1)  # a block shows as one 0 -> 1 step per run
    assert (runs(calibration_cells(windows, "blocks")) == 1).sum() < (
        runs(calibration_cells(windows, "values")) == 1
    ).sum()
    only = calibration_cells(windows, "values", variables=np.array([False, True, False, False]))
    assert only[..., 1].any() and not only[..., [0, 2, 3]].any()  # --hide-variables: those variables only
    with pytest.raises(ValueError, match="calibration pattern"):
        calibration_cells(windows, "days")
    with pytest.raises(ValueError, match="fraction"):
        calibration_cells(windows, "values", fraction=1.5)


def _untrained_interval_imputer(features: int):
    from dynmask.data.series import Standardizer
    from dynmask.tasks.impute.trained import TrainedImputer

    torch.manual_seed(0)
    model = SeriesImputer(SeriesConfig(features, d_model=16, n_heads=2, n_layers=1, d_ff=32, interval=0.9)).eval()
    scaler = Standardizer(np.zeros(features), np.ones(features))
    # a validation factor of 1: the raw quantiles, far too narrow for the file below
    return TrainedImputer(model, scaler, 24, list(range(features)), [f"v{i}" for i in range(features)])


def test_impute_calibrates_its_intervals_on_the_input_and_covers_its_holes(tmp_path, capsys):
    """Split conformal on the file itself: 10% of its observed values are hidden and scored, never the
    holes. A model whose raw interval is far too narrow for this file (values 4x its training scale)
    still covers about 90% of the file's real holes, while the validation factor covers far less."""
    from dynmask.tasks.impute.csv_io import impute_csv

    rng = np.random.default_rng(1)
    truth = 4.0 * rng.normal(size=(3000, 2))  # (T, F)
    holes = rng.random(truth.shape) < 0.1
    frame = pd.DataFrame(np.where(holes, np.nan, truth), columns=["v0", "v1"])
    frame.insert(0, "t", np.arange(len(frame)))
    frame.to_csv(tmp_path / "in.csv", index=False)
    trained = _untrained_interval_imputer(2)

    def coverage(counts_and_file):
        out = pd.read_csv(tmp_path / "out.csv")
        lo, hi = out[["v0_lower", "v1_lower"]].to_numpy(), out[["v0_upper", "v1_upper"]].to_numpy()
        return ((truth >= lo) & (truth <= hi))[holes].mean()

    counts = impute_csv(trained, tmp_path / "in.csv", tmp_path / "out.csv", intervals=True, use_model=True)
    calibration = counts["calibration"]
    assert calibration["on"] == "input" and calibration["pattern"] == "values"
    assert 0.08 * (~holes).sum() <= calibration["n"] <= 0.12 * (~holes).sum()
    assert calibration["scale"] > 1.5  # the raw interval had to be widened
    assert 0.86 <= coverage(counts) <= 0.94
    counts = impute_csv(
        trained, tmp_path / "in.csv", tmp_path / "out.csv", intervals=True, use_model=True, calibrate="validation"
    )
    assert counts["calibration"] == {"on": "validation", "scale": 1.0}
    assert coverage(counts) < 0.7
    # the CLI says which calibration it used; a short file falls back to validation under auto
    frame.iloc[:40].to_csv(tmp_path / "short.csv", index=False)
    counts = impute_csv(trained, tmp_path / "short.csv", tmp_path / "out.csv", intervals=True, use_model=True)
    assert counts["calibration"]["on"] == "validation" and "fewer than 100" in counts["calibration"]["why"]
    with pytest.raises(DataError, match="--calibrate input"):
        frame.iloc[:6].to_csv(tmp_path / "tiny.csv", index=False)
        impute_csv(
            trained, tmp_path / "tiny.csv", tmp_path / "out.csv", intervals=True, use_model=True, calibrate="input"
        )
    with pytest.raises(DataError, match="--calibration-pattern"):
        impute_csv(
            trained, tmp_path / "in.csv", tmp_path / "out.csv", intervals=True, use_model=True, calibration_pattern="x"
        )


def test_an_imputer_that_loses_to_a_baseline_on_validation_falls_back_and_says_so(tmp_path, capsys):
    """A smooth series and a one-epoch model: linear interpolation wins on validation, so the run
    records it and `dynmask impute` fills with it, saying so."""
    t = np.arange(300)
    values = np.stack([np.sin(t / 20), 2 * np.cos(t / 25)], 1)
    values[np.random.default_rng(0).random(values.shape) < 0.2] = np.nan
    frame = pd.DataFrame(values, columns=["a", "b"])
    frame.insert(0, "t", t)
    frame.to_csv(tmp_path / "in.csv", index=False)
    run = tmp_path / "run"
    assert main([*small_impute_args(tmp_path / "in.csv", run, epochs=1), "--no-residual"]) == 0  # the plain model
    results = json.loads((run / "test_results.json").read_text())
    fallback = json.loads((run / "best" / "fallback.json").read_text())
    assert fallback["fallback"] == "linear"  # the model is worse on validation values
    assert results["dynmask_or_fallback"]["mae"] == results["linear"]["mae"]
    capsys.readouterr()
    assert (
        main(
            ["impute", "--model", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
        )
        == 0
    )
    assert "by linear" in capsys.readouterr().out
    out = pd.read_csv(tmp_path / "out.csv")
    expected = frame[["a", "b"]].interpolate(limit_direction="both")
    assert np.abs(out[["a", "b"]].to_numpy() - expected.to_numpy()).max() < 1e-5


def test_interpolation_of_observed_values_matches_pandas_and_never_reads_holes():
    from dynmask.models.series import interpolate_observed

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 15, 4))
    observed = rng.random(x.shape) > 0.5
    observed[:, :, 3] = False  # a variable never observed: 0
    values = np.where(observed, x, np.nan)
    ours = interpolate_observed(torch.tensor(values), torch.tensor(observed)).numpy()
    for b in range(3):
        expected = pd.DataFrame(values[b]).interpolate(limit_direction="both").fillna(0.0).to_numpy()
        np.testing.assert_allclose(ours[b], expected, atol=1e-12)
    poisoned = torch.tensor(np.where(observed, x, np.inf), requires_grad=True)
    out = interpolate_observed(poisoned, torch.tensor(observed))
    out.sum().backward()
    assert torch.equal(out, torch.tensor(ours)) and (poisoned.grad[~torch.tensor(observed)] == 0).all()


def test_residual_imputer_starts_from_interpolation_and_keeps_the_guarantee():
    torch.manual_seed(0)
    model = SeriesImputer(SeriesConfig(3, d_model=16, n_heads=2, n_layers=1, d_ff=32, residual=True)).eval()
    with torch.no_grad():  # a zero correction: the imputer is linear interpolation
        model.head.weight.zero_()
        model.head.bias.zero_()
    x = torch.randn(2, 12, 3)
    x[torch.rand(2, 12, 3) < 0.4] = float("nan")
    mask = Mask.from_nan(x)
    from dynmask.models.series import interpolate_observed

    with torch.no_grad():
        filled = model.impute(x, mask)
        expected = interpolate_observed(x, mask.observed_values)
    holes = torch.isnan(x)
    assert torch.allclose(filled[holes], expected[holes]) and torch.equal(filled[~holes], x[~holes])
    model.train()
    outs = []
    for fill in (0.0, 1e30, float("nan")):
        xi = torch.where(holes, torch.full_like(x, fill), x).requires_grad_(True)
        torch.manual_seed(1)
        out = model(xi, mask)
        out[~holes].sum().backward()
        assert (xi.grad[holes] == 0).all() and torch.isfinite(out).all()
        outs.append(out.detach())
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_gated_residual_imputer_starts_near_interpolation_and_can_leave_it():
    from dynmask.models.series import interpolate_observed

    torch.manual_seed(0)
    config = SeriesConfig(3, d_model=16, n_heads=2, n_layers=1, d_ff=32, residual=True, residual_gate=True)
    model = SeriesImputer(config).eval()
    x = torch.randn(2, 12, 3)
    x[torch.rand(2, 12, 3) < 0.4] = float("nan")
    mask = Mask.from_nan(x)
    holes = torch.isnan(x)
    with torch.no_grad():
        expected = interpolate_observed(x, mask.observed_values)
        # at the start the gate is open (0.9975) and the correction and the direct prediction are zero
        assert torch.allclose(model.impute(x, mask)[holes], 0.9975 * expected[holes], atol=1e-3)
        model.gate_head.bias.fill_(-30.0)  # gate shut: the direct prediction alone, interpolation ignored
        model.direct_head.bias.fill_(7.0)
        assert torch.allclose(model.impute(x, mask)[holes], torch.full_like(expected[holes], 7.0))
    with pytest.raises(ValueError, match="residual_gate needs residual"):
        SeriesImputer(SeriesConfig(3, residual_gate=True))


def test_residual_imputer_stays_near_interpolation_on_a_smooth_series(tmp_path):
    """A smooth series where a plain one-epoch model is far behind linear interpolation: the residual
    imputer starts at the interpolation (zero correction) and stays near it."""
    t = np.arange(300)
    values = np.stack([np.sin(t / 20), 2 * np.cos(t / 25)], 1)
    values[np.random.default_rng(0).random(values.shape) < 0.2] = np.nan
    frame = pd.DataFrame(values, columns=["a", "b"])
    frame.insert(0, "t", t)
    frame.to_csv(tmp_path / "in.csv", index=False)
    maes = {}
    for name, extra in (("plain", ["--no-residual"]), ("residual", [])):  # residual: the default
        run = tmp_path / name
        assert (
            main(
                [
                    *small_impute_args(tmp_path / "in.csv", run, epochs=1),
                    *extra,
                ]
            )
            == 0
        )
        results = json.loads((run / "test_results.json").read_text())
        maes[name], linear = results["dynmask"]["mae"], results["linear"]["mae"]
    assert maes["residual"] < 5 * linear and maes["residual"] < 0.1 * maes["plain"], (maes, linear)


def test_window_and_stride_come_from_the_data_length_when_not_given(tmp_path, capsys):
    from dynmask.tasks.impute.task import DEFAULT_WINDOW, window_and_stride

    assert window_and_stride(4383) == (DEFAULT_WINDOW, 5)  # PM10: the tuned default
    assert window_and_stride(187) == (18, 3)  # valid range 18 steps, test 37: one window must fit each
    assert window_and_stride(187, 12, 2) == (12, 2)  # a user's choice is kept
    with pytest.raises(DataError, match="too few for a window"):
        window_and_stride(12)
    # a short monthly table through the CLI with no --window: it trains instead of stopping
    values = _series(n=187)
    frame = pd.DataFrame(values, columns=["s1", "s2", "s3"])
    frame.insert(0, "month", [f"m{i}" for i in range(187)])
    frame.to_csv(tmp_path / "short.csv", index=False)
    run = tmp_path / "run"
    args = ["train", "impute", "--data", str(tmp_path / "short.csv"), "--output", str(run), "--epochs", "1"]
    assert main([*args, "--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress"]) == 0
    assert "window 18 steps, stride 3" in capsys.readouterr().out
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["data"]["window"] == 18 and config["data"]["stride"] == 3
    # the default: a gated correction to linear interpolation, trained on mixed holes
    assert config["model"]["residual"] is True and config["model"]["residual_gate"] is True
    assert config["missing_unit"] == "mixed"
    assert main([*args, "--no-residual", "--output", str(tmp_path / "plain"), "--no-progress"]) == 0
    plain = json.loads((tmp_path / "plain" / "best" / "config.json").read_text())["model"]
    assert plain["residual"] is False and plain["residual_gate"] is False  # the gate goes with the residual


def test_the_imputation_plot_draws_intervals_only_at_holes(tmp_path):
    """With lower / upper the picture gains the interval bars; bounds away from the holes are not drawn."""
    pytest.importorskip("matplotlib")
    from PIL import Image

    from dynmask.plots import plot_imputation

    rng = np.random.default_rng(0)
    observed = rng.normal(size=(60, 2))
    observed[10:20, 0] = np.nan
    filled = np.nan_to_num(observed)
    lower, upper = filled - 3.0, filled + 3.0
    args = (range(60), ["a", "b"], observed, filled)
    plain = plot_imputation(tmp_path / "plain.png", *args, title="t")
    bars = plot_imputation(tmp_path / "bars.png", *args, lower=lower, upper=upper, title="t")
    holes_only = np.where(np.isnan(observed), lower, np.nan), np.where(np.isnan(observed), upper, np.nan)
    same = plot_imputation(tmp_path / "same.png", *args, lower=holes_only[0], upper=holes_only[1], title="t")
    pixels = lambda p: np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)
    assert np.abs(pixels(plain) - pixels(bars)).sum() > 0  # the bars are drawn
    assert np.array_equal(pixels(bars), pixels(same))  # and only at the holes


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), residual=st.booleans(), arch=st.sampled_from(["transformer", "gru"]))
def test_window_normalised_imputer_is_shift_and_scale_equivariant(seed, residual, arch):
    """normalize='window': filling a * x + b (a > 0, b per variable) gives a * fill(x) + b, whatever
    the level or unit of a series (a trend that leaves the training range, another currency)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(0)
    model = (
        SeriesImputer(
            SeriesConfig(
                F, arch=arch, d_model=16, n_heads=2, n_layers=1, d_ff=32, residual=residual, normalize="window"
            )
        )
        .double()
        .eval()
    )
    torch.nn.init.normal_(model.head.weight)
    x = torch.randn(3, 10, F, generator=g, dtype=torch.float64)
    x[torch.rand(3, 10, F, generator=g) < 0.3] = float("nan")
    x[:, :3, 0] = float("nan")  # a variable with few observations in a window
    mask = Mask.from_nan(x)
    a = torch.exp(torch.empty(F, dtype=torch.float64).uniform_(0, 7, generator=g))  # 1 .. 1100: above the floor
    b = torch.empty(F, dtype=torch.float64).uniform_(-1e4, 1e4, generator=g)
    with torch.no_grad():
        filled, moved = model.impute(x, mask), model.impute(a * x + b, mask)
    from dynmask.models.series import MIN_WINDOW_SCALE, window_statistics

    # (B, 1, F): a variable with fewer than 2 values (loc = the value, scale 1) is not scale-equivariant itself,
    # though its normalised input (0) is; a floored scale changes the variable's normalised inputs, which every
    # variable of the window attends to, so the whole window is left out
    _, scale = window_statistics(x, mask.observed_values)
    few = mask.observed_values.sum(1, keepdim=True) < 2
    floored = ((scale < 2 * MIN_WINDOW_SCALE) & ~few).any(-1, keepdim=True)  # (B, 1, 1)
    check = ~(few | floored).expand_as(x)
    torch.testing.assert_close(moved[check], (a * filled + b)[check], rtol=1e-7, atol=1e-6 * float(b.abs().max()))


def test_window_statistics_read_observed_values_only_and_floor_the_scale():
    from dynmask.models.series import MIN_WINDOW_SCALE, window_statistics

    x = torch.tensor([[[1.0, 5.0], [3.0, float("nan")], [float("nan"), 5.0], [5.0, float("inf")]]])  # (1, 4, 2)
    observed = torch.tensor([[[True, True], [True, False], [False, True], [True, False]]])
    loc, scale = window_statistics(x, observed)
    assert torch.allclose(loc, torch.tensor([[[3.0, 5.0]]]))
    assert torch.allclose(scale, torch.tensor([[[(8 / 3) ** 0.5, MIN_WINDOW_SCALE]]]))  # constant: the floor
    loc, scale = window_statistics(x, observed & torch.tensor([True, False, False, False]).view(1, 4, 1))
    assert torch.equal(scale, torch.ones(1, 1, 2)) and torch.allclose(loc, torch.tensor([[[1.0, 5.0]]]))
    with pytest.raises(ValueError, match="normalize must be one of"):
        SeriesImputer(SeriesConfig(2, normalize="global"))


def test_the_imputation_plot_zooms_on_the_longest_gap_and_reads_dates(tmp_path):
    """A year drawn in one panel hid a 24-step outage and its x axis was raw ISO strings (issue 38, item 8):
    each variable now gets a zoom on its longest gap beside the whole series, on a date axis."""
    pytest.importorskip("matplotlib")
    from PIL import Image

    from dynmask.plots import longest_run, plot_imputation

    assert longest_run(np.array([0, 1, 1, 0, 1, 1, 1, 0], dtype=bool)) == (4, 7)
    assert longest_run(np.zeros(5, dtype=bool)) == (0, 0)
    rng = np.random.default_rng(0)
    hours = [str(t) for t in pd.date_range("2024-01-01", periods=24 * 365, freq="h")]
    observed = rng.normal(size=(len(hours), 1))
    observed[5000:5024, 0] = np.nan  # a day-long outage in a year
    filled = np.nan_to_num(observed, nan=5.0)
    path = plot_imputation(tmp_path / "p.png", hours, ["a"], observed, filled)
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    orange = np.abs(image - np.array([255, 127, 14])).sum(-1) < 60  # the filled crosses
    right = orange[:, image.shape[1] * 3 // 5 :]
    left = orange[:, : image.shape[1] * 3 // 5]
    assert right.any(0).sum() > 3 * left.any(0).sum()  # the zoom spreads the 24 fills; the year squeezes them
