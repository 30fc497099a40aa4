"""dynmask: Transformers (and RNNs) over sequences with missing values, using dynamic masks.

Mask convention everywhere: True = observed (kept).
"""

from .attention import MaskedMultiheadAttention, allowed_keys, masked_attention
from .compaction import Compaction
from .embeddings import LearnedPositions, SinusoidalPositions, TokenEmbedding, ValueEmbedding
from .graph import compile
from .layers import Decoder, DecoderLayer, Encoder, EncoderLayer
from .losses import masked_cross_entropy, masked_mae, masked_mse
from .masks import Mask, causal_mask
from .packing import Packing
from .pooling import AttentionPooling, masked_max, masked_mean

__version__ = "0.1.0"


def from_pretrained(name_or_path, **hub):
    """A trained model (a run folder, its ``best/``, a ``save_pretrained`` folder or a hub repo id) as its
    task's :class:`dynmask.hub.DynmaskModel`; needs ``dynmask[hub]``. See :func:`dynmask.hub.from_pretrained`."""
    from .extras import require

    require("huggingface_hub")
    from .hub import from_pretrained as load

    return load(name_or_path, **hub)


__all__ = [
    "Mask",
    "causal_mask",
    "Compaction",
    "Packing",
    "MaskedMultiheadAttention",
    "masked_attention",
    "allowed_keys",
    "EncoderLayer",
    "DecoderLayer",
    "Encoder",
    "Decoder",
    "TokenEmbedding",
    "ValueEmbedding",
    "SinusoidalPositions",
    "LearnedPositions",
    "masked_mean",
    "masked_max",
    "AttentionPooling",
    "masked_cross_entropy",
    "masked_mae",
    "masked_mse",
    "compile",
    "from_pretrained",
]
