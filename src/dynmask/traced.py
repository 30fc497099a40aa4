"""Models wrapped for export so that the graph builds its own mask from its input (True = observed): from
the token ids for text, from NaN / inf for series.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .masks import Mask


class TextClassifierGraph(nn.Module):
    """ids int64[B, L] -> logits float[B, C], the mask built from the ids (True = observed).

    An id outside ``[0, vocab_size)`` (a negative id, one past the vocabulary) is missing: the graph has
    no way to raise an error, and a Gather would otherwise wrap a negative id onto a real token.

    ``confidence_input``: a second input, confidence float[B, L] in [0, 1] per token (an engine's word
    confidence inherited by its pieces): 0 is missing, others a log-prior on attention
    (:meth:`Mask.from_confidence` with ``soft=True``); all ones reads as the one-input graph."""

    def __init__(
        self,
        model: nn.Module,
        missing_ids: Sequence[int],
        pad_id: int,
        confidence_input: bool = False,
        vocab_size: Optional[int] = None,
    ):
        super().__init__()
        self.model, self.missing_ids, self.pad_id = model, [int(i) for i in missing_ids], int(pad_id)
        self.confidence_input, self.vocab_size = confidence_input, vocab_size

    def forward(self, ids: Tensor, confidence: Optional[Tensor] = None) -> Tensor:
        mask = Mask.from_tokens(ids, missing=self.missing_ids, pad=self.pad_id)
        if self.vocab_size is not None:
            known = (ids >= 0) & (ids < self.vocab_size)  # bool[B, L]
            mask = mask & Mask(known, torch.ones_like(known))
            ids = ids.clamp(0, self.vocab_size - 1)  # the values at missing positions change nothing
        if self.confidence_input:
            mask = mask & Mask.from_confidence(confidence, 0.0, soft=True)
        return self.model(ids, mask)


class SeriesGraph(nn.Module):
    """values float[B, L, F] (NaN = missing) -> the imputer's filled values or the classifier's logits."""

    def __init__(self, model: nn.Module, impute: bool) -> None:
        super().__init__()
        self.model, self.impute = model, impute

    def forward(self, values: Tensor) -> Tensor:
        mask = Mask.from_nan(values)
        return self.model.impute(values, mask) if self.impute else self.model(values, mask)
