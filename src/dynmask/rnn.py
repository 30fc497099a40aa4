"""Recurrent models over a dynamic mask: masked LSTM / GRU, and GRU-D.

Mask polarity: True = observed.

:class:`MaskedLSTM` / :class:`MaskedGRU` wrap ``nn.LSTM`` / ``nn.GRU``. Each sample's observed steps
are gathered to the front (their order kept) and run as one packed sequence, so a missing step
never updates the hidden state — the state is carried across it — and padding never reaches either
direction of a bidirectional model. Outputs at missing steps (``missing_output=``):

* ``"zero"`` (default): zero, like the Transformer's ``queries="observed"``;
* ``"carry"``: the carried state — in the forward direction the output of the last observed step
  at or before it, in the backward direction that of the next observed step at or after it (zero
  where there is none).

A missing value inside an observed step (a NaN feature of a :meth:`Mask.from_nan` mask) is read as 0,
never as what it holds. Padding outputs are always zero. A sample with nothing observed gives zero
outputs and a zero final state (``pack_padded_sequence`` refuses length 0; such samples run one zero
step whose results are discarded).

:class:`GRUD` is GRU-D (Che et al., 2018, "Recurrent Neural Networks for Multivariate Time Series with
Missing Values"): per-feature input decay towards the training mean and hidden-state decay, both driven
by the time since each feature was last observed.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .compaction import Compaction
from .masks import Mask, check_input_dtype

__all__ = ["MaskedLSTM", "MaskedGRU", "GRUD", "time_since_observed"]


def _last_index(observed: Tensor) -> Tensor:
    """long[B, L]: index of the last observed step at or before t, -1 where none (along dim 1)."""
    length = observed.shape[1]
    pos = torch.arange(length, device=observed.device).expand_as(observed)
    return torch.where(observed, pos, torch.full_like(pos, -1)).cummax(dim=1).values


def _next_index(observed: Tensor) -> Tensor:
    """long[B, L]: index of the next observed step at or after t, L where none."""
    length = observed.shape[1]
    flipped = _last_index(observed.flip(1))  # in flipped coordinates
    return torch.where(flipped >= 0, length - 1 - flipped, torch.full_like(flipped, length)).flip(1)


class _MaskedRNN(nn.Module):
    rnn_type: type = nn.LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        missing_output: str = "zero",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if missing_output not in ("zero", "carry"):
            raise ValueError(f"missing_output must be 'zero' or 'carry', got {missing_output!r}")
        self.rnn = self.rnn_type(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.hidden_size, self.bidirectional, self.missing_output = hidden_size, bidirectional, missing_output

    def forward(self, x: Tensor, mask: Mask) -> tuple[Tensor, Tensor]:
        """``x`` float[B, L, F], ``mask`` (True = observed) -> (outputs float[B, L, H·dirs], final state).

        The final state is ``h_n`` float[layers·dirs, B, H] (for an LSTM, the tuple ``(h_n, c_n)``),
        the state after each sample's last observed step (forward) / first one (backward).
        """
        mask.check_matches("x", x)
        if x.dim() != 3 or x.shape[-1] != self.rnn.input_size:
            raise ValueError(f"x must have shape [B, L, {self.rnn.input_size}], got {list(x.shape)}")
        check_input_dtype("x", x, self.rnn.weight_ih_l0)
        if x.shape[0] == 0:  # an empty batch: empty outputs, empty states
            dirs = 2 if self.bidirectional else 1
            out = x.new_zeros(0, x.shape[1], self.hidden_size * dirs)
            h = x.new_zeros(self.rnn.num_layers * dirs, 0, self.hidden_size)
            return out, ((h, h.clone()) if isinstance(self.rnn, nn.LSTM) else h)
        observed = mask.observed  # (B, L)
        plan = Compaction.plan(observed)
        width = max(plan.width, 1)
        keep = observed.unsqueeze(-1)  # (B, L, 1)
        if mask.observed_values is not None:  # a per-feature mask describes x's own features (from_nan)
            if mask.observed_values.shape[-1] != x.shape[-1]:
                raise ValueError(
                    f"mask.observed_values has {mask.observed_values.shape[-1]} features but x has {x.shape[-1]}: "
                    "pass Mask(mask.observed, mask.valid) when x is an embedding of the masked values"
                )
            keep = keep & mask.observed_values  # (B, L, F): a missing value of an observed step is read as 0
        compact = plan.gather(torch.where(keep, x, x.new_zeros(())))  # (B, N, F); NaN / missing values never read
        if compact.shape[1] < width:
            compact = torch.cat([compact, compact.new_zeros(x.shape[0], width - compact.shape[1], x.shape[2])], 1)
        empty = plan.num_kept == 0  # (B,)
        lengths = plan.num_kept.clamp(min=1).cpu()
        packed = pack_padded_sequence(compact, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=width)  # (B, N, H·dirs)
        out = out[:, : plan.width]
        keep_sample = (~empty).to(out.dtype)
        zero_empty = lambda s: s * keep_sample.view(1, -1, 1)  # (layers·dirs, B, H): zero for empty samples
        state = tuple(zero_empty(s) for s in state) if isinstance(state, tuple) else zero_empty(state)
        full = plan.scatter(out) if plan.width else x.new_zeros(*observed.shape, out.shape[-1])  # (B, L, H·dirs)
        if self.missing_output == "carry":
            full = self._carry(full, observed)
        return torch.where(mask.valid.unsqueeze(-1), full, full.new_zeros(())), state

    def _carry(self, full: Tensor, observed: Tensor) -> Tensor:
        h = self.hidden_size
        batch, length, _ = full.shape
        padded = torch.cat([full, full.new_zeros(batch, 1, full.shape[-1])], dim=1)  # slot L holds zeros
        last = _last_index(observed)
        last = torch.where(last >= 0, last, torch.full_like(last, length))  # (B, L)
        fwd = padded[..., :h].gather(1, last.unsqueeze(-1).expand(batch, length, h))
        if not self.bidirectional:
            return fwd
        nxt = _next_index(observed)
        bwd = padded[..., h:].gather(1, nxt.unsqueeze(-1).expand(batch, length, h))
        return torch.cat([fwd, bwd], dim=-1)


class MaskedLSTM(_MaskedRNN):
    """``nn.LSTM`` (batch first) over observed steps only; see the module docstring."""

    rnn_type = nn.LSTM


class MaskedGRU(_MaskedRNN):
    """``nn.GRU`` (batch first) over observed steps only; see the module docstring."""

    rnn_type = nn.GRU


def time_since_observed(observed_values: Tensor, timestamps: Optional[Tensor] = None) -> Tensor:
    """δ float[B, L, F]: time since each feature was last observed *before* step t (0 at the first step).

    ``observed_values`` bool[B, L, F] (True = observed); ``timestamps`` float[B, L] (default: 0, 1, 2, ...).
    Che et al.: δ_t = s_t − s_{t−1} + δ_{t−1} if feature d was missing at t−1, else s_t − s_{t−1}.
    """
    batch, length, features = observed_values.shape
    if timestamps is None:
        timestamps = torch.arange(length, dtype=torch.float32, device=observed_values.device).expand(batch, length)
    # last observed step strictly before t: shift the observed pattern right by one
    before = torch.cat([torch.zeros_like(observed_values[:, :1]), observed_values[:, :-1]], dim=1)  # (B, L, F)
    pos = torch.arange(length, device=observed_values.device).view(1, length, 1).expand_as(before)
    last = torch.where(before, pos - 1, torch.full_like(pos, -1)).cummax(dim=1).values  # (B, L, F)
    last = last.clamp(min=0)  # never observed before: count from the first step
    s = timestamps.unsqueeze(-1).expand(batch, length, features)  # (B, L, F)
    return s - s.gather(1, last)


class GRUD(nn.Module):
    """GRU-D for numeric series with missing values (Che et al., 2018).

    ``forward(x, mask, timestamps=None)``: ``x`` float[B, L, F] (NaN allowed where missing),
    ``mask`` with per-feature ``observed_values`` (True = observed), ``timestamps`` float[B, L]
    (unit steps when omitted). Returns (outputs float[B, L, H], final h float[B, H]).

    For each feature d with δ the time since it was last observed:
    ``γ_x = exp(−max(0, w_γx ⊙ δ + b_γx))`` (diagonal), ``γ_h = exp(−max(0, W_γh δ + b_γh))``;
    the input is ``m ⊙ x + (1 − m) ⊙ (γ_x ⊙ x_last + (1 − γ_x) ⊙ x_mean)``, the previous state is
    decayed to ``γ_h ⊙ h``, and the GRU's gates also see the mask ``m``. Padding steps (not valid)
    leave the state unchanged and output zero.
    """

    def __init__(self, num_features: int, hidden_size: int, x_mean: Optional[Tensor] = None) -> None:
        super().__init__()
        self.num_features, self.hidden_size = num_features, hidden_size
        self.gamma_x_weight = nn.Parameter(torch.zeros(num_features))
        self.gamma_x_bias = nn.Parameter(torch.zeros(num_features))
        self.gamma_h = nn.Linear(num_features, hidden_size)
        self.cell = nn.GRUCell(2 * num_features, hidden_size)  # input: [x_hat, m]
        self.register_buffer("x_mean", torch.zeros(num_features) if x_mean is None else x_mean.float().clone())
        nn.init.uniform_(self.gamma_x_weight, 0.0, 0.1)

    def decays(self, delta: Tensor) -> tuple[Tensor, Tensor]:
        """(γ_x float[B, L, F], γ_h float[B, L, H]) for time gaps ``delta`` float[B, L, F]."""
        gamma_x = torch.exp(-torch.relu(delta * self.gamma_x_weight + self.gamma_x_bias))
        gamma_h = torch.exp(-torch.relu(self.gamma_h(delta)))
        return gamma_x, gamma_h

    def impute(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        """(x_hat float[B, L, F], m float[B, L, F], γ_h float[B, L, H]): the decayed inputs GRU-D reads."""
        mask.check_matches("x", x)
        if x.dim() != 3 or x.shape[-1] != self.num_features:
            raise ValueError(f"x must have shape [B, L, {self.num_features}], got {list(x.shape)}")
        check_input_dtype("x", x, self.gamma_x_weight)
        timestamps = _clean_timestamps(timestamps, mask.valid, x.dtype)
        m = mask.observed_values if mask.observed_values is not None else mask.observed.unsqueeze(-1).expand_as(x)
        m = m & mask.valid.unsqueeze(-1)
        clean = torch.where(m, x, x.new_zeros(()))  # (B, L, F): missing values never read
        mean = self.x_mean.to(x.dtype)
        # x_last: the last observed value at or before t (the training mean before any observation)
        last = _last_index_per_feature(m)  # (B, L, F)
        x_last = torch.where(last >= 0, clean.gather(1, last.clamp(min=0)), mean)
        delta = time_since_observed(m, timestamps).to(x.dtype)  # (B, L, F)
        gamma_x, gamma_h = self.decays(delta)
        x_hat = torch.where(m, clean, gamma_x * x_last + (1 - gamma_x) * mean)  # (B, L, F)
        return x_hat, m.to(x.dtype), gamma_h

    def forward(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        x_hat, m, gamma_h = self.impute(x, mask, timestamps)
        batch, length, _ = x.shape
        inputs = torch.cat([x_hat, m], dim=-1)  # (B, L, 2F)
        h = x.new_zeros(batch, self.hidden_size)
        outputs = []
        valid = mask.valid
        for t in range(length):  # the decay makes each step depend on the previous state: no packed call
            h_decayed = gamma_h[:, t] * h
            h_new = self.cell(inputs[:, t], h_decayed)
            h = torch.where(valid[:, t].unsqueeze(-1), h_new, h)  # padding: state unchanged
            outputs.append(torch.where(valid[:, t].unsqueeze(-1), h, h.new_zeros(())))
        out = torch.stack(outputs, dim=1) if outputs else x.new_zeros(batch, 0, self.hidden_size)
        return out, h


def _clean_timestamps(timestamps: Optional[Tensor], valid: Tensor, dtype: torch.dtype) -> Optional[Tensor]:
    """Timestamps float[B, L] checked (finite and non-decreasing over valid steps) and with padding
    steps given their neighbours' time, so a NaN stored in padding cannot reach a decay."""
    if timestamps is None:
        return None
    if not isinstance(timestamps, Tensor) or tuple(timestamps.shape) != tuple(valid.shape):
        shape = list(timestamps.shape) if isinstance(timestamps, Tensor) else type(timestamps).__name__
        raise ValueError(f"timestamps must be float[B, L] = {list(valid.shape)}, got {shape}")
    if not timestamps.is_floating_point():
        timestamps = timestamps.to(dtype)
    if not bool(torch.isfinite(timestamps[valid]).all()):
        raise ValueError("timestamps must be finite at every valid (non-padding) step")
    length = valid.shape[1]
    last = _last_index(valid)  # (B, L): last valid step at or before t, -1 if none
    nxt = _next_index(valid).clamp(max=max(length - 1, 0))  # first valid step at or after t
    source = torch.where(last >= 0, last, nxt)  # leading padding takes the first valid time
    clean = torch.where(valid, timestamps, timestamps.new_zeros(()))
    filled = clean.gather(1, source) if length else clean  # (B, L): padding repeats a valid time (delta 0)
    filled = torch.where(valid, clean, filled)
    if length > 1 and bool((filled[:, 1:] < filled[:, :-1]).any()):
        raise ValueError("timestamps must not decrease along a sequence")
    return filled


def _last_index_per_feature(m: Tensor) -> Tensor:
    """long[B, L, F]: index of the last observed step at or before t per feature, -1 where none."""
    length = m.shape[1]
    pos = torch.arange(length, device=m.device).view(1, length, 1).expand_as(m)
    return torch.where(m, pos, torch.full_like(pos, -1)).cummax(dim=1).values
