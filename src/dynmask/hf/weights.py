"""Exact weights between a Hugging Face checkpoint and dynmask's modules, both ways (safetensors or a
weights_only torch file).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import torch

from ..errors import DataError
from ..files import as_created
from .config import PretrainedConfig, read_checkpoint_config
from .encoder import PretrainedEncoder
from .tokenizer import TOKENIZER_FILES

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


# ---------------------------------------------------------------------------------------- weights
def read_weights(folder: Path) -> dict:
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


def load_pretrained(folder, backend: str = "auto", attn_dropout: Optional[float] = None) -> PretrainedEncoder:
    """A :class:`PretrainedEncoder` with the exact weights of a local Hugging Face checkpoint folder."""
    folder = Path(folder)
    config = read_checkpoint_config(folder)
    if config.decoder_layers:
        raise DataError(
            f"{folder} is an encoder-decoder ({config.family}); load it with "
            "dynmask.models.seq2seq.warm_start_seq2seq (dynmask train summarize|translate --pretrained)"
        )
    state = _strip_prefix(read_weights(folder))
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
    as_created(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(encoder.config.hf, indent=2))
    if tokenizer_from is not None:
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_from) / name).exists():
                shutil.copy(Path(tokenizer_from) / name, folder / name)
    return folder
