"""Masked losses written with ``torch.where`` (never multiply-by-mask: 0 * NaN = NaN).

Masks: True = observed (counted). The mean runs over counted entries; with none counted the loss
is 0 with zero gradient, never NaN.
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .graph import tracing
from .masks import Mask

__all__ = ["masked_cross_entropy", "masked_mae", "masked_mse"]


def _as_bool(mask: Union[Mask, Tensor], shape, name: str = "mask") -> Tensor:
    if isinstance(mask, Mask):
        m = mask.observed_values if (mask.observed_values is not None and len(shape) == 3) else mask.observed
    else:
        m = mask
    if m.dtype != torch.bool:
        raise TypeError(f"{name} must be bool (True = counted), got {m.dtype}")
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(m.shape)}")
    return m


def _mean_over(loss: Tensor, keep: Tensor) -> Tensor:
    total = torch.where(keep, loss, loss.new_zeros(())).sum()
    return total / keep.sum().clamp(min=1).to(loss.dtype)


def masked_cross_entropy(
    logits: Tensor, target: Tensor, mask: Union[Mask, Tensor], label_smoothing: float = 0.0, ignore_index: int = -100
) -> Tensor:
    """Cross-entropy of ``logits`` [..., C] against ``target`` long[...], over positions where ``mask`` is
    True and ``target`` is not ``ignore_index`` (PyTorch's convention, -100). Counted targets must lie
    in [0, C)."""
    if logits.shape[:-1] != target.shape:
        raise ValueError(f"logits [..., C] must match target [...]: got {list(logits.shape)} and {list(target.shape)}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class ids (long), got {target.dtype}")
    keep = _as_bool(mask, target.shape) & (target != ignore_index)
    counted = torch.where(keep, target, torch.zeros_like(target))
    if not tracing() and counted.numel() and (int(counted.min()) < 0 or int(counted.max()) >= logits.shape[-1]):
        raise ValueError(
            f"target holds class ids outside [0, {logits.shape[-1]}) at counted positions "
            f"(min {int(counted.min())}, max {int(counted.max())}); mark positions to skip with the mask "
            f"or ignore_index={ignore_index}"
        )
    clean_logits = torch.where(keep.unsqueeze(-1), logits, logits.new_zeros(()))
    clean_target = torch.where(keep, target, torch.zeros_like(target))
    per = F.cross_entropy(
        clean_logits.reshape(-1, logits.shape[-1]),
        clean_target.reshape(-1),
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(target.shape)
    return _mean_over(per, keep)


def _regression(pred: Tensor, target: Tensor, mask: Union[Mask, Tensor], fn) -> Tensor:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {list(pred.shape)} and {list(target.shape)}")
    keep = _as_bool(mask, target.shape)
    zero = pred.new_zeros(())
    diff = torch.where(keep, pred, zero) - torch.where(keep, target, zero)
    return _mean_over(fn(diff), keep)


def masked_mae(pred: Tensor, target: Tensor, mask: Union[Mask, Tensor]) -> Tensor:
    """Mean absolute error over entries where ``mask`` is True (per value: [B, L, F])."""
    return _regression(pred, target, mask, torch.abs)


def masked_mse(pred: Tensor, target: Tensor, mask: Union[Mask, Tensor]) -> Tensor:
    """Mean squared error over entries where ``mask`` is True (per value: [B, L, F])."""
    return _regression(pred, target, mask, torch.square)
