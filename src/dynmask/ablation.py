"""The two baselines dynmask measures itself against; neither is ever a default.

* ``static``: a mask transform. Only padding is masked (``Mask(valid, valid)``); missing positions
  hold a placeholder and are read like any token, the way a model with a mask fixed in advance sees
  them. The stack runs unchanged on the transformed mask.
* ``seed_literal``: the original write-up's ``softmax((Q*A) Kᵀ/√d) V`` with ``A`` = observed queries
  (:class:`LiteralGateAttention`). It zeroes queries, not keys, so missing keys are still attended and
  missing values still reach observed outputs: kept only so the difference can be measured.

Mask polarity everywhere: True = observed.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from .attention import MaskedMultiheadAttention
from .masks import Mask

__all__ = ["METHODS", "LiteralGateAttention", "static_mask", "attended_keys", "attention_class"]

METHODS = ("dynamic", "static", "seed_literal")


def static_mask(mask: Mask) -> Mask:
    """The mask the static baseline sees: every valid (non-padding) position counts as observed."""
    return Mask(mask.valid, mask.valid)


def attended_keys(mask: Mask, method: str) -> Tensor:
    """bool[B, L], True = a stack running ``method`` may attend here: the data's observed positions for
    ``dynamic``; for the two baselines ``static_mask(mask).observed`` (padding only; ``seed_literal``
    gates queries on top, in its attention). Read from ``mask`` directly: building the transformed
    :class:`Mask` on every forward would re-run its eager validation (a device sync). ``method`` is
    checked where the stack is built."""
    return mask.observed if method == "dynamic" else mask.valid


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


class LiteralGateAttention(MaskedMultiheadAttention):
    """``seed_literal``: queries scaled by ``literal_gate`` (bool[B, Lq], True = observed query) after
    their projection, ``Q * A``; keys are whatever ``key_keep`` allows (padding only, in the stacks)."""

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None, **kwargs) -> Tensor:
        gate = kwargs.pop("literal_gate", None)
        if gate is None:
            raise ValueError("seed_literal attention needs literal_gate (bool[B, Lq], observed queries)")
        return self._attention(query, key, value, query_scale=gate, **kwargs)


def attention_class(method: str) -> type[MaskedMultiheadAttention]:
    """The attention module a stack running ``method`` is built from."""
    check_method(method)
    return LiteralGateAttention if method == "seed_literal" else MaskedMultiheadAttention
