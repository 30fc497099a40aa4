"""Text classifier over token ids with missing tokens.

``method`` picks how missing tokens are handled (mask polarity: True = observed):

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

from torch import Tensor, nn

from ..compaction import Compaction
from ..embeddings import TokenEmbedding
from ..layers import Encoder
from ..masks import Mask
from ..pooling import AttentionPooling, masked_max, masked_mean
from ..rnn import GRUD, MaskedGRU, MaskedLSTM

__all__ = ["TextClassifier", "ClassifierConfig", "METHODS", "ARCHS"]

METHODS = ("dynamic", "static", "seed_literal", "delete")
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
        if config.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {config.method!r}")
        if config.pooling not in ("mean", "max", "attention"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'attention', got {config.pooling!r}")
        if config.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS} for text, got {config.arch!r}")
        if config.arch == "grud" and config.method != "dynamic":
            raise ValueError(
                f"arch='grud' handles missing tokens itself: it takes method='dynamic', got {config.method!r}"
            )
        if config.arch != "transformer" and config.method == "seed_literal":
            raise ValueError("method='seed_literal' is an attention formula: use arch='transformer'")
        self.config = config
        method = config.method if config.method in ("static", "seed_literal") else "dynamic"  # delete: dynamic
        self.embed = TokenEmbedding(config.vocab_size, config.d_model)
        if config.arch == "transformer":
            self.encoder = Encoder(
                config.d_model,
                config.n_heads,
                config.n_layers,
                d_ff=config.d_ff,
                dropout=config.dropout,
                method=method,
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
        if self.config.method == "delete":
            ids, mask = self._delete_missing(ids, mask)
        x = self.embed(ids, mask)  # (B, L, D)
        if self.config.arch == "transformer":
            h = self.encoder(x, mask)  # (B, L, D)
        elif self.config.arch == "grud":
            h = self.encoder(x, mask)[0]  # (B, L, D); the token mask stands for every embedding dim
        else:  # static: the recurrent model reads every valid step, placeholders included
            h = self.encoder(x, mask if self.config.method != "static" else Mask(mask.valid, mask.valid))[0]
        reads_observed = self.config.method in ("dynamic", "delete") and self.config.arch != "grud"
        pool_over = mask.observed if reads_observed else mask.valid  # (B, L)
        if self.attn_pool is not None:
            pooled = self.attn_pool(h, pool_over)
        elif self.config.pooling == "max":
            pooled = masked_max(h, pool_over)
        else:
            pooled = masked_mean(h, pool_over)
        return self.head(self.dropout(pooled))  # (B, C)

    @staticmethod
    def _delete_missing(ids: Tensor, mask: Mask) -> tuple[Tensor, Mask]:
        plan = Compaction.plan(mask.observed)
        if plan.width == 0:  # nothing observed anywhere: one empty slot per sample
            return ids[:, :1].clone(), Mask.from_lengths(plan.num_kept, max_len=1)
        kept = plan.gather(ids.unsqueeze(-1)).squeeze(-1)  # (B, N): observed ids, renumbered from 0
        return kept, Mask.from_lengths(plan.num_kept, max_len=plan.width)
