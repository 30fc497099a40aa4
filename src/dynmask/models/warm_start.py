"""Pretrained encoder-decoders as a dynmask :class:`~dynmask.models.seq2seq.Seq2Seq`: BERT2BERT warm starts
(:func:`warm_start_seq2seq`) and Hugging Face BART (:func:`load_bart`).

A ``BartForConditionalGeneration`` / ``BartModel`` checkpoint folder (``config.json`` +
``model.safetensors`` or ``pytorch_model.bin``, the layout ``transformers`` writes) loads with its exact
weights: the shared word table (source, target and output layer), each side's learned positions
(numbered from 2, by original index) and ``layernorm_embedding``, the post-norm encoder and decoder
layers, ``final_logits_bias``. So the guarantee holds for a pretrained BART: missing source tokens are
never keys of the encoder's self-attention or of the decoder's cross-attention, never copied, and
their ids are never read. With nothing missing, the logits equal ``transformers``' (tested on tiny
random BART models). Masks: True = observed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..errors import DataError
from ..hf.config import read_checkpoint_config
from ..hf.weights import load_pretrained, read_weights
from .seq2seq import Seq2Seq, pretrained_shape

__all__ = ["load_bart", "warm_start_seq2seq"]


def _strip_bart_prefix(state: dict) -> dict:
    """``model.`` dropped (a ``BartForConditionalGeneration`` checkpoint); ``final_logits_bias`` kept."""
    return {k[len("model.") :] if k.startswith("model.") else k: v for k, v in state.items()}


def _attention(hf: dict, theirs: str, mine: str, out: dict) -> None:
    """BART's separate q / k / v / out projections -> dynmask's in_proj (query, key, value rows) + out_proj."""
    out[mine + ".in_proj_weight"] = torch.cat([hf[f"{theirs}.{x}_proj.weight"] for x in "qkv"])  # (3D, D)
    out[mine + ".in_proj_bias"] = torch.cat([hf[f"{theirs}.{x}_proj.bias"] for x in "qkv"])  # (3D,)
    out[mine + ".out_proj.weight"] = hf[f"{theirs}.out_proj.weight"]
    out[mine + ".out_proj.bias"] = hf[f"{theirs}.out_proj.bias"]


def _pair(hf: dict, theirs: str, mine: str, out: dict) -> None:
    out[mine + ".weight"], out[mine + ".bias"] = hf[theirs + ".weight"], hf[theirs + ".bias"]


def _to_dynmask(encoder_layers: int, decoder_layers: int, hf: dict) -> dict:
    """A BART state dict (no ``model.`` prefix) -> :class:`Seq2Seq` names."""
    words = hf.get("shared.weight", hf.get("encoder.embed_tokens.weight"))
    if words is None:
        raise KeyError("shared.weight")
    out = {"src_embed.word_embeddings.weight": words}
    for side, embed in (("encoder", "src_embed"), ("decoder", "tgt_embed")):
        out[f"{embed}.position_embeddings.weight"] = hf[f"{side}.embed_positions.weight"]
        _pair(hf, f"{side}.layernorm_embedding", f"{embed}.LayerNorm", out)
    for i in range(encoder_layers):
        theirs, mine = f"encoder.layers.{i}", f"encoder.layers.{i}"
        _attention(hf, theirs + ".self_attn", mine + ".self_attn", out)
        for a, b in (("self_attn_layer_norm", "norm1"), ("fc1", "linear1"), ("fc2", "linear2"),
                     ("final_layer_norm", "norm2")):  # fmt: skip
            _pair(hf, f"{theirs}.{a}", f"{mine}.{b}", out)
    for i in range(decoder_layers):
        theirs, mine = f"decoder.layers.{i}", f"decoder.layers.{i}"
        _attention(hf, theirs + ".self_attn", mine + ".self_attn", out)
        _attention(hf, theirs + ".encoder_attn", mine + ".multihead_attn", out)
        for a, b in (("self_attn_layer_norm", "norm1"), ("encoder_attn_layer_norm", "norm2"), ("fc1", "linear1"),
                     ("fc2", "linear2"), ("final_layer_norm", "norm3")):  # fmt: skip
            _pair(hf, f"{theirs}.{a}", f"{mine}.{b}", out)
    bias = hf.get("final_logits_bias")
    out["out.bias"] = torch.zeros(words.shape[0]) if bias is None else bias.reshape(-1)  # (V,)
    return out


def load_bart(
    folder,
    *,
    dec_layers: Optional[int] = None,
    method: str = "dynamic",
    copy: bool = False,
    max_len: int = 512,
    backend: str = "auto",
) -> Seq2Seq:
    """A :class:`Seq2Seq` with the exact weights of a local BART checkpoint folder (``copy`` adds new,
    randomly initialised copy layers). ``dec_layers``: None or the checkpoint's decoder layers."""
    folder = Path(folder)
    pc = read_checkpoint_config(folder)
    if pc.family != "bart":
        raise DataError(f"{folder / 'config.json'}: a {pc.family} checkpoint is not BART; use warm_start_seq2seq")
    if dec_layers is not None and dec_layers != pc.decoder_layers:
        raise ValueError(f"dec_layers must be the checkpoint's {pc.decoder_layers} decoder layers, got {dec_layers}")
    settings = dict(method=method, copy=copy, max_len=max_len, backend=backend)
    model = Seq2Seq(pretrained_shape(pc, pc.decoder_layers, **settings))
    try:
        mapped = _to_dynmask(pc.num_layers, pc.decoder_layers, _strip_bart_prefix(read_weights(folder)))
    except KeyError as e:
        raise DataError(f"{folder}: the weights lack {e.args[0]!r} that a BART model needs") from None
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    # tied or new: the target word table is the source's, the output weight is the word table,
    # the decoder's missing-query vector and the copy layers are dynmask's own
    own = {"tgt_embed.word_embeddings.weight", "out.weight", "decoder.missing_query"}
    new = {k for k in missing if k not in own and not k.startswith("copy_")}
    if new or unexpected:
        raise DataError(
            f"{folder}: weights do not fit ({sorted(new)[:5]} missing, {sorted(unexpected)[:5]} unexpected)"
        )
    return model


def warm_start_seq2seq(
    folder,
    *,
    dec_layers: Optional[int] = None,
    method: str = "dynamic",
    copy: bool = False,
    max_len: int = 512,
    backend: str = "auto",
) -> Seq2Seq:
    """A :class:`Seq2Seq` warm-started from a Hugging Face BERT / RoBERTa / DistilBERT checkpoint folder,
    BERT2BERT-style (Rothe, Narayan & Severyn, 2020): the embeddings (shared by source and target and
    tied to the output layer) and the encoder get the checkpoint's exact weights; decoder layer ``i``
    gets the self-attention, feed-forward and both LayerNorms of encoder layer ``i`` (``dec_layers``
    at most the checkpoint's layers; default all); cross-attention and the copy layers start random.

    A BART checkpoint (an encoder-decoder) loads whole instead, every weight exact
    (:func:`load_bart`)."""
    if read_checkpoint_config(folder).family == "bart":
        return load_bart(folder, dec_layers=dec_layers, method=method, copy=copy, max_len=max_len, backend=backend)
    source = load_pretrained(folder)
    pc = source.config
    dec_layers = pc.num_layers if dec_layers is None else dec_layers
    if not 1 <= dec_layers <= pc.num_layers:
        raise ValueError(f"dec_layers must lie in [1, {pc.num_layers}] (the checkpoint's layers), got {dec_layers}")
    model = Seq2Seq(pretrained_shape(pc, dec_layers, method=method, copy=copy, max_len=max_len, backend=backend))
    model.src_embed.load_state_dict(source.embeddings.state_dict())
    model.encoder.load_state_dict(source.encoder.state_dict())
    for mine, theirs in zip(model.decoder.layers, source.encoder.layers):
        for target, origin in (("self_attn", "self_attn"), ("linear1", "linear1"), ("linear2", "linear2"),
                               ("norm1", "norm1"), ("norm3", "norm2")):  # fmt: skip
            getattr(mine, target).load_state_dict(getattr(theirs, origin).state_dict())
    return model
