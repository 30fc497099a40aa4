"""Models for numeric series with NaN: a classifier and an imputer.

Mask polarity: True = observed. A time step is observed when at least one of its variables is;
per-variable masks (``Mask.observed_values``) reach the value embedding (values + indicators) and
the losses. ``time_gaps=True`` adds, per variable, the time since it was last observed (for
irregular series).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from ..embeddings import ValueEmbedding, observed_values
from ..layers import BACKENDS, Encoder
from ..masks import Mask
from ..methods import get_method
from ..onnx_fusion import computed_rows
from ..pooling import masked_max, masked_mean
from ..rnn import GRUD, MaskedGRU, MaskedLSTM, time_since_observed

__all__ = ["SeriesConfig", "SeriesClassifier", "SeriesImputer", "SERIES_ARCHS", "NORMALIZATIONS", "window_statistics"]

SERIES_ARCHS = ("transformer", "lstm", "gru", "grud")
NORMALIZATIONS = ("none", "window")
MIN_WINDOW_SCALE = 1e-2  # in the data's (standardised) units: a nearly constant window is not blown up


@dataclass
class SeriesConfig:
    num_features: int
    num_classes: int = 0
    arch: str = "transformer"
    method: str = "dynamic"  # dynamic | static (the transformer baseline)
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 128
    dropout: float = 0.1
    max_len: int = 4096
    pooling: str = "mean"
    time_gaps: bool = False
    interval: float = 0.0  # imputer: > 0 adds the (1 - interval)/2 and (1 + interval)/2 quantiles of each value
    residual: bool = False  # imputer: predict a correction to linear interpolation of the observed values
    # imputer with residual: a learned gate per value mixes (interpolation + correction) with a direct prediction,
    # so where interpolation knows little (long gaps, a variable missing all window) the model can ignore it
    residual_gate: bool = False
    # imputer: "window" reads each window's variables relative to their observed mean and standard deviation
    # and predicts in those units (shift- and scale-equivariant per window and variable); "none": as given
    normalize: str = "none"
    backend: str = "auto"  # transformer: dense | compact | auto (see dynmask.layers)

    def to_dict(self) -> dict:
        return asdict(self)


def interpolate_observed(x: Tensor, observed: Tensor) -> Tensor:
    """Linear interpolation along time of the observed values of ``x`` float[B, L, F] (``observed``
    bool[B, L, F], True = observed): between two observations a straight line, before the first / after
    the last the nearest observation, 0 for a variable with no observation. Missing values are never
    read (``where`` first), so they cannot change the result or receive a gradient."""
    length = x.shape[1]
    clean = torch.where(observed, x, x.new_zeros(()))  # (B, L, F)
    pos = torch.arange(length, device=x.device).view(1, length, 1).expand_as(observed)  # (B, L, F)
    # by counting, not cummax (ONNX has no cumulative max): the observed positions in time order come first
    order = torch.where(observed, pos, pos + length).argsort(dim=1)  # (B, L, F)
    count = observed.long().cumsum(dim=1)  # observations at or before each step
    before = count - observed.long()  # observations strictly before it
    last = order.gather(1, (count - 1).clamp(min=0))  # the latest observation at or before the step
    nxt = order.gather(1, before.clamp(max=length - 1))  # the first observation at or after it
    has_prev, has_next = count > 0, before < count[:, -1:]
    v_prev = clean.gather(1, last)
    v_next = clean.gather(1, nxt)
    span = (nxt - last).clamp(min=1).to(x.dtype)
    between = v_prev + (pos - last).to(x.dtype) / span * (v_next - v_prev)
    return torch.where(
        has_prev & has_next, between, torch.where(has_prev, v_prev, torch.where(has_next, v_next, clean.new_zeros(())))
    )


def window_statistics(x: Tensor, observed: Tensor) -> tuple[Tensor, Tensor]:
    """(loc, scale), each float[B, 1, F]: per window and variable, the mean and standard deviation of the
    *observed* values of ``x`` float[B, L, F] (``observed`` bool[B, L, F], True = observed), as RevIN
    (Kim et al., 2022) normalises, but never reading a missing value. A variable with fewer than two
    observations in the window gets (its single value or 0, 1); the scale is at least
    :data:`MIN_WINDOW_SCALE`."""
    clean = torch.where(observed, x, x.new_zeros(()))  # (B, L, F)
    n = observed.sum(dim=1, keepdim=True).to(x.dtype)  # (B, 1, F)
    loc = clean.sum(dim=1, keepdim=True) / n.clamp(min=1)
    dev = torch.where(observed, clean - loc, x.new_zeros(()))
    var = dev.pow(2).sum(dim=1, keepdim=True) / n.clamp(min=1)
    # sqrt at 0 has an infinite derivative: clamp the variance first, then the floor on the scale
    scale = var.clamp(min=MIN_WINDOW_SCALE**2).sqrt()
    return loc, torch.where(n >= 2, scale, torch.ones_like(scale))


class _Backbone(nn.Module):
    def __init__(self, config: SeriesConfig, queries: str = "observed") -> None:
        super().__init__()
        if config.arch not in SERIES_ARCHS:
            raise ValueError(f"arch must be one of {SERIES_ARCHS}, got {config.arch!r}")
        self.method = get_method(config.method, "series", config.arch)
        if config.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {config.backend!r}")
        self.config = config
        d = config.d_model
        if config.arch == "grud":
            self.net = GRUD(config.num_features, d)
        else:
            # [values, indicators, (log1p time since observed), (interpolation)] per feature
            self.embed = ValueEmbedding(config.num_features, d, int(config.time_gaps) + int(config.residual))
            if config.arch == "transformer":
                self.net = Encoder(
                    d,
                    config.n_heads,
                    config.n_layers,
                    d_ff=config.d_ff,
                    dropout=config.dropout,
                    method=config.method,
                    queries=queries,
                    backend=config.backend,
                    positional="sinusoidal",
                    max_len=config.max_len,
                )
            else:
                rnn = MaskedLSTM if config.arch == "lstm" else MaskedGRU
                self.net = rnn(
                    d,
                    d // 2,
                    num_layers=config.n_layers,
                    bidirectional=True,
                    dropout=config.dropout if config.n_layers > 1 else 0.0,
                    missing_output="carry" if queries == "all" else "zero",
                )

    def forward(
        self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None, extra: Optional[Tensor] = None
    ) -> Tensor:
        """float[B, L, D]; the steps to read from are :meth:`read_steps`. ``extra`` (float[B, L, F]): more
        input channels (the imputer's interpolation)."""
        if self.config.arch == "grud":
            return self.net(x, mask, timestamps)[0]
        extras = []
        if self.config.time_gaps:
            gaps = time_since_observed(observed_values(x, mask), timestamps)  # (B, L, F)
            extras.append(torch.log1p(gaps.to(x.dtype)))
        if extra is not None:
            extras.append(extra)
        h = self.embed(x, mask, torch.cat(extras, dim=-1) if extras else None)  # (B, L, D)
        if self.config.arch == "transformer":
            with computed_rows():  # the embedding cleaned the values with where: h is finite
                return self.net(h, mask)
        steps = self.method.transform_mask(mask)  # h embeds the values: its features are not the values'
        return self.net(h, Mask(steps.observed, steps.valid))[0]

    def read_steps(self, mask: Mask) -> Tensor:
        """bool[B, L]: steps whose outputs carry information (GRU-D and static read every valid step)."""
        return mask.observed if not self.method.reads_missing and self.config.arch != "grud" else mask.valid


class SeriesClassifier(nn.Module):
    """Variable-length multivariate series (NaN = missing) -> class logits, by masked pooling."""

    def __init__(self, config: SeriesConfig) -> None:
        super().__init__()
        if config.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {config.num_classes}")
        self.config = config
        self.backbone = _Backbone(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_model, config.num_classes)

    def forward(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None) -> Tensor:
        h = self.backbone(x, mask, timestamps)
        steps = self.backbone.read_steps(mask)
        with computed_rows():  # h is the backbone's output, computed from cleaned values
            pooled = masked_max(h, steps) if self.config.pooling == "max" else masked_mean(h, steps)
        return self.head(self.dropout(pooled))


class SeriesImputer(nn.Module):
    """Predicts every value from the observed ones (``queries="all"``); :meth:`impute` keeps observed
    values and fills only the holes."""

    def __init__(self, config: SeriesConfig) -> None:
        super().__init__()
        if not 0.0 <= config.interval < 1.0:
            raise ValueError(f"interval must lie in [0, 1), got {config.interval}")
        if config.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {config.normalize!r}")
        if config.normalize != "none" and config.arch == "grud":
            raise ValueError("normalize='window' needs arch transformer, lstm or gru (GRU-D reads raw values)")
        if config.residual_gate and not config.residual:
            raise ValueError("residual_gate needs residual=True (it gates the interpolation)")
        self.config = config
        self.backbone = _Backbone(config, queries="all")
        self.head = nn.Linear(config.d_model, config.num_features)
        if config.residual:  # start exactly at the interpolation; training learns only what improves on it
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.direct_head = self.gate_head = None
        if config.residual_gate:  # starts with the gate open on the interpolation (sigmoid(6) = 0.9975)
            self.direct_head = nn.Linear(config.d_model, config.num_features)
            self.gate_head = nn.Linear(config.d_model, config.num_features)
            for layer in (self.direct_head, self.gate_head):
                nn.init.zeros_(layer.weight)
            nn.init.zeros_(self.direct_head.bias)
            nn.init.constant_(self.gate_head.bias, 6.0)
        # prediction intervals: the lower and upper quantiles, as offsets below / above the point prediction
        self.interval_head = nn.Linear(config.d_model, 2 * config.num_features) if config.interval > 0 else None

    @property
    def quantiles(self) -> tuple[float, float]:
        """(lower, upper) quantile levels of the interval."""
        return (1 - self.config.interval) / 2, (1 + self.config.interval) / 2

    def _features(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor]):
        """(backbone states float[B, L, D], the base the head adds to: interpolation or None, the window
        statistics (loc, scale) or None). With ``normalize="window"`` the backbone, the base and the head
        work in the window's units; :meth:`_point` gives the point there and the callers map back."""
        stats = None
        observed = observed_values(x, mask)  # (B, L, F), True = observed
        if self.config.normalize == "window":
            stats = window_statistics(x, observed)
            # zeros first: a NaN at a hole would reach the scale's gradient through the division
            clean = torch.where(observed, x, x.new_zeros(()))
            x = torch.where(observed, (clean - stats[0]) / stats[1], x.new_zeros(()))  # (B, L, F)
        if not self.config.residual:
            return self.backbone(x, mask, timestamps), None, stats
        base = interpolate_observed(x, observed)  # (B, L, F)
        return self.backbone(x, mask, timestamps, extra=base), base, stats

    def _point(self, h: Tensor, base: Optional[Tensor]) -> Tensor:
        """The point prediction float[B, L, F] in the backbone's units: the head's output, added to the
        interpolation with ``residual``; with ``residual_gate``, g · (interpolation + correction) +
        (1 - g) · a direct prediction, g in (0, 1) per value."""
        out = self.head(h)
        if base is None:
            return out
        if self.gate_head is None:
            return base + out
        g = torch.sigmoid(self.gate_head(h))  # (B, L, F)
        return g * (base + out) + (1 - g) * self.direct_head(h)

    def forward(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None) -> Tensor:
        """Predictions float[B, L, F] at every position (observed ones included, for reconstruction).
        With ``residual``: linear interpolation of the observed values plus a learned correction."""
        h, base, stats = self._features(x, mask, timestamps)
        point = self._point(h, base)
        return point if stats is None else point * stats[1] + stats[0]

    def forward_with_interval(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None):
        """(point, lower, upper), each float[B, L, F]; lower <= point <= upper by construction (softplus
        offsets). Needs ``interval > 0``."""
        if self.interval_head is None:
            raise ValueError("this imputer has no interval head: train it with interval > 0 (--intervals)")
        h, base, stats = self._features(x, mask, timestamps)
        point = self._point(h, base)
        below, above = nn.functional.softplus(self.interval_head(h)).chunk(2, dim=-1)  # (B, L, F) each
        if stats is not None:  # back to the data's units: offsets scale, the point shifts too
            point, below, above = point * stats[1] + stats[0], below * stats[1], above * stats[1]
        return point, point - below, point + above

    def impute_with_interval(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None):
        """(filled, lower, upper): ``x`` with its holes filled, and the interval at every position (an
        observed value's interval is the value itself)."""
        point, lower, upper = self.forward_with_interval(x, mask, timestamps)
        keep = observed_values(x, mask)
        return torch.where(keep, x, point), torch.where(keep, x, lower), torch.where(keep, x, upper)

    def impute(self, x: Tensor, mask: Mask, timestamps: Optional[Tensor] = None) -> Tensor:
        """``x`` with its missing values replaced by predictions; observed values are never overwritten."""
        pred = self.forward(x, mask, timestamps)
        return torch.where(observed_values(x, mask), x, pred)
