"""The dynamic mask as Keras 3 layers (``keras.ops`` only: the torch, TensorFlow and JAX backends).

Mask convention: **True = observed**, which is also Keras' own (``Embedding(mask_zero=True)`` marks
padding False). Every layer here takes ``mask`` (bool[B, L]) and supports Keras' mask propagation:
an upstream layer's mask arrives as ``mask`` when none is passed; :class:`MaskedEncoder` passes it on
(``compute_mask`` returns it), the pooling layers consume it (``compute_mask`` returns None).

What Keras' own layers leak, these do not: values at missing positions are replaced with
``ops.where`` *before* any product (NaN / inf there cannot reach an output or a gradient), missing
keys get exactly zero attention weight, and a sample with nothing observed gives zeros (not NaN, not
an average of the masked positions).

* :func:`mask_from_nan`, :func:`mask_from_tokens`, :func:`mask_from_lengths`: masks from the data.
* :class:`MaskedMultiHeadAttention`, :class:`MaskedEncoderLayer`, :class:`MaskedEncoder`.
* :class:`MaskedGlobalAveragePooling1D`, :class:`MaskedGlobalMaxPooling1D`.
* :func:`masked_mse`, :func:`masked_mae`, :func:`masked_sparse_categorical_crossentropy`.
* :func:`from_torch` / :func:`to_torch`: a :class:`dynmask.Encoder` (``queries="observed"``,
  dynamic variant) to the Keras stack and back, with equal outputs.

Install with ``pip install dynmask[keras]``; set ``KERAS_BACKEND`` before importing Keras.
"""

from __future__ import annotations

import math
from typing import Optional

import keras
import numpy as np
import torch
from keras import ops

from .embeddings import LearnedPositions, SinusoidalPositions
from .keras_masks import _as_bool, _keep_rows, mask_from_lengths, mask_from_nan, mask_from_tokens
from .layers import Encoder

__all__ = [
    "mask_from_nan",
    "mask_from_tokens",
    "mask_from_lengths",
    "MaskedMultiHeadAttention",
    "MaskedEncoderLayer",
    "MaskedEncoder",
    "MaskedGlobalAveragePooling1D",
    "MaskedGlobalMaxPooling1D",
    "masked_mse",
    "masked_mae",
    "masked_sparse_categorical_crossentropy",
    "from_torch",
    "to_torch",
]


# ---------------------------------------------------------------------------------------- attention
class MaskedMultiHeadAttention(keras.layers.Layer):
    """Multi-head attention where missing keys get exactly zero weight.

    ``call(query, key=None, value=None, key_mask=None, query_mask=None)``: self-attention when ``key``
    is None; masks bool[B, L], True = observed. In self-attention ``query_mask`` defaults to
    ``key_mask`` (a missing position is neither key nor query) and ``key_mask`` to Keras' propagated
    mask. Returns float[B, Lq, D], zero at queries not kept or with no observed key. Weights as in
    ``torch.nn.MultiheadAttention``: ``in_proj`` (D, 3D) and ``out_proj`` (D, D), with biases."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout = dropout
        self.supports_masking = True

    def build(self, query_shape, key_shape=None, value_shape=None) -> None:
        d = self.embed_dim
        self.in_proj_kernel = self.add_weight(shape=(d, 3 * d), initializer="glorot_uniform", name="in_proj_kernel")
        self.in_proj_bias = self.add_weight(shape=(3 * d,), initializer="zeros", name="in_proj_bias")
        self.out_proj_kernel = self.add_weight(shape=(d, d), initializer="glorot_uniform", name="out_proj_kernel")
        self.out_proj_bias = self.add_weight(shape=(d,), initializer="zeros", name="out_proj_bias")
        self.attention_dropout = keras.layers.Dropout(self.dropout)

    def _heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_dim))  # (B, L, H, hd)
        return ops.transpose(x, (0, 2, 1, 3))  # (B, H, L, hd)

    def call(self, query, key=None, value=None, key_mask=None, query_mask=None, mask=None, training=None):
        d = self.embed_dim
        self_attention = key is None
        key_mask = _as_bool(key_mask if key_mask is not None else mask)
        query_mask = _as_bool(query_mask)
        if self_attention and query_mask is None:
            query_mask = key_mask
        source = query if self_attention else key
        q_in = _keep_rows(query, query_mask)  # NaN / inf at unread rows never reach a product
        k_in = _keep_rows(source, key_mask)
        v_in = k_in if value is None else _keep_rows(value, key_mask)
        w, b = self.in_proj_kernel, self.in_proj_bias
        q = self._heads(ops.matmul(q_in, w[:, :d]) + b[:d])  # (B, H, Lq, hd)
        k = self._heads(ops.matmul(k_in, w[:, d : 2 * d]) + b[d : 2 * d])  # (B, H, Lk, hd)
        v = self._heads(ops.matmul(v_in, w[:, 2 * d :]) + b[2 * d :])  # (B, H, Lk, hd)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.head_dim)  # (B, H, Lq, Lk)
        if key_mask is not None:
            allowed = ops.expand_dims(ops.expand_dims(key_mask, 1), 1)  # (B, 1, 1, Lk)
            has_key = ops.any(allowed, axis=-1, keepdims=True)  # (B, 1, 1, 1)
            open_rows = ops.logical_or(allowed, ops.logical_not(has_key))  # an empty row: opened, zeroed below
            scores = ops.where(open_rows, scores, ops.full_like(scores, float("-inf")))
        scores = scores - ops.max(scores, axis=-1, keepdims=True)  # every row has a finite entry (opened above)
        weights = ops.exp(scores)  # exactly 0 on masked keys (exp(-inf))
        weights = self.attention_dropout(weights / ops.sum(weights, axis=-1, keepdims=True), training=training)
        out = ops.matmul(weights, v)  # (B, H, Lq, hd)
        if key_mask is not None:
            out = ops.where(has_key, out, ops.zeros_like(out))
        batch, q_len = ops.shape(query)[0], ops.shape(query)[1]
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (batch, q_len, d))  # (B, Lq, D)
        out = ops.matmul(out, self.out_proj_kernel) + self.out_proj_bias
        return _keep_rows(out, query_mask)

    def compute_mask(self, query, mask=None, **kwargs):
        return mask

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
        }


# ---------------------------------------------------------------------------------------- encoder
def _activation(name: str):
    if name == "relu":
        return ops.relu
    if name == "gelu":
        return lambda x: ops.gelu(x, approximate=False)
    if name == "gelu_tanh":
        return lambda x: ops.gelu(x, approximate=True)
    raise ValueError(f"activation must be 'relu', 'gelu' or 'gelu_tanh', got {name!r}")


class MaskedEncoderLayer(keras.layers.Layer):
    """One Transformer encoder layer over a dynamic mask (pre-norm by default), the Keras twin of
    :class:`dynmask.layers.EncoderLayer`. ``call(x, mask=observed)``; outputs zero at missing positions."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.d_model, self.num_heads, self.d_ff, self.rate = d_model, num_heads, d_ff, dropout
        self.activation_name, self.norm_first, self.layer_norm_eps = activation, norm_first, layer_norm_eps
        self.activation = _activation(activation)
        self.self_attn = MaskedMultiHeadAttention(d_model, num_heads)
        self.linear1 = keras.layers.Dense(d_ff)
        self.linear2 = keras.layers.Dense(d_model)
        self.norm1 = keras.layers.LayerNormalization(epsilon=layer_norm_eps)
        self.norm2 = keras.layers.LayerNormalization(epsilon=layer_norm_eps)
        self.dropout = keras.layers.Dropout(dropout)
        self.dropout1 = keras.layers.Dropout(dropout)
        self.dropout2 = keras.layers.Dropout(dropout)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        for layer, shape in (
            (self.self_attn, input_shape),
            (self.norm1, input_shape),
            (self.norm2, input_shape),
            (self.linear1, input_shape),
            (self.linear2, tuple(input_shape[:-1]) + (self.d_ff,)),
        ):
            layer.build(shape)

    def _ff(self, x, training):
        h = self.dropout(self.activation(self.linear1(x)), training=training)
        return self.dropout2(self.linear2(h), training=training)

    def call(self, x, mask=None, training=None):
        mask = _as_bool(mask)
        x = _keep_rows(x, mask)  # NaN at missing rows would reach the norms: their backward is NaN x 0 = NaN
        attend = lambda h: self.self_attn(h, key_mask=mask, training=training)
        if self.norm_first:
            x = x + self.dropout1(attend(self.norm1(x)), training=training)
            x = x + self._ff(self.norm2(x), training)
        else:
            x = self.norm1(x + self.dropout1(attend(x), training=training))
            x = self.norm2(x + self._ff(x, training))
        return _keep_rows(x, mask)

    def compute_mask(self, x, mask=None):
        return mask

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "d_ff": self.d_ff,
            "dropout": self.rate,
            "activation": self.activation_name,
            "norm_first": self.norm_first,
            "layer_norm_eps": self.layer_norm_eps,
        }


def _sinusoidal(max_len: int, d_model: int) -> np.ndarray:
    pos = np.arange(max_len, dtype=np.float32)[:, None]
    freq = np.exp(np.arange(0, d_model, 2, dtype=np.float32) * (-math.log(10000.0) / d_model))
    table = np.zeros((max_len, d_model), dtype=np.float32)
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq[: d_model // 2])
    return table


class MaskedEncoder(keras.layers.Layer):
    """A stack of :class:`MaskedEncoderLayer`: ``call(x, mask=observed)`` with x float[B, L, D] (NaN
    allowed at missing positions) -> float[B, L, D], zero at missing positions; the Keras twin of
    :class:`dynmask.Encoder` (``queries="observed"``). ``positional``: None, ``"sinusoidal"`` or
    ``"learned"`` (added at observed positions, by original index)."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_layers: int,
        d_ff: Optional[int] = None,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
        positional: Optional[str] = None,
        max_len: int = 4096,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if positional not in (None, "sinusoidal", "learned"):
            raise ValueError(f"positional must be None, 'sinusoidal' or 'learned', got {positional!r}")
        self.d_model, self.num_heads, self.num_layers = d_model, num_heads, num_layers
        self.d_ff = d_ff or 4 * d_model
        self.rate, self.activation, self.norm_first, self.layer_norm_eps = (
            dropout,
            activation,
            norm_first,
            layer_norm_eps,
        )
        self.positional, self.max_len = positional, max_len
        self.encoder_layers = [
            MaskedEncoderLayer(
                d_model, num_heads, self.d_ff, dropout, activation, norm_first, layer_norm_eps, name=f"layer_{i}"
            )
            for i in range(num_layers)
        ]
        self.norm = keras.layers.LayerNormalization(epsilon=layer_norm_eps) if norm_first else None
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if self.positional == "learned":
            self.position_table = self.add_weight(
                shape=(self.max_len, self.d_model),
                name="position_table",
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )
        elif self.positional == "sinusoidal":
            self.position_table = self.add_weight(
                shape=(self.max_len, self.d_model),
                name="position_table",
                initializer=keras.initializers.Constant(_sinusoidal(self.max_len, self.d_model)),
                trainable=False,
            )
        for layer in self.encoder_layers:
            layer.build(input_shape)
        if self.norm is not None:
            self.norm.build(input_shape)

    def call(self, x, mask=None, training=None):
        if mask is None:
            mask = ops.ones(ops.shape(x)[:2], dtype="bool")
        mask = _as_bool(mask)
        x = _keep_rows(x, mask)  # (B, L, D): NaN / inf at missing positions replaced before any arithmetic
        if self.positional is not None:
            length = ops.shape(x)[1]
            table = ops.expand_dims(self.position_table[:length], 0)  # (1, L, D)
            x = x + _keep_rows(ops.broadcast_to(table, ops.shape(x)), mask)
        for layer in self.encoder_layers:
            x = layer(x, mask=mask, training=training)
        if self.norm is not None:
            x = self.norm(x)
        return _keep_rows(x, mask)

    def compute_mask(self, x, mask=None):
        return mask

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "d_ff": self.d_ff,
            "dropout": self.rate,
            "activation": self.activation,
            "norm_first": self.norm_first,
            "layer_norm_eps": self.layer_norm_eps,
            "positional": self.positional,
            "max_len": self.max_len,
        }


# ---------------------------------------------------------------------------------------- pooling, losses
class MaskedGlobalAveragePooling1D(keras.layers.Layer):
    """Mean over observed positions: [B, L, D] -> [B, D]; zeros for a sample with nothing observed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return ops.mean(x, axis=1)
        keep = ops.expand_dims(_as_bool(mask), -1)  # (B, L, 1)
        total = ops.sum(ops.where(keep, x, ops.zeros_like(x)), axis=1)  # (B, D)
        count = ops.maximum(ops.sum(ops.cast(keep, x.dtype), axis=1), 1.0)  # (B, 1)
        return total / count

    def compute_mask(self, x, mask=None):
        return None


class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over observed positions: [B, L, D] -> [B, D]; zeros for a sample with nothing observed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return ops.max(x, axis=1)
        keep = ops.expand_dims(_as_bool(mask), -1)
        best = ops.max(ops.where(keep, x, ops.full_like(x, float("-inf"))), axis=1)
        return ops.where(ops.any(keep, axis=1), best, ops.zeros_like(best))

    def compute_mask(self, x, mask=None):
        return None


def _masked_mean(loss, keep):
    total = ops.sum(ops.where(keep, loss, ops.zeros_like(loss)))
    return total / ops.maximum(ops.sum(ops.cast(keep, loss.dtype)), 1.0)


def masked_mse(y_true, y_pred, mask):
    """Mean squared error over entries where ``mask`` is True (NaN in ``y_true`` elsewhere is fine)."""
    keep = _as_bool(mask)
    diff = ops.where(keep, y_pred, ops.zeros_like(y_pred)) - ops.where(keep, y_true, ops.zeros_like(y_true))
    return _masked_mean(ops.square(diff), keep)


def masked_mae(y_true, y_pred, mask):
    """Mean absolute error over entries where ``mask`` is True."""
    keep = _as_bool(mask)
    diff = ops.where(keep, y_pred, ops.zeros_like(y_pred)) - ops.where(keep, y_true, ops.zeros_like(y_true))
    return _masked_mean(ops.abs(diff), keep)


def masked_sparse_categorical_crossentropy(y_true, logits, mask):
    """Cross-entropy of ``logits`` [..., C] against integer ``y_true`` [...] where ``mask`` is True."""
    keep = _as_bool(mask)
    clean_logits = ops.where(ops.expand_dims(keep, -1), logits, ops.zeros_like(logits))
    clean_true = ops.where(keep, y_true, ops.zeros_like(y_true))
    per = keras.losses.sparse_categorical_crossentropy(clean_true, clean_logits, from_logits=True)
    return _masked_mean(per, keep)


# ---------------------------------------------------------------------------------------- PyTorch weights
def _np(t):
    return t.detach().cpu().numpy()


def _weight_pairs(layer: MaskedEncoder, encoder):
    """(Keras variable, torch tensor, transposed) for every weight the two stacks share."""
    for k_layer, t_layer in zip(layer.encoder_layers, encoder.layers):
        k_attn, t_attn = k_layer.self_attn, t_layer.self_attn
        yield k_attn.in_proj_kernel, t_attn.in_proj_weight, True
        yield k_attn.in_proj_bias, t_attn.in_proj_bias, False
        yield k_attn.out_proj_kernel, t_attn.out_proj.weight, True
        yield k_attn.out_proj_bias, t_attn.out_proj.bias, False
        for name in ("linear1", "linear2"):
            yield getattr(k_layer, name).kernel, getattr(t_layer, name).weight, True
            yield getattr(k_layer, name).bias, getattr(t_layer, name).bias, False
        for name in ("norm1", "norm2"):
            yield getattr(k_layer, name).gamma, getattr(t_layer, name).weight, False
            yield getattr(k_layer, name).beta, getattr(t_layer, name).bias, False
    if encoder.norm is not None:
        yield layer.norm.gamma, encoder.norm.weight, False
        yield layer.norm.beta, encoder.norm.bias, False
    if layer.positional == "learned":
        yield layer.position_table, encoder.positions.table.weight, False


def from_torch(encoder) -> MaskedEncoder:
    """A :class:`MaskedEncoder` with the weights of a :class:`dynmask.Encoder` (dynamic variant,
    ``queries="observed"``); call it as ``layer(x, mask=observed)``."""
    if not isinstance(encoder, Encoder):
        raise TypeError(f"from_torch takes a dynmask.Encoder, got {type(encoder).__name__}")
    if encoder.method != "dynamic" or encoder.queries != "observed":
        raise ValueError("from_torch converts the dynamic method with queries='observed'")
    first = encoder.layers[0]
    positions = encoder.positions
    kinds = {LearnedPositions: "learned", SinusoidalPositions: "sinusoidal"}
    positional = None if positions is None else kinds.get(type(positions), "?")
    d = encoder.d_model
    out = MaskedEncoder(
        d,
        first.self_attn.num_heads,
        len(encoder.layers),
        d_ff=first.linear1.out_features,
        dropout=first.dropout1.p,
        activation=first.activation_name,
        norm_first=first.norm_first,
        layer_norm_eps=first.norm1.eps,
        positional=positional,
        max_len=positions.max_len if positions is not None else 4096,
    )
    out.build((None, None, d))
    for variable, tensor, transposed in _weight_pairs(out, encoder):
        value = tensor.detach().cpu().numpy()
        variable.assign(value.T if transposed else value)
    return out


def to_torch(layer: MaskedEncoder):
    """The :class:`dynmask.Encoder` with the weights of a :class:`MaskedEncoder` (the inverse of
    :func:`from_torch`)."""
    enc = Encoder(
        layer.d_model,
        layer.num_heads,
        layer.num_layers,
        d_ff=layer.d_ff,
        dropout=layer.rate,
        activation=layer.activation,
        norm_first=layer.norm_first,
        layer_norm_eps=layer.layer_norm_eps,
        positional=layer.positional,
        max_len=layer.max_len,
    )
    with torch.no_grad():
        for variable, tensor, transposed in _weight_pairs(layer, enc):
            value = torch.from_numpy(np.array(ops.convert_to_numpy(variable)))
            tensor.copy_(value.T if transposed else value)
    return enc
