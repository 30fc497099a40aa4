"""Masked multi-head attention: equality with torch, exact zero weight on missing keys, the guarantee."""

import pytest
import torch
from guarantee import check_guarantee, masked_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask, MaskedMultiheadAttention, allowed_keys, masked_attention
from dynmask.ablation import LiteralGateAttention
from dynmask.methods import get_method, static_mask

D, H = 8, 2


def _pair(seed=0):
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(D, H, batch_first=True)
    ours = MaskedMultiheadAttention(D, H)
    ours.load_state_dict(ref.state_dict())
    return ref.eval(), ours.eval()


def test_state_dict_names_match_torch():
    ref, ours = _pair()
    assert set(ref.state_dict()) == set(ours.state_dict())


def test_equals_torch_mha_when_everything_observed():
    ref, ours = _pair()
    x, mem = torch.randn(3, 5, D), torch.randn(3, 7, D)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0])
    keep = torch.ones(3, 5, dtype=torch.bool)
    torch.testing.assert_close(ours(x, key_keep=keep, query_keep=keep), ref(x, x, x, need_weights=False)[0])
    torch.testing.assert_close(ours(x, mem, mem), ref(x, mem, mem, need_weights=False)[0])


def test_equals_torch_mha_key_padding_at_observed_queries():
    ref, ours = _pair(1)
    x = torch.randn(2, 6, D)
    keep = torch.tensor([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 0]], dtype=torch.bool)
    expected = ref(x, x, x, key_padding_mask=~keep, need_weights=False)[0]
    got = ours(x, key_keep=keep, query_keep=keep)
    torch.testing.assert_close(got[keep], expected[keep])
    assert torch.equal(got[~keep], torch.zeros_like(got[~keep]))


def test_missing_keys_get_exactly_zero_weight():
    """Output at an observed query equals attention computed over the observed keys alone."""
    _, ours = _pair(2)
    x = torch.randn(1, 6, D)
    keep = torch.tensor([[1, 0, 1, 0, 0, 1]], dtype=torch.bool)
    full = ours(x, key_keep=keep, query_keep=keep)
    alone = ours(x[:, keep[0]])  # only the observed tokens, no mask at all
    torch.testing.assert_close(full[:, keep[0]], alone)


def test_allowed_keys_causal_by_original_position():
    keep = torch.tensor([[True, False, True, True]])
    pos = torch.tensor([[0, 2, 5, 7]])  # a compacted batch keeps original positions
    allowed = allowed_keys(keep, causal=True, query_pos=pos, key_pos=pos)
    T, F_ = True, False
    assert allowed.tolist() == [[[[T, F_, F_, F_], [T, F_, F_, F_], [T, F_, T, F_], [T, F_, T, T]]]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_row_without_keys_is_zero_forward_and_backward(dtype, dropout):
    """float64 and dropout > 0 take SDPA's math kernel, which NaNs on empty rows if trusted."""
    q = torch.randn(2, H, 3, 4, dtype=dtype, requires_grad=True)
    k = torch.randn(2, H, 3, 4, dtype=dtype, requires_grad=True)
    v = torch.randn(2, H, 3, 4, dtype=dtype, requires_grad=True)
    keep = torch.tensor([[True, False, True], [False, False, False]])
    out = masked_attention(q, k, v, allowed_keys(keep), dropout_p=dropout)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[1], torch.zeros_like(q.grad[1]))


@settings(max_examples=40, deadline=None)
@given(batch=masked_batches(d_model=D), causal=st.booleans())
def test_guarantee_self_attention(batch, causal):
    x, mask = batch
    _, attn = _pair(3)
    attn.train()
    check_guarantee(
        lambda xi: attn(xi, key_keep=mask.observed, query_keep=mask.observed, causal=causal),
        list(attn.parameters()),
        x,
        mask,
    )


@settings(max_examples=40, deadline=None)
@given(batch=masked_batches(d_model=D))
def test_guarantee_cross_attention_over_missing_memory(batch):
    memory, mask = batch
    _, attn = _pair(4)
    queries = torch.randn(memory.shape[0], 4, D)
    out = check_guarantee(
        lambda m: attn(queries, m, m, key_keep=mask.observed),
        list(attn.parameters()),
        memory,
        mask,
        empty_is_zero=False,
    )
    empty = ~mask.observed.any(1)
    assert torch.equal(out[empty], torch.zeros_like(out[empty]))  # no observed memory: zeros


def test_seed_literal_violates_the_guarantee():
    """Q*A zeroes queries, not keys: observed outputs still move when missing values change."""
    _, attn = _pair(5)
    literal = LiteralGateAttention(D, 2)
    literal.load_state_dict(attn.state_dict())
    x = torch.randn(1, 5, D)
    observed = torch.tensor([[True, False, True, True, False]])
    valid = torch.ones_like(observed)
    run = lambda xi: literal(xi, key_keep=valid, query_keep=valid, literal_gate=observed)
    # Q * A is what it adds: with every query observed it is the plain attention over valid keys
    assert torch.allclose(literal(x, key_keep=valid, literal_gate=valid), attn(x, key_keep=valid), atol=1e-6)
    a = run(x)
    b = run(torch.where(observed.unsqueeze(-1), x, 5.0))
    assert not torch.allclose(a[observed], b[observed])


def test_static_violates_the_guarantee():
    """The static baseline attends to placeholders at missing positions: their content matters."""
    _, attn = _pair(6)
    x = torch.randn(1, 5, D)
    observed = torch.tensor([[True, False, True, True, False]])
    valid = torch.ones_like(observed)
    static = static_mask(Mask(observed, valid))
    assert torch.equal(static.observed, valid) and torch.equal(static.valid, valid)
    for method in ("static", "seed_literal"):  # what the stacks attend: the transform's keys, read directly
        assert torch.equal(get_method(method).keys(Mask(observed, valid)), static.observed)
    assert torch.equal(get_method("dynamic").keys(Mask(observed, valid)), observed)
    run = lambda xi: attn(xi, key_keep=static.observed, query_keep=static.valid)
    a, b = run(x), run(torch.where(observed.unsqueeze(-1), x, 5.0))
    assert not torch.allclose(a[observed], b[observed])


def test_clear_errors():
    _, attn = _pair()
    with pytest.raises(ValueError, match=r"query must have shape \[B, Lq, 8\]"):
        attn(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"key_keep must be bool\[2, 3\]"):
        attn(torch.randn(2, 3, D), key_keep=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="variant"):
        attn(torch.randn(2, 3, D), variant="static")  # no longer an attention argument: a mask transform
    with pytest.raises(ValueError, match="needs literal_gate"):
        LiteralGateAttention(D, 2)(torch.randn(2, 3, D))
    with pytest.raises(ValueError, match="method must be one of"):
        get_method("magic")
    with pytest.raises(ValueError, match="divisible"):
        MaskedMultiheadAttention(10, 3)
