"""Masked pooling over the sequence dimension: missing positions cannot affect the result.

``keep`` is a :class:`~dynmask.Mask` (its ``observed`` is used) or bool[B, L]; True = observed.
A sample with nothing observed pools to zeros (no NaN, zero gradient).
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor, nn

from .masks import Mask
from .onnx_fusion import clean_rows

__all__ = ["masked_mean", "masked_max", "AttentionPooling"]


def _keep(x: Tensor, mask: Union[Mask, Tensor]) -> Tensor:
    keep = mask.observed if isinstance(mask, Mask) else mask
    if keep.dtype != torch.bool or keep.dim() != 2 or x.dim() != 3 or x.shape[:2] != keep.shape:
        raise ValueError(
            f"pooling needs x [B, L, D] and a bool mask [B, L]; got x {list(x.shape)} "
            f"and mask {keep.dtype} {list(keep.shape)}"
        )
    return keep.unsqueeze(-1)  # (B, L, 1)


def masked_mean(x: Tensor, mask: Union[Mask, Tensor]) -> Tensor:
    """Mean of x [B, L, D] over observed positions -> [B, D]; zeros when nothing is observed."""
    keep = _keep(x, mask)
    wide = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype  # fp16 sums overflow at 65,504
    total = clean_rows(x, keep[..., 0]).sum(1, dtype=wide)  # (B, D); a multiply only in computed_rows exports
    count = keep.sum(1).clamp(min=1).to(wide)  # (B, 1)
    return (total / count).to(x.dtype)


def masked_max(x: Tensor, mask: Union[Mask, Tensor]) -> Tensor:
    """Max of x [B, L, D] over observed positions -> [B, D]; zeros when nothing is observed."""
    keep = _keep(x, mask)
    if x.shape[1] == 0:  # no position at all: nothing observed
        return x.new_zeros(x.shape[0], x.shape[2])
    best = torch.where(keep, x, x.new_tensor(float("-inf"))).amax(1)  # (B, D)
    return torch.where(keep.any(1), best, x.new_zeros(()))


class AttentionPooling(nn.Module):
    """Learned attention pooling: softmax of a scored projection over observed positions only."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Linear(d_model, 1)

    def forward(self, x: Tensor, mask: Union[Mask, Tensor]) -> Tensor:
        keep = _keep(x, mask)
        clean = torch.where(keep, x, x.new_zeros(()))  # (B, L, D)
        scores = torch.where(keep, self.score(clean), x.new_tensor(float("-inf")))  # (B, L, 1)
        any_kept = keep.any(1, keepdim=True)  # (B, 1, 1)
        scores = torch.where(any_kept, scores, x.new_zeros(()))  # an empty sample: no -inf row
        weights = torch.where(keep, torch.softmax(scores, dim=1), x.new_zeros(()))  # (B, L, 1)
        return (weights * clean).sum(1)  # (B, D)
