"""Moving batches to the model's device, in one place.

Tasks build batches on the CPU (tokenising, hole drawing, NumPy windows); the trainer and every
evaluation move them to the device the model lives on with :func:`to_device`, and bring results back
with ``.cpu()``. A :class:`~dynmask.masks.Mask` moves as a whole (True = observed, unchanged).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from .masks import Mask

__all__ = ["to_device", "device_of"]


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); CPU for a module with neither (and for
    a runner that is not a module, e.g. an onnxruntime session)."""
    if not isinstance(model, nn.Module):
        return torch.device("cpu")
    first = next(itertools.chain(model.parameters(), model.buffers()), None)  # not a list of them all
    return torch.device("cpu") if first is None else first.device


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor and Mask in it (tuples, lists and dicts too) on ``device``."""
    if isinstance(obj, (torch.Tensor, Mask)):
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(to_device(o, device) for o in obj)
    if isinstance(obj, list):
        return [to_device(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj
