"""Compaction: move each sample's kept tokens to the front, run on the shorter batch, scatter back.

``keep`` is bool[B, L], True = kept (observed). A :class:`Compaction` plan records where every kept
token came from, so the compact batch keeps the tokens' *original* positions (for positional
encodings and causal order) and :meth:`Compaction.scatter` puts results back where they belong.

Example, B=2, L=4::

    keep      ■ □ ■ ■        compact (N=3)   t0 t2 t3
              □ ■ □ □                        t1 ·  ·      (· = zero filler, valid=False)

Gather and scatter are row-wise ``index_select`` / ``index_put`` on the flattened (B*L, D) tensor:
no work is spent on dropped rows, gradients reach only the kept rows (exactly zero elsewhere), and
autograd saves only the row indices (``index_copy`` would also keep a copy of the moved rows).
With ``include_dropped=True`` the dropped tokens follow the kept ones instead of being discarded
(a stable permutation; used when missing positions still ask queries, ``queries="all"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

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
    positions: Tensor  # long[B, N], original position of each compact slot (0 for filler)
    valid: Tensor  # bool[B, N], True = slot holds a real token (filler slots are False)
    kept: Tensor  # bool[B, N], True = slot holds a *kept* token (a prefix of each row)
    src_rows: Tensor  # long[T], rows of the flattened (B*L) input, in compact order
    dst_rows: Tensor  # long[T], rows of the flattened (B*N) compact batch

    @classmethod
    def plan(cls, keep: Tensor, include_dropped: bool = False, limit: Optional[Tensor] = None) -> "Compaction":
        """Plan for ``keep`` (bool[B, L], True = kept). Kept tokens keep their relative order.

        With ``include_dropped`` the other tokens follow the kept ones (stable order) instead of being
        left out; ``limit`` (bool[B, L], a superset of ``keep``, e.g. the non-padding positions) then
        says which of them come along: positions outside ``limit`` are left out, so padding is trimmed.
        """
        if keep.dim() != 2 or keep.dtype != torch.bool:
            raise ValueError(f"keep must be bool[B, L], got {keep.dtype} of shape {tuple(keep.shape)}")
        batch, length = keep.shape
        num_kept = keep.sum(1)  # (B,)
        slots = None
        if include_dropped:
            within = torch.ones_like(keep) if limit is None else (limit | keep)
            rank = (~keep).to(torch.uint8) + (~within).to(torch.uint8)  # 0 kept, 1 dropped, 2 outside limit
            order = torch.sort(rank, dim=1, stable=True).indices  # (B, L)
            num_in = within.sum(1)  # (B,)
            width = int(num_in.max()) if batch else 0
            positions = order[:, :width]  # (B, N)
            slots = torch.arange(width, device=keep.device)
            valid = slots.unsqueeze(0) < num_in.unsqueeze(1)  # (B, N)
        else:
            width = int(num_kept.max()) if batch else 0
            slots = torch.arange(width, device=keep.device)  # (N,)
            valid = slots.unsqueeze(0) < num_kept.unsqueeze(1)  # (B, N)
            positions = torch.zeros(batch, width, dtype=torch.long, device=keep.device)
            positions[valid] = keep.nonzero()[:, 1]  # row-major: sample by sample, in order
        kept = slots.unsqueeze(0) < num_kept.unsqueeze(1)  # (B, N)
        batch_ids = torch.arange(batch, device=keep.device).unsqueeze(1)  # (B, 1)
        flat_src = (batch_ids * length + positions)[valid]  # (T,)
        dst_rows = valid.reshape(-1).nonzero().squeeze(1)  # (T,)
        return cls(batch, length, width, num_kept, positions, valid, kept, flat_src, dst_rows)

    def gather(self, x: Tensor) -> Tensor:
        """[B, L, ...] -> [B, N, ...]; filler slots are zero."""
        tail = x.shape[2:]
        flat = x.reshape(self.batch * self.length, *tail)  # (B*L, ...)
        out = flat.new_zeros(self.batch * self.width, *tail)  # (B*N, ...)
        with _no_autocast(x):  # a pure copy: same dtype in and out (autocast's index_put rejects bf16)
            out = out.index_put((self.dst_rows,), flat.index_select(0, self.src_rows))
        return out.view(self.batch, self.width, *tail)  # (B, N, ...)

    def scatter(self, y: Tensor) -> Tensor:
        """[B, N, ...] -> [B, L, ...]; positions that were not gathered are zero."""
        tail = y.shape[2:]
        flat = y.reshape(self.batch * self.width, *tail)  # (B*N, ...)
        out = flat.new_zeros(self.batch * self.length, *tail)  # (B*L, ...)
        with _no_autocast(y):
            out = out.index_put((self.src_rows,), flat.index_select(0, self.dst_rows))
        return out.view(self.batch, self.length, *tail)  # (B, L, ...)
