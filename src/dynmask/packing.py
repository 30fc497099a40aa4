"""Packing: every kept token of a batch in one stream, so per-token work scales with the kept tokens.

``keep`` is bool[B, L], True = kept (observed). Compaction (:mod:`dynmask.compaction`) moves each row's
kept tokens to the front of a [B, N] batch, N the longest row's count: with 16 rows at half missing,
the fullest row keeps about 140 of 256 and the compact batch still holds 2,240 slots for 2,048 tokens,
plus the work of zeroing the filler slots after every step. A :class:`Packing` holds the T kept tokens
of the whole batch as rows of one [T, ...] tensor: projections, feed-forward blocks, norms and residual
adds run on exactly T rows, none of them filler (the "remove padding" layout of FasterTransformer and
of variable-length attention kernels). Only attention needs rows: :meth:`Packing.pad` lays the packed
rows out as [B, N, ...] (filler zero) and :meth:`Packing.unpad` reads the kept slots back.

Example, B=2, L=4::

    keep      ■ □ ■ ■        packed (T=4)    t0 t2 t3 t5        padded (N=3)   t0 t2 t3
              □ ■ □ □                                                          t5 ·  ·

Every move is an ``index_select`` with one index per row it writes (from a copy with one zero row
appended for the filler): gradients reach kept tokens only (exactly zero elsewhere), and there is no
boolean indexing and no ``nonzero``: the kept positions are the first T of a sort of distinct keys (as
in :class:`~dynmask.compaction.Compaction`), so the plan traces into one graph for every batch
(``torch.export``, ONNX, ``torch.compile``), T and N symbolic sizes (:func:`~dynmask.graph.max_count`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .graph import max_count

__all__ = ["Packing", "packing_pays"]


def packing_pays() -> bool:
    """Whether compact runs should pack (True) or keep the row-wise compaction: everywhere but while an ONNX
    export traces. In onnxruntime the packed graph measured no faster (``benchmarks/export_compile.py``: 6.6
    against 6.5 ms at 50% missing) and its profile slower in three runs of three (``benchmarks/onnx_profile.py``:
    compact 6.8-8.1 against 6.1-7.7 ms): its per-layer Concat and Gathers cost more than the filler rows save
    at that size, so exports keep the compaction (the same outputs)."""
    return not torch.onnx.is_in_onnx_export()


def _select(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` (long[R]) of ``x`` [B, W, ...] flattened over its first two dims: [R, ...]."""
    tail = x.shape[2:]
    flat = x.reshape(x.shape[0] * x.shape[1], math.prod(tail))  # (B*W, C)
    return flat.index_select(0, index).reshape(-1, *tail)


def _take(y: Tensor, index: Tensor, *shape: int) -> Tensor:
    """Rows ``index`` (long[prod(shape)], values in 0..T; T reads zeros) of packed ``y`` [T, ...], as
    [*shape, ...]."""
    tail = y.shape[1:]
    flat = y.reshape(y.shape[0], math.prod(tail))  # (T, C)
    flat = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])  # (T + 1, C): row T is zero
    return flat.index_select(0, index).reshape(*shape, *tail)


@dataclass(frozen=True)
class Packing:
    """A plan to pack the kept tokens of a [B, L, ...] batch into [T, ...], lay them out as [B, N, ...] for
    attention, and scatter results back to [B, L, ...]."""

    batch: int
    length: int  # L
    width: int  # N, the longest row's kept tokens
    rows: Tensor  # long[T]: the flat position (b * L + l) of each kept token, batch-major, in order
    places: Tensor  # long[B * L]: each position's packed index; T where it is not kept
    slots: Tensor  # long[B * N]: each padded slot's packed index; T for filler
    unslots: Tensor  # long[T]: each packed token's padded slot (b * N + rank in its row)
    keep: Tensor  # bool[B, N]: the padded slot holds a token (a prefix of each row)
    positions: Tensor  # long[B, N]: each padded slot's original position (0 for filler), for causal order

    @classmethod
    def plan(cls, keep: Tensor, width: Optional[int] = None) -> "Packing":
        """Plan for ``keep`` (bool[B, L], True = kept); ``width`` (the longest row's count, if the caller
        knows it) saves a device sync."""
        if keep.dim() != 2 or keep.dtype != torch.bool:
            raise ValueError(f"keep must be bool[B, L], got {keep.dtype} of shape {tuple(keep.shape)}")
        batch, length = keep.shape
        flat = keep.reshape(-1)  # (B*L,)
        size = batch * length
        num_kept = keep.sum(1)  # (B,)
        count = num_kept.sum()  # T, as a tensor: the zero row's index
        positions = torch.arange(size, device=keep.device)  # (B*L,)
        order = torch.argsort((~flat).long() * size + positions)  # (B*L,): kept positions first, in order
        rows = order[: max_count(count.unsqueeze(0), size)]  # (T,): one device sync (eager)
        if width is None:
            width = max_count(num_kept, length)
        places = torch.where(flat, flat.cumsum(0) - 1, count)  # (B*L,)
        offsets = num_kept.cumsum(0) - num_kept  # (B,): where each row starts in the stream
        slot = torch.arange(width, device=keep.device)  # (N,)
        padded_keep = slot.unsqueeze(0) < num_kept.unsqueeze(1)  # (B, N)
        slots = torch.where(padded_keep, offsets.unsqueeze(1) + slot, count).reshape(-1)  # (B*N,)
        row_of = torch.div(rows, length, rounding_mode="floor")  # (T,): each token's batch row
        rank = torch.arange(rows.shape[0], device=keep.device) - offsets.index_select(0, row_of)  # (T,): rank in row
        unslots = row_of * width + rank  # (T,)
        original = torch.cat([rows - row_of * length, rows.new_zeros(1)])  # (T + 1,): position in its row
        positions = original.index_select(0, slots).view(batch, width)  # (B, N)
        return cls(batch, length, width, rows, places, slots, unslots, padded_keep, positions)

    def pack(self, x: Tensor) -> Tensor:
        """[B, L, ...] -> [T, ...]: the kept tokens only."""
        return _select(x, self.rows)

    def gather(self, x: Tensor) -> Tensor:
        """[B, L, ...] -> [B, N, ...]: each row's kept tokens at the front, filler zero (as
        :meth:`Compaction.gather <dynmask.compaction.Compaction.gather>`), for what attention reads per key."""
        return self.pad(self.pack(x))

    def pad(self, y: Tensor) -> Tensor:
        """[T, ...] -> [B, N, ...]: each row's tokens at the front, filler slots zero."""
        return _take(y, self.slots, self.batch, self.width)

    def unpad(self, z: Tensor) -> Tensor:
        """[B, N, ...] -> [T, ...]: the slots that hold tokens, in packed order."""
        return _select(z, self.unslots)

    def scatter(self, y: Tensor) -> Tensor:
        """[T, ...] -> [B, L, ...]: each token back at its position; positions not kept are zero."""
        return _take(y, self.places, self.batch, self.length)
