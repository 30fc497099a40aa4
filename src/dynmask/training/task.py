"""What the trainer needs from a task: the Task protocol (and LengthBucketed), checked with an error that
names the missing methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

TASK_METHODS = ("num_train", "train_batch", "loss", "batch_size", "evaluate", "save_assets")  # of Task, below


@runtime_checkable
class Task(Protocol):
    """What :class:`dynmask.training.Trainer` needs from a task."""

    def num_train(self) -> int:
        """Training examples."""

    def train_batch(self, indices: list[int], draw: int) -> Any:
        """The batch of these training examples; ``draw`` is unique per (step, rank) and seeds the holes."""

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """Scalar training loss of ``model`` on ``batch`` (missing positions never counted)."""

    def batch_size(self, batch: Any) -> int:
        """Examples in ``batch``."""

    def evaluate(self, model: torch.nn.Module) -> dict:
        """Validation metrics, with ``"score"`` (higher is better) choosing the best checkpoint."""

    def save_assets(self, folder: Path) -> None:
        """What the model needs beside its weights (tokenizer, labels, scaler), written to ``folder``."""


@runtime_checkable
class LengthBucketed(Protocol):
    """A task whose batches the trainer groups by length (less padding)."""

    def lengths(self) -> list[int]:
        """Length of each training example, in the order of :meth:`Task.train_batch` indices."""
