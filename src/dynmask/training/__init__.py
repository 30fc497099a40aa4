"""One trainer for every task, and run folders as untrusted input (manifests, config checks, resume).

``trainer`` runs a :class:`~dynmask.training.task.Task`; ``config`` holds the shared settings;
``checkpoints`` reads and writes weights and state; ``run_folders`` checks what a folder holds;
``distributed`` runs under torchrun.
"""

from .checkpoints import (
    TrainState,
    average_weights,
    load_run_model,
    load_state,
    load_weights,
    parameter_checksum,
    savable,
    start_run_folder,
    write_json,
)
from .config import TrainConfig
from .distributed import distributed_context, on_rank_zero_first
from .run_folders import RunFolderError
from .task import TASK_METHODS, LengthBucketed, Task
from .trainer import Trainer

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainState",
    "Task",
    "LengthBucketed",
    "TASK_METHODS",
    "RunFolderError",
    "average_weights",
    "distributed_context",
    "on_rank_zero_first",
    "load_run_model",
    "load_state",
    "load_weights",
    "parameter_checksum",
    "savable",
    "start_run_folder",
    "write_json",
]
