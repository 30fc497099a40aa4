"""Encoder / decoder stacks: equality with torch, dense == compact, and the guarantee on both backends."""

import pytest
import torch
from guarantee import HOSTILE, check_guarantee, masked_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Decoder, Encoder, Mask, Packing

D, H, FF = 8, 2, 16


def _encoder(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("dropout", 0.0)
    return Encoder(D, H, 2, d_ff=FF, **kw)


def _decoder(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("dropout", 0.0)
    return Decoder(D, H, 2, d_ff=FF, **kw)


# ---------------------------------------------------------------- equality with torch
@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("backend", ["dense", "compact"])
def test_encoder_equals_torch_transformer_encoder_with_padding(norm_first, backend):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    ref = torch.nn.TransformerEncoder(
        layer, 2, norm=torch.nn.LayerNorm(D) if norm_first else None, enable_nested_tensor=False
    )
    ours = Encoder(D, H, 2, d_ff=FF, dropout=0.0, norm_first=norm_first, backend=backend)
    ours.load_state_dict(ref.state_dict(), strict=False)
    assert set(ref.state_dict()) == set(ours.state_dict())
    x = torch.randn(3, 6, D)
    mask = Mask.from_lengths(torch.tensor([6, 4, 2]), max_len=6)
    for train in (True, False):
        ref.train(train), ours.train(train)
        expected = ref(x, src_key_padding_mask=mask.to_key_padding_mask())
        got = ours(x, mask)
        keep = mask.observed
        torch.testing.assert_close(got[keep], expected[keep], atol=1e-5, rtol=1e-5)
        assert torch.equal(got[~keep], torch.zeros_like(got[~keep]))


def test_decoder_equals_torch_transformer_decoder():
    torch.manual_seed(0)
    layer = torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=True)
    ref = torch.nn.TransformerDecoder(layer, 2, norm=torch.nn.LayerNorm(D)).eval()
    ours = Decoder(D, H, 2, d_ff=FF, dropout=0.0).eval()
    ours.load_state_dict(ref.state_dict(), strict=False)
    tgt, memory = torch.randn(2, 5, D), torch.randn(2, 7, D)
    memory_mask = Mask.from_lengths(torch.tensor([7, 3]), max_len=7)
    expected = ref(
        tgt,
        memory,
        tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(5),
        memory_key_padding_mask=memory_mask.to_key_padding_mask(),
    )
    got = ours(tgt, memory, Mask.full(2, 5), memory_mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- dense == compact
def _random_mask(batch=4, length=11, p=0.45, seed=0):
    g = torch.Generator().manual_seed(seed)
    observed = torch.rand(batch, length, generator=g) >= p
    valid = torch.arange(length).unsqueeze(0) < torch.tensor([length, length - 3, 5, length]).unsqueeze(1)
    observed[3] = False  # an empty sample
    return Mask(observed & valid, valid)


def _forward_and_grads(model, fn):
    model.zero_grad()
    out = fn()
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(9))).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["dynamic", "static", "seed_literal"])
@pytest.mark.parametrize("queries", ["observed", "all"])
@pytest.mark.parametrize("causal", [False, True])
def test_encoder_dense_and_compact_agree(method, queries, causal):
    enc = _encoder(1, method=method, queries=queries, positional="sinusoidal")
    mask = _random_mask()
    x = torch.randn(4, 11, D)
    dense = _forward_and_grads(enc, lambda: enc(x, mask, causal=causal, backend="dense"))
    compact = _forward_and_grads(enc, lambda: enc(x, mask, causal=causal, backend="compact"))
    torch.testing.assert_close(dense[0], compact[0], atol=1e-5, rtol=1e-5)
    assert dense[1].keys() == compact[1].keys() and dense[1]
    for name in dense[1]:
        torch.testing.assert_close(dense[1][name], compact[1][name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("queries", ["observed", "all"])
def test_decoder_dense_and_compact_agree(queries):
    dec = _decoder(2, queries=queries, positional="learned")
    tgt_mask, memory_mask = _random_mask(seed=1), _random_mask(length=7, seed=2)
    tgt, memory = torch.randn(4, 11, D), torch.randn(4, 7, D)
    dense = _forward_and_grads(dec, lambda: dec(tgt, memory, tgt_mask, memory_mask, backend="dense"))
    compact = _forward_and_grads(dec, lambda: dec(tgt, memory, tgt_mask, memory_mask, backend="compact"))
    torch.testing.assert_close(dense[0], compact[0], atol=1e-5, rtol=1e-5)
    for name in dense[1]:
        torch.testing.assert_close(dense[1][name], compact[1][name], atol=1e-5, rtol=1e-4, msg=name)


# ---------------------------------------------------------------- the guarantee
@settings(max_examples=30, deadline=None)
@given(
    batch=masked_batches(d_model=D),
    causal=st.booleans(),
    backend=st.sampled_from(["dense", "compact", "auto"]),
    queries=st.sampled_from(["observed", "all"]),
)
def test_guarantee_encoder(batch, causal, backend, queries):
    x, mask = batch
    enc = _encoder(3, queries=queries, positional="sinusoidal", dropout=0.1).train()
    rows = mask.observed if queries == "observed" else mask.valid

    def run(xi):
        torch.manual_seed(0)  # same dropout draws in both runs
        return enc(xi, mask, causal=causal, backend=backend)

    out = check_guarantee(run, list(enc.parameters()), x, mask, check_rows=rows, empty_is_zero=queries == "observed")
    assert torch.equal(out[~rows], torch.zeros_like(out[~rows]))


@settings(max_examples=25, deadline=None)
@given(
    batch=masked_batches(d_model=D), memory_fill=st.sampled_from(HOSTILE), backend=st.sampled_from(["dense", "compact"])
)
def test_guarantee_decoder_target_and_memory(batch, memory_fill, backend):
    tgt, tgt_mask = batch
    dec = _decoder(4).eval()
    g = torch.Generator().manual_seed(5)
    memory = torch.randn(tgt.shape[0], 6, D, generator=g)
    memory_mask = Mask(torch.rand(tgt.shape[0], 6, generator=g) > 0.4, torch.ones(tgt.shape[0], 6, dtype=torch.bool))
    memory_hostile = torch.where(memory_mask.observed.unsqueeze(-1), memory, torch.full_like(memory, memory_fill))
    # missing target tokens: every valid target position is checked (queries="all")
    check_guarantee(
        lambda t: dec(t, memory_hostile, tgt_mask, memory_mask, backend=backend),
        list(dec.parameters()),
        tgt,
        tgt_mask,
        check_rows=tgt_mask.valid,
        empty_is_zero=False,
    )
    # missing memory tokens
    tgt_clean = torch.where(tgt_mask.observed.unsqueeze(-1), tgt, 0.0)
    check_guarantee(
        lambda m: dec(tgt_clean, m, tgt_mask, memory_mask, backend=backend),
        list(dec.parameters()),
        memory,
        memory_mask,
        check_rows=torch.ones_like(memory_mask.observed),
        empty_is_zero=False,
    )


@pytest.mark.parametrize("method", ["static", "seed_literal"])
def test_baselines_violate_the_guarantee(method):
    enc = _encoder(5, method=method).eval()
    mask = _random_mask()
    x = torch.randn(4, 11, D)
    a = enc(x, mask)
    b = enc(torch.where(mask.missing.unsqueeze(-1), 3.0, x), mask)
    keep = mask.observed
    assert (a[keep] - b[keep]).abs().max() > 1e-3
    # and a NaN stored at a missing position poisons them
    c = enc(torch.where(mask.missing.unsqueeze(-1), float("nan"), x), mask)
    assert torch.isnan(c[keep]).any()


def test_dynamic_is_unaffected_where_baselines_move():
    enc = _encoder(5).eval()
    mask = _random_mask()
    x = torch.randn(4, 11, D)
    a = enc(x, mask)
    b = enc(torch.where(mask.missing.unsqueeze(-1), float("nan"), x), mask)
    assert torch.equal(a, b)


# ---------------------------------------------------------------- backend choice
def test_auto_never_compacts_when_nothing_is_missing(monkeypatch):
    calls = []
    real = Packing.plan.__func__  # the encoder's compact path packs the kept tokens
    monkeypatch.setattr(Packing, "plan", classmethod(lambda cls, *a, **k: calls.append(1) or real(cls, *a, **k)))
    enc = _encoder(backend="auto")
    enc(torch.randn(2, 10, D), Mask.full(2, 10))
    assert calls == []
    observed = torch.zeros(2, 10, dtype=torch.bool)
    observed[:, :4] = True
    enc(torch.randn(2, 10, D), Mask(observed, torch.ones_like(observed)))
    assert calls == [1]


def test_stack_errors_are_clear():
    enc = _encoder()
    with pytest.raises(TypeError, match="mask must be a dynmask.Mask"):
        enc(torch.randn(2, 3, D), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"x must have shape \[B, L, \.\.\.\] = \[2, 4\]"):
        enc(torch.randn(2, 3, D), Mask.full(2, 4))
    with pytest.raises(ValueError, match=r"x must have shape \[B, L, 8\]"):
        enc(torch.randn(2, 3, 5), Mask.full(2, 3))
    with pytest.raises(ValueError, match="backend must be one of"):
        enc(torch.randn(2, 3, D), Mask.full(2, 3), backend="gpu")
    with pytest.raises(ValueError, match="method must be one of"):
        _encoder(method="literal")
    with pytest.raises(TypeError, match="variant"):  # the old name of method=, removed
        _encoder(variant="static")
    with pytest.raises(ValueError, match="queries must be one of"):
        _encoder(queries="some")


@settings(max_examples=30, deadline=None)
@given(batch=masked_batches(d_model=D), causal=st.booleans(), backend=st.sampled_from(["dense", "compact"]))
def test_encoder_equals_running_on_observed_tokens_alone(batch, causal, backend):
    """The strongest form of 'missing keys get zero weight': as if the missing tokens never existed."""
    x, mask = batch
    enc = _encoder(6).eval()
    out = enc(x, mask, causal=causal, backend=backend)
    for b in range(x.shape[0]):
        keep = mask.observed[b]
        if keep.any():
            alone = enc(x[b : b + 1, keep], Mask.full(1, int(keep.sum())), causal=causal)
            torch.testing.assert_close(out[b, keep], alone[0], atol=1e-5, rtol=1e-5)


def test_auto_says_why_it_chose_its_backend():
    torch.manual_seed(0)
    enc = Encoder(16, 2, 1)
    x = torch.randn(2, 10, 16)
    few = torch.zeros(2, 10, dtype=torch.bool)
    few[:, :4] = True
    enc(x, Mask(few, torch.ones_like(few)))
    assert enc.auto_reason.startswith("the longest kept row (4) is at most 0.9")
    many = torch.ones(2, 10, dtype=torch.bool)
    many[0, 0] = False
    enc(x, Mask(many, torch.ones_like(many)))
    assert enc.auto_reason.startswith("the longest kept row (10) is over 0.9")


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("norm_first", [True, False])
def test_a_compact_encoder_runs_every_step_but_attention_on_the_kept_tokens_only(causal, norm_first):
    torch.manual_seed(0)
    enc = Encoder(D, 4, 2, d_ff=2 * D, dropout=0.0, norm_first=norm_first, positional="sinusoidal").eval()
    observed = torch.rand(5, 13) < 0.5
    observed[1] = False  # a row with nothing observed
    observed[3] = True  # and a full one: the padded width is the length
    confidence = torch.where(observed, torch.rand(5, 13) * 0.9 + 0.1, torch.zeros(()))
    mask = Mask(observed, torch.ones_like(observed), confidence=confidence)  # soft: log-confidence on each key
    rows = []
    enc.layers[0].linear1.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    x = torch.randn(5, 13, D)
    dense = enc(x, mask, backend="dense", causal=causal)
    poisoned = torch.where(observed.unsqueeze(-1), x, float("nan")).requires_grad_(True)
    packed = enc(poisoned, mask, backend="compact", causal=causal)
    assert rows[-1] == int(observed.sum())  # the feed-forward block read the kept tokens, no filler
    torch.testing.assert_close(packed, dense, atol=1e-5, rtol=1e-5)
    packed.square().sum().backward()
    assert torch.isfinite(poisoned.grad).all()
    assert torch.equal(poisoned.grad[~observed], torch.zeros_like(poisoned.grad[~observed]))


def test_onnx_exports_keep_the_row_wise_compaction(monkeypatch):
    """Packing runs everywhere but in ONNX exports, where onnxruntime measured it no faster (packing_pays)."""
    from dynmask import Compaction

    calls = []
    for cls in (Packing, Compaction):
        real = cls.plan.__func__
        monkeypatch.setattr(
            cls, "plan", classmethod(lambda c, *a, _r=real, **k: calls.append(c.__name__) or _r(c, *a, **k))
        )
    enc = _encoder(backend="compact")
    observed = torch.rand(3, 10) < 0.5
    mask = Mask(observed, torch.ones_like(observed))
    x = torch.randn(3, 10, D)
    eager = enc(x, mask)
    assert calls == ["Packing"]
    calls.clear()
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)  # what an export's tracing reports
    torch.testing.assert_close(enc(x, mask), eager, atol=1e-5, rtol=1e-5)
    assert calls == ["Compaction"]
