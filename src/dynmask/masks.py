"""The one place where dynmask builds masks and converts them to other libraries' conventions.

Convention, everywhere in dynmask's public API: **True means observed (kept)**.

A :class:`Mask` holds, for a batch of B sequences of length L:

* ``observed``: bool[B, L] -- the position holds data (a real token, a time step with at least
  one observed feature);
* ``valid``: bool[B, L] -- the position lies inside the sequence (not padding). Missing positions
  are valid but not observed; padding is neither. ``observed`` implies ``valid``. The ``static``
  baseline attends to every valid position; the dynamic mask attends to observed positions only;
* ``observed_values``: bool[B, L, F] or None -- per-feature mask for numeric data;
* ``confidence``: float[B, L] or None -- how far each observed position is trusted, in (0, 1] (an OCR
  or speech engine's word confidence, used softly): self-attention adds ``log(confidence)`` to each
  observed key's logit, so 1 is an ordinary key and a doubted word is read less. Missing positions
  stay excluded exactly (a confidence of 0 is missing); what this field holds there is never read.

Renderers convert to the polarity each backend wants (see :meth:`Mask.to_sdpa`,
:meth:`Mask.to_additive`, :meth:`Mask.to_key_padding_mask`, :meth:`Mask.to_hf_attention_mask`,
:meth:`Mask.lengths`, :meth:`Mask.cu_seqlens`). Nothing else in dynmask flips a mask's polarity.

Example (B=1, L=4, position 1 missing, position 3 padding)::

    observed  ■ □ ■ □        valid ■ ■ ■ □

    to_sdpa(causal=True)[0, 0]      (row i = query, column j = key; ■ = i may attend to j)
        ■ □ □ □
        ■ □ □ □
        ■ □ ■ □
        ■ □ ■ □
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, Optional

import torch
from torch import Tensor

from .graph import tracing

__all__ = ["Mask", "causal_mask", "check_input_dtype"]


def check_input_dtype(name: str, x: Tensor, weight: Tensor) -> None:
    """Refuse a floating input whose dtype differs from the module's weights (float64 data into a
    float32 model), naming the argument and the fix. Under autocast mixed dtypes are expected."""
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{name} is {x.dtype} but the module's weights are {weight.dtype}: cast the input "
            f"({name}.to({weight.dtype})) or the module (.to({x.dtype}))"
        )


def causal_mask(length: int, device: torch.device | str | None = None) -> Tensor:
    """bool[L, L], True in row i column j means query i may attend to key j (j <= i).

    For L=3::

        ■ □ □
        ■ ■ □
        ■ ■ ■
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def _require_tensor(name: str, value, ndims: Iterable[int], what: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {what}, got {type(value).__name__}")
    ndims = tuple(ndims)
    if value.dim() not in ndims:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(value.shape)}")
    return value


@dataclass(frozen=True)
class Mask:
    """Which positions (and features) of a batch are observed. True = observed.

    Build it from the data with :meth:`from_nan`, :meth:`from_tokens`, :meth:`from_lengths` or
    :meth:`from_indicator`; combine with ``&``.
    """

    observed: Tensor  # bool[B, L]
    valid: Tensor  # bool[B, L]
    observed_values: Optional[Tensor] = None  # bool[B, L, F]
    confidence: Optional[Tensor] = None  # float[B, L] in (0, 1] at observed positions; None = all 1

    def __post_init__(self) -> None:
        _require_tensor("observed", self.observed, (2,), "[B, L]")
        _require_tensor("valid", self.valid, (2,), "[B, L]")
        if self.observed.dtype != torch.bool or self.valid.dtype != torch.bool:
            raise TypeError(
                f"Mask.observed and Mask.valid must be torch.bool, got {self.observed.dtype} and "
                f"{self.valid.dtype}; use Mask.from_indicator for 0/1 tensors"
            )
        if self.valid.shape != self.observed.shape:
            raise ValueError(
                f"valid must have the shape of observed {tuple(self.observed.shape)}, got {tuple(self.valid.shape)}"
            )
        if self.valid.device != self.observed.device:
            raise ValueError(f"valid is on {self.valid.device} but observed is on {self.observed.device}")
        if self.observed_values is not None:
            ov = _require_tensor("observed_values", self.observed_values, (3,), "[B, L, F]")
            if ov.dtype != torch.bool:
                raise TypeError(f"observed_values must be torch.bool, got {ov.dtype}")
            if ov.shape[:2] != self.observed.shape:
                raise ValueError(
                    f"observed_values must have shape [B, L, F] = {tuple(self.observed.shape)} + [F], "
                    f"got {tuple(ov.shape)}"
                )
            if ov.device != self.observed.device:
                raise ValueError(f"observed_values is on {ov.device} but observed is on {self.observed.device}")
        if not tracing() and bool((self.observed & ~self.valid).any()):  # a data check: eager mode only
            raise ValueError("observed must imply valid: a padding position cannot be observed")
        if self.confidence is not None:
            c = _require_tensor("confidence", self.confidence, (2,), "[B, L]")
            if not c.is_floating_point() or c.shape != self.observed.shape or c.device != self.observed.device:
                raise ValueError(
                    f"confidence must be a float tensor of shape {tuple(self.observed.shape)} on {self.device}, "
                    f"got {c.dtype} {tuple(c.shape)} on {c.device}"
                )
            if not tracing():  # a data check: eager mode only
                kept = torch.where(self.observed, c, torch.ones_like(c))
                if not bool(((kept > 0) & (kept <= 1)).all()):
                    raise ValueError("confidence must lie in (0, 1] at observed positions (0 means missing)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_nan(cls, values: Tensor, lengths: Optional[Tensor] = None) -> "Mask":
        """From a float tensor where NaN / +inf / -inf mark missing values.

        ``values``: float[B, L, F] (or float[B, L], read as F=1). A step is observed when at least
        one of its features is. ``lengths`` (optional, long[B]) marks steps beyond each length as
        padding.
        """
        _require_tensor("values", values, (2, 3), "[B, L, F] or [B, L]")
        if not values.is_floating_point():
            raise TypeError(f"values must be a floating-point tensor (NaN marks missing), got {values.dtype}")
        if values.dim() == 2:
            values = values.unsqueeze(-1)  # (B, L) -> (B, L, 1)
        observed_values = torch.isfinite(values)  # (B, L, F)
        valid = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            if lengths.dim() != 1 or lengths.shape[0] != values.shape[0]:
                raise ValueError(
                    f"lengths must have shape [B] = [{values.shape[0]}] to match values, got {list(lengths.shape)}"
                )
            valid = cls.from_lengths(lengths, values.shape[1]).valid.to(values.device)
            observed_values = observed_values & valid.unsqueeze(-1)
        return cls(observed_values.any(-1), valid, observed_values)

    @classmethod
    def from_tokens(cls, ids: Tensor, missing: Iterable[int] = (), pad: Optional[int] = None) -> "Mask":
        """From integer token ids [B, L].

        Ids in ``missing`` (e.g. ``[unk_id, missing_id]``) are missing; ``pad`` is padding.
        """
        _require_tensor("ids", ids, (2,), "[B, L]")
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
        missing = list(missing)
        for name, value in [("missing", m) for m in missing] + [("pad", pad)] * (pad is not None):
            whole = isinstance(value, numbers.Integral) or (
                isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point()
            )
            if isinstance(value, bool) or not whole:
                raise TypeError(f"{name} ids must be whole numbers, got {value!r}")
        valid = torch.ones_like(ids, dtype=torch.bool) if pad is None else ids != pad
        observed = valid
        for m in missing:  # a few ids: one comparison each (exports everywhere, unlike isin)
            observed = observed & (ids != int(m))
        return cls(observed, valid)

    @classmethod
    def from_lengths(cls, lengths: Tensor, max_len: Optional[int] = None) -> "Mask":
        """From sequence lengths long[B]: positions ``< lengths[b]`` are observed, the rest padding."""
        lengths = torch.as_tensor(lengths)
        _require_tensor("lengths", lengths, (1,), "[B]")
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
        if max_len is not None and (
            isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len < 0
        ):
            raise ValueError(f"max_len must be a whole number >= 0, got {max_len!r}")
        if tracing():
            if max_len is None:
                raise ValueError("Mask.from_lengths needs max_len while a model is traced (compile / export)")
        else:  # data checks: eager mode only
            if lengths.numel() and int(lengths.min()) < 0:
                raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
            longest = int(lengths.max()) if lengths.numel() else 0
            max_len = longest if max_len is None else max_len
            if longest > max_len:
                raise ValueError(f"max_len={max_len} is shorter than the longest length {longest}")
        valid = torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
        return cls(valid, valid.clone())

    @classmethod
    def from_confidence(
        cls, confidence: Tensor, threshold: float, valid: Optional[Tensor] = None, *, soft: bool = False
    ) -> "Mask":
        """From an engine's confidence per position, float[B, L] in [0, 1] (OCR / speech recognition).

        A position is observed when its confidence is at least ``threshold``; a NaN confidence is
        missing. ``valid`` (bool[B, L]) marks non-padding positions; all are valid when omitted.
        Example, ``threshold=0.5``::

            confidence  0.9  0.2  nan  0.5        observed  ■ □ □ ■

        ``soft=True`` also keeps the confidences (:attr:`confidence`): attention then adds
        ``log(confidence)`` to each observed key's logit; a confidence of 0 is missing at any threshold.
        """
        _require_tensor("confidence", confidence, (2,), "[B, L]")
        if not confidence.is_floating_point():
            raise TypeError(f"confidence must be a floating-point tensor, got {confidence.dtype}")
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if not tracing():  # a data check: eager mode only
            bad = ~torch.isnan(confidence) & ((confidence < 0) | (confidence > 1))
            if bool(bad.any()):
                raise ValueError("confidence must lie in [0, 1] (NaN = missing)")
        if valid is None:
            valid = torch.ones(confidence.shape, dtype=torch.bool, device=confidence.device)
        else:
            _require_tensor("valid", valid, (2,), "[B, L]")
            if valid.shape != confidence.shape:
                raise ValueError(f"valid must have shape {tuple(confidence.shape)}, got {tuple(valid.shape)}")
        observed = (confidence >= threshold) & valid  # NaN compares False: missing
        if not soft:
            return cls(observed, valid)
        observed = observed & (confidence > 0)  # log(0) = -inf: a confidence of 0 is missing, exactly
        return cls(observed, valid, confidence=torch.where(observed, confidence, torch.ones_like(confidence)))

    @classmethod
    def from_indicator(cls, indicator: Tensor, *, true_means: str, valid: Optional[Tensor] = None) -> "Mask":
        """From an explicit 0/1 or bool indicator, [B, L] (per step) or [B, L, F] (per feature).

        ``true_means`` must be ``"observed"`` (1 = observed, as in PyPOTS' ``missing_mask``) or
        ``"missing"`` (1 = missing, as in ``key_padding_mask``). ``valid`` (bool[B, L]) marks
        non-padding positions; all positions are valid when omitted.
        """
        _require_tensor("indicator", indicator, (2, 3), "[B, L] or [B, L, F]")
        if true_means not in ("observed", "missing"):
            raise ValueError(f"true_means must be 'observed' or 'missing', got {true_means!r}")
        if indicator.dtype != torch.bool:
            bad = (indicator != 0) & (indicator != 1)
            if not tracing() and bool(bad.any()):
                raise ValueError("indicator must hold only 0 and 1 (or be bool)")
            indicator = indicator != 0
        observed = indicator if true_means == "observed" else ~indicator
        if valid is None:
            valid = torch.ones(observed.shape[:2], dtype=torch.bool, device=observed.device)
        else:
            _require_tensor("valid", valid, (2,), "[B, L]")
            if valid.shape != observed.shape[:2]:
                raise ValueError(f"valid must have shape {tuple(observed.shape[:2])}, got {tuple(valid.shape)}")
        if observed.dim() == 3:
            observed_values = observed & valid.unsqueeze(-1)
            return cls(observed_values.any(-1), valid, observed_values)
        return cls(observed & valid, valid)

    @classmethod
    def full(cls, batch: int, length: int, device: torch.device | str | None = None) -> "Mask":
        """Everything observed."""
        ones = torch.ones(batch, length, dtype=torch.bool, device=device)
        return cls(ones, ones)

    # ------------------------------------------------------------------ combining
    def __and__(self, other: "Mask") -> "Mask":
        """Observed in both (and valid in both)."""
        if not isinstance(other, Mask):
            return NotImplemented
        if other.shape != self.shape:
            raise ValueError(f"cannot combine masks of shapes {tuple(self.shape)} and {tuple(other.shape)}")
        ov = None
        if self.observed_values is not None and other.observed_values is not None:
            ov = self.observed_values & other.observed_values
        elif self.observed_values is not None or other.observed_values is not None:
            ov = self.observed_values if self.observed_values is not None else other.observed_values
            ov = ov & (self.observed & other.observed).unsqueeze(-1)
        valid = self.valid & other.valid
        observed = self.observed & other.observed
        if ov is not None:
            observed = observed & ov.any(-1)
        confidence = None  # the product of both (None = 1 everywhere), read at positions observed in both
        if self.confidence is not None or other.confidence is not None:
            one = lambda m: m.confidence if m.confidence is not None else torch.ones_like(observed, dtype=torch.float)
            confidence = torch.where(observed, one(self) * one(other), torch.ones_like(one(self)))
        return Mask(observed, valid, ov, confidence)

    def to(self, device: torch.device | str) -> "Mask":
        ov = None if self.observed_values is None else self.observed_values.to(device)
        confidence = None if self.confidence is None else self.confidence.to(device)
        return Mask(self.observed.to(device), self.valid.to(device), ov, confidence)

    def key_bias(self) -> Optional[Tensor]:
        """float[B, L]: ``log(confidence)`` at observed positions, 0 elsewhere (never read there); None
        without confidences. Added to each key's attention logit by the stacks."""
        if self.confidence is None:
            return None
        return torch.where(self.observed, self.confidence, torch.ones_like(self.confidence)).log()

    @property
    def shape(self) -> torch.Size:
        return self.observed.shape

    @property
    def device(self) -> torch.device:
        return self.observed.device

    @property
    def missing(self) -> Tensor:
        """bool[B, L]: valid but not observed."""
        return self.valid & ~self.observed

    def check_matches(self, name: str, x: Tensor) -> None:
        """Raise a clear error unless ``x`` has shape [B, L, ...] on this mask's device."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[:2] != self.shape:
            raise ValueError(
                f"{name} must have shape [B, L, ...] = {list(self.shape)} + [...] to match the mask, "
                f"got {list(x.shape)}"
            )
        if x.device != self.device:
            raise ValueError(f"{name} is on {x.device} but the mask is on {self.device}")

    # ------------------------------------------------------------------ renderers
    def to_sdpa(self, causal: bool = False, keys: str = "observed") -> Tensor:
        """Boolean mask for ``F.scaled_dot_product_attention``: True = may attend.

        Shape [B, 1, 1, L] (keys only) or [B, 1, L, L] when ``causal``. ``keys="valid"`` renders the
        padding-only mask of the ``static`` baseline. Rows with no allowed key stay all False;
        :func:`dynmask.attention.masked_attention` zeroes them instead of trusting the softmax.
        """
        keep = self._keys(keys)
        m = keep[:, None, None, :]  # (B, 1, 1, L)
        if causal:
            m = m & causal_mask(self.shape[1], self.device)  # (B, 1, L, L)
        return m

    def to_additive(self, dtype: torch.dtype = torch.float32, causal: bool = False, keys: str = "observed") -> Tensor:
        """Additive float bias: 0 where attention is allowed, -inf where it is not.

        Shape as :meth:`to_sdpa`. -inf (not ``finfo.min``) so that a fully masked row cannot turn
        into a uniform average over every key.
        """
        allowed = self.to_sdpa(causal=causal, keys=keys)
        zero = torch.zeros((), dtype=dtype, device=self.device)
        return torch.where(allowed, zero, torch.tensor(float("-inf"), dtype=dtype, device=self.device))

    def to_key_padding_mask(self, keys: str = "observed") -> Tensor:
        """bool[B, L] for ``nn.MultiheadAttention(key_padding_mask=)``: True = **ignore**."""
        return ~self._keys(keys)

    def to_hf_attention_mask(self, keys: str = "observed") -> Tensor:
        """long[B, L] for Hugging Face models: 1 = attend, 0 = ignore."""
        return self._keys(keys).long()

    def to_indicator(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Float 1 = observed, 0 = missing; per feature [B, L, F] when known, else [B, L]."""
        m = self.observed_values if self.observed_values is not None else self.observed
        return m.to(dtype)

    def lengths(self, keys: str = "observed") -> Tensor:
        """long[B]: number of observed (or valid) positions in each sample."""
        return self._keys(keys).sum(-1)

    def cu_seqlens(self, keys: str = "observed") -> Tensor:
        """int32[B + 1]: cumulative observed counts, for packed ("varlen") attention kernels."""
        lengths = self.lengths(keys)
        return torch.cat([lengths.new_zeros(1), lengths.cumsum(0)]).to(torch.int32)

    def _keys(self, keys: str) -> Tensor:
        if keys == "observed":
            return self.observed
        if keys == "valid":
            return self.valid
        raise ValueError(f"keys must be 'observed' or 'valid', got {keys!r}")
