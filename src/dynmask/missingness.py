"""Processes that make observed tokens (or time steps) missing, and when they are drawn.

A process turns uniform random numbers into a bool "hidden" pattern over the valid positions of a
batch: :class:`Uniform` (each token independently), :class:`Spans` (contiguous runs, like OCR or
speech gaps), :class:`ValueDependent` (some tokens far more often than others). Randomness always
comes in as ``uniforms`` (float[U, B, L]), so the same process serves both schedules:

* **dynamic**: fresh uniforms every batch (re-drawn each time the example is seen);
* **static**: uniforms drawn once per example from ``(seed, example index)`` and reused every epoch
  (and, with a test seed, the same holes for every method at test time).

Returned patterns: ``True`` = hidden (made missing). Only valid positions can be hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Uniform",
    "Spans",
    "ValueDependent",
    "make_process",
    "Schedule",
    "PROCESSES",
    "hide_values",
    "MISSING_UNITS",
    "IMPUTATION_UNITS",
    "TRAINING_HOLES",
]

PROCESSES = ("uniform", "spans", "value")


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"missing rate must be in [0, 1], got {rate}")
    return rate


@dataclass(frozen=True)
class Uniform:
    """Each valid token is hidden independently with probability ``rate``."""

    rate: float
    n_uniforms: int = 1

    def __post_init__(self):
        _check_rate(self.rate)

    def hide(self, ids: Tensor, valid: Tensor, uniforms: Tensor) -> Tensor:
        return valid & (uniforms[0] < self.rate)


@dataclass(frozen=True)
class Spans:
    """Contiguous runs with geometric lengths (mean ``mean_span``) covering about ``rate`` of the tokens.

    Starts fall with probability ``p = -ln(1 - rate) / mean_span`` per position, so the expected
    uncovered share is ``exp(-p * mean_span) = 1 - rate``.
    """

    rate: float
    mean_span: float = 3.0
    n_uniforms: int = 2

    def __post_init__(self):
        _check_rate(self.rate)
        if self.mean_span < 1:
            raise ValueError(f"mean_span must be >= 1, got {self.mean_span}")

    def hide(self, ids: Tensor, valid: Tensor, uniforms: Tensor) -> Tensor:
        if self.rate >= 1.0:
            return valid.clone()
        length = valid.shape[1]
        p_start = -math.log1p(-self.rate) / self.mean_span
        starts = uniforms[0] < p_start  # (B, L)
        q = 1.0 - 1.0 / self.mean_span  # geometric on {1, 2, ...} with mean mean_span
        if q > 0:
            span = 1 + torch.floor(torch.log1p(-uniforms[1].clamp(max=1 - 1e-7)) / math.log(q))
        else:
            span = torch.ones_like(uniforms[1])
        pos = torch.arange(length, device=valid.device).expand_as(valid)  # (B, L)
        ends = torch.where(starts, pos + span.long(), torch.full_like(pos, -1))  # exclusive end of each span
        covered = ends.cummax(dim=1).values > pos  # (B, L): some span started at or before and reaches here
        return valid & covered


@dataclass(frozen=True)
class ValueDependent:
    """Token ``t`` is hidden with probability proportional to ``weights[t]`` (e.g. rarer words more often),
    capped at 1 and scaled per batch so the expected share of hidden valid tokens is ``rate``."""

    rate: float
    weights: Tensor  # float[V]
    n_uniforms: int = 1

    def __post_init__(self):
        _check_rate(self.rate)
        if self.weights.dim() != 1 or bool((self.weights < 0).any()):
            raise ValueError("weights must be a non-negative float[V]")

    def hide(self, ids: Tensor, valid: Tensor, uniforms: Tensor) -> Tensor:
        w = self.weights.to(ids.device)[ids.clamp(0, self.weights.numel() - 1)]  # (B, L)
        w = torch.where(valid, w, torch.zeros_like(w))
        n = valid.sum().clamp(min=1)
        # find the scale s with mean(min(1, s * w)) = rate over valid tokens (bisection; clipping at 1
        # would otherwise lower the rate when a few weights dominate)
        lo, hi = 0.0, float(self.rate / (w.sum() / n).clamp(min=1e-12))
        while float(torch.clamp(hi * w, max=1.0).sum() / n) < self.rate and hi < 1e12:
            hi *= 2.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if float(torch.clamp(mid * w, max=1.0).sum() / n) < self.rate:
                lo = mid
            else:
                hi = mid
        p = torch.clamp(hi * w, max=1.0)
        return valid & (uniforms[0] < p)

    @classmethod
    def rare_tokens_first(cls, rate: float, token_counts: Tensor, power: float = 0.5) -> "ValueDependent":
        """Weights ``count ** -power``: rare tokens go missing more often (like OCR on unusual words)."""
        return cls(rate, token_counts.float().clamp(min=1) ** -power)


def make_process(name: str, rate: float, *, mean_span: float = 3.0, token_counts: Optional[Tensor] = None):
    if name == "uniform":
        return Uniform(rate)
    if name == "spans":
        return Spans(rate, mean_span)
    if name == "value":
        if token_counts is None:
            raise ValueError("the 'value' process needs token_counts (how often each token occurs in training)")
        return ValueDependent.rare_tokens_first(rate, token_counts)
    raise ValueError(f"missingness process must be one of {PROCESSES}, got {name!r}")


class Schedule:
    """When the holes are drawn: ``"dynamic"`` (fresh every batch) or ``"static"`` (once per example).

    ``uniforms(example_ids, length, step)`` returns float[U, B, L]. Dynamic draws depend on
    ``(seed, step)`` only, so a resumed run draws exactly what the uninterrupted one did. Static
    draws depend on ``(seed, example id)`` only: the same example always gets the same holes.
    """

    def __init__(self, kind: str, n_uniforms: int, seed: int, max_len: int = 512) -> None:
        if kind not in ("dynamic", "static"):
            raise ValueError(f"schedule must be 'dynamic' or 'static', got {kind!r}")
        self.kind, self.n_uniforms, self.seed, self.max_len = kind, n_uniforms, seed, max_len
        self._static: dict[int, Tensor] = {}

    def _per_example(self, example_id: int) -> Tensor:
        u = self._static.get(example_id)
        if u is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + example_id)
            u = torch.rand(self.n_uniforms, self.max_len, generator=g)  # drawn once, reused every epoch
            self._static[example_id] = u
        return u

    def uniforms(self, example_ids: Sequence[int], length: int, step: int) -> Tensor:
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds the schedule's max_len {self.max_len}")
        if self.kind == "dynamic":
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * step + 1)
            return torch.rand(self.n_uniforms, len(example_ids), length, generator=g)
        return torch.stack([self._per_example(int(i))[:, :length] for i in example_ids], dim=1)  # (U, B, L)


def apply_missingness(
    ids: Tensor, valid: Tensor, process, schedule: Schedule, example_ids: Sequence[int], step: int, missing_id: int
) -> Tensor:
    """Replace hidden tokens of ``ids`` (long[B, L]) with ``missing_id``; returns new ids."""
    if process is None or process.rate == 0.0:
        return ids
    hidden = process.hide(ids, valid, schedule.uniforms(example_ids, ids.shape[1], step))
    return torch.where(hidden, torch.full_like(ids, missing_id), ids)


MISSING_UNITS = ("value", "step")  # classification's test and training holes

IMPUTATION_UNITS = ("value", "block", "variable", "mixed")  # the imputer's artificial training holes

# the command line's --missing-process names -> the imputer's units (see hide_values)
TRAINING_HOLES = {"values": "value", "blocks": "block", "variables": "variable", "mixed": "mixed"}


def hide_values(
    x: torch.Tensor,
    rate: float,
    uniforms: torch.Tensor,
    unit: str = "value",
    block_length: int = 7,
    variables: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``x`` float[B, L, F] with a share ``rate`` of its observed values set to NaN (uniforms [F, B, L]).

    ``unit="value"``: each value is hidden on its own draw (a step becomes a missing position only
    when all its features are hidden); ``"step"``: whole steps are hidden (every feature together,
    one draw per step), e.g. a sensor box that drops out, so the step is a missing position;
    ``"block"``: a variable is hidden for ``block_length`` consecutive steps (a sensor that fails
    for days), blocks starting with the probability that covers ``rate`` of the steps;
    ``"variable"``: a variable is hidden for the whole window (a station that is down throughout),
    with probability ``rate`` per window and variable; ``"mixed"``: each window takes one of
    value / block / variable at random (uniforms then float[F + 1, B, L]: the last row picks).
    ``variables`` (bool[F]): only these variables are hidden. ``unit`` is checked by the caller."""
    if rate == 0:
        return x
    if unit == "mixed":
        pick = (uniforms[-1, :, 0] * 3).long().clamp(max=2)  # (B,): 0 value, 1 block, 2 variable
        each = [hide_values(x, rate, uniforms[:-1], u, block_length, variables) for u in ("value", "block", "variable")]
        return torch.stack(each)[pick, torch.arange(x.shape[0])]  # (3, B, L, F) -> (B, L, F)
    if unit == "step":
        draws = uniforms[0].unsqueeze(-1)  # (B, L, 1): one draw per step, shared by its features
    elif unit == "variable":
        draws = uniforms[:, :, :1].permute(1, 2, 0)  # (F, B, 1) -> (B, 1, F): one draw per window and variable
    else:
        draws = uniforms.permute(1, 2, 0)  # (F, B, L) -> (B, L, F)
    if unit == "block":
        k = max(1, int(block_length))
        starts = (draws < 1 - (1 - rate) ** (1 / k)).float().transpose(1, 2)  # (B, F, L): a block starts here
        padded = F.pad(starts, (k - 1, 0))  # (B, F, L + k - 1)
        chosen = padded.unfold(-1, k, 1).amax(-1).transpose(1, 2) > 0  # (B, L, F): a start in the last k steps
    else:
        chosen = draws < rate
    hidden = chosen & ~torch.isnan(x)  # (B, L, F)
    if variables is not None:
        hidden = hidden & variables.to(hidden.device)
    return torch.where(hidden, torch.full_like(x, float("nan")), x)
