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

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.tokenizer import DEFAULT_MISSING_MARKERS, _marker_pattern, encode_prefixes
from .errors import DataError
from .graph import tracing
from .layers import Encoder
from .masks import Mask
from .methods import get_method
from .pooling import masked_mean

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
    "FAMILIES",
]

FAMILIES = ("bert", "roberta", "distilbert")
_FAMILY_OF = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "distilbert": "distilbert",
    "bart": "bart",  # an encoder-decoder: dynmask.models.seq2seq.warm_start_seq2seq loads it whole
}
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
)


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
    if cfg.activation not in _ACTIVATIONS:
        raise DataError(f"{source}: activation {cfg.activation!r} is not supported ({sorted(_ACTIVATIONS)})")
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
            activation=_ACTIVATIONS[config.activation],
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
        return self.encoder(self.embeddings(ids, mask, token_type_ids), mask, backend=backend)  # (B, L, D)

    def pooled(self, hidden: Tensor) -> Tensor:
        """BERT's pooler: tanh(dense(h at position 0)) -> float[B, D] (the [CLS] token)."""
        if self.pooler is None:
            raise ValueError(f"a {self.config.family} checkpoint has no pooler; use mean pooling")
        return torch.tanh(self.pooler(hidden[:, 0]))


# ---------------------------------------------------------------------------------------- weights
def _weights(folder: Path) -> dict:
    for name in WEIGHT_FILES:
        path = folder / name
        if path.exists():
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
    raise DataError(f"{folder} holds none of {WEIGHT_FILES}; pass a Hugging Face checkpoint folder")


def _strip_prefix(state: dict) -> dict:
    """Keys without a task model's prefix (``bert.``, ``roberta.``, ``distilbert.``)."""
    anchor = [k for k in state if k.endswith("embeddings.word_embeddings.weight")]
    if not anchor:
        raise DataError("the weights hold no embeddings.word_embeddings.weight: not a BERT-family encoder")
    prefix = anchor[0][: -len("embeddings.word_embeddings.weight")]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _layer_names(family: str, i: int) -> dict:
    """dynmask name -> (Hugging Face names) for layer ``i``; in_proj concatenates query, key, value."""
    if family == "distilbert":
        p = f"transformer.layer.{i}."
        return {
            "q": p + "attention.q_lin",
            "k": p + "attention.k_lin",
            "v": p + "attention.v_lin",
            "out": p + "attention.out_lin",
            "norm1": p + "sa_layer_norm",
            "linear1": p + "ffn.lin1",
            "linear2": p + "ffn.lin2",
            "norm2": p + "output_layer_norm",
        }
    p = f"encoder.layer.{i}."
    return {
        "q": p + "attention.self.query",
        "k": p + "attention.self.key",
        "v": p + "attention.self.value",
        "out": p + "attention.output.dense",
        "norm1": p + "attention.output.LayerNorm",
        "linear1": p + "intermediate.dense",
        "linear2": p + "output.dense",
        "norm2": p + "output.LayerNorm",
    }


def _to_dynmask(config: PretrainedConfig, hf: dict) -> dict:
    """A Hugging Face state dict (no prefix) -> :class:`PretrainedEncoder` names."""
    out = {}
    emb = "embeddings."
    out["embeddings.word_embeddings.weight"] = hf[emb + "word_embeddings.weight"]
    out["embeddings.position_embeddings.weight"] = hf[emb + "position_embeddings.weight"]
    if config.type_vocab_size:
        out["embeddings.token_type_embeddings.weight"] = hf[emb + "token_type_embeddings.weight"]
    out["embeddings.LayerNorm.weight"] = hf[emb + "LayerNorm.weight"]
    out["embeddings.LayerNorm.bias"] = hf[emb + "LayerNorm.bias"]
    for i in range(config.num_layers):
        n, d = _layer_names(config.family, i), f"encoder.layers.{i}."
        out[d + "self_attn.in_proj_weight"] = torch.cat([hf[n[x] + ".weight"] for x in "qkv"])  # (3D, D)
        out[d + "self_attn.in_proj_bias"] = torch.cat([hf[n[x] + ".bias"] for x in "qkv"])  # (3D,)
        for mine, theirs in (
            ("self_attn.out_proj", "out"),
            ("norm1", "norm1"),
            ("linear1", "linear1"),
            ("linear2", "linear2"),
            ("norm2", "norm2"),
        ):
            out[d + mine + ".weight"] = hf[n[theirs] + ".weight"]
            out[d + mine + ".bias"] = hf[n[theirs] + ".bias"]
    if config.family != "distilbert":
        if "pooler.dense.weight" in hf:
            out["pooler.weight"], out["pooler.bias"] = hf["pooler.dense.weight"], hf["pooler.dense.bias"]
    return out


def _to_hf(encoder: PretrainedEncoder) -> dict:
    """:class:`PretrainedEncoder` weights -> Hugging Face names (``BertModel`` / ``RobertaModel`` /
    ``DistilBertModel``), the inverse of :func:`_to_dynmask`."""
    config, mine = encoder.config, {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    out = {}
    prefix = "embeddings."
    for name in (
        "word_embeddings.weight",
        "position_embeddings.weight",
        "token_type_embeddings.weight",
        "LayerNorm.weight",
        "LayerNorm.bias",
    ):
        if "embeddings." + name in mine:
            out[prefix + name] = mine["embeddings." + name]
    d_model = config.hidden_size
    for i in range(config.num_layers):
        n, d = _layer_names(config.family, i), f"encoder.layers.{i}."
        w, b = mine[d + "self_attn.in_proj_weight"], mine[d + "self_attn.in_proj_bias"]
        for j, x in enumerate("qkv"):
            out[n[x] + ".weight"] = w[j * d_model : (j + 1) * d_model].clone()
            out[n[x] + ".bias"] = b[j * d_model : (j + 1) * d_model].clone()
        for m, theirs in (
            ("self_attn.out_proj", "out"),
            ("norm1", "norm1"),
            ("linear1", "linear1"),
            ("linear2", "linear2"),
            ("norm2", "norm2"),
        ):
            out[n[theirs] + ".weight"] = mine[d + m + ".weight"]
            out[n[theirs] + ".bias"] = mine[d + m + ".bias"]
    if encoder.pooler is not None:
        out["pooler.dense.weight"], out["pooler.dense.bias"] = mine["pooler.weight"], mine["pooler.bias"]
    return out


def read_checkpoint_config(folder) -> PretrainedConfig:
    """The :class:`PretrainedConfig` of a local Hugging Face checkpoint folder's ``config.json``."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise DataError(f"{folder} has no config.json: pass a Hugging Face checkpoint folder (or --pretrained minilm)")
    return read_pretrained_config(json.loads((folder / "config.json").read_text()), str(folder / "config.json"))


def load_pretrained(folder, backend: str = "auto", attn_dropout: Optional[float] = None) -> PretrainedEncoder:
    """A :class:`PretrainedEncoder` with the exact weights of a local Hugging Face checkpoint folder."""
    folder = Path(folder)
    config = read_checkpoint_config(folder)
    if config.decoder_layers:
        raise DataError(
            f"{folder} is an encoder-decoder ({config.family}); load it with "
            "dynmask.models.seq2seq.warm_start_seq2seq (dynmask train summarize|translate --pretrained)"
        )
    state = _strip_prefix(_weights(folder))
    encoder = PretrainedEncoder(config, backend=backend, attn_dropout=attn_dropout)
    try:
        mapped = _to_dynmask(config, state)
    except KeyError as e:
        raise DataError(f"{folder}: the weights lack {e.args[0]!r} that a {config.family} encoder needs") from None
    missing, unexpected = encoder.load_state_dict(mapped, strict=False)
    allowed_missing = {"pooler.weight", "pooler.bias"}  # a checkpoint saved without its pooler
    if unexpected or set(missing) - allowed_missing:
        raise DataError(
            f"{folder}: weights do not fit ({sorted(set(missing) - allowed_missing)[:5]} missing, "
            f"{sorted(unexpected)[:5]} unexpected)"
        )
    return encoder


def save_pretrained(encoder: PretrainedEncoder, folder, tokenizer_from: Optional[Path] = None) -> Path:
    """Write ``encoder`` as a Hugging Face checkpoint folder (config.json + model.safetensors, and the
    tokenizer files of ``tokenizer_from``), loadable by ``transformers.AutoModel.from_pretrained``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_to_hf(encoder), str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(encoder.config.hf, indent=2))
    if tokenizer_from is not None:
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_from) / name).exists():
                shutil.copy(Path(tokenizer_from) / name, folder / name)
    return folder


# ---------------------------------------------------------------------------------------- tokenizer
_LATIN_WORD = r"[A-Za-z0-9\u00C0-\u024F]"


class PretrainedTokenizer:
    """A checkpoint's fast tokenizer (``tokenizer.json``) with missing markers.

    :meth:`encode` gives ids with the model's special tokens; each marker (and any Latin word
    characters glued to it: ``Ver[illegible]ung`` hides the whole word) becomes one position holding
    the mask token, which :meth:`mask` marks missing together with ``[UNK]`` pieces; padding is
    padding. An empty text is one missing position between ``[CLS]`` and ``[SEP]``."""

    def __init__(self, folder, max_len: int = 128, missing_markers: Sequence[str] = DEFAULT_MISSING_MARKERS) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            raise DataError(
                f"{folder} has no tokenizer.json (a fast tokenizer): save the tokenizer with "
                "transformers' save_pretrained first"
            )
        self.folder, self.max_len = folder, max_len
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config = (
            json.loads((folder / "tokenizer_config.json").read_text())
            if (folder / "tokenizer_config.json").exists()
            else {}
        )
        special = (
            json.loads((folder / "special_tokens_map.json").read_text())
            if (folder / "special_tokens_map.json").exists()
            else {}
        )

        def token(name: str, fallbacks: Sequence[str]) -> Optional[str]:
            value = config.get(name) or special.get(name)
            if isinstance(value, dict):
                value = value.get("content")
            for candidate in ([value] if value else []) + list(fallbacks):
                if candidate and self.tokenizer.token_to_id(candidate) is not None:
                    return candidate
            return None

        self.mask_token = token("mask_token", ["[MASK]", "<mask>"])
        self.pad_token = token("pad_token", ["[PAD]", "<pad>"])
        self.unk_token = token("unk_token", ["[UNK]", "<unk>"])
        if self.mask_token is None or self.pad_token is None:
            raise DataError(f"the tokenizer in {folder} has no mask or pad token; dynmask needs both")
        self.mask_id = self.tokenizer.token_to_id(self.mask_token)
        self.missing_id = self.mask_id  # what artificial holes write (the interface of TextTokenizer)
        self.pad_id = self.tokenizer.token_to_id(self.pad_token)
        self.unk_id = self.tokenizer.token_to_id(self.unk_token) if self.unk_token else None
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()  # dynmask cuts (keeping the closing special token)
        self.missing_markers = tuple(missing_markers)
        markers = sorted(self.missing_markers, key=len, reverse=True)
        self._longest_marker = max((len(m) for m in markers), default=0)
        patterns = [_LATIN_WORD + "*" + _marker_pattern(m)[len(r"\s*") :] + _LATIN_WORD + "*" for m in markers]
        self._marker_re = re.compile("|".join(patterns), re.IGNORECASE) if markers else None

    adds_special_tokens = True  # encode() wraps each text in the model's [CLS] ... [SEP] (or <s> ... </s>)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def bos_id(self) -> int:
        """The opening special token ([CLS] / <s>): a warm-started decoder starts from it."""
        return self._special(("[CLS]", "<s>"))

    @property
    def eos_id(self) -> int:
        """The closing special token ([SEP] / </s>): a warm-started decoder stops at it."""
        return self._special(("[SEP]", "</s>"))

    def _special(self, candidates: Sequence[str]) -> int:
        for token in candidates:
            i = self.tokenizer.token_to_id(token)
            if i is not None:
                return i
        raise DataError(f"the tokenizer in {self.folder} has none of {list(candidates)}")

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids`` (word pieces joined by the tokenizer's own decoder)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def mark_missing(self, text: str) -> str:
        """Markers (with Latin word characters glued to them) -> the mask token; empty -> one mask token."""
        if not text.strip():
            return self.mask_token
        if self._marker_re is None:
            return text
        return self._marker_re.sub(f" {self.mask_token} ", text)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids per text, special tokens included, cut at ``max_len`` keeping the closing special token
        (huge texts are cut before tokenizing: :func:`dynmask.data.tokenizer.encode_prefixes`)."""
        encode = lambda batch: [e.ids for e in self.tokenizer.encode_batch([self.mark_missing(t) for t in batch])]
        start = 8 * (self.max_len + 2) * (self._longest_marker + 2)
        return [self._truncate(ids) for ids in encode_prefixes(texts, encode, self.max_len, start)]

    def _truncate(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.max_len:
            return ids
        return ids[: self.max_len - 1] + [ids[-1]]  # keep the closing special token ([SEP] / </s>)

    def pad(self, batch: Sequence[Sequence[int]]) -> Tensor:
        """long[B, L], right-padded with the pad token."""
        length = max((len(s) for s in batch), default=0)
        out = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
        for i, s in enumerate(batch):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        return out

    def mask(self, ids: Tensor) -> Mask:
        """True = observed: the mask token (markers, artificial holes) and [UNK] are missing, pad is padding."""
        missing = [self.mask_id] + ([self.unk_id] if self.unk_id is not None else [])
        return Mask.from_tokens(ids, missing=missing, pad=self.pad_id)

    def content(self, ids: Tensor) -> Tensor:
        """bool[B, L]: positions that hold text (not padding, not [CLS]/[SEP]-style special tokens):
        where artificial holes may fall."""
        special = torch.tensor(sorted(self.special_ids()), dtype=ids.dtype, device=ids.device)
        return ~torch.isin(ids, special)

    def observed_text_tokens(self, ids: Tensor) -> Tensor:
        """long[B]: observed positions that hold text (special tokens not counted)."""
        return (self.mask(ids).observed & self.content(ids)).sum(1)

    def special_ids(self) -> set:
        ids = {self.pad_id}
        for token in ("[CLS]", "[SEP]", "<s>", "</s>", "<cls>", "<sep>"):
            i = self.tokenizer.token_to_id(token)
            if i is not None:
                ids.add(i)
        return ids

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in TOKENIZER_FILES:
            if (self.folder / name).exists():
                shutil.copy(self.folder / name, folder / name)
        (folder / "dynmask_tokenizer.json").write_text(
            json.dumps({"max_len": self.max_len, "missing_markers": list(self.missing_markers)}, indent=2)
        )

    @classmethod
    def load(cls, folder) -> "PretrainedTokenizer":
        folder = Path(folder)
        extra = json.loads((folder / "dynmask_tokenizer.json").read_text())
        return cls(folder, int(extra["max_len"]), extra["missing_markers"])


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
    from .run_folders import LIMITS, RunFolderError, config_from_dict

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
    from .run_folders import LIMITS, RunFolderError, config_from_dict

    if not isinstance(model, dict) or not isinstance(model.get("encoder"), dict):
        raise RunFolderError(f"{source}: a pretrained model config needs an 'encoder' object")
    check_encoder_config(model["encoder"], source)
    config = config_from_dict(PretrainedClassifierConfig, model, source)
    if not 2 <= config.num_classes <= LIMITS["num_classes"]:
        raise RunFolderError(f"{source}: num_classes = {config.num_classes} is outside [2, {LIMITS['num_classes']}]")
    return PretrainedClassifier(config)


def mean_embeddings(encoder: PretrainedEncoder, ids: Tensor, mask: Mask, normalize: bool = False) -> Tensor:
    """Sentence embeddings float[B, D]: the mean of the last hidden states over observed positions
    ([CLS]/[SEP] included, as sentence-transformers does); L2-normalised when ``normalize``."""
    pooled = masked_mean(encoder(ids, mask), mask)
    return F.normalize(pooled, dim=-1) if normalize else pooled
