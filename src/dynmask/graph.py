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

__all__ = ["tracing", "max_count", "compile"]


def tracing() -> bool:
    """True while torch.compile / torch.export / the ONNX exporters trace the model."""
    return bool(
        torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
        or torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
    )


def compile(model, **kwargs):
    """``torch.compile(model, **kwargs)``, run with ``capture_scalar_outputs`` on, so the compact
    width is a symbolic size inside the graph: the compact backend compiles to one graph
    (``fullgraph=True`` works) that serves every width and length without recompiling (with
    ``dynamic=True``). Plain ``torch.compile`` works too, with one graph break at the width."""
    import functools

    compiled = torch.compile(model, **kwargs)

    @functools.wraps(getattr(model, "forward", model))
    def run(*args, **kw):
        with torch._dynamo.config.patch(capture_scalar_outputs=True):
            return compiled(*args, **kw)

    run.compiled = compiled
    return run


def max_count(counts: Tensor, bound: int, lower: int = 0) -> int:
    """``int(counts.max())`` (0 for an empty batch): one device sync in eager mode; under tracing a
    symbolic size known to lie in [lower, bound] (``torch._check``), so the graph serves every width.
    (The caller clamps ``counts`` to at least ``lower``.)"""
    if tracing():
        width = counts.max().item()
        torch._check_is_size(width)
        torch._check(width >= lower)
        torch._check(width <= bound)
        return width
    return int(counts.max()) if counts.numel() else 0


def traced_width(keep: Tensor) -> int:
    """The compact width of ``keep`` (bool[B, L], True = kept) under tracing: a symbolic size, the longest
    row's kept count but at least 2 (filler slots are harmless; at least 2 keeps kernels from
    specialising on a width of 1). Traced lengths must be >= 2."""
    return max_count(keep.sum(1).clamp(min=2), keep.shape[1], lower=2)
