"""Pooling and losses: exact values, empty samples, and the guarantee."""

import pytest
import torch
from guarantee import check_guarantee, masked_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import AttentionPooling, Mask, masked_cross_entropy, masked_mae, masked_max, masked_mean, masked_mse

NAN = float("nan")


def test_masked_mean_and_max_exact():
    x = torch.tensor([[[1.0], [NAN], [3.0]], [[5.0], [7.0], [NAN]], [[NAN], [NAN], [NAN]]])
    keep = torch.tensor([[True, False, True], [True, True, False], [False, False, False]])
    assert masked_mean(x, keep).tolist() == [[2.0], [6.0], [0.0]]
    assert masked_max(x, keep).tolist() == [[3.0], [7.0], [0.0]]


def test_masked_losses_exact():
    pred = torch.tensor([[1.0, 2.0, 100.0]])
    target = torch.tensor([[2.0, 4.0, NAN]])
    keep = torch.tensor([[True, True, False]])
    assert masked_mae(pred, target, keep).item() == pytest.approx(1.5)
    assert masked_mse(pred, target, keep).item() == pytest.approx(2.5)
    none = torch.zeros_like(keep)
    assert masked_mae(pred, target, none).item() == 0.0


def test_masked_cross_entropy_matches_torch_on_kept_positions():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    target = torch.randint(0, 5, (2, 4))
    keep = torch.tensor([[True, False, True, True], [False, True, False, False]])
    expected = torch.nn.functional.cross_entropy(logits[keep], target[keep])
    poisoned = torch.where(keep.unsqueeze(-1), logits, NAN)
    bad_target = torch.where(keep, target, -7)
    torch.testing.assert_close(masked_cross_entropy(poisoned, bad_target, keep), expected)


def test_losses_use_per_value_mask_from_mask_object():
    x = torch.tensor([[[1.0, NAN], [2.0, 3.0]]])
    mask = Mask.from_nan(x)
    pred = torch.zeros_like(x)
    assert masked_mae(pred, x, mask).item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3


@settings(max_examples=30, deadline=None)
@given(batch=masked_batches(d_model=4), how=st.sampled_from(["mean", "max", "attention"]))
def test_guarantee_pooling(batch, how):
    x, mask = batch
    torch.manual_seed(0)
    pool = AttentionPooling(4)
    fn = {
        "mean": lambda xi: masked_mean(xi, mask),
        "max": lambda xi: masked_max(xi, mask),
        "attention": lambda xi: pool(xi, mask),
    }[how]
    check_guarantee(fn, list(pool.parameters()) if how == "attention" else [], x, mask)


@settings(max_examples=30, deadline=None)
@given(batch=masked_batches(d_model=3), loss=st.sampled_from(["mae", "mse", "ce"]))
def test_guarantee_losses(batch, loss):
    x, mask = batch
    g = torch.Generator().manual_seed(0)
    if loss == "ce":
        target = torch.randint(0, 3, mask.shape, generator=g)
        fn = lambda xi: masked_cross_entropy(xi, target, mask).reshape(1)
    else:
        target = torch.randn(x.shape, generator=g)
        f = masked_mae if loss == "mae" else masked_mse
        keep = mask.observed.unsqueeze(-1).expand_as(x)
        fn = lambda xi: f(xi, target, keep).reshape(1)
    check_guarantee(fn, [], x, mask, empty_is_zero=False)


def test_pooling_errors():
    with pytest.raises(ValueError, match=r"pooling needs x \[B, L, D\]"):
        masked_mean(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        masked_mae(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be bool"):
        masked_mse(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3))
