"""A Hugging Face checkpoint's config.json read as untrusted input into a PretrainedConfig (BERT, RoBERTa /
XLM-R, DistilBERT, BART).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError
from ..files import read_json_object

FAMILIES = ("bert", "roberta", "distilbert")

_FAMILY_OF = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "distilbert": "distilbert",
    "bart": "bart",  # an encoder-decoder: dynmask.models.seq2seq.warm_start_seq2seq loads it whole
}

ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


@dataclass
class PretrainedConfig:
    """What dynmask needs from a Hugging Face encoder ``config.json``; ``hf`` keeps the whole file
    so that :func:`save_pretrained` writes it back."""

    family: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 0
    layer_norm_eps: float = 1e-12
    activation: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    pad_token_id: int = 0
    position_offset: int = 0  # RoBERTa numbers positions from padding_idx + 1
    hf: dict = field(default_factory=dict)
    embed_scale: float = 1.0  # BART with scale_embedding: sqrt(d_model) times the word embedding
    decoder_layers: int = 0  # an encoder-decoder's (BART's) decoder layers; 0 for an encoder

    def to_dict(self) -> dict:
        return asdict(self)


def read_pretrained_config(hf: dict, source: str = "config.json") -> PretrainedConfig:
    """A :class:`PretrainedConfig` from the dict of a Hugging Face ``config.json``."""
    if not isinstance(hf, dict):
        raise DataError(f"{source} must hold a JSON object")
    model_type = hf.get("model_type")
    family = _FAMILY_OF.get(model_type)
    if family is None:
        raise DataError(
            f"{source}: model_type {model_type!r} is not supported; dynmask.hf loads {sorted(_FAMILY_OF)} encoders"
        )
    try:
        if family == "bart":
            return _read_bart_config(hf, source)
        if family == "distilbert":
            act = hf.get("activation", "gelu")
            cfg = PretrainedConfig(
                family,
                hf["vocab_size"],
                hf["dim"],
                hf["n_layers"],
                hf["n_heads"],
                hf["hidden_dim"],
                hf["max_position_embeddings"],
                0,
                1e-12,
                act,
                hf.get("dropout", 0.1),
                hf.get("attention_dropout", 0.1),
                hf.get("pad_token_id", 0),
                0,
                hf,
            )
        else:
            act = hf.get("hidden_act", "gelu")
            pad = hf.get("pad_token_id", 0 if family == "bert" else 1)
            if hf.get("position_embedding_type", "absolute") != "absolute":
                raise DataError(
                    f"{source}: position_embedding_type {hf['position_embedding_type']!r} is not "
                    "supported (absolute only)"
                )
            cfg = PretrainedConfig(
                family,
                hf["vocab_size"],
                hf["hidden_size"],
                hf["num_hidden_layers"],
                hf["num_attention_heads"],
                hf["intermediate_size"],
                hf["max_position_embeddings"],
                hf.get("type_vocab_size", 0),
                hf.get("layer_norm_eps", 1e-12),
                act,
                hf.get("hidden_dropout_prob", 0.1),
                hf.get("attention_probs_dropout_prob", 0.1),
                pad,
                pad + 1 if family == "roberta" else 0,
                hf,
            )
    except KeyError as e:
        raise DataError(f"{source}: a {model_type} config needs {e.args[0]!r}") from None
    if cfg.activation not in ACTIVATIONS:
        raise DataError(f"{source}: activation {cfg.activation!r} is not supported ({sorted(ACTIVATIONS)})")
    return cfg


def _read_bart_config(hf: dict, source: str) -> PretrainedConfig:
    """BART: one width, head count and feed-forward size for encoder and decoder (as every released
    BART has); learned positions numbered from 2; post-norm layers; LayerNorm eps 1e-5."""
    for enc, dec in (("encoder_attention_heads", "decoder_attention_heads"), ("encoder_ffn_dim", "decoder_ffn_dim")):
        if hf[enc] != hf[dec]:
            raise DataError(f"{source}: {enc} = {hf[enc]} but {dec} = {hf[dec]}; dynmask needs them equal")
    if hf.get("add_final_layer_norm") or hf.get("normalize_before"):
        raise DataError(f"{source}: pre-norm BART variants (mBART) are not supported")
    return PretrainedConfig(
        "bart",
        hf["vocab_size"],
        hf["d_model"],
        hf["encoder_layers"],
        hf["encoder_attention_heads"],
        hf["encoder_ffn_dim"],
        hf["max_position_embeddings"] + 2,  # the table's rows: positions start at 2
        0,
        1e-5,
        hf.get("activation_function", "gelu"),
        hf.get("dropout", 0.1),
        hf.get("attention_dropout", 0.0),
        hf.get("pad_token_id", 1),
        2,
        hf,
        float(hf["d_model"]) ** 0.5 if hf.get("scale_embedding") else 1.0,
        hf["decoder_layers"],
    )


def read_checkpoint_config(folder) -> PretrainedConfig:
    """The :class:`PretrainedConfig` of a local Hugging Face checkpoint folder's ``config.json``."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder} has no config.json: pass a Hugging Face checkpoint folder (or --pretrained minilm)")
    return read_pretrained_config(read_json_object(folder / "config.json"), str(folder / "config.json"))
