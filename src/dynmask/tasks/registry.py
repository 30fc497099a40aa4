"""The task registry: every task dynmask trains (``classify``, ``translate``, ``summarize``,
``classify-series``, ``impute``, and any task a user registers) is one :class:`TaskSpec`.

The command line builds ``dynmask train TASK`` from the registry, and ``evaluate``, ``predict``,
``export`` and the run-folder checks dispatch through it by the ``task`` a run's ``config.json``
records. Adding a task is one package under ``dynmask.tasks`` that defines a :class:`TaskSpec`, and
one :func:`register` call (``dynmask/tasks/__init__.py`` holds the built-in ones).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import RunFolderError
from ..training.run_folders import KNOWN_TASKS, read_json

__all__ = ["TaskSpec", "TASKS", "register", "get_task", "task_names", "task_of", "run_config_folder"]


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name (the ``task`` in a run's ``config.json`` and ``dynmask train NAME``) and what
    each command does with it. Every callable takes the parsed command line (``argparse.Namespace``).

    * ``add_arguments(parser)``: the flags of ``dynmask train NAME``;
    * ``train(args) -> dict``: train into ``args.output`` and return the run's summary;
    * ``evaluate(args) -> list``: score ``args.model`` (a run folder) at ``args.missing``;
    * ``predict(args, texts) -> list``: one JSON-able row per text (``dynmask predict``);
    * ``export(run, backend) -> ExportGraph``: the ONNX graph, its example input and assets.
    A command the task does not support is ``None``; ``unsupported`` then says what to do instead.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    train: Callable[[argparse.Namespace], dict]
    evaluate: Optional[Callable[[argparse.Namespace], list]] = None
    predict: Optional[Callable[[argparse.Namespace, list], list]] = None
    export: Optional[Callable[[Path, str], Any]] = None
    unsupported: str = ""  # e.g. "its test scores are in test_results.json"


TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry (its name must be new); returns it."""
    if spec.name in TASKS:
        raise ValueError(f"a task named {spec.name!r} is registered already")
    TASKS[spec.name] = spec
    KNOWN_TASKS.add(spec.name)  # run folders of this task now load
    return spec


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"task must be one of {task_names()}, got {name!r}")
    return TASKS[name]


def run_config_folder(folder: Path) -> Path:
    """The folder holding a run's model ``config.json``: the run's ``best/``, or the folder itself."""
    folder = Path(folder)
    return folder if (folder / "config.json").exists() else folder / "best"


def task_of(folder: Path) -> TaskSpec:
    """The registered task of a training run's folder (or its best/), read from its config.json."""
    folder = Path(folder)
    if not folder.exists():
        raise RunFolderError(f"--model {folder} does not exist; pass a training run's --output folder")
    for candidate in (folder / "config.json", folder / "best" / "config.json"):
        if candidate.exists():
            config = read_json(candidate)
            name = config.get("task", "classify") if isinstance(config, dict) else None
            if name not in TASKS:
                raise RunFolderError(f"{candidate}: unknown task {name!r}; expected one of {task_names()}")
            return TASKS[name]
    raise RunFolderError(f"no config.json in {folder} or {folder / 'best'}; pass a training run's --output folder")
