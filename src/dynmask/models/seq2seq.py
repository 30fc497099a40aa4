"""Encoder-decoder over a source with missing tokens (translation, summarization).

Mask polarity: True = observed. Missing source tokens are never keys, in the encoder's
self-attention or in the decoder's cross-attention (``method="dynamic"``). The decoder's
self-attention composes the causal mask with the target's missing mask, so a missing target token
is never a key; the loss skips missing targets (:func:`dynmask.masked_cross_entropy`), so the
``[MISSING]`` marker is never taught as a word.

``method="static"`` / ``"seed_literal"``: the labelled baselines (missing source tokens are a
placeholder that is attended; the original write-up's formula).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from torch import Tensor, nn

from ..embeddings import TokenEmbedding
from ..layers import Decoder, DecoderCache, Encoder
from ..masks import Mask

__all__ = ["Seq2SeqConfig", "Seq2Seq", "SEQ2SEQ_METHODS"]

SEQ2SEQ_METHODS = ("dynamic", "static", "seed_literal")


@dataclass
class Seq2SeqConfig:
    vocab_size: int
    tgt_vocab_size: Optional[int] = None  # None: one vocabulary shared by source and target
    method: str = "dynamic"
    d_model: int = 256
    n_heads: int = 4
    enc_layers: int = 3
    dec_layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1
    max_len: int = 512
    tie_embeddings: bool = True  # target embedding = output projection (and = source embedding when shared)
    backend: str = "auto"

    def to_dict(self) -> dict:
        return asdict(self)


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if config.method not in SEQ2SEQ_METHODS:
            raise ValueError(f"method must be one of {SEQ2SEQ_METHODS}, got {config.method!r}")
        self.config = config
        d = config.d_model
        self.src_embed = TokenEmbedding(config.vocab_size, d)
        shared = config.tgt_vocab_size is None
        self.tgt_embed = self.src_embed if shared else TokenEmbedding(config.tgt_vocab_size, d)
        common = dict(
            d_ff=config.d_ff,
            dropout=config.dropout,
            variant=config.method,
            positional="sinusoidal",
            max_len=config.max_len,
        )
        self.encoder = Encoder(d, config.n_heads, config.enc_layers, backend=config.backend, **common)
        self.decoder = Decoder(d, config.n_heads, config.dec_layers, backend=config.backend, **common)
        vocab_out = config.vocab_size if shared else config.tgt_vocab_size
        self.out = nn.Linear(d, vocab_out, bias=False)
        if config.tie_embeddings:
            self.out.weight = self.tgt_embed.table.weight

    @property
    def tgt_vocab_size(self) -> int:
        return self.out.out_features

    def encode(self, src: Tensor, src_mask: Mask) -> Tensor:
        """``src`` long[B, S] -> memory float[B, S, D] (zero at missing source positions)."""
        return self.encoder(self.src_embed(src, src_mask), src_mask)

    def decode(
        self, memory: Tensor, src_mask: Mask, tgt_in: Tensor, tgt_mask: Mask, select: Optional[Tensor] = None
    ) -> Tensor:
        """Teacher-forced logits for target inputs ``tgt_in`` long[B, T]: float[B, T, V], or float[N, V]
        for the N positions where ``select`` (bool[B, T]) is True — the output projection, the largest
        matrix product, then skips padding and uncounted positions."""
        h = self.decoder(self.tgt_embed(tgt_in, tgt_mask), memory, tgt_mask, src_mask)  # (B, T, D)
        return self.out(h if select is None else h[select])

    def forward(
        self, src: Tensor, src_mask: Mask, tgt_in: Tensor, tgt_mask: Mask, select: Optional[Tensor] = None
    ) -> Tensor:
        return self.decode(self.encode(src, src_mask), src_mask, tgt_in, tgt_mask, select)

    # ------------------------------------------------------------------ incremental decoding
    def start(self, memory: Tensor, src_mask: Mask) -> DecoderCache:
        return self.decoder.start(memory, src_mask)

    def next_logits(self, token: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """``token`` long[B] (the newest, observed) -> logits float[B, V] for the next one, and the cache."""
        ids = token.unsqueeze(1)  # (B, 1)
        emb = self.tgt_embed(ids, Mask.full(ids.shape[0], 1, ids.device))  # (B, 1, D)
        h, cache = self.decoder.step(emb, cache)
        return self.out(h[:, 0]), cache
