"""Compaction: move each sample's kept tokens to the front, run on the shorter batch, scatter back.

``keep`` is bool[B, L], True = kept (observed). A :class:`Compaction` plan records where every kept
token came from, so the compact batch keeps the tokens' *original* positions (for positional
encodings and causal order) and :meth:`Compaction.scatter` puts results back where they belong.

Example, B=2, L=4::

    keep      ■ □ ■ ■        compact (N=3)   t0 t2 t3
              □ ■ □ □                        t1 ·  ·      (· = zero filler, valid=False)

Gather and scatter are row-wise ``index_select`` / ``index_put`` on the flattened (B*L, D) tensor with
one row index per compact slot: no work is spent on dropped rows, gradients reach only the kept rows
(exactly zero elsewhere), and autograd saves only the B*N row indices. No boolean indexing or
``nonzero``: the plan traces into one graph for every batch.
With ``include_dropped=True`` the dropped tokens follow the kept ones instead of being discarded
(a stable permutation; used when missing positions still ask queries, ``queries="all"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .graph import max_count, tracing
from .onnx_fusion import clean_rows

__all__ = ["Compaction"]


def _no_autocast(x: Tensor) -> torch.autocast:
    """Autocast off for the copies below: they move rows and never compute, so dtypes stay as given."""
    return torch.autocast(device_type=x.device.type, enabled=False)


@dataclass(frozen=True)
class Compaction:
    """A plan to gather kept tokens of a [B, L, ...] batch into [B, N, ...] and back."""

    batch: int
    length: int  # L, the original length
    width: int  # N, the compact length
    num_kept: Tensor  # long[B], kept tokens per sample
    positions: Tensor  # long[B, N], original position of each compact slot (filler: see plan)
    valid: Tensor  # bool[B, N], True = slot holds a real token (filler slots are False)
    kept: Tensor  # bool[B, N], True = slot holds a *kept* token (a prefix of each row)
    order: Tensor  # long[B, N], the first N entries of each row's permutation of 0..L-1 (filler included)

    @classmethod
    def plan(
        cls, keep: Tensor, include_dropped: bool = False, limit: Optional[Tensor] = None, width: Optional[int] = None
    ) -> "Compaction":
        """Plan for ``keep`` (bool[B, L], True = kept). Kept tokens keep their relative order.

        With ``include_dropped`` the other tokens follow the kept ones (stable order) instead of being
        left out; ``limit`` (bool[B, L], a superset of ``keep``, e.g. the non-padding positions) then
        says which of them come along: positions outside ``limit`` are left out, so padding is trimmed.
        ``width`` (the compact length, if the caller knows it) saves the one device sync.

        Each row's order is a sort of distinct keys (rank · L + position), so any sort is stable and
        the plan holds no data-dependent shape but the width: it traces into one graph for every
        batch (``torch.export``, ONNX), the width a symbolic size.
        """
        if keep.dim() != 2 or keep.dtype != torch.bool:
            raise ValueError(f"keep must be bool[B, L], got {keep.dtype} of shape {tuple(keep.shape)}")
        batch, length = keep.shape
        num_kept = keep.sum(1)  # (B,)
        within = (torch.ones_like(keep) if limit is None else (limit | keep)) if include_dropped else keep
        rank = (~keep).long() + (~within).long()  # 0 kept, 1 dropped but carried, 2 left out
        key = rank * length + torch.arange(length, device=keep.device)  # (B, L): distinct, order-preserving
        order = torch.argsort(key, dim=1)  # (B, L): a permutation of 0..L-1 per row
        num_in = within.sum(1)  # (B,)
        if width is None:
            width = max_count(num_in, length)
        elif not tracing():  # a width the caller gives must hold every row's kept tokens
            if not isinstance(width, int) or isinstance(width, bool) or width < 0:
                raise ValueError(f"width must be a whole number >= 0, got {width!r}")
            if keep.device.type == "cpu":
                if batch and int(num_in.max()) > width:
                    raise ValueError(f"width={width} is less than the longest row's {int(num_in.max())} kept tokens")
            else:  # no host sync on an accelerator: the check runs with the kernels
                torch._assert_async(num_in.max() <= width, "width is less than the longest row's kept tokens")
        order = order[:, :width]  # (B, N)
        slots = torch.arange(width, device=keep.device)  # (N,)
        valid = slots.unsqueeze(0) < num_in.unsqueeze(1)  # (B, N)
        kept = slots.unsqueeze(0) < num_kept.unsqueeze(1)  # (B, N)
        # (B, N): filler slots hold 0, except with include_dropped, where they name the left-out positions
        positions = order if include_dropped else torch.where(valid, order, torch.zeros_like(order))
        return cls(batch, length, width, num_kept, positions, valid, kept, order)

    def _rows(self) -> Tensor:
        """long[B*N]: the row of the flattened (B*L) batch each compact slot reads (filler included)."""
        base = torch.arange(self.batch, device=self.order.device).unsqueeze(1) * self.length  # (B, 1)
        return (base + self.order).reshape(-1)  # (B*N,)

    def gather(self, x: Tensor) -> Tensor:
        """[B, L, ...] -> [B, N, ...]; filler slots are zero."""
        tail = x.shape[2:]
        flat = x.reshape(self.batch * self.length, math.prod(tail))  # (B*L, T)
        with _no_autocast(x):  # a pure copy: same dtype in and out
            out = flat.index_select(0, self._rows()).view(self.batch, self.width, flat.shape[1])  # (B, N, T)
            out = clean_rows(out, self.valid)  # filler slots may read NaN / inf: where, unless computed
        return out.reshape(self.batch, self.width, *tail)  # (B, N, ...)

    def scatter(self, y: Tensor) -> Tensor:
        """[B, N, ...] -> [B, L, ...]; positions that were not gathered are zero.

        Each row's slots point at distinct positions (a permutation), and filler slots carry zeros to
        positions that were not gathered, so nothing collides."""
        tail = y.shape[2:]
        flat = y.reshape(self.batch, self.width, math.prod(tail))  # (B, N, T)
        with _no_autocast(y):
            src = clean_rows(flat, self.valid).reshape(self.batch * self.width, flat.shape[2])  # (B*N, T)
            out = src.new_zeros(self.batch * self.length, src.shape[1]).index_put((self._rows(),), src)  # (B*L, T)
        return out.reshape(self.batch, self.length, *tail)  # (B, L, ...)
