"""Masked LSTM / GRU and GRU-D: the guarantee, equality with torch, padding, carried state, GRU-D's formula."""

import math

import pytest
import torch
from guarantee import check_guarantee, masked_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from dynmask import Mask
from dynmask.rnn import GRUD, MaskedGRU, MaskedLSTM, time_since_observed

F_IN, H = 8, 6
CELLS = {"lstm": MaskedLSTM, "gru": MaskedGRU}


def _rnn(cell, bidirectional=False, missing_output="zero", layers=1, seed=0):
    torch.manual_seed(seed)
    return CELLS[cell](F_IN, H, num_layers=layers, bidirectional=bidirectional, missing_output=missing_output)


@settings(max_examples=25, deadline=None)
@given(
    batch=masked_batches(d_model=F_IN),
    cell=st.sampled_from(["lstm", "gru"]),
    bidirectional=st.booleans(),
    missing_output=st.sampled_from(["zero", "carry"]),
)
def test_guarantee_masked_rnn(batch, cell, bidirectional, missing_output):
    x, mask = batch
    model = _rnn(cell, bidirectional, missing_output, layers=2)
    rows = mask.observed if missing_output == "zero" else mask.valid
    out = check_guarantee(lambda xi: model(xi, mask)[0], list(model.parameters()), x, mask, check_rows=rows)
    assert torch.equal(out[~mask.valid], torch.zeros_like(out[~mask.valid]))  # padding is zero


@settings(max_examples=15, deadline=None)
@given(batch=masked_batches(d_model=F_IN), cell=st.sampled_from(["lstm", "gru"]), bidirectional=st.booleans())
def test_guarantee_final_state(batch, cell, bidirectional):
    x, mask = batch
    model = _rnn(cell, bidirectional)

    def final(xi):
        state = model(xi, mask)[1]
        h = state[0] if isinstance(state, tuple) else state  # (dirs, B, H)
        return h.permute(1, 0, 2).reshape(x.shape[0], -1)  # (B, dirs·H)

    check_guarantee(final, list(model.parameters()), x, mask)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_equals_torch_rnn_when_nothing_is_missing(cell, bidirectional):
    model = _rnn(cell, bidirectional, layers=2)
    x = torch.randn(3, 7, F_IN)
    out, state = model(x, Mask.full(3, 7))
    ref_out, ref_state = model.rnn(x)
    torch.testing.assert_close(out, ref_out)
    if cell == "lstm":
        torch.testing.assert_close(state[0], ref_state[0])
        torch.testing.assert_close(state[1], ref_state[1])
    else:
        torch.testing.assert_close(state, ref_state)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_padded_batch_equals_each_sequence_alone(cell):
    model = _rnn(cell, bidirectional=True, layers=2)
    lengths = torch.tensor([7, 3, 5])
    x = torch.randn(3, 7, F_IN)
    mask = Mask.from_lengths(lengths, max_len=7)
    out, state = model(x, mask)
    h = state[0] if cell == "lstm" else state
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = model(x[b : b + 1, :n], Mask.full(1, n))
        torch.testing.assert_close(out[b, :n], alone[0])
        alone_h = alone_state[0] if cell == "lstm" else alone_state
        torch.testing.assert_close(h[:, b], alone_h[:, 0])
        assert torch.equal(out[b, n:], torch.zeros_like(out[b, n:]))


def test_missing_steps_carry_the_state():
    model = _rnn("gru", missing_output="carry")
    x = torch.randn(1, 6, F_IN)
    observed = torch.tensor([[True, False, False, True, True, False]])
    out, _ = model(x, Mask(observed, torch.ones_like(observed)))
    alone, _ = model(x[:, observed[0]], Mask.full(1, 3))  # the observed steps only
    torch.testing.assert_close(out[0, [0, 3, 4]], alone[0])
    torch.testing.assert_close(out[0, 1], out[0, 0])  # carried across the gap
    torch.testing.assert_close(out[0, 2], out[0, 0])
    torch.testing.assert_close(out[0, 5], out[0, 4])


def test_empty_samples_give_zeros_without_error():
    model = _rnn("lstm", bidirectional=True)
    x = torch.full((2, 4, F_IN), float("nan"))
    out, (h, c) = model(x, Mask(torch.zeros(2, 4, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)))
    assert torch.equal(out, torch.zeros_like(out)) and torch.equal(h, torch.zeros_like(h))


# ---------------------------------------------------------------- GRU-D
def test_time_since_observed_hand_worked():
    m = torch.tensor([[[True], [False], [False], [True]], [[True], [True], [False], [True]]])
    s = torch.tensor([[0.0, 0.5, 2.0, 2.5], [0.0, 0.5, 2.0, 2.5]])
    assert time_since_observed(m, s)[..., 0].tolist() == [[0.0, 0.5, 2.0, 2.5], [0.0, 0.5, 1.5, 2.0]]
    assert time_since_observed(m)[..., 0].tolist() == [[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 2.0]]


def test_grud_decay_matches_the_formula():
    model = GRUD(1, 2, x_mean=torch.tensor([3.0]))
    with torch.no_grad():
        model.gamma_x_weight.fill_(0.5)
        model.gamma_x_bias.fill_(0.0)
        model.gamma_h.weight.fill_(0.25)
        model.gamma_h.bias.fill_(-0.1)
    x = torch.tensor([[[1.0], [float("nan")], [float("nan")], [5.0]]])
    mask = Mask.from_nan(x)
    x_hat, m, gamma_h = model.impute(x, mask)
    g1, g2 = math.exp(-0.5), math.exp(-1.0)  # δ = 1, 2 at the two missing steps
    expected = [1.0, g1 * 1 + (1 - g1) * 3, g2 * 1 + (1 - g2) * 3, 5.0]
    torch.testing.assert_close(x_hat[0, :, 0], torch.tensor(expected))
    assert m[0, :, 0].tolist() == [1.0, 0.0, 0.0, 1.0]
    # γ_h = exp(-max(0, 0.25 δ - 0.1)), δ = 0, 1, 2, 3
    want = [math.exp(-max(0.0, 0.25 * d - 0.1)) for d in (0, 1, 2, 3)]
    torch.testing.assert_close(gamma_h[0, :, 0], torch.tensor(want))
    # the recurrence: h_t = GRUCell([x_hat, m], γ_h ⊙ h_{t-1})
    out, h = model(x, mask)
    hh = torch.zeros(1, 2)
    for t in range(4):
        hh = model.cell(torch.cat([x_hat[:, t], m[:, t]], -1), gamma_h[:, t] * hh)
        torch.testing.assert_close(out[0, t], hh[0])


@settings(max_examples=20, deadline=None)
@given(batch=masked_batches(d_model=3))
def test_guarantee_grud(batch):
    x, mask = batch
    torch.manual_seed(0)
    model = GRUD(3, 5, x_mean=torch.tensor([0.1, -0.2, 0.3]))
    per_value = Mask(mask.observed, mask.valid, mask.observed.unsqueeze(-1).expand(*mask.shape, 3).clone())
    check_guarantee(
        lambda xi: model(xi, per_value)[0],
        list(model.parameters()),
        x,
        per_value,
        check_rows=mask.valid,
        empty_is_zero=False,
    )


@pytest.mark.parametrize("cls", [MaskedLSTM, MaskedGRU])
def test_a_missing_value_inside_an_observed_step_is_never_read(cls):
    """Mask.from_nan: one NaN feature in an otherwise observed step made 24 outputs NaN (issue 35, item 8).
    Now the value is read as 0 whatever it holds, and gets no gradient."""
    torch.manual_seed(0)
    rnn = cls(3, 4, bidirectional=True)
    x = torch.randn(2, 5, 3)
    x[0, 2, 1] = float("nan")  # one feature of an observed step
    x[1, 3] = float("nan")  # a whole step missing
    mask = Mask.from_nan(x)
    assert mask.observed[0, 2] and not mask.observed[1, 3]
    outs = []
    for fill in (0.0, 1e30, float("nan"), float("inf")):
        xi = torch.where(torch.isnan(x), torch.tensor(fill), x).requires_grad_(True)
        out = rnn(xi, mask)[0]
        out.sum().backward()
        assert torch.isfinite(out).all()
        assert torch.equal(xi.grad[~mask.observed_values], torch.zeros_like(xi.grad[~mask.observed_values]))
        outs.append(out.detach())
    assert all(torch.equal(outs[0], o) for o in outs[1:])
