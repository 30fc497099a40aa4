"""Weights and training state on disk: safetensors weights (no pickle), the resumable state, weight
averaging, and loading a run folder's best model as untrusted input.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .distributed import distributed_context
from .run_folders import (
    KNOWN_TASKS,
    RunFolderError,
    check_finite_weights,
    prepare_run_folder,
    read_json,
    verify_manifest,
)


@dataclass
class TrainState:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_score: float = -math.inf
    bad_epochs: int = 0
    finished: bool = False
    stopped: str = ""  # why the run finished: "epochs" or "early stopping"
    metrics_bytes: int = 0  # size of metrics.jsonl when this state was saved: a resume cuts it back to this
    averaged_epochs: list = field(default_factory=list)  # the epoch ends last averaged (average_last)


def check_state(state: dict, source: Path, max_steps: int) -> None:
    """A saved training state read as untrusted input: counters whole numbers in range, scores finite
    (a NaN best score or a negative / huge step made a resumed run "finish" untrained)."""
    bounds = {"epoch": 10**6, "step_in_epoch": max_steps, "global_step": 10**12, "bad_epochs": 10**6,
              "metrics_bytes": 1 << 50}  # fmt: skip
    for name, high in bounds.items():
        value = state.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise RunFolderError(f"{source}: {name} = {value!r} is not a whole number in [0, {high}]")
    score = state.get("best_score", -math.inf)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score) or score == math.inf:
        raise RunFolderError(f"{source}: best_score = {score!r} is not a number (or -inf before any epoch)")
    if not isinstance(state.get("finished", False), bool) or not isinstance(state.get("stopped", ""), str):
        raise RunFolderError(f"{source}: finished must be true / false and stopped a text")


def savable(model: nn.Module) -> nn.Module:
    """``model``, or a CPU copy of it when it lives on a GPU: cuDNN packs an RNN's weights into one
    buffer there, views of which safetensors refuses to save (tied weights stay tied in the copy)."""
    if all(t.device.type == "cpu" for t in model.parameters()):
        return model
    return copy.deepcopy(model).cpu()


def load_weights(model: nn.Module, path: Path, device="cpu") -> None:
    """Load a safetensors file written from :func:`savable` into ``model`` (on any device).

    Like ``safetensors.torch.load_model`` but by ``load_state_dict``, which copies into cuDNN's flat
    RNN buffers; a name missing from the file must be a weight tied to one that is in it."""
    load_state(model, read_weights(path, device), path)


def read_weights(path: Path, device="cpu") -> dict:
    """The tensors of the safetensors file ``path``; a damaged file is a :class:`RunFolderError` naming it
    (safetensors' own error names neither the file nor the fix)."""
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise RunFolderError(f"{path} is not a readable safetensors file ({e}); retrain or restore the run") from None


def load_state(model: nn.Module, state: dict, path: Any) -> None:
    """:func:`load_weights` from a state dict already read (``path`` names its source in errors)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise RuntimeError(f"{path} holds weights this model does not have: {sorted(unexpected)}")
    params = dict(model.state_dict(keep_vars=True))
    loaded = {params[k].data_ptr() for k in state}
    untied = [k for k in missing if params[k].data_ptr() not in loaded]
    if untied:
        raise RuntimeError(f"{path} lacks weights this model needs: {sorted(untied)}")


def average_weights(paths: list[Path]) -> dict:
    """The element-wise mean of the safetensors weight files ``paths`` (checkpoint averaging, as in
    Vaswani et al. 2017 and fairseq's ``average_checkpoints.py``): floating tensors are averaged in
    float64 and cast back; integer buffers (counters) are the last file's. Every file must hold the
    same tensor names and shapes; a non-finite value is refused."""
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least 2 weight files, got {len(paths)}")
    states = [read_weights(p) for p in paths]
    names = set(states[-1])
    for path, state in zip(paths, states):
        if set(state) != names or any(state[k].shape != states[-1][k].shape for k in names):
            raise RunFolderError(f"{path} does not hold the same weights as {paths[-1]}: cannot average them")
    out = {}
    for name, last in states[-1].items():
        if not last.is_floating_point():
            out[name] = last
            continue
        mean = sum(s[name].double() for s in states) / len(states)
        if not torch.isfinite(mean).all():
            raise RunFolderError(f"{name} has non-finite values in {[str(p) for p in paths]}")
        out[name] = mean.to(last.dtype)
    return out


def load_run_model(
    folder: Path, build, device: Optional[torch.device] = None, *, expect_task: "Optional[str | tuple[str, ...]]" = None
):
    """(model, folder, run config) from a training run: ``folder`` itself or its ``best/``.

    ``build(model_config: dict) -> nn.Module`` makes the empty model; the weights come from
    ``model.safetensors`` and the model is returned in eval mode. The folder is untrusted input: its
    manifest is verified, ``config.json`` is checked before anything is built (``build`` should use
    :func:`dynmask.run_folders.config_from_dict`), ``expect_task`` (when given) must match the run's
    task, and weights holding NaN / inf are refused; every failure is a :class:`RunFolderError`."""
    folder = Path(folder)
    if not folder.exists():
        raise RunFolderError(f"--model {folder} does not exist; pass the --output folder of a training run")
    if not (folder / "model.safetensors").exists() and (folder / "best" / "model.safetensors").exists():
        folder = folder / "best"
    if not (folder / "model.safetensors").exists():
        raise RunFolderError(f"no model.safetensors in {folder}; pass the --output folder of a training run")
    verify_manifest(folder)
    config = read_json(folder / "config.json")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise RunFolderError(f"{folder / 'config.json'} must be a JSON object with a 'model' object")
    task = config.get("task", "classify")
    if task not in KNOWN_TASKS:
        known = tuple(sorted(KNOWN_TASKS))
        raise RunFolderError(f"{folder / 'config.json'}: unknown task {task!r}; expected one of {known}")
    if expect_task is not None:
        expected = (expect_task,) if isinstance(expect_task, str) else tuple(expect_task)
        if task not in expected:
            raise RunFolderError(
                f"--model {folder} is a {task!r} run; this command needs a {' or '.join(repr(e) for e in expected)} run"
            )
    try:
        model = build(config["model"])
    except (ValueError, TypeError, KeyError) as e:  # e.g. a width the heads do not divide
        raise RunFolderError(
            f"{folder / 'config.json'}: its model cannot be built ({str(e).splitlines()[0]})"
        ) from None
    try:
        load_weights(model, folder / "model.safetensors", device or "cpu")
    except RunFolderError:
        raise
    except (RuntimeError, OSError, ValueError) as e:  # safetensors' own errors for a damaged or alien file
        raise RunFolderError(
            f"{folder / 'model.safetensors'} does not fit the model its config.json describes: {str(e).splitlines()[0]}"
        ) from None
    check_finite_weights(model, str(folder / "model.safetensors"))
    return model.eval(), folder, config


def start_run_folder(output: Path, *, resume: bool, overwrite: bool) -> None:
    """The run-folder rules of :func:`dynmask.run_folders.prepare_run_folder`, before a run writes
    anything: every process checks, rank 0 clears (``overwrite``), the others wait for it."""
    rank, world = distributed_context()
    prepare_run_folder(output, resume=resume, overwrite=overwrite, clear=rank == 0)
    if world > 1:
        dist.barrier()


def parameter_checksum(model: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum() * (i + 1) for i, p in enumerate(model.parameters())))


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)
