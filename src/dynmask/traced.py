"""Models wrapped for export so that the graph builds its own mask from its input (True = observed): from
the token ids for text, from NaN / inf for series.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .masks import Mask


class TextClassifierGraph(nn.Module):
    """ids int64[B, L] -> logits float[B, C], the mask built from the ids (True = observed)."""

    def __init__(self, model: nn.Module, missing_ids: Sequence[int], pad_id: int) -> None:
        super().__init__()
        self.model, self.missing_ids, self.pad_id = model, [int(i) for i in missing_ids], int(pad_id)

    def forward(self, ids: Tensor) -> Tensor:
        return self.model(ids, Mask.from_tokens(ids, missing=self.missing_ids, pad=self.pad_id))


class SeriesGraph(nn.Module):
    """values float[B, L, F] (NaN = missing) -> the imputer's filled values or the classifier's logits."""

    def __init__(self, model: nn.Module, impute: bool) -> None:
        super().__init__()
        self.model, self.impute = model, impute

    def forward(self, values: Tensor) -> Tensor:
        mask = Mask.from_nan(values)
        return self.model.impute(values, mask) if self.impute else self.model(values, mask)
