"""Text classifier over token ids with missing tokens.

``method`` picks how missing tokens are handled (a method of :mod:`dynmask.methods` that runs on
``text``; mask polarity: True = observed):

* ``"dynamic"``: the dynamic mask. Missing tokens are never keys, never pooled; their ids and text
  cannot change any prediction.
* ``"static"``: baseline. Missing tokens become a learned placeholder embedding that is attended and
  pooled like any token (only padding is masked).
* ``"seed_literal"``: the original write-up's ``softmax((Q*A)Kᵀ/√d)V`` (ablation).
* ``"delete"``: missing tokens are removed and the rest renumbered 0..n-1, as if they never existed.

``arch`` picks the sequence model: ``"transformer"`` (default), a bidirectional ``"lstm"`` /
``"gru"`` (:mod:`dynmask.rnn`: missing steps never update the state; with ``method="static"`` the
recurrent model reads the placeholders like any token), or ``"grud"``: GRU-D (Che et al., 2018) over
the token embeddings, each embedding dimension a feature whose mask is the token's mask; at a missing
token it reads the last observed embedding decayed towards zero by the number of steps since it, and
its state decays too. GRU-D handles missing steps itself, so it takes ``method="dynamic"`` only, and
its outputs at every valid step (missing ones included: they depend on observed tokens only) are pooled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from torch import Tensor, nn

from ..compaction import Compaction
from ..embeddings import TokenEmbedding
from ..graph import traced_width, tracing
from ..layers import Encoder
from ..masks import Mask
from ..methods import get_method
from ..onnx_fusion import computed_rows
from ..packing import packing_pays
from ..pooling import AttentionPooling, masked_max, masked_mean
from ..rnn import GRUD, MaskedGRU, MaskedLSTM

__all__ = ["TextClassifier", "ClassifierConfig", "ARCHS"]

ARCHS = ("transformer", "lstm", "gru", "grud")


@dataclass
class ClassifierConfig:
    vocab_size: int
    num_classes: int
    method: str = "dynamic"
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    pooling: str = "mean"
    positional: str = "sinusoidal"
    max_len: int = 512
    backend: str = "auto"
    arch: str = "transformer"

    def to_dict(self) -> dict:
        return asdict(self)


class TextClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        method = get_method(config.method, "text")
        if config.pooling not in ("mean", "max", "attention"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'attention', got {config.pooling!r}")
        if config.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS} for text, got {config.arch!r}")
        self.method = method.check("text", config.arch)
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.d_model)
        if config.arch == "transformer":
            self.encoder = Encoder(
                config.d_model,
                config.n_heads,
                config.n_layers,
                d_ff=config.d_ff,
                dropout=config.dropout,
                method=method.stack_method,  # delete hands the stack an ordinary (compacted) mask
                positional=config.positional,
                max_len=config.max_len,
                backend=config.backend,
            )
        elif config.arch == "grud":
            self.encoder = GRUD(config.d_model, config.d_model)  # features = embedding dims, x_mean = 0
        else:
            rnn = MaskedLSTM if config.arch == "lstm" else MaskedGRU
            self.encoder = rnn(
                config.d_model,
                config.d_model // 2,
                num_layers=config.n_layers,
                bidirectional=True,
                dropout=config.dropout if config.n_layers > 1 else 0.0,
            )
        self.attn_pool = AttentionPooling(config.d_model) if config.pooling == "attention" else None
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_model, config.num_classes)

    def forward(self, ids: Tensor, mask: Mask) -> Tensor:
        """``ids`` long[B, L], ``mask`` (True = observed) -> logits float[B, C]."""
        ids, mask = self.method.prepare_ids(ids, mask)  # delete: observed ids only, renumbered
        with computed_rows():  # what the encoder and the pooling read is computed from ids (never NaN)
            return self._forward(ids, mask)

    def _forward(self, ids: Tensor, mask: Mask) -> Tensor:
        plan = self._compact_first(mask)
        if plan is not None:  # the observed tokens only, from the embedding to the pooling
            ids = ids.gather(1, plan.order)  # (B, N)
            confidence = None if mask.confidence is None else plan.gather(mask.confidence)  # (B, N)
            mask = Mask(plan.kept, plan.valid, confidence=confidence)  # kept slots are a prefix of each row
            packed = "compact" if packing_pays() else "dense"  # the batch is compact already: pack it, or run it
            h = self.encoder(self.embed(ids, mask), mask, backend=packed, positions=plan.positions)  # (B, N, D)
            return self.head(self.dropout(self._pool(h, mask.observed)))  # (B, C)
        x = self.embed(ids, mask)  # (B, L, D)
        if self.config.arch == "transformer":
            h = self.encoder(x, mask)  # (B, L, D)
        elif self.config.arch == "grud":
            h = self.encoder(x, mask)[0]  # (B, L, D); the token mask stands for every embedding dim
        else:  # static: the recurrent model reads every valid step, placeholders included
            h = self.encoder(x, self.method.transform_mask(mask))[0]
        reads_observed = not self.method.reads_missing and self.config.arch != "grud"
        pool_over = mask.observed if reads_observed else mask.valid  # (B, L)
        return self.head(self.dropout(self._pool(h, pool_over)))  # (B, C)

    def _pool(self, h: Tensor, over: Tensor) -> Tensor:
        """float[B, L, D] -> float[B, D] over the positions ``over`` (bool[B, L]) marks."""
        if self.attn_pool is not None:
            return self.attn_pool(h, over)
        if self.config.pooling == "max":
            return masked_max(h, over)
        return masked_mean(h, over)

    def _compact_first(self, mask: Mask) -> Optional[Compaction]:
        """With the encoder's backend ``"compact"`` (as ``dynmask export --backend compact`` sets it) and the
        dynamic method: the plan that gathers each row's observed tokens (True = observed) before the
        embedding, so the embedding, the positions and the pooling run on the compact batch too, not
        only the layers. None otherwise, and when nothing at all is observed (eager)."""
        if self.config.arch != "transformer" or self.encoder.backend != "compact" or self.method.name != "dynamic":
            return None
        keep = mask.observed  # (B, L)
        if tracing():  # a symbolic width, as the stack's own compaction traces it
            return None if keep.shape[1] < 2 else Compaction.plan(keep, width=traced_width(keep))
        plan = Compaction.plan(keep)  # its width: one device sync
        return plan if plan.width else None
