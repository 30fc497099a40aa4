"""A pretrained encoder as dynmask modules: embeddings (positions by original index) and a dm.Encoder; mask
polarity True = observed.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph import tracing
from ..layers import Encoder
from ..masks import Mask
from ..onnx_fusion import computed_rows
from ..pooling import masked_mean
from .config import ACTIVATIONS, PretrainedConfig


class PretrainedEmbeddings(nn.Module):
    """Word + position + token-type embeddings and LayerNorm, reading only observed ids.

    ``forward(ids, mask, token_type_ids=None)``: ids long[B, L]; ``mask`` True = observed. Position
    ``i`` gets the embedding of index ``i + position_offset`` whatever is missing around it."""

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, d)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, d) if config.type_vocab_size else None
        self.LayerNorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.position_offset = config.position_offset
        self.pad_token_id = config.pad_token_id
        self.embed_scale = config.embed_scale

    def forward(self, ids: Tensor, mask: Mask, token_type_ids: Optional[Tensor] = None, start: int = 0) -> Tensor:
        """``start``: the index of the first position (a decoder embedding one new token at step ``start``)."""
        mask.check_matches("ids", ids)
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"ids must be an integer tensor, got {ids.dtype}")
        batch, length = ids.shape
        if start + length + self.position_offset > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"{start + length} tokens exceed the model's "
                f"{self.position_embeddings.num_embeddings - self.position_offset} positions; cut the texts (max_len)"
            )
        safe = torch.where(mask.observed, ids, torch.full_like(ids, self.pad_token_id))  # missing ids never read
        if not tracing() and safe.numel():  # a data check: eager mode only (one sync for both bounds)
            low, high = torch.stack([safe.min(), safe.max()]).tolist()
            if low < 0 or high >= self.word_embeddings.num_embeddings:
                raise ValueError(f"observed token ids must lie in [0, {self.word_embeddings.num_embeddings})")
        positions = torch.arange(length, device=ids.device) + (self.position_offset + start)  # (L,): original index
        words = self.word_embeddings(safe)  # (B, L, D)
        if self.embed_scale != 1.0:
            words = words * self.embed_scale
        x = words + self.position_embeddings(positions).unsqueeze(0)  # (B, L, D)
        if self.token_type_embeddings is not None:
            types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
            x = x + self.token_type_embeddings(torch.where(mask.observed, types, torch.zeros_like(types)))
        return self.dropout(self.LayerNorm(x))


class PretrainedEncoder(nn.Module):
    """A Hugging Face encoder as dynmask modules: :class:`PretrainedEmbeddings` then
    :class:`dynmask.Encoder` (post-norm, the checkpoint's activation). ``forward(ids, mask)`` returns
    float[B, L, D], zero at missing and padding positions; observed outputs never depend on what the
    missing positions hold."""

    def __init__(self, config: PretrainedConfig, backend: str = "auto", attn_dropout: Optional[float] = None) -> None:
        super().__init__()
        self.config = config
        self.embeddings = PretrainedEmbeddings(config)
        self.encoder = Encoder(
            config.hidden_size,
            config.num_heads,
            config.num_layers,
            d_ff=config.intermediate_size,
            dropout=config.hidden_dropout,
            attn_dropout=config.attention_dropout if attn_dropout is None else attn_dropout,
            activation=ACTIVATIONS[config.activation],
            norm_first=False,
            layer_norm_eps=config.layer_norm_eps,
            backend=backend,
            max_len=config.max_position_embeddings,
        )
        for layer in self.encoder.layers:  # BERT has no dropout between the feed-forward's two linears
            layer.dropout = nn.Identity()
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if config.family != "distilbert" else None

    def forward(
        self, ids: Tensor, mask: Mask, token_type_ids: Optional[Tensor] = None, backend: Optional[str] = None
    ) -> Tensor:
        with computed_rows():  # the embeddings are computed from ids (never NaN): see onnx_fusion
            return self.encoder(self.embeddings(ids, mask, token_type_ids), mask, backend=backend)  # (B, L, D)

    def pooled(self, hidden: Tensor) -> Tensor:
        """BERT's pooler: tanh(dense(h at position 0)) -> float[B, D] (the [CLS] token)."""
        if self.pooler is None:
            raise ValueError(f"a {self.config.family} checkpoint has no pooler; use mean pooling")
        return torch.tanh(self.pooler(hidden[:, 0]))


def mean_embeddings(encoder: PretrainedEncoder, ids: Tensor, mask: Mask, normalize: bool = False) -> Tensor:
    """Sentence embeddings float[B, D]: the mean of the last hidden states over observed positions
    ([CLS]/[SEP] included, as sentence-transformers does); L2-normalised when ``normalize``."""
    pooled = masked_mean(encoder(ids, mask), mask)
    return F.normalize(pooled, dim=-1) if normalize else pooled
