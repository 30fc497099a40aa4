"""What ONNX exports write differently so that onnxruntime runs them fast (``dynmask export`` uses it).

**Attention.** Exported the ordinary way, masked attention becomes MatMul, a mask Add over [B, H, Lq, Lk], Softmax and
MatMul plus the head transposes: several passes over the largest tensor of the model. Inside
:func:`fused_attention_export` (what ``dynmask export`` uses), :class:`~dynmask.attention.MaskedMultiheadAttention`
calls :func:`key_masked_attention` instead, one opaque op that :data:`TRANSLATIONS` writes as one
``MultiHeadAttention`` node reading the projections in (B, L, D) layout and a key padding mask.

Mask polarity: ``key_keep`` is bool[B, Lk] with **True = the key may be attended**. Its conversion for
onnxruntime (which takes no mask on its fast kernel) is here and only here: a masked key's logit gets
:data:`MASKED_LOGIT`, whose exponential is exactly 0. Every row must keep at least one key (the caller
opens rows without one to every key; their queries are not kept, so their outputs are zeroed).

**Zeroing computed rows.** onnxruntime's ``Where`` with a broadcast [B, L, 1] condition runs ~5x slower
than a ``Mul`` (0.23 vs 0.045 ms on [16, 256, 64], 2 threads). :func:`zero_rows` zeroes rows a model
computed itself with a multiply in these exports and with ``where`` everywhere else: each attention's output,
each layer's output, the compaction's slots. What a stack, an attention or a pooling is *handed* may be a
user's input, NaN or inf at masked rows, where 0 × NaN is NaN: :func:`clean_rows` cleans it with ``where``,
unless the caller declared it computed (:func:`computed_rows`): dynmask's models do, around everything
after their inputs are cleaned, and a stack does around its layers once it has cleaned its input. The
token embedding, likewise, reads the missing vector as one more row of its table (folded to a constant at
load) instead of a ``Where``. The ``Where``s left in a model's export select ids and masks, rank 2 at
most; a bare stack or attention exported on its own adds one per input it cleans.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "key_masked_attention",
    "fused_attention_export",
    "exporting_fused",
    "translations",
    "zero_rows",
    "clean_rows",
    "computed_rows",
]

_FUSED = False
_COMPUTED = contextvars.ContextVar("dynmask_computed_rows", default=False)  # inside computed_rows()
MASKED_LOGIT = -1e30  # added to a masked key's q.k: its softmax weight is exactly 0


@torch.library.custom_op("dynmask::key_masked_attention", mutates_args=())
def key_masked_attention(q: Tensor, k: Tensor, v: Tensor, key_keep: Tensor, num_heads: int) -> Tensor:
    """Attention of ``q`` (B, Lq, D) over ``k``/``v`` (B, Lk, D) in ``num_heads`` heads, scale 1/sqrt(D/H);
    ``key_keep`` bool[B, Lk], True = may attend (every row keeps one). Returns (B, Lq, D)."""
    batch, q_len, width = q.shape
    key_len, head = k.shape[1], width // num_heads
    qh = q.reshape(batch, q_len, num_heads, head).transpose(1, 2)  # (B, H, Lq, hd)
    kh = k.reshape(batch, key_len, num_heads, head).transpose(1, 2)  # (B, H, Lk, hd)
    vh = v.reshape(batch, key_len, num_heads, head).transpose(1, 2)
    out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=key_keep[:, None, None, :])  # (B, H, Lq, hd)
    return out.transpose(1, 2).reshape(batch, q_len, width)


@key_masked_attention.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, key_keep: Tensor, num_heads: int) -> Tensor:
    return q.new_empty(q.shape)


def zero_rows(x: Tensor, keep: Tensor) -> Tensor:
    """x (B, L, D) with rows where ``keep`` bool[B, L] is False (True = kept) set to zero. For values the
    model computed from cleaned inputs only (finite wherever ``keep`` is False): a multiply while a fused
    export traces, ``where`` otherwise. Values handed in from outside take :func:`clean_rows`."""
    if exporting_fused():
        return x * keep.unsqueeze(-1).to(x.dtype)
    return torch.where(keep.unsqueeze(-1), x, x.new_zeros(()))


def clean_rows(x: Tensor, keep: Tensor) -> Tensor:
    """x (B, L, D) with rows where ``keep`` bool[B, L] is False (True = kept) set to zero, for what a stack,
    an attention or a pooling is handed: ``where`` (NaN and inf at those rows never reach a product), or
    :func:`zero_rows` inside :func:`computed_rows`, where the caller computed ``x`` from cleaned inputs."""
    if exporting_fused() and _COMPUTED.get():  # (exporting_fused first: torch.compile never reads the variable)
        return zero_rows(x, keep)  # its multiply
    return torch.where(keep.unsqueeze(-1), x, x.new_zeros(()))


def computed_rows():
    """A context: within it, the stacks, attentions and poolings called read values the caller computed from
    inputs it cleaned with ``where`` before any arithmetic (finite wherever a mask is False), so a fused
    export may zero their masked rows by a multiply. Outside it they clean what they are handed. Only a
    fused export reads it: elsewhere it is ``nullcontext`` (which torch.compile traces through)."""
    return _computed() if exporting_fused() else contextlib.nullcontext()


@contextlib.contextmanager
def _computed():
    token = _COMPUTED.set(True)
    try:
        yield
    finally:
        _COMPUTED.reset(token)


def exporting_fused() -> bool:
    """True while an export inside :func:`fused_attention_export` traces the model."""
    return _FUSED and torch.onnx.is_in_onnx_export()


@contextlib.contextmanager
def fused_attention_export():
    """Within this block, ONNX exports write self-attention as one fused node; pass
    ``custom_translation_table=translations()`` to ``torch.onnx.export``."""
    global _FUSED
    before, _FUSED = _FUSED, True
    try:
        yield
    finally:
        _FUSED = before


def _schema():
    """The part of onnxruntime's ``com.microsoft.MultiHeadAttention`` (version 1) that the export writes."""
    from onnx.defs import OpSchema

    optional = OpSchema.FormalParameterOption.Optional
    return OpSchema(
        "MultiHeadAttention",
        "com.microsoft",
        1,
        inputs=[
            OpSchema.FormalParameter("query", "T"),
            OpSchema.FormalParameter("key", "T", param_option=optional),
            OpSchema.FormalParameter("value", "T", param_option=optional),
            OpSchema.FormalParameter("bias", "T", param_option=optional),
            OpSchema.FormalParameter("key_padding_mask", "M", param_option=optional),
        ],
        outputs=[OpSchema.FormalParameter("output", "T")],
        type_constraints=[("T", ["tensor(float)"], ""), ("M", ["tensor(int32)"], "")],
        attributes=[
            OpSchema.Attribute("num_heads", OpSchema.AttrType.INT, "", required=True),
            OpSchema.Attribute("scale", OpSchema.AttrType.FLOAT, "", required=False),
        ],
    )


def translations() -> dict:
    """The exporter's table: :func:`key_masked_attention` -> ``com.microsoft.MultiHeadAttention``."""
    import onnxscript
    from onnxscript import opset18 as op

    microsoft = onnxscript.values.Opset("com.microsoft", 1)
    mha = onnxscript.values.Op(microsoft, "MultiHeadAttention", _schema())  # onnxruntime's op: onnx has no schema

    def multi_head_attention(q, k, v, key_keep, num_heads: int):
        # The mask goes into the products, so onnxruntime runs its flash kernel (it takes no mask): each head
        # of q and k gets one more dimension (q reads 1 there; k reads 0 where it may be attended and
        # MASKED_LOGIT where not), which adds MASKED_LOGIT * scale to a masked key's logit and exactly 0 to
        # any other. q, k (B, L, D) -> (B, L, H, hd + 1) -> (B, L, H * (hd + 1)).
        head = q.shape[2] // num_heads
        q4 = op.Reshape(q, op.Constant(value_ints=[0, 0, num_heads, head]))
        k4 = op.Reshape(k, op.Constant(value_ints=[0, 0, num_heads, head]))
        one = op.Constant(value_ints=[1])
        ones = op.Expand(
            op.Constant(value_float=1.0), op.Concat(op.Shape(q4, start=0, end=3), one, axis=0)
        )  # (B, Lq, H, 1)
        logit = op.Where(key_keep, op.Constant(value_float=0.0), op.Constant(value_float=MASKED_LOGIT))  # (B, Lk)
        logit = op.Unsqueeze(logit, op.Constant(value_ints=[2, 3]))  # (B, Lk, 1, 1)
        shift = op.Expand(logit, op.Concat(op.Shape(k4, start=0, end=3), one, axis=0))  # (B, Lk, H, 1)
        flat = op.Constant(value_ints=[0, 0, -1])
        q_ext = op.Reshape(op.Concat(q4, ones, axis=3), flat)  # (B, Lq, H * (hd + 1))
        k_ext = op.Reshape(op.Concat(k4, shift, axis=3), flat)  # (B, Lk, H * (hd + 1))
        return mha(q_ext, k_ext, v, num_heads=num_heads, scale=head**-0.5)

    return {torch.ops.dynmask.key_masked_attention.default: multi_head_attention}
