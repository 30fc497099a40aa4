"""Encoder-decoder over a source with missing tokens (translation, summarization).

Mask polarity: True = observed. Missing source tokens are never keys, in the encoder's
self-attention or in the decoder's cross-attention (``method="dynamic"``). The decoder's
self-attention composes the causal mask with the target's missing mask, so a missing target token
is never a key; the loss skips missing targets (:func:`dynmask.masked_cross_entropy`), so the
``[MISSING]`` marker is never taught as a word.

``method="static"`` / ``"seed_literal"``: the labelled baselines (missing source tokens are a
placeholder that is attended; the original write-up's formula).

``encoder=`` (a :class:`dynmask.hf.PretrainedConfig` dict) builds a warm-startable model in a Hugging
Face encoder's shape (BERT2BERT, Rothe et al. 2020): its embeddings (learned positions, LayerNorm)
shared by source and target, a post-norm encoder and decoder with its activation; see
:func:`warm_start_seq2seq`, which copies the checkpoint's weights into it.

``copy=True`` adds a pointer-generator output (See et al., 2017): the next-token distribution is
``p_gen · softmax(W h) + (1 − p_gen) · Σ_i a_i [src_i = w]``, where ``a`` is a copy attention over the
source whose weight on a missing source position is exactly zero, forward and backward (a ``where``
on the scores and on the weights, and the ids there are never read). The model then returns
log-probabilities where it returned logits (``log_softmax`` of them is themselves, so losses and
decoding are unchanged).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from ..embeddings import TokenEmbedding
from ..hf.config import ACTIVATIONS, PretrainedConfig
from ..hf.encoder import PretrainedEmbeddings
from ..layers import Decoder, DecoderCache, Encoder
from ..masks import Mask
from ..methods import get_method

__all__ = ["Seq2SeqConfig", "Seq2Seq", "CopyCache", "pretrained_shape"]


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
    copy: bool = False  # a pointer-generator output that copies observed source tokens
    encoder: Optional[dict] = None  # PretrainedConfig.to_dict(): the shape of a warm start (BERT2BERT)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CopyCache:
    """The decoder's cache plus what the copy attention reads: projected source keys (B, S, D), the
    source ids (B, S) with missing ones replaced by 0, the copyable positions (B, S), the memory."""

    decoder: DecoderCache
    keys: Tensor
    src: Tensor
    keep: Tensor
    memory: Tensor

    def reorder(self, index: Tensor) -> "CopyCache":
        pick = lambda t: t.index_select(0, index)
        return CopyCache(
            self.decoder.reorder(index), pick(self.keys), pick(self.src), pick(self.keep), pick(self.memory)
        )


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.method = get_method(config.method, "seq2seq")
        self.config = config
        d = config.d_model
        shared = config.tgt_vocab_size is None
        common = dict(d_ff=config.d_ff, dropout=config.dropout, method=config.method, max_len=config.max_len)
        self.pretrained = None if config.encoder is None else PretrainedConfig(**config.encoder)
        if self.pretrained is None:
            self.src_embed = TokenEmbedding(config.vocab_size, d)
            self.tgt_embed = self.src_embed if shared else TokenEmbedding(config.tgt_vocab_size, d)
            common.update(positional="sinusoidal")
        else:  # a Hugging Face model's shape: its embeddings add the positions (by original index)
            self._check_pretrained_shape(config, self.pretrained)
            self.src_embed = self.tgt_embed = PretrainedEmbeddings(self.pretrained)
            if self.is_bart:  # the decoder has its own positions and LayerNorm, the same word table
                self.tgt_embed = PretrainedEmbeddings(self.pretrained)
                self.tgt_embed.word_embeddings = self.src_embed.word_embeddings
            common.update(
                positional=None,
                attn_dropout=self.pretrained.attention_dropout,
                activation=ACTIVATIONS[self.pretrained.activation],
                norm_first=False,
                layer_norm_eps=self.pretrained.layer_norm_eps,
            )
        self.encoder = Encoder(d, config.n_heads, config.enc_layers, backend=config.backend, **common)
        self.decoder = Decoder(d, config.n_heads, config.dec_layers, backend=config.backend, **common)
        if self.pretrained is not None:
            inner = self.pretrained.hf.get("activation_dropout", 0.0) if self.is_bart else 0.0
            for layer in [*self.encoder.layers, *self.decoder.layers]:  # BERT: no dropout inside the FFN
                layer.dropout = nn.Dropout(inner) if inner else nn.Identity()
        vocab_out = config.vocab_size if shared else config.tgt_vocab_size
        self.out = nn.Linear(d, vocab_out, bias=self.is_bart)  # BART: + final_logits_bias
        if self.is_bart:
            nn.init.zeros_(self.out.bias)
        if config.tie_embeddings:
            table = self.tgt_embed.table if self.pretrained is None else self.tgt_embed.word_embeddings
            self.out.weight = table.weight
        if config.copy:
            if not shared:
                raise ValueError("copy=True needs one vocabulary shared by source and target")
            self.copy_query = nn.Linear(d, d)
            self.copy_key = nn.Linear(d, d)
            self.copy_gate = nn.Linear(2 * d, 1)

    @property
    def is_bart(self) -> bool:
        """A whole pretrained encoder-decoder (BART) rather than a BERT2BERT warm start."""
        return self.pretrained is not None and self.pretrained.family == "bart"

    @staticmethod
    def _check_pretrained_shape(config: Seq2SeqConfig, pretrained: PretrainedConfig) -> None:
        if pretrained.decoder_layers and config.dec_layers != pretrained.decoder_layers:
            raise ValueError(
                f"dec_layers {config.dec_layers} does not match the pretrained decoder's {pretrained.decoder_layers}"
            )
        expected = dict(
            vocab_size=pretrained.vocab_size,
            tgt_vocab_size=None,
            d_model=pretrained.hidden_size,
            n_heads=pretrained.num_heads,
            enc_layers=pretrained.num_layers,
            d_ff=pretrained.intermediate_size,
        )
        wrong = {k: getattr(config, k) for k, v in expected.items() if getattr(config, k) != v}
        if wrong:
            raise ValueError(f"settings {wrong} do not match the pretrained encoder's {expected}")
        if config.max_len + pretrained.position_offset > pretrained.max_position_embeddings:
            raise ValueError(
                f"max_len {config.max_len} exceeds the pretrained encoder's "
                f"{pretrained.max_position_embeddings - pretrained.position_offset} positions"
            )

    def _embed_target(self, ids: Tensor, mask: Mask, start: int = 0) -> Tensor:
        """Target embeddings float[B, T, D] of ``ids`` long[B, T] at positions ``start``, ``start + 1``, ..."""
        if self.pretrained is None:
            return self.tgt_embed(ids, mask)  # the decoder stack adds (sinusoidal) positions
        return self.tgt_embed(ids, mask, start=start)

    @property
    def tgt_vocab_size(self) -> int:
        return self.out.out_features

    def encode(self, src: Tensor, src_mask: Mask) -> Tensor:
        """``src`` long[B, S] -> memory float[B, S, D] (zero at missing source positions)."""
        return self.encoder(self.src_embed(src, src_mask), src_mask)

    def decode(
        self,
        memory: Tensor,
        src_mask: Mask,
        tgt_in: Tensor,
        tgt_mask: Mask,
        select: Optional[Tensor] = None,
        src: Optional[Tensor] = None,
    ) -> Tensor:
        """Teacher-forced logits for target inputs ``tgt_in`` long[B, T]: float[B, T, V], or float[N, V]
        for the N positions where ``select`` (bool[B, T]) is True — the output projection, the largest
        matrix product, then skips padding and uncounted positions. With ``copy``, log-probabilities of
        the pointer-generator mixture; ``src`` (long[B, S]) is then required."""
        h = self.decoder(self._embed_target(tgt_in, tgt_mask), memory, tgt_mask, src_mask)  # (B, T, D)
        if not self.config.copy:
            return self.out(h if select is None else h[select])
        if src is None:
            raise ValueError("a copy model needs the source ids: decode(..., src=src)")
        keys, clean_src, keep = self._copy_inputs(memory, src_mask, src)
        return self._mixture(h, keys, clean_src, keep, memory, select)  # (B, T, V) or (N, V)

    def _copy_inputs(self, memory: Tensor, src_mask: Mask, src: Tensor):
        src_mask.check_matches("src", src)
        keep = self.method.keys(src_mask)  # (B, S) copyable
        clean_src = torch.where(keep, src, torch.zeros_like(src))  # ids at other positions are never read
        return self.copy_key(memory), clean_src, keep

    def _mixture(
        self, h: Tensor, keys: Tensor, src: Tensor, keep: Tensor, memory: Tensor, select: Optional[Tensor] = None
    ) -> Tensor:
        """log P(w) for decoder states h (B, T, D): the generator's softmax mixed with a copy distribution
        over the source whose weight is exactly zero at positions not in ``keep`` (B, S). With ``select``
        (bool[B, T]) only those N rows get their vocabulary-sized distributions: (N, V)."""
        scores = self.copy_query(h) @ keys.transpose(1, 2) / math.sqrt(h.shape[-1])  # (B, T, S)
        allowed = keep.unsqueeze(1)  # (B, 1, S)
        has_key = allowed.any(-1, keepdim=True)  # (B, 1, 1)
        open_rows = allowed | ~has_key  # a source with nothing observed: opened, then weighted zero
        weights = torch.softmax(torch.where(open_rows, scores, scores.new_tensor(float("-inf"))), dim=-1)
        weights = torch.where(allowed, weights, weights.new_zeros(()))  # exactly 0 on missing positions
        context = weights @ memory  # (B, T, D)
        p_gen = torch.sigmoid(self.copy_gate(torch.cat([h, context], dim=-1)))  # (B, T, 1)
        p_gen = torch.where(has_key, p_gen, torch.ones_like(p_gen))  # nothing to copy: generate
        index = src.unsqueeze(1).expand(-1, h.shape[1], -1)  # (B, T, S)
        if select is not None:  # (N, ...): the rows that are scored
            h, weights, p_gen, index = h[select], weights[select], p_gen[select], index[select]
        vocab = torch.softmax(self.out(h).float(), dim=-1)  # (..., V)
        copy = torch.zeros_like(vocab).scatter_add(-1, index, weights.float())  # (..., V)
        mixed = p_gen.float() * vocab + (1 - p_gen.float()) * copy
        return torch.log(mixed.clamp_min(1e-30))

    def forward(
        self, src: Tensor, src_mask: Mask, tgt_in: Tensor, tgt_mask: Mask, select: Optional[Tensor] = None
    ) -> Tensor:
        return self.decode(self.encode(src, src_mask), src_mask, tgt_in, tgt_mask, select, src=src)

    # ------------------------------------------------------------------ incremental decoding
    def start(self, memory: Tensor, src_mask: Mask, src: Optional[Tensor] = None):
        cache = self.decoder.start(memory, src_mask)
        if not self.config.copy:
            return cache
        if src is None:
            raise ValueError("a copy model needs the source ids: start(memory, src_mask, src=src)")
        keys, clean_src, keep = self._copy_inputs(memory, src_mask, src)
        return CopyCache(cache, keys, clean_src, keep, memory)

    def next_logits(self, token: Tensor, cache) -> tuple[Tensor, object]:
        """``token`` long[B] (the newest, observed) -> logits float[B, V] for the next one (with ``copy``:
        log-probabilities), and the cache."""
        ids = token.unsqueeze(1)  # (B, 1)
        position = (cache.decoder if self.config.copy else cache).position  # steps decoded so far
        emb = self._embed_target(ids, Mask.full(ids.shape[0], 1, ids.device), start=position)  # (B, 1, D)
        if not self.config.copy:
            h, cache = self.decoder.step(emb, cache)
            return self.out(h[:, 0]), cache
        h, decoder = self.decoder.step(emb, cache.decoder)
        out = self._mixture(h, cache.keys, cache.src, cache.keep, cache.memory)[:, 0]  # (B, V)
        return out, CopyCache(decoder, cache.keys, cache.src, cache.keep, cache.memory)


def pretrained_shape(pc: PretrainedConfig, dec_layers: int, **settings) -> Seq2SeqConfig:
    """The :class:`Seq2SeqConfig` of a model in the shape of the pretrained ``pc`` (width, heads, encoder
    layers, feed-forward, vocabulary), with ``dec_layers`` decoder layers and the other ``settings``
    (method, copy, max_len, backend)."""
    return Seq2SeqConfig(
        vocab_size=pc.vocab_size,
        d_model=pc.hidden_size,
        n_heads=pc.num_heads,
        enc_layers=pc.num_layers,
        dec_layers=dec_layers,
        d_ff=pc.intermediate_size,
        dropout=pc.hidden_dropout,
        encoder=pc.to_dict(),
        **settings,
    )
