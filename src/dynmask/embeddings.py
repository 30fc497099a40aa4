"""Embeddings that never let a missing value through, and positional encodings by original position.

Mask polarity: True = observed.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .graph import tracing
from .masks import Mask, check_input_dtype
from .onnx_fusion import exporting_fused

__all__ = ["SinusoidalPositions", "LearnedPositions", "TokenEmbedding", "ValueEmbedding", "make_positions"]


def _check_positions(positions: Tensor, max_len: int) -> None:
    """Positions must lie in [0, max_len): a negative one would index the table from its end. Eager mode
    only (one sync for both bounds)."""
    if tracing() or not positions.numel():
        return
    low, high = torch.stack([positions.min(), positions.max()]).tolist()
    if low < 0:
        raise ValueError(f"positions must be >= 0, got {low}")
    if high >= max_len:
        raise ValueError(f"position {high} exceeds max_len={max_len}")


class SinusoidalPositions(nn.Module):
    """Fixed sine/cosine encodings (Vaswani et al., 2017), indexed by position ids long[B, L]."""

    def __init__(self, d_model: int, max_len: int = 8192) -> None:
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("table", table, persistent=False)
        self.max_len = max_len

    def forward(self, positions: Tensor) -> Tensor:
        _check_positions(positions, self.max_len)
        return self.table[positions]  # (B, L, D)


class LearnedPositions(nn.Module):
    """A learned table of position vectors, indexed by position ids long[B, L]."""

    def __init__(self, d_model: int, max_len: int = 1024) -> None:
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)
        self.max_len = max_len

    def forward(self, positions: Tensor) -> Tensor:
        _check_positions(positions, self.max_len)
        return self.table(positions)  # (B, L, D)


def make_positions(kind: Optional[str], d_model: int, max_len: int) -> Optional[nn.Module]:
    if kind is None or kind == "none":
        return None
    if kind == "sinusoidal":
        return SinusoidalPositions(d_model, max_len)
    if kind == "learned":
        return LearnedPositions(d_model, max_len)
    raise ValueError(f"positional must be 'sinusoidal', 'learned' or None, got {kind!r}")


class TokenEmbedding(nn.Module):
    """Token ids long[B, L] -> float[B, L, D], scaled by sqrt(D).

    Ids that ``mask`` marks missing (or padding) never reach the table as real tokens: they get a
    learned ``missing_vector`` (what the ``static`` baseline attends to, and what a
    ``queries="all"`` model starts from) instead of their id's row.
    """

    def __init__(self, vocab_size: int, d_model: int, scale: bool = True) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.table.weight, std=d_model**-0.5)
        self.missing_vector = nn.Parameter(torch.zeros(d_model))
        nn.init.normal_(self.missing_vector, std=d_model**-0.5)
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, ids: Tensor, mask: Mask) -> Tensor:
        mask.check_matches("ids", ids)
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
        safe = torch.where(mask.observed, ids, torch.zeros_like(ids))  # (B, L); missing ids never looked up
        if not tracing() and safe.numel():  # data checks: eager mode only (one sync for both bounds)
            low, high = torch.stack([safe.min(), safe.max()]).tolist()
            if low < 0:  # only observed ids are read: -1 at a missing one is fine
                raise ValueError(f"observed token ids must be >= 0, got {low}")
            if high >= self.table.num_embeddings:
                raise ValueError(f"token id {high} >= vocab_size {self.table.num_embeddings}")
        if exporting_fused():  # one lookup in the table with the missing vector as its last row (a constant
            # onnxruntime folds at load) instead of a [B, L, D] Where; the same values
            table = torch.cat([self.table.weight, self.missing_vector[None]])  # (V + 1, D)
            rows = torch.where(mask.observed, ids, torch.full_like(ids, self.table.num_embeddings))  # (B, L)
            return F.embedding(rows, table) * self.scale  # (B, L, D)
        emb = self.table(safe) * self.scale  # (B, L, D)
        missing = (self.missing_vector * self.scale).expand_as(emb)
        return torch.where(mask.observed.unsqueeze(-1), emb, missing)


def observed_values(values: Tensor, mask: Mask) -> Tensor:
    """bool[B, L, F], True = this value is observed: ``mask.observed_values`` (or every feature of an
    observed step), never at padding."""
    m = mask.observed_values if mask.observed_values is not None else mask.observed.unsqueeze(-1).expand_as(values)
    return m & mask.valid.unsqueeze(-1)


class ValueEmbedding(nn.Module):
    """Numeric values float[B, L, F] (NaN = missing) -> float[B, L, D].

    Each step is embedded from its values with missing ones replaced by 0 (``torch.where``, before
    the projection) together with the per-feature observed indicator, so the model knows which
    features were there: ``Linear([x_observed_or_0, indicator, extra])``. ``extra_channels`` more
    per-feature channels (float[B, L, extra_channels * F], e.g. time since observed, an interpolation)
    may be passed to :meth:`forward`; they must be finite.
    """

    def __init__(self, num_features: int, d_model: int, extra_channels: int = 0) -> None:
        super().__init__()
        if extra_channels < 0:
            raise ValueError(f"extra_channels must be >= 0, got {extra_channels}")
        self.num_features = num_features
        self.extra_channels = extra_channels
        self.proj = nn.Linear((2 + extra_channels) * num_features, d_model)

    def forward(self, values: Tensor, mask: Mask, extra: Optional[Tensor] = None) -> Tensor:
        mask.check_matches("values", values)
        if values.dim() != 3 or values.shape[-1] != self.num_features:
            raise ValueError(f"values must have shape [B, L, {self.num_features}], got {list(values.shape)}")
        check_input_dtype("values", values, self.proj.weight)
        width = self.extra_channels * self.num_features
        if (extra is None) != (width == 0) or (extra is not None and tuple(extra.shape) != (*values.shape[:2], width)):
            got = None if extra is None else list(extra.shape)
            raise ValueError(f"extra must have shape [B, L, {width}] (extra_channels x features), got {got}")
        observed = observed_values(values, mask)  # (B, L, F)
        parts = [torch.where(observed, values, values.new_zeros(())), observed.to(values.dtype)]
        if extra is not None:
            parts.append(extra)
        return self.proj(torch.cat(parts, dim=-1))  # (B, L, D)
