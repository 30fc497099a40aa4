"""Hub-style models (dynmask.hub): run folder -> dynmask.from_pretrained -> save_pretrained -> from_pretrained
gives equal weights and predictions for every task; loading stays as safe as a run folder's; offline."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_classify_args

import dynmask
from dynmask.cli import main
from dynmask.errors import RunFolderError
from dynmask.hub import (
    HUB_MODELS,
    ForecasterModel,
    ImputerModel,
    Seq2SeqModel,
    SeriesClassifierModel,
    TextClassifierModel,
)

SMALL_SERIES = ["--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress"]


def _series_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frame = pd.DataFrame({"date": [str(d.date()) for d in pd.date_range("2021-01-01", periods=n, freq="D")]})
    for j, name in enumerate(("a", "b")):
        v = 10 + 3 * np.sin(2 * np.pi * t / 7 + j) + rng.normal(0, 0.3, n)
        frame[name] = np.where(rng.random(n) < 0.2, np.nan, np.round(v, 3))
    frame.to_csv(path, index=False)
    return path


def _toy_ts(folder: Path) -> str:
    rng = np.random.default_rng(0)
    lines = ["@problemName toy", "@univariate false", "@dimensions 2", "@classLabel true no yes", "@data"]
    for i in range(40):
        label, length = i % 2, int(rng.integers(12, 20))
        a = np.sin(np.arange(length) * (0.3 if label else 1.2))
        b = rng.normal(label, 0.3, length)
        values = ",".join(f"{v:.4f}" for v in a) + ":" + ",".join(f"{v:.4f}" for v in b)
        lines.append(values + f":{'yes' if label else 'no'}")
    for split in ("TRAIN", "TEST"):
        (folder / f"toy_{split}.ts").write_text("\n".join(lines) + "\n")
    return str(folder / "toy_{split}.ts")


def _pairs(folder: Path) -> Path:
    words = [("open", "öffnen"), ("close", "schließen"), ("save", "speichern"), ("print", "drucken")]
    things = [("the file", "die Datei"), ("the window", "das Fenster"), ("the page", "die Seite")]
    rows = [f"{v} {t}\t{tt} {vv}" for v, vv in words for t, tt in things] * 3
    (folder / "pairs.tsv").write_text("source\ttarget\n" + "\n".join(rows) + "\n")
    return folder / "pairs.tsv"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data):
    """One small training run per task: {task: run folder}."""
    root = tmp_path_factory.mktemp("hub")
    series = _series_csv(root / "series.csv")
    commands = {
        "classify": ["train", "classify", "--data", str(data), "--epochs", "1", "--test-missing", "0",
                     *small_classify_args()],
        "impute": ["train", "impute", "--data", str(series), "--window", "20", "--epochs", "1", *SMALL_SERIES],
        "forecast": ["train", "forecast", "--data", str(series), "--horizon", "4", "--epochs", "1", *SMALL_SERIES],
        "classify-series": ["train", "classify-series", "--data", _toy_ts(root), "--epochs", "1", "--test-missing",
                            "0", *SMALL_SERIES],
        "translate": ["train", "translate", "--data", str(_pairs(root)), "--epochs", "1", "--beam", "1",
                      "--test-missing", "0", "--d-model", "32", "--heads", "2", "--enc-layers", "1", "--dec-layers",
                      "1", "--d-ff", "64", "--vocab-size", "120", "--max-src-len", "16", "--max-tgt-len", "16",
                      "--no-progress"],
    }  # fmt: skip
    out = {}
    for task, argv in commands.items():
        out[task] = root / task
        assert main([*argv, "--output", str(out[task])]) == 0, task
    return out


def _answers(model):
    """What each task's model answers on fixed inputs (holes included)."""
    rng = np.random.default_rng(3)
    series = rng.normal(10, 2, (30, 2))
    series[[2, 3, 4, 17], 0] = np.nan
    series[9, 1] = np.inf
    if isinstance(model, TextClassifierModel):
        return model.predict(["good fun", "bad [MISSING] dull", "[MISSING]"])
    if isinstance(model, Seq2SeqModel):
        return model.generate(["open the file", "close [MISSING] window"], beam=1)
    if isinstance(model, SeriesClassifierModel):
        return model.predict([series[:15], series[:12]])
    if isinstance(model, ImputerModel):
        return model.impute(series).tolist()
    return model.forecast(series).tolist()


EXPECTED = {
    "classify": TextClassifierModel,
    "impute": ImputerModel,
    "forecast": ForecasterModel,
    "classify-series": SeriesClassifierModel,
    "translate": Seq2SeqModel,
}


@pytest.mark.parametrize("task", list(EXPECTED))
def test_run_folder_round_trips_with_equal_weights_and_predictions(runs, tmp_path, task):
    model = dynmask.from_pretrained(runs[task])
    assert type(model) is EXPECTED[task] and model.task == task and HUB_MODELS[task] is EXPECTED[task]
    model.save_pretrained(tmp_path / "saved")
    saved = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert {"config.json", "model.safetensors", "README.md", "manifest.json"} <= set(saved)
    again = EXPECTED[task].from_pretrained(tmp_path / "saved")  # the class's own from_pretrained
    first, second = model.model.state_dict(), again.model.state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert _answers(again) == _answers(model)
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["task"] == task
    # and once more: a saved folder saves and loads like a run's
    again.save_pretrained(tmp_path / "twice")
    assert _answers(dynmask.from_pretrained(tmp_path / "twice")) == _answers(model)


def test_imputer_returns_observed_values_unchanged_and_fills_every_hole(runs):
    model = dynmask.from_pretrained(runs["impute"])
    values = np.random.default_rng(0).normal(10, 2, (25, 2))
    values[3:9, 0] = np.nan
    values[12, 1] = -np.inf
    filled = model.impute(values)
    observed = np.isfinite(values)
    assert np.array_equal(filled[observed], values[observed]) and np.isfinite(filled).all()


def test_tokenizer_labels_and_scaler_travel_with_the_model(runs, tmp_path):
    dynmask.from_pretrained(runs["classify"]).save_pretrained(tmp_path / "clf")
    assert {"tokenizer.json", "labels.json", "test_results.json"} <= {p.name for p in (tmp_path / "clf").iterdir()}
    dynmask.from_pretrained(runs["classify-series"]).save_pretrained(tmp_path / "ser")
    original = runs["classify-series"] / "best" / "series.json"
    assert (tmp_path / "ser" / "series.json").read_bytes() == original.read_bytes()


def test_model_card_names_task_data_metrics_and_the_guarantee(runs, tmp_path):
    dynmask.from_pretrained(runs["classify"]).save_pretrained(tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: dynmask" in card and "- classify" in card
    results = json.loads((runs["classify"] / "test_results.json").read_text())
    assert "| missing_rate | accuracy |" in card and f"{results[0]['accuracy']:.4g}" in card
    assert "exactly zero attention weight" in card and "dynmask.from_pretrained(" in card
    dynmask.from_pretrained(runs["forecast"]).save_pretrained(tmp_path / "f")
    assert "| method | mae | mase |" in (tmp_path / "f" / "README.md").read_text()


def test_loading_stays_as_safe_as_a_run_folder(runs, tmp_path):
    model = dynmask.from_pretrained(runs["classify"])
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(RunFolderError, match="does not match its sha256"):
        dynmask.from_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "n")
    (tmp_path / "n" / "manifest.json").unlink()
    with pytest.raises(RunFolderError, match="manifest.json is missing"):
        dynmask.from_pretrained(tmp_path / "n")
    (tmp_path / "link").symlink_to(runs["classify"] / "best", target_is_directory=True)
    with pytest.raises(RunFolderError, match="symbolic link"):
        dynmask.from_pretrained(tmp_path / "link")
    with pytest.raises(RunFolderError, match="'impute' model; TextClassifierModel loads"):
        TextClassifierModel.from_pretrained(runs["impute"])
    with pytest.raises(RunFolderError, match="neither a folder nor a hub repo id"):
        dynmask.from_pretrained(str(tmp_path / "absent"))


def test_saving_over_a_former_save_leaves_none_of_its_files(runs, tmp_path):
    dynmask.from_pretrained(runs["classify"]).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("mine")
    dynmask.from_pretrained(runs["impute"]).save_pretrained(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert "tokenizer.json" not in names and "labels.json" not in names and "notes.txt" in names
    assert isinstance(dynmask.from_pretrained(tmp_path / "m"), ImputerModel)


def test_repo_ids_download_plain_files_and_push_uploads_the_saved_folder(runs, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub
    import huggingface_hub.hub_mixin as mixin

    source = tmp_path / "published"
    dynmask.from_pretrained(runs["forecast"]).save_pretrained(source)
    calls = {}

    def snapshot_download(repo_id, *, local_dir, **kwargs):  # the hub, offline: copies the published folder
        calls["download"] = (repo_id, kwargs.get("revision"))
        shutil.copytree(source, local_dir, dirs_exist_ok=True)
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)  # the real one's bookkeeping
        (Path(local_dir) / ".cache" / "huggingface" / "x.metadata").write_text("etag")
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    model = dynmask.from_pretrained("someone/pm-forecaster", cache_dir=tmp_path / "cache", revision="v1")
    assert calls["download"] == ("someone/pm-forecaster", "v1") and isinstance(model, ForecasterModel)
    assert ".cache/huggingface/x.metadata" not in model.files

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            return type("Repo", (), {"repo_id": repo_id})()

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            calls["uploaded"] = (repo_id, sorted(p.name for p in Path(folder_path).iterdir()))
            return "commit-url"

    monkeypatch.setattr(mixin, "HfApi", FakeApi)
    assert model.push_to_hub("me/forecaster") == "commit-url"
    assert calls["uploaded"][0] == "me/forecaster"
    assert {"config.json", "model.safetensors", "README.md", "forecast.json"} <= set(calls["uploaded"][1])


def test_series_classifier_names_a_series_it_cannot_read(runs):
    from dynmask.errors import DataError

    model = dynmask.from_pretrained(runs["classify-series"])
    with pytest.raises(DataError, match=r"series\[1\]: expected 1 to \d+ steps of 2 variables"):
        model.predict([np.zeros((5, 2)), np.zeros((500, 2))])


def test_text_confidences_need_the_runs_threshold(runs):
    from dynmask.errors import DataError

    model = dynmask.from_pretrained(runs["classify"])
    with pytest.raises(DataError, match="stores no confidence threshold"):
        model.predict(["good fun"], confidences=[[0.9, 0.1]])
