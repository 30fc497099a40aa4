"""The ``seed_literal`` ablation's attention: the original write-up's ``softmax((Q*A) Kᵀ/√d) V`` with
``A`` = observed queries. It zeroes queries, not keys, so missing keys are still attended and missing
values still reach observed outputs: kept only so the difference can be measured, never a default.
The method itself (its mask transform and where it applies) is registered in :mod:`dynmask.methods`.

Mask polarity everywhere: True = observed.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from .attention import MaskedMultiheadAttention

__all__ = ["LiteralGateAttention"]


class LiteralGateAttention(MaskedMultiheadAttention):
    """``seed_literal``: queries scaled by ``literal_gate`` (bool[B, Lq], True = observed query) after
    their projection, ``Q * A``; keys are whatever ``key_keep`` allows (padding only, in the stacks)."""

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None, **kwargs) -> Tensor:
        if kwargs.get("literal_gate") is None:
            raise ValueError("seed_literal attention needs literal_gate (bool[B, Lq], observed queries)")
        return super().forward(query, key, value, **kwargs)

    def gate_queries(self, q: Tensor, literal_gate: Tensor) -> Tensor:
        """``Q * A``: projected queries q (B, H, Lq, hd) zeroed where the query is missing."""
        return q * literal_gate[:, None, :, None].to(q.dtype)  # zeroes queries, not keys
