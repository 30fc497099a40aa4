"""Exact masks, written out literally, for every constructor and every rendered backend format."""

import pytest
import torch

from dynmask import Mask, causal_mask

T, F_ = True, False
INF = float("-inf")


def test_from_nan_per_value_and_per_step():
    x = torch.tensor([[[1.0, float("nan")], [float("nan"), float("inf")], [0.0, -2.0]]])  # (1, 3, 2)
    m = Mask.from_nan(x)
    assert m.observed_values.tolist() == [[[T, F_], [F_, F_], [T, T]]]
    assert m.observed.tolist() == [[T, F_, T]]
    assert m.valid.tolist() == [[T, T, T]]


def test_from_nan_two_dims_and_lengths():
    x = torch.tensor([[1.0, float("-inf"), 3.0, 4.0], [float("nan"), 2.0, 5.0, 6.0]])
    m = Mask.from_nan(x, lengths=torch.tensor([3, 2]))
    assert m.observed.tolist() == [[T, F_, T, F_], [F_, T, F_, F_]]
    assert m.valid.tolist() == [[T, T, T, F_], [T, T, F_, F_]]
    assert m.observed_values.shape == (2, 4, 1)


def test_from_tokens_missing_ids_and_pad():
    ids = torch.tensor([[5, 1, 7, 0], [2, 9, 0, 0]])  # 1 = [UNK], 2 = [MISSING], 0 = [PAD]
    m = Mask.from_tokens(ids, missing=[1, 2], pad=0)
    assert m.observed.tolist() == [[T, F_, T, F_], [F_, T, F_, F_]]
    assert m.valid.tolist() == [[T, T, T, F_], [T, T, F_, F_]]
    assert m.missing.tolist() == [[F_, T, F_, F_], [T, F_, F_, F_]]


def test_from_lengths():
    m = Mask.from_lengths(torch.tensor([2, 0, 3]), max_len=4)
    assert m.observed.tolist() == [[T, T, F_, F_], [F_, F_, F_, F_], [T, T, T, F_]]
    assert m.valid.tolist() == m.observed.tolist()


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.float32])
def test_from_indicator_both_polarities(dtype):
    ind = torch.tensor([[1, 0, 1]]).to(dtype)
    assert Mask.from_indicator(ind, true_means="observed").observed.tolist() == [[T, F_, T]]
    assert Mask.from_indicator(ind, true_means="missing").observed.tolist() == [[F_, T, F_]]


def test_from_indicator_per_feature():
    ind = torch.tensor([[[1, 0], [0, 0]]])
    m = Mask.from_indicator(ind, true_means="observed")
    assert m.observed.tolist() == [[T, F_]]
    assert m.observed_values.tolist() == [[[T, F_], [F_, F_]]]


def test_combine_with_and():
    a = Mask.from_tokens(torch.tensor([[3, 1, 4, 0]]), missing=[1], pad=0)
    b = Mask.from_lengths(torch.tensor([2]), max_len=4)
    c = a & b
    assert c.observed.tolist() == [[T, F_, F_, F_]]
    assert c.valid.tolist() == [[T, T, F_, F_]]


def test_causal_mask_literal():
    assert causal_mask(3).tolist() == [[T, F_, F_], [T, T, F_], [T, T, T]]


def _example():
    # observed ■ □ ■ □ , valid ■ ■ ■ □  (position 1 missing, position 3 padding)
    return Mask(torch.tensor([[T, F_, T, F_]]), torch.tensor([[T, T, T, F_]]))


def test_render_sdpa_keys_only():
    m = _example()
    assert m.to_sdpa().shape == (1, 1, 1, 4)
    assert m.to_sdpa().tolist() == [[[[T, F_, T, F_]]]]  # True = may attend
    assert m.to_sdpa(keys="valid").tolist() == [[[[T, T, T, F_]]]]


def test_render_sdpa_causal():
    assert _example().to_sdpa(causal=True).tolist() == [
        [
            [
                [T, F_, F_, F_],
                [T, F_, F_, F_],
                [T, F_, T, F_],
                [T, F_, T, F_],
            ]
        ]
    ]


def test_render_additive():
    bias = _example().to_additive(causal=True)
    assert bias.dtype == torch.float32
    assert bias.tolist() == [
        [
            [
                [0.0, INF, INF, INF],
                [0.0, INF, INF, INF],
                [0.0, INF, 0.0, INF],
                [0.0, INF, 0.0, INF],
            ]
        ]
    ]
    assert _example().to_additive(torch.float16).dtype == torch.float16


def test_render_key_padding_mask_true_means_ignore():
    assert _example().to_key_padding_mask().tolist() == [[F_, T, F_, T]]
    assert _example().to_key_padding_mask(keys="valid").tolist() == [[F_, F_, F_, T]]


def test_render_hf_attention_mask():
    hf = _example().to_hf_attention_mask()
    assert hf.dtype == torch.long and hf.tolist() == [[1, 0, 1, 0]]


def test_render_lengths_and_cu_seqlens():
    m = Mask(torch.tensor([[T, F_, T, F_], [T, T, T, T], [F_, F_, F_, F_]]), torch.ones(3, 4, dtype=torch.bool))
    assert m.lengths().tolist() == [2, 4, 0]
    cu = m.cu_seqlens()
    assert cu.dtype == torch.int32 and cu.tolist() == [0, 2, 6, 6]
    assert m.lengths(keys="valid").tolist() == [4, 4, 4]


def test_render_indicator_pypots_polarity():
    x = torch.tensor([[[1.0, float("nan")]]])
    assert Mask.from_nan(x).to_indicator().tolist() == [[[1.0, 0.0]]]


def test_backend_polarity_matches_torch_mha():
    """key_padding_mask rendered for nn.MultiheadAttention gives the same result as SDPA's mask."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 4, 8)
    m = _example()
    out_kpm, _ = mha(x, x, x, key_padding_mask=m.to_key_padding_mask(), need_weights=False)
    out_add, _ = mha(x, x, x, attn_mask=m.to_additive()[0].expand(2, 4, 4), need_weights=False)
    torch.testing.assert_close(out_kpm, out_add)


# ---------------------------------------------------------------- errors name the argument
def test_errors_are_clear():
    with pytest.raises(TypeError, match="values must be a floating-point"):
        Mask.from_nan(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"values must have shape \[B, L, F\]"):
        Mask.from_nan(torch.zeros(2))
    with pytest.raises(ValueError, match=r"ids must have shape \[B, L\]"):
        Mask.from_tokens(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        Mask.from_tokens(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="lengths must be >= 0"):
        Mask.from_lengths(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="max_len=2 is shorter"):
        Mask.from_lengths(torch.tensor([3]), max_len=2)
    with pytest.raises(ValueError, match="true_means must be"):
        Mask.from_indicator(torch.ones(1, 2), true_means="yes")
    with pytest.raises(ValueError, match="only 0 and 1"):
        Mask.from_indicator(torch.tensor([[0.5, 1.0]]), true_means="observed")
    with pytest.raises(TypeError, match="must be torch.bool"):
        Mask(torch.ones(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="observed must imply valid"):
        Mask(torch.tensor([[T, T]]), torch.tensor([[T, F_]]))
    with pytest.raises(ValueError, match="cannot combine masks"):
        Mask.full(1, 2) & Mask.full(1, 3)
    m = Mask.full(2, 3)
    with pytest.raises(ValueError, match=r"x must have shape \[B, L, \.\.\.\] = \[2, 3\]"):
        m.check_matches("x", torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="is on meta but the mask is on cpu"):
        m.check_matches("x", torch.zeros(2, 3, 5, device="meta"))
