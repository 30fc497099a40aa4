"""Shared machinery for the guarantee: "changing missing values never changes observed outputs".

``check_guarantee(fn, x, mask, ...)`` runs ``fn`` twice: once with random finite values at the
missing positions, once with a hostile fill (0, 1e30, NaN, +inf, -inf). It asserts that

1. outputs at checked positions are bitwise identical,
2. gradients into missing inputs are exactly zero and the two runs' parameter gradients match,
3. no NaN / inf appears in outputs or gradients,
4. samples with nothing observed produce zeros (when ``empty_is_zero``).
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from dynmask import Mask

HOSTILE = [0.0, 1e30, -1e30, float("nan"), float("inf"), float("-inf")]


@st.composite
def masked_batches(draw, max_batch=3, max_len=9, d_model=8, padding=True):
    """(x float[B, L, D], Mask) with random missing positions, padding, and sometimes empty samples."""
    batch = draw(st.integers(1, max_batch))
    length = draw(st.integers(1, max_len))
    seed = draw(st.integers(0, 2**31 - 1))
    p_missing = draw(st.sampled_from([0.0, 0.3, 0.6, 1.0]))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d_model, generator=g)
    observed = torch.rand(batch, length, generator=g) >= p_missing
    valid = torch.ones(batch, length, dtype=torch.bool)
    if padding:
        lengths = torch.randint(0, length + 1, (batch,), generator=g)
        valid = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
        valid[0] = True  # keep at least one full-length sample
    if draw(st.booleans()) and batch > 1:
        observed[-1] = False  # an empty sample
    return x, Mask(observed & valid, valid)


def with_fill(x: torch.Tensor, where_missing: torch.Tensor, fill: float) -> torch.Tensor:
    return torch.where(where_missing.unsqueeze(-1), torch.full_like(x, fill), x)


def check_guarantee(fn, params, x, mask: Mask, fills=HOSTILE, *, check_rows=None, empty_is_zero=True):
    """``fn(x) -> out[B, L, ...] or out[B, ...]``; ``params``: parameters whose gradients must agree.

    Every hostile fill in ``fills`` is tried against the same random finite fill.
    """
    out = None
    for fill in fills:
        out = _check_one(fn, params, x, mask, fill, check_rows, empty_is_zero)
    return out


def _check_one(fn, params, x, mask: Mask, fill: float, check_rows, empty_is_zero):
    not_observed = ~mask.observed
    check_rows = mask.observed if check_rows is None else check_rows
    g = torch.Generator().manual_seed(1)
    other = torch.where(not_observed.unsqueeze(-1), (torch.randn(x.shape, generator=g) * 100).to(x.device), x)
    hostile = with_fill(x, not_observed, fill)

    results = []
    for inp in (other, hostile):
        for p in params:
            p.grad = None
        xi = inp.clone().requires_grad_()
        out = fn(xi)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2)).to(out.device)
        if out.requires_grad:
            (out * weights).sum().backward()
        # no graph at all (nothing observed anywhere): every gradient is exactly zero
        grad_x = xi.grad.clone() if xi.grad is not None else torch.zeros_like(xi)
        results.append((out.detach(), grad_x, [p.grad.clone() if p.grad is not None else None for p in params]))

    (out_a, gx_a, gp_a), (out_b, gx_b, gp_b) = results
    assert torch.isfinite(out_b).all(), f"non-finite output with fill={fill}"
    if out_b.dim() >= 2 and out_b.shape[:2] == mask.shape:
        rows = check_rows.unsqueeze(-1) if out_b.dim() == 3 else check_rows
        assert torch.equal(torch.where(rows, out_a, 0.0), torch.where(rows, out_b, 0.0)), (
            f"observed outputs changed with fill={fill}"
        )
    else:
        assert torch.equal(out_a, out_b), f"pooled output changed with fill={fill}"
    assert torch.isfinite(gx_b).all(), f"non-finite input gradient with fill={fill}"
    assert torch.equal(gx_b[not_observed], torch.zeros_like(gx_b[not_observed])), (
        "gradient into missing inputs is not exactly zero"
    )
    torch.testing.assert_close(gx_a, gx_b, rtol=0, atol=0)
    for a, b in zip(gp_a, gp_b):
        if b is not None:
            assert torch.isfinite(b).all(), f"non-finite parameter gradient with fill={fill}"
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    if empty_is_zero:
        empty = ~mask.observed.any(1)
        if empty.any():
            assert torch.equal(out_b[empty], torch.zeros_like(out_b[empty])), "an empty sample is not zero"
    return out_b
