"""A pretrained encoder with masked pooling and a linear head, and its config checked as untrusted input.
The method (dynamic, or a baseline) comes from dynmask.methods.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from torch import Tensor, nn

from ..errors import DataError
from ..masks import Mask
from ..methods import get_method
from ..onnx_fusion import computed_rows
from ..pooling import masked_mean
from ..training.run_folders import LIMITS, RunFolderError, config_from_dict
from .config import PretrainedConfig, read_pretrained_config
from .encoder import PretrainedEncoder


# ---------------------------------------------------------------------------------------- classifier
@dataclass
class PretrainedClassifierConfig:
    encoder: dict  # PretrainedConfig.to_dict()
    num_classes: int
    method: str = "dynamic"
    pooling: str = "mean"  # mean over observed positions ([CLS]/[SEP] included) | cls (BERT's pooler)
    backend: str = "auto"
    unk_id: int = 100
    mask_id: int = 103
    attn_dropout: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


class PretrainedClassifier(nn.Module):
    """A pretrained encoder, masked pooling, dropout and a linear head.

    ``method`` (how missing word pieces are handled; True = observed):

    * ``"dynamic"``: never attended, never pooled (the guarantee holds);
    * ``"unk"`` / ``"mask"``: replaced by the ``[UNK]`` / ``[MASK]`` placeholder and read like any
      token (baselines);
    * ``"delete"``: removed before the model, the rest renumbered (baseline).
    """

    def __init__(self, config: PretrainedClassifierConfig, encoder: Optional[PretrainedEncoder] = None) -> None:
        super().__init__()
        self.method = get_method(config.method, "pretrained")
        if config.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {config.pooling!r}")
        self.config = config
        enc_config = PretrainedConfig(**config.encoder)
        self.encoder = (
            encoder if encoder is not None else PretrainedEncoder(enc_config, config.backend, config.attn_dropout)
        )
        self.dropout = nn.Dropout(enc_config.hidden_dropout)
        self.head = nn.Linear(enc_config.hidden_size, config.num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: Tensor, mask: Mask) -> Tensor:
        """``ids`` long[B, L], ``mask`` (True = observed) -> logits float[B, C]."""
        placeholder = {"unk": self.config.unk_id, "mask": self.config.mask_id}.get(self.method.placeholder)
        ids, mask = self.method.prepare_ids(ids, mask, placeholder)  # unk / mask: every valid position is read
        hidden = self.encoder(ids, mask)  # (B, L, D)
        with computed_rows():  # the encoder's output, computed from ids: see onnx_fusion
            pooled = self.encoder.pooled(hidden) if self.config.pooling == "cls" else masked_mean(hidden, mask)
        return self.head(self.dropout(pooled))  # (B, C)


_SIZE_FIELDS = {
    "hidden_size": "d_model",
    "num_layers": "n_layers",
    "num_heads": "n_heads",
    "intermediate_size": "d_ff",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_len",
}


def check_encoder_config(encoder: dict, source: str = "config.json") -> PretrainedConfig:
    """A run's saved encoder config (``PretrainedConfig.to_dict()``), checked as untrusted input: types,
    the Hugging Face config inside it, sizes within the limits and consistent with it."""

    config = config_from_dict(PretrainedConfig, encoder, source)
    try:
        checked = read_pretrained_config(config.hf, source)
    except DataError as e:
        raise RunFolderError(str(e)) from None
    for name, limit_name in _SIZE_FIELDS.items():
        value = getattr(config, name)
        if getattr(checked, name) != value or not 1 <= value <= LIMITS[limit_name]:
            raise RunFolderError(
                f"{source}: encoder setting {name!r} = {value} is inconsistent or outside [1, {LIMITS[limit_name]}]"
            )
    return config


def build_pretrained_classifier(model: dict, source: str = "config.json") -> PretrainedClassifier:
    """An empty :class:`PretrainedClassifier` from a run's saved model config, checked as untrusted
    input (types, sizes, the encoder's Hugging Face config) before anything is allocated."""

    if not isinstance(model, dict) or not isinstance(model.get("encoder"), dict):
        raise RunFolderError(f"{source}: a pretrained model config needs an 'encoder' object")
    check_encoder_config(model["encoder"], source)
    config = config_from_dict(PretrainedClassifierConfig, model, source)
    if not 2 <= config.num_classes <= LIMITS["num_classes"]:
        raise RunFolderError(f"{source}: num_classes = {config.num_classes} is outside [2, {LIMITS['num_classes']}]")
    return PretrainedClassifier(config)
