"""The trainer: loss goes down, resume is exact, torchrun DDP keeps ranks identical; predict honours markers."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import small_classify_args
from textdata import write_sentiment_csv

from dynmask.cli import main
from dynmask.data.text import load_text_dataset
from dynmask.data.tokenizer import TextTokenizer
from dynmask.models import ClassifierConfig, TextClassifier
from dynmask.tasks.classify.task import MissingSpec, TextClassificationTask, load_classifier, predict_texts
from dynmask.training import TrainConfig, Trainer

SMALL = small_classify_args()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    splits = load_text_dataset(str(write_sentiment_csv(folder / "d.csv", n=160)), group_column="doc")
    tok = TextTokenizer.train([e.text for e in splits.train], vocab_size=120, min_frequency=1, max_len=16)
    return splits, tok


def _model(tok, seed=0, method="dynamic", arch="transformer"):
    torch.manual_seed(seed)
    return TextClassifier(
        ClassifierConfig(
            tok.vocab_size, 2, method=method, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=16, arch=arch
        )
    )


def _trainer(setup, out, model, **cfg):
    splits, tok = setup
    task = TextClassificationTask(splits, tok, MissingSpec(0.2), seed=0)
    config = TrainConfig(**{"epochs": 3, "batch_size": 16, "lr": 3e-3, "progress": False, "patience": 100, **cfg})
    return Trainer(model, task, config, out, {"model": model.config.to_dict()}), task


def test_tiny_training_lowers_the_loss(setup, tmp_path):
    model = _model(setup[1])
    trainer, task = _trainer(setup, tmp_path / "run", model, epochs=6, lr=1e-2)
    before = task.evaluate(model, "train", MissingSpec(0.0))["loss"]
    summary = trainer.fit()
    after = task.evaluate(model, "train", MissingSpec(0.0))["loss"]
    assert after < 0.5 * before, (before, after)
    assert summary["best_score"] >= 0.7  # valid has 20% holes: the one cue word is sometimes hidden
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "valid"] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()


def test_resume_after_interruption_gives_the_same_weights(setup, tmp_path):
    whole, _ = _trainer(setup, tmp_path / "whole", _model(setup[1]))
    whole.fit()
    steps_per_epoch = whole.steps_per_epoch
    assert steps_per_epoch > 3
    first, _ = _trainer(setup, tmp_path / "cut", _model(setup[1]), max_steps=steps_per_epoch + 2)  # mid-epoch 2
    assert first.fit()["stopped"] == "max_steps"
    # a fresh process would start from different weights: the checkpoint must restore everything
    second, _ = _trainer(setup, tmp_path / "cut", _model(setup[1], seed=123))
    summary = second.fit(resume=True)
    assert summary["global_step"] == whole.state.global_step
    for (name, a), b in zip(whole.model.named_parameters(), second.model.parameters()):
        assert torch.equal(a, b), name


def test_a_small_training_set_is_passed_over_several_times_an_epoch_and_resumes_exactly(setup, tmp_path):
    one_pass, _ = _trainer(setup, tmp_path / "one", _model(setup[1]), epochs=1)
    per_pass = one_pass.steps_per_epoch
    trainer, task = _trainer(setup, tmp_path / "whole", _model(setup[1]), epochs=2, min_epoch_steps=2 * per_pass + 1)
    assert trainer.passes == 3 and trainer.steps_per_epoch == 3 * per_pass
    order = trainer._order(0)
    assert order[:per_pass] == one_pass._order(0)  # the first pass as a one-pass epoch has it
    for k in range(3):  # every pass holds every example once, in an order of its own
        seen = sorted(i for b in order[k * per_pass : (k + 1) * per_pass] for i in b)
        assert seen == list(range(task.num_train()))
    assert order[:per_pass] != order[per_pass : 2 * per_pass] and order != trainer._order(1)
    summary = trainer.fit()
    assert summary["global_step"] == 2 * 3 * per_pass
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "valid"] == [3 * per_pass, 6 * per_pass]
    cut, _ = _trainer(setup, tmp_path / "cut", _model(setup[1]), epochs=2, min_epoch_steps=2 * per_pass + 1,
                      max_steps=per_pass + 1)  # fmt: skip
    assert cut.fit()["stopped"] == "max_steps"  # inside the epoch's second pass
    again, _ = _trainer(setup, tmp_path / "cut", _model(setup[1], seed=5), epochs=2, min_epoch_steps=2 * per_pass + 1)
    again.fit(resume=True)
    for (name, a), b in zip(trainer.model.named_parameters(), again.model.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="min_epoch_steps"):
        TrainConfig(min_epoch_steps=-1)


def test_a_run_saved_before_min_epoch_steps_resumes_with_one_pass_epochs_only():
    from dynmask.training.run_folders import RunFolderError, compare_for_resume

    saved = {"task": "forecast", "train": {"epochs": 30, "patience": 5}}  # as runs before the setting saved it
    compare_for_resume(saved, {"task": "forecast", "train": {"epochs": 30, "patience": 5, "min_epoch_steps": 0}}, "run")
    with pytest.raises(RunFolderError, match="min_epoch_steps was 0 when the run started and is now 100"):
        compare_for_resume(saved, {"task": "forecast", "train": {"epochs": 30, "patience": 5, "min_epoch_steps": 100}},
                           "run")  # fmt: skip


def test_checkpoint_is_complete_and_atomic(setup, tmp_path):
    trainer, _ = _trainer(setup, tmp_path / "run", _model(setup[1]), epochs=1, keep_checkpoints=True)
    trainer.fit()
    ckpt = tmp_path / "run" / "checkpoint"
    assert {p.name for p in ckpt.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "training_state.pt",
        "state.json",
        "tokenizer.json",
        "labels.json",
    }
    assert not list((tmp_path / "run").glob("*.tmp")) and not list((tmp_path / "run").glob("*.old"))


def test_a_finished_run_drops_its_optimizer_state_and_trains_on_with_a_fresh_one(setup, tmp_path):
    out = tmp_path / "run"
    first, _ = _trainer(setup, out, _model(setup[1]), epochs=2)
    done = first.fit()
    assert not (out / "checkpoint" / "training_state.pt").exists() and not (out / "checkpoint.prev").exists()
    assert (out / "checkpoint" / "model.safetensors").exists() and (out / "best" / "model.safetensors").exists()
    again, _ = _trainer(setup, out, _model(setup[1], seed=9), epochs=2)
    assert again.fit(resume=True)["stopped"].startswith("already finished")
    for a, b in zip(first.model.parameters(), again.model.parameters()):  # the last weights came back
        assert torch.equal(a, b)
    on, _ = _trainer(setup, out, _model(setup[1], seed=9), epochs=3)  # --resume --epochs 3: trains on
    summary = on.fit(resume=True)
    assert summary["global_step"] == done["global_step"] + on.steps_per_epoch and on.state.epoch == 3


def test_torchrun_two_processes_keep_identical_weights(tmp_path):
    data = write_sentiment_csv(tmp_path / "d.csv", n=160)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # gloo on the CPU, GPU or not
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "dynmask.cli",
        "train",
        "classify",
        "--data",
        str(data),
        "--output",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--test-missing",
        "0,0.4",
        *SMALL,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert summary["kind"] == "summary" and summary["world_size"] == 2
    checksums = summary["rank_parameter_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert len(json.loads((out / "test_results.json").read_text())) == 2


def test_cli_train_then_predict_honours_missing_markers(tmp_path, capsys):
    data = write_sentiment_csv(tmp_path / "d.csv", n=160)
    out = tmp_path / "run"
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
                "2",
                "--test-missing",
                "0,0.5",
                *SMALL,
            ]
        )
        == 0
    )
    model, tok, labels = load_classifier(out)
    texts = ["the movie was ??? and great", "the movie was [missing] and great", "the movie was <UNK> and great"]
    rows = predict_texts(model, tok, labels, texts)
    assert rows[0]["probabilities"] == rows[1]["probabilities"] == rows[2]["probabilities"]
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--text", "a great film", "--text", "???"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in lines] == ["a great film", "???"]
    assert abs(sum(lines[0]["probabilities"].values()) - 1) < 1e-4
    assert lines[1]["label"] is None and "no observed token" in lines[1]["error"]  # nothing to read: no label
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(out),
                "--data",
                str(data),
                "--group-column",
                "doc",
                "--missing",
                "0,0.3",
                "--json",
            ]
        )
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert [s["missing_rate"] for s in scores] == [0.0, 0.3]
    # for people: what it read, then a table beside the majority class (issue 38)
    argv = ["evaluate", "--model", str(out), "--data", str(data), "--group-column", "doc", "--missing", "0,0.3"]
    assert main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("data d: ") and "majority class (" in table[2]
    assert table[3].split()[:2] == ["0%", "missing"] and f"{scores[0]['accuracy']:.1%}" in table[3]
    assert table[4].split()[:2] == ["30%", "missing"]


@pytest.mark.parametrize(
    "method,arch",
    [
        ("dynamic", "transformer"),
        ("delete", "transformer"),
        ("dynamic", "lstm"),
        ("dynamic", "gru"),
        ("dynamic", "grud"),
    ],
)
def test_classifier_ignores_ids_at_missing_positions(setup, method, arch):
    model = _model(setup[1], method=method, arch=arch).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, setup[1].vocab_size, (6, 12), generator=g)
    ids[:, 3] = 2
    ids[1, 5:] = 0
    ids[2] = 2  # nothing observed
    mask = setup[1].mask(ids)
    other = torch.where(mask.missing, torch.randint(3, setup[1].vocab_size, ids.shape, generator=g), ids)
    from dynmask import Mask

    assert torch.equal(model(ids, mask), model(other, Mask(mask.observed, mask.valid)))


@pytest.mark.parametrize(
    "content,message",
    [
        ("text,label\nx,a\ny,a\n", "only one class"),
        ("body,label\nx,a\ny,b\n", "Pass --text-column"),
        ("", "is empty"),
    ],
)
def test_cli_errors_are_clear(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["train", "classify", "--data", str(path), "--output", str(tmp_path / "o"), *SMALL]) == 2
    assert message in capsys.readouterr().err


def test_demo_quick_on_a_user_file(tmp_path, capsys):
    data = write_sentiment_csv(tmp_path / "d.csv", n=160)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--data", str(data), "--group-column", "doc", "--output", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["summary"]) == {"dynamic", "static", "seed_literal", "delete"}
    assert set(result["summary"]["dynamic"]) == {"0", "0.2", "0.4", "0.6"}
    assert (out / "accuracy_vs_missing.png").stat().st_size > 10_000
    out_text = capsys.readouterr().out
    assert "| dynamic |" in out_text
    # each run says which of how many it is (the demo's 4 methods x 1 seed), before its epoch bars
    assert [f"[{k}/4]" in out_text for k in range(1, 5)] == [True] * 4 and "[1/4] dynamic, seed 0: training" in out_text
    # a second run resumes: nothing is trained again
    assert main(["demo", "--quick", "--data", str(data), "--group-column", "doc", "--output", str(out)]) == 0
    assert capsys.readouterr().out.count("already done") == 4


@pytest.mark.parametrize("arch", ["lstm", "gru", "grud"])
def test_recurrent_classifier_trains_from_the_cli(tmp_path, arch):
    data = write_sentiment_csv(tmp_path / "d.csv", n=160)
    out = tmp_path / arch
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
                "10",
                "--arch",
                arch,
                "--lr",
                "1e-2",
                "--patience",
                "100",
                "--test-missing",
                "0",
                *SMALL,
                "--d-model",
                "32",
            ]
        )
        == 0
    )
    model, _, _ = load_classifier(out)
    assert model.config.arch == arch
    assert json.loads((out / "test_results.json").read_text())[0]["accuracy"] >= 0.7


@pytest.mark.parametrize("method", ["static", "delete", "seed_literal"])
def test_grud_takes_the_dynamic_method_only(setup, method):
    with pytest.raises(ValueError, match="arch='grud' handles missing tokens itself"):
        _model(setup[1], method=method, arch="grud")


def test_grud_text_gives_no_gradient_to_embeddings_of_missing_tokens(setup):
    model = _model(setup[1], arch="grud")
    ids = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 10, 11, 0, 0]])
    from dynmask import Mask

    observed = torch.tensor([[1, 1, 0, 1, 0, 0], [1, 0, 1, 1, 0, 0]], dtype=torch.bool)
    valid = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    model(ids, Mask(observed, valid)).sum().backward()
    grad = model.embed.table.weight.grad
    assert grad[[7, 9]].abs().sum() == 0  # ids seen only at missing positions
    assert (grad[[5, 8, 10, 11]].abs().sum(-1) > 0).all()


def test_demo_honours_arch(tmp_path):
    data = write_sentiment_csv(tmp_path / "d.csv", n=160)
    out = tmp_path / "demo-gru"
    assert (
        main(
            [
                "demo",
                "--quick",
                "--arch",
                "gru",
                "--methods",
                "dynamic,static,seed_literal",
                "--data",
                str(data),
                "--group-column",
                "doc",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    config = json.loads((out / "runs" / "dynamic-seed0" / "best" / "config.json").read_text())
    assert config["model"]["arch"] == "gru"
    assert set(json.loads((out / "results.json").read_text())["summary"]) == {"dynamic", "static"}


def test_load_weights_keeps_tied_weights_and_refuses_a_mismatch(tmp_path):
    from safetensors.torch import save_model

    from dynmask.models.seq2seq import Seq2Seq, Seq2SeqConfig
    from dynmask.training import load_weights

    def seq2seq(seed):
        torch.manual_seed(seed)
        return Seq2Seq(Seq2SeqConfig(vocab_size=40, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32))

    model = seq2seq(0)
    save_model(model, str(tmp_path / "m.safetensors"))  # tied weights are written once
    other = seq2seq(1)
    load_weights(other, tmp_path / "m.safetensors")
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(RuntimeError, match="holds weights this model does not have"):
        load_weights(
            TextClassifier(ClassifierConfig(40, 2, d_model=16, n_heads=2, n_layers=1, d_ff=32)),
            tmp_path / "m.safetensors",
        )


def test_tasks_follow_the_task_protocol_and_a_partial_one_is_named():
    from dynmask.tasks.classify_series.task import SeriesClassificationTask
    from dynmask.tasks.impute.task import ImputationTask
    from dynmask.tasks.seq2seq.task import Seq2SeqTask
    from dynmask.training import LengthBucketed, Task

    for cls in (TextClassificationTask, Seq2SeqTask, SeriesClassificationTask, ImputationTask):
        missing = [
            m
            for m in ("num_train", "train_batch", "loss", "batch_size", "evaluate", "save_assets")
            if not callable(getattr(cls, m, None))
        ]
        assert not missing, (cls.__name__, missing)
    assert callable(getattr(Seq2SeqTask, "lengths", None))  # length-bucketed batches

    class NoAssets:
        def num_train(self):
            return 4

        def train_batch(self, indices, draw):
            return indices

        def loss(self, model, batch):
            return torch.zeros(())

        def batch_size(self, batch):
            return len(batch)

        def evaluate(self, model):
            return {"score": 0.0}

    assert not isinstance(NoAssets(), Task) and not isinstance(NoAssets(), LengthBucketed)
    with pytest.raises(TypeError, match=r"lacks \['save_assets'\]"):
        Trainer(torch.nn.Linear(2, 2), NoAssets(), TrainConfig(epochs=1), Path("unused"), {})


def test_average_last_keeps_the_last_epochs_and_the_best_of_them_or_their_mean(setup, tmp_path):
    from safetensors.torch import load_file

    from dynmask.training import average_weights

    out = tmp_path / "run"
    trainer, _ = _trainer(setup, out, _model(setup[1]), epochs=4, average_last=3)
    trainer.fit()
    kept = sorted(p.name for p in (out / "epochs").glob("*.safetensors"))
    assert kept == ["epoch0002.safetensors", "epoch0003.safetensors", "epoch0004.safetensors"]
    files = [out / "epochs" / k for k in kept]
    states = [load_file(str(f)) for f in files]
    mean = average_weights(files)
    for name, value in mean.items():
        torch.testing.assert_close(value, sum(s[name] for s in states) / 3, rtol=0, atol=1e-6)
    assert not torch.equal(mean[name], states[-1][name])  # the epochs differ: the mean is a new point
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r.get("averaged_epochs") for r in valid] == [None] * 4 + [[2, 3, 4]]
    best = json.loads((out / "best" / "config.json").read_text())
    assert best["valid"]["score"] == max(r["score"] for r in valid)  # best/ is the best of all five
    best_weights = load_file(str(out / "best" / "model.safetensors"))
    if valid[-1]["improved"]:
        assert best["averaged_epochs"] == [2, 3, 4]
        assert all(torch.equal(best_weights[k], mean[k]) for k in mean)
    else:
        assert "averaged_epochs" not in best
        assert not torch.equal(best_weights[name], mean[name])
    # the training state (checkpoint/) keeps the last epoch's weights, not the mean: a resume trains on
    last = load_file(str(out / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(last[k], states[-1][k]) for k in last)


def test_a_changed_epoch_file_is_refused_and_unlike_files_are_not_averaged(setup, tmp_path):
    from safetensors.torch import save_file

    from dynmask.training import average_weights
    from dynmask.training.run_folders import RunFolderError

    out = tmp_path / "run"
    trainer, _ = _trainer(setup, out, _model(setup[1]), epochs=2, average_last=2)
    trainer.fit()
    epoch1 = out / "epochs" / "epoch0001.safetensors"
    save_file({k: v + 1 for k, v in trainer.model.state_dict().items()}, str(epoch1))
    with pytest.raises(RunFolderError, match="does not match its sha256"):
        trainer._average_last_epochs()
    save_file({"w": torch.zeros(2)}, str(tmp_path / "a.safetensors"))
    save_file({"w": torch.zeros(3)}, str(tmp_path / "b.safetensors"))
    with pytest.raises(RunFolderError, match="does not hold the same weights"):
        average_weights([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
    save_file({"w": torch.tensor([1.0, float("inf")])}, str(tmp_path / "c.safetensors"))
    with pytest.raises(RunFolderError, match="non-finite"):
        average_weights([tmp_path / "a.safetensors", tmp_path / "c.safetensors"])
    with pytest.raises(ValueError, match="average_last must be 0"):
        TrainConfig(average_last=1)


def test_a_run_resumed_after_its_early_stopping_epoch_trains_no_further(setup, tmp_path):
    trainer, _ = _trainer(setup, tmp_path / "run", _model(setup[1]), epochs=5, patience=1)
    trainer.state.epoch, trainer.state.bad_epochs, trainer.state.global_step = 2, 1, 7  # as a checkpoint holds
    summary = trainer.fit()
    assert summary["stopped"] == "early stopping" and summary["global_step"] == 7


def test_cli_refuses_averaging_one_epoch(tmp_path, capsys):
    path = write_sentiment_csv(tmp_path / "d.csv", n=40)
    args = ["train", "classify", "--data", str(path), "--output", str(tmp_path / "o"), *SMALL]
    with pytest.raises(SystemExit):
        main([*args, "--average-last", "1"])
    assert "--average-last: expected 0 (off) or at least 2 epochs to average, got 1" in capsys.readouterr().err


def test_a_finished_run_resumed_with_average_last_averages_once(setup, tmp_path):
    out = tmp_path / "run"
    first, _ = _trainer(setup, out, _model(setup[1]), epochs=3, average_last=3)
    first.fit()

    def averaged():
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return [r["averaged_epochs"] for r in records if "averaged_epochs" in r]

    assert averaged() == [[1, 2, 3]]
    for _ in range(2):  # the second resume finds [2, 3] already averaged
        again, _ = _trainer(setup, out, _model(setup[1], seed=5), epochs=3, average_last=2)
        assert again.fit(resume=True)["stopped"].startswith("already finished")
    assert averaged() == [[1, 2, 3], [2, 3]]
    best = json.loads((out / "best" / "config.json").read_text())
    scores = [
        r["score"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "valid"
    ]
    assert best["valid"]["score"] == max(scores)


def test_epoch_files_are_found_by_their_exact_names_only(setup, tmp_path):
    trainer, _ = _trainer(setup, tmp_path / "run", _model(setup[1]), epochs=1, average_last=2)
    folder = trainer.epochs_dir
    folder.mkdir(parents=True)
    for name in ("epoch0003.safetensors", "epoch0012.safetensors", "epochX.safetensors", "epoch7.safetensors"):
        (folder / name).write_bytes(b"")
    files, epochs = trainer._epochs_to_average()
    assert epochs == [3, 12] and [f.name for f in files] == ["epoch0003.safetensors", "epoch0012.safetensors"]


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_a_compact_classifier_embeds_and_pools_the_observed_tokens_only(setup, pooling, positional):
    from dynmask import Mask
    from dynmask.layers import with_backend

    tok = setup[1]
    torch.manual_seed(0)
    config = ClassifierConfig(tok.vocab_size, 2, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=16)
    model = TextClassifier(replace(config, pooling=pooling, positional=positional)).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, tok.vocab_size, (5, 12), generator=g)
    ids[torch.rand(ids.shape, generator=g) < 0.5] = 2  # about half missing
    ids[1, 7:] = 0  # padding
    ids[2] = 2  # nothing observed
    base = tok.mask(ids)
    confidence = torch.where(base.observed, torch.rand(ids.shape, generator=g).clamp(min=0.05), torch.zeros(()))
    mask = Mask(base.observed, base.valid, confidence=confidence)  # the soft prior rides along
    compact, dense = with_backend(model, "compact"), with_backend(model, "dense")
    seen = []
    compact.embed.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    out = compact(ids, mask)
    assert seen == [(5, int(base.observed.sum(1).max()), 16)]  # the embedding ran on the observed tokens
    assert torch.allclose(out, dense(ids, mask), atol=1e-5)
    compact._compact_first = lambda mask: None  # the stack's own compaction, after a full-length embedding
    assert torch.allclose(out, compact(ids, mask), atol=1e-5)
    del compact._compact_first
    other = torch.where(base.missing, torch.randint(-5, 10**6, ids.shape, generator=g), ids)  # any id where missing
    assert torch.equal(compact(other, mask), out)
    compact.train()  # gradients reach only the rows of observed tokens
    compact.zero_grad()
    compact(ids, mask).sum().backward()
    used = ids[base.observed].unique()
    unused = torch.ones(tok.vocab_size, dtype=torch.bool)
    unused[used] = False
    assert compact.embed.table.weight.grad[unused].abs().max() == 0
    assert compact.embed.table.weight.grad[used].abs().sum(1).min() > 0
