"""Classification of variable-length multivariate series with NaN. Masks: True = observed. Standardisation
uses training statistics only; test-time holes are seeded, so every method is scored on the same ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...data.series import (
    SeriesSplits,
    Standardizer,
    pad_series,
)
from ...devices import device_of, to_device
from ...masks import Mask
from ...missingness import MISSING_UNITS, Schedule, hide_values
from ...models.series import SeriesClassifier, SeriesConfig
from ...training import Trainer, load_run_model, start_run_folder
from ...training.run_folders import config_from_dict, fingerprint
from ..common import SPLIT_OFFSET, TEST_SEED, accuracy_and_macro_f1


# ---------------------------------------------------------------------------------------- classification
class SeriesClassificationTask:
    """Classify series with NaN; ``train_missing`` / test rates hide a share of the observed values,
    value by value or whole steps at a time (``missing_unit``, see :func:`hide_values`)."""

    def __init__(
        self,
        splits: SeriesSplits,
        train_missing: float = 0.0,
        schedule: str = "dynamic",
        seed: int = 0,
        eval_batch_size: int = 128,
        missing_unit: str = "value",
    ) -> None:
        if missing_unit not in MISSING_UNITS:
            raise ValueError(f"missing_unit must be one of {MISSING_UNITS}, got {missing_unit!r}")
        self.splits, self.seed, self.train_missing, self.missing_unit = splits, seed, train_missing, missing_unit
        self.eval_batch_size = eval_batch_size
        self.max_len = max(len(x) for name in ("train", "valid", "test") for x, _ in splits.split(name))
        self.scaler = Standardizer.fit(np.concatenate([x for x, _ in splits.train]))
        self.data = {
            name: [self.scaler.transform(x) for x, _ in splits.split(name)] for name in ("train", "valid", "test")
        }
        self.labels = {name: torch.tensor([y for _, y in splits.split(name)]) for name in ("train", "valid", "test")}
        self.schedule = Schedule(schedule, splits.num_features, seed, self.max_len)
        self.valid_rate = train_missing

    def num_train(self) -> int:
        return len(self.data["train"])

    def _batch(self, split: str, indices: Sequence[int], rate: float, schedule: Optional[Schedule], draw: int):
        x, _ = pad_series([self.data[split][i] for i in indices])  # (B, L, F), NaN = missing / padding
        lengths = torch.tensor([len(self.data[split][i]) for i in indices])
        if rate > 0:
            x = hide_values(x, rate, schedule.uniforms(indices, x.shape[1], draw), self.missing_unit)
        return x, Mask.from_nan(x, lengths=lengths), self.labels[split][list(indices)]

    def train_batch(self, indices: list[int], draw: int):
        return self._batch("train", indices, self.train_missing, self.schedule, draw)

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def loss(self, model, batch) -> torch.Tensor:
        x, mask, labels = batch
        return F.cross_entropy(model(x, mask).float(), labels)

    def evaluate(self, model, split: str = "valid", rate: Optional[float] = None) -> dict:
        rate = self.valid_rate if rate is None else rate
        schedule = Schedule("static", self.splits.num_features, TEST_SEED + SPLIT_OFFSET[split], self.max_len)
        was = model.training
        model.eval()
        preds, loss, n = [], 0.0, len(self.data[split])
        device = device_of(model)
        with torch.no_grad():
            for start in range(0, n, self.eval_batch_size):
                idx = list(range(start, min(n, start + self.eval_batch_size)))
                x, mask, labels = to_device(self._batch(split, idx, rate, schedule, 0), device)
                logits = model(x, mask).float()
                loss += float(F.cross_entropy(logits, labels, reduction="sum"))
                preds.append(logits.argmax(-1).cpu())
        model.train(was)
        acc, f1 = accuracy_and_macro_f1(torch.cat(preds), self.labels[split], len(self.splits.labels))
        return {
            "accuracy": acc,
            "macro_f1": f1,
            "loss": loss / max(1, n),
            "score": acc,
            "missing_rate": rate,
            "missing_unit": self.missing_unit,
        }

    def save_assets(self, folder: Path) -> None:
        (Path(folder) / "series.json").write_text(
            json.dumps({"labels": self.splits.labels, "scaler": self.scaler.to_dict()})
        )


def train_series_classifier(
    splits: SeriesSplits,
    output: Path,
    model_config: dict,
    train_config,
    *,
    train_missing: float = 0.0,
    schedule: str = "dynamic",
    resume: bool = False,
    test_rates: Sequence[float] = (),
    missing_unit: str = "value",
    overwrite: bool = False,
) -> dict:

    start_run_folder(output, resume=resume, overwrite=overwrite)
    task = SeriesClassificationTask(splits, train_missing, schedule, seed=train_config.seed, missing_unit=missing_unit)
    config = SeriesConfig(
        num_features=splits.num_features, num_classes=len(splits.labels), max_len=max(task.max_len, 8), **model_config
    )
    torch.manual_seed(train_config.seed)
    model = SeriesClassifier(config)
    run_config = {
        "task": "classify-series",
        "model": config.to_dict(),
        "train": asdict(train_config),
        "train_missing": train_missing,
        "schedule": schedule,
        "missing_unit": missing_unit,
        "data": {
            "name": splits.name,
            **splits.info,
            "fingerprint": fingerprint(
                *(x for k in ("train", "valid", "test") for x, _ in splits.split(k)),
                [[y for _, y in splits.split(k)] for k in ("train", "valid", "test")],
            ),
        },
    }
    trainer = Trainer(model, task, train_config, output, run_config)
    summary = trainer.fit(resume=resume)
    if test_rates and trainer.main:
        best = model
        if (Path(output) / "best" / "model.safetensors").exists():
            best = load_run_model(
                Path(output) / "best",
                lambda c: SeriesClassifier(config_from_dict(SeriesConfig, c, "config.json")),
                expect_task="classify-series",
            )[0]
        summary["test"] = [task.evaluate(best, "test", r) for r in test_rates]
        (Path(output) / "test_results.json").write_text(json.dumps(summary["test"], indent=2))
    return summary
