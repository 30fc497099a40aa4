"""What changes while a model is traced into a graph (``torch.compile``, ``torch.export``, ONNX export).

Forward paths in dynmask make no Python decision on tensor *values* while tracing: checks of data
(ids in range, ``observed`` implies ``valid``, positions below ``max_len``) run in eager mode only, at
the boundary, and are skipped under tracing (documented in each place); shortcuts are decided from
shapes and flags. The one data-dependent size, the compact width, becomes a symbolic size
(:func:`max_count`).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["tracing", "max_count"]


def tracing() -> bool:
    """True while torch.compile / torch.export / the ONNX exporters trace the model."""
    return bool(torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()
                or torch.onnx.is_in_onnx_export())


def max_count(counts: Tensor, bound: int) -> int:
    """``int(counts.max())`` (0 for an empty batch): one device sync in eager mode; under tracing a
    symbolic size known to lie in [0, bound] (``torch._check``), so the graph serves every width."""
    if tracing():
        width = counts.max().item()
        torch._check_is_size(width)
        torch._check(width <= bound)
        return width
    return int(counts.max()) if counts.numel() else 0
