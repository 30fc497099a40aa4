"""A new task is one TaskSpec and one register() call: a toy task defined here trains, loads and predicts
through the command line (train / predict / evaluate / export dispatch through the registry)."""

import json
from dataclasses import asdict, dataclass

import pytest
import torch
from torch import nn

import dynmask as dm
from dynmask.cli import main
from dynmask.errors import DataError, RunFolderError
from dynmask.tasks import TASKS, register, task_names
from dynmask.tasks.arguments import add_optimisation_args, add_run_args, train_config
from dynmask.tasks.registry import TaskSpec, get_task
from dynmask.training import Trainer, load_run_model, start_run_folder
from dynmask.training.run_folders import config_from_dict

TOY = "toy-mean"


@dataclass
class ToyConfig:
    d_model: int = 8


class MeanOfObserved(nn.Module):
    """Sequences of numbers, NaN = missing -> the mean of the observed ones (a dynamic mask inside)."""

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = dm.ValueEmbedding(1, config.d_model)
        self.encoder = dm.Encoder(config.d_model, 2, 1, d_ff=16, dropout=0.0)
        self.head = nn.Linear(config.d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x float[B, L, 1] -> float[B]
        mask = dm.Mask.from_nan(x)
        return self.head(dm.masked_mean(self.encoder(self.embed(x, mask), mask), mask)).squeeze(-1)


def _parse(line: str) -> list[float]:
    return [float("nan") if w == "?" else float(w) for w in line.split()]


def _batch(rows: list[list[float]]) -> torch.Tensor:
    length = max(len(r) for r in rows)
    return torch.tensor([r + [float("nan")] * (length - len(r)) for r in rows]).unsqueeze(-1)  # (B, L, 1)


class ToyTask:
    """The Task protocol the trainer runs."""

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows

    def num_train(self) -> int:
        return len(self.rows)

    def train_batch(self, indices, draw):
        x = _batch([self.rows[i] for i in indices])
        return x, torch.nanmean(x.squeeze(-1), dim=1)

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def evaluate(self, model) -> dict:
        with torch.no_grad():
            return {"score": -float(self.loss(model, self.train_batch(range(len(self.rows)), 0)))}

    def save_assets(self, folder) -> None:
        pass


def _add_arguments(p) -> None:
    add_run_args(p)
    p.add_argument("--data", required=True, help="a file of sequences: numbers, ? = missing")
    add_optimisation_args(p, epochs=2, lr=1e-2)


def _train(args) -> dict:
    rows = [_parse(line) for line in open(args.data) if line.strip()]
    config = train_config(args)
    start_run_folder(args.output, resume=args.resume, overwrite=args.overwrite)
    torch.manual_seed(config.seed)
    model = MeanOfObserved(ToyConfig())
    run_config = {"task": TOY, "model": asdict(model.config), "train": asdict(config)}
    return Trainer(model, ToyTask(rows), config, args.output, run_config).fit(resume=args.resume)


def _load(folder):
    return load_run_model(
        folder, lambda c: MeanOfObserved(config_from_dict(ToyConfig, c, "config.json")), expect_task=TOY
    )[0]


def _predict(args, texts: list) -> list:
    model = _load(args.model)
    with torch.no_grad():
        rows = [{"text": t, "mean": float(model(_batch([_parse(t)]))[0])} for t in texts]
    for row in rows:
        print(json.dumps(row))
    return rows


@pytest.fixture
def toy_task():
    spec = register(TaskSpec(TOY, "the mean of the observed numbers", _add_arguments, _train, predict=_predict))
    yield spec
    TASKS.pop(TOY)


def test_a_registered_task_trains_loads_and_predicts_through_the_cli(toy_task, tmp_path, capsys):
    data = tmp_path / "seqs.txt"
    data.write_text("\n".join(" ".join("?" if (i + j) % 3 == 0 else str(j % 5) for j in range(6)) for i in range(40)))
    run = tmp_path / "run"
    assert TOY in task_names() and get_task(TOY) is toy_task
    code = main(["train", TOY, "--data", str(data), "--output", str(run), "--batch-size", "8", "--no-progress"])
    assert code == 0
    assert json.loads((run / "best" / "config.json").read_text())["task"] == TOY
    capsys.readouterr()

    assert main(["predict", "--model", str(run), "--text", "1 ? 3", "--text", "1 1e30 3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["1 ? 3", "1 1e30 3"]
    assert rows[0]["mean"] != rows[1]["mean"]  # an observed 1e30 is read; a missing value is not
    loaded = _load(run)
    with torch.no_grad():  # the guarantee through the loaded run: what the hole holds changes nothing
        a, b = (loaded(_batch([[1.0, v, 3.0]])) for v in (float("nan"), float("inf")))
    assert torch.equal(a, b)

    # commands the task does not register answer with one line naming the task
    assert main(["evaluate", "--model", str(run)]) == 2
    assert f"is a {TOY} run: evaluate does not cover" in capsys.readouterr().err
    assert main(["export", "--model", str(run), "--output", str(tmp_path / "toy.onnx")]) == 2
    assert f"is a '{TOY}' run" in capsys.readouterr().err


def test_a_task_name_is_registered_once_and_unknown_runs_are_refused(toy_task, tmp_path):
    with pytest.raises(ValueError, match="registered already"):
        register(toy_task)
    with pytest.raises(ValueError, match="task must be one of"):
        get_task("no-such-task")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"task": "no-such-task", "model": {}}))
    with pytest.raises(RunFolderError, match="unknown task 'no-such-task'"):
        from dynmask.tasks import task_of

        task_of(folder)
    assert issubclass(RunFolderError, DataError)
