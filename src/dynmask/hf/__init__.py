"""Pretrained Hugging Face encoders with the dynamic mask: BERT, RoBERTa / XLM-R and DistilBERT.

A checkpoint folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``, the layout
``transformers`` writes) loads into dynmask modules with its exact weights:

* :class:`PretrainedEmbeddings`: word + position (by *original* index, so a hidden token keeps the
  positions of the others where they were) + token type, then LayerNorm. A missing id is never
  looked up (``torch.where`` before the table);
* :class:`dynmask.Encoder` in post-norm form (BERT's layout) with GELU, so the guarantee,
  compaction and pooling apply unchanged.

:func:`save_pretrained` writes the encoder back in Hugging Face's names (``BertModel`` /
``RobertaModel`` / ``DistilBertModel`` layout), so ``transformers.AutoModel.from_pretrained`` loads
a model fine-tuned with dynmask. Loading needs neither ``transformers`` nor a network: weights are
read with ``safetensors`` (or ``torch.load(weights_only=True)``); ``transformers`` (the ``hf``
extra) is needed only to run Hugging Face's own model beside it.

:class:`PretrainedTokenizer` is the model's own fast tokenizer (``tokenizer.json``, read by
``tokenizers``) with missing markers: ``???``, ``[illegible]``, user markers and empty texts become
masked positions (one per marker; a marker glued to a word hides the whole word), never ``[UNK]``
word pieces. Masks: True = observed.
"""

from .classifier import (
    PretrainedClassifier,
    PretrainedClassifierConfig,
    build_pretrained_classifier,
    check_encoder_config,
)
from .config import FAMILIES, PretrainedConfig, read_checkpoint_config, read_pretrained_config
from .encoder import PretrainedEmbeddings, PretrainedEncoder, mean_embeddings
from .tokenizer import PretrainedTokenizer
from .weights import load_pretrained, save_pretrained

__all__ = [
    "PretrainedConfig",
    "PretrainedEmbeddings",
    "PretrainedEncoder",
    "PretrainedTokenizer",
    "PretrainedClassifier",
    "PretrainedClassifierConfig",
    "load_pretrained",
    "save_pretrained",
    "read_pretrained_config",
    "read_checkpoint_config",
    "check_encoder_config",
    "build_pretrained_classifier",
    "mean_embeddings",
    "FAMILIES",
]
