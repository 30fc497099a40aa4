"""The training settings every task shares (TrainConfig), checked on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of all steps spent warming up
    clip_norm: float = 1.0
    patience: int = 2  # epochs without improvement before stopping
    # An epoch runs at least this many steps: a training set smaller than that is passed over several times
    # (each pass shuffled anew) between two validations, so validation, patience and the learning-rate
    # schedule keep their meaning on a few hundred examples (0: an epoch is one pass, whatever its size).
    min_epoch_steps: int = 0
    seed: int = 0
    amp: str = "auto"  # auto: on where the device has fast low precision (CUDA), off on CPU
    checkpoint_every: int = 500  # steps; a checkpoint is also written at every epoch end
    max_steps: Optional[int] = None  # stop (with a checkpoint) after this many steps in total
    log_every: int = 20
    progress: bool = True
    # When training ends, average the weights of the last N epoch ends (N >= 2) and keep the average as
    # best/ if it scores better on validation than the best single epoch (0: off).
    average_last: int = 0
    # Keep the optimizer state and checkpoint.prev once the run has finished (by default they go: a
    # finished run keeps best/ and its last weights; training it on starts a fresh optimizer).
    keep_checkpoints: bool = False

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.average_last < 0 or self.average_last == 1:
            raise ValueError(f"average_last must be 0 (off) or >= 2 epochs, got {self.average_last}")
        if self.min_epoch_steps < 0:
            raise ValueError(f"min_epoch_steps must be >= 0, got {self.min_epoch_steps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.warmup <= 1:
            raise ValueError(f"warmup must be a share of the steps in [0, 1], got {self.warmup}")
        if not (self.clip_norm > 0 and self.weight_decay >= 0):
            raise ValueError(
                f"clip_norm must be > 0 and weight_decay >= 0, got {self.clip_norm} and {self.weight_decay}"
            )
        if self.amp not in ("auto", "on", "off"):
            raise ValueError(f"amp must be 'auto', 'on' or 'off', got {self.amp!r}")
