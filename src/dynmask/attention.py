"""Masked multi-head attention: missing keys get exactly zero weight.

Dimension letters: B batch, H heads, Lq query length, Lk key length, D model width, hd = D / H.

Masks here are bool tensors with **True = observed (kept)**:

* ``key_keep`` bool[B, Lk]: keys a query may attend to. Values at other keys are replaced by zero
  with ``torch.where`` *before* the projection, so NaN / inf stored there never reach a product.
* ``query_keep`` bool[B, Lq] (optional): queries whose output is kept; other outputs are zero and
  their inputs are replaced by zero before projection.

A query row with no allowed key returns zeros (not NaN, not a uniform average), forward and
backward. The methods (``dynamic`` and the baselines) are registered in :mod:`dynmask.methods`;
``seed_literal``'s attention is :class:`dynmask.ablation.LiteralGateAttention`.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .graph import tracing
from .masks import check_input_dtype
from .onnx_fusion import clean_rows, exporting_fused, key_masked_attention, zero_rows

__all__ = ["MaskedMultiheadAttention", "masked_attention", "allowed_keys", "KERNELS", "sdpa_kernel"]


def allowed_keys(
    key_keep: Tensor,
    *,
    causal: bool = False,
    query_pos: Optional[Tensor] = None,
    key_pos: Optional[Tensor] = None,
    query_len: Optional[int] = None,
) -> Tensor:
    """bool[B, 1, Lq or 1, Lk]: True in row i column j means query i may attend to key j.

    Without ``causal`` this is ``key_keep`` broadcast over queries, [B, 1, 1, Lk]. With ``causal``,
    key j is allowed for query i when ``key_pos[j] <= query_pos[i]``; positions are the tokens'
    original positions (default ``arange``), so a compacted or permuted batch keeps its order.
    """
    allowed = key_keep[:, None, None, :]  # (B, 1, 1, Lk)
    if causal:
        batch, key_len = key_keep.shape
        if key_pos is None:
            key_pos = torch.arange(key_len, device=key_keep.device).expand(batch, key_len)
        if query_pos is None:
            if query_len is None:
                raise ValueError("causal attention needs query_pos or query_len")
            query_pos = torch.arange(query_len, device=key_keep.device).expand(batch, query_len)
        order = key_pos[:, None, None, :] <= query_pos[:, None, :, None]  # (B, 1, Lq, Lk)
        allowed = allowed & order
    return allowed


def masked_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    allowed: Optional[Tensor],
    dropout_p: float = 0.0,
) -> Tensor:
    """SDPA over ``q`` (B, H, Lq, hd), ``k``/``v`` (B, H, Lk, hd) with ``allowed`` (True = may attend).

    Rows with no allowed key give zeros: they are opened to every key for the kernel (so it never
    sees an empty softmax) and then zeroed with ``where``, which also stops their gradient.
    ``allowed=None`` means everything is allowed (the kernel's unmasked fast path).
    """
    out, has_key = sdpa_kernel(q, k, v, allowed, dropout_p)
    return out if has_key is None else torch.where(has_key, out, out.new_zeros(()))


def sdpa_kernel(
    q: Tensor, k: Tensor, v: Tensor, allowed: Optional[Tensor], dropout_p: float, bias: Optional[Tensor] = None
):
    """The ``"sdpa"`` kernel: PyTorch's SDPA with rows that have no allowed key opened to every key;
    returns (out (B, H, Lq, hd), has_key bool[B, 1, Lq|1, 1] or None). The caller zeroes the rows
    without a key. ``bias`` (float[B, 1, 1, Lk], finite) is added to the logits of allowed keys."""
    if allowed is None:
        if bias is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p), None
        allowed = torch.ones(bias.shape, dtype=torch.bool, device=bias.device)
    has_key = allowed.any(-1, keepdim=True)  # (B, 1, Lq|1, 1)
    safe = allowed | ~has_key  # no branch on values: the same graph whether or not a row is empty
    if bias is not None or torch.onnx.is_in_onnx_export():
        # a float mask: the bias (or 0) where allowed, -inf elsewhere. For ONNX always: a boolean mask is
        # exported as Where over [B, H, Lq, Lk] plus a NaN-safe softmax (IsNaN, Where), which onnxruntime
        # runs several times slower than this Add over the small [B, 1, 1|Lq, Lk] mask (every row keeps a
        # key, so the softmax never sees a row of -inf)
        add = q.new_zeros(()) if bias is None else bias.to(q.dtype)
        safe = torch.where(safe, add, torch.tensor(float("-inf"), dtype=q.dtype, device=q.device))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=dropout_p), has_key


# Attention kernels: name -> fn(q, k, v, allowed, dropout_p, bias) -> (out, has_key), with q (B, H, Lq, hd),
# k/v (B, H, Lk, hd), allowed bool[B, 1, Lq|1, Lk] (True = may attend) or None (everything), bias None or
# float[B, 1, 1, Lk] added to the logits of allowed keys (a Mask's confidence, log-prior). The execution
# path (dense / compact, chosen by the stacks) is separate: a new kernel (FlexAttention, varlen) is one
# function and one entry here, and every path runs on it.
KERNELS = {"sdpa": sdpa_kernel}


def _kernel(name: str):
    if name not in KERNELS:
        raise ValueError(f"kernel must be one of {tuple(KERNELS)}, got {name!r}")
    return KERNELS[name]


def _project_out(proj: nn.Linear, out: Tensor, has_key: Optional[Tensor], batch: int, q_len: int) -> Tensor:
    """out_proj of the heads (B, H, Lq, hd) -> (B, Lq, D); a row with no key gets out_proj(0) = its
    bias, as if its attention output were zero. The ``where`` comes after the projection, so the
    projection reads the kernel's own output (no extra copy kept for backward)."""
    y = proj(out.transpose(1, 2).reshape(batch, q_len, proj.in_features))  # (B, Lq, D)
    return y if has_key is None else _read_nothing(proj, y, has_key[:, 0])


def _read_nothing(proj: nn.Linear, y: Tensor, has_key: Tensor) -> Tensor:
    """y (B, Lq, D) with the rows whose query had no key (``has_key`` bool[B, Lq|1, 1] False) set to
    out_proj(0), its bias: the output of an attention that read nothing."""
    empty_value = proj.bias if proj.bias is not None else y.new_zeros(())
    return torch.where(has_key, y, empty_value)


def _keep_rows(x: Tensor, keep: Optional[Tensor]) -> Tensor:
    """Replace rows of x (B, L, D), an input, where keep (B, L) is False by zero; None keeps everything.
    (``where``, or a multiply in fused exports inside a stack or model that computed x: :func:`clean_rows`.)"""
    if keep is None:
        return x
    return clean_rows(x, keep)


def _same_mask(a: Optional[Tensor], b: Optional[Tensor]) -> bool:
    if a is b:
        return True
    if tracing():  # a value comparison: while tracing, the separate (always correct) key cleaning is used
        return False
    return a is not None and b is not None and torch.equal(a, b)


class MaskedMultiheadAttention(nn.Module):
    """Multi-head attention (batch first) where missing keys get exactly zero weight.

    Parameters are named as in ``nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``), so its ``state_dict`` loads directly. ``dropout`` is attention-probability
    dropout; keep it at 0 on CPU (any value > 0 forces SDPA's slow kernel). ``kernel`` names the
    attention kernel in :data:`KERNELS` (default ``"sdpa"``).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        device=None,
        dtype=None,
        kernel: str = "sdpa",
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.kernel = _kernel(kernel)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, L, hd)

    def _split_heads(self, x: Tensor) -> tuple[Tensor, ...]:
        """Fused projections (B, L, P·D) -> P tensors (B, H, L, hd): q, k, v (P = 3) or k, v (P = 2). unbind: its
        backward stacks, instead of filling P zero tensors."""
        batch, length, width = x.shape
        parts = width // self.embed_dim
        return x.view(batch, length, parts, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def _project(self, query: Tensor, key: Optional[Tensor], value: Optional[Tensor]):
        w, b = self.in_proj_weight, self.in_proj_bias
        d = self.embed_dim
        if key is None:  # self-attention: one fused projection
            return self._split_heads(F.linear(query, w, b))  # (B, L, 3D) -> q, k, v (B, H, L, hd)
        bq, bk, bv = (None, None, None) if b is None else b.split(d)
        wq, wk, wv = w.split(d)
        q = self._heads(F.linear(query, wq, bq))
        if value is None or value is key:
            kv = F.linear(key, torch.cat([wk, wv]), None if b is None else torch.cat([bk, bv]))  # (B, Lk, 2D)
            return (q, *self._split_heads(kv))
        return q, self._heads(F.linear(key, wk, bk)), self._heads(F.linear(value, wv, bv))

    def _fusable(self) -> bool:
        """Whether an ONNX export may write this layer as onnxruntime's fused attention node."""
        plain = type(self).gate_queries is MaskedMultiheadAttention.gate_queries and self.kernel is sdpa_kernel
        return plain and exporting_fused() and not (self.training and self.dropout > 0)

    def _fused(self, query: Tensor, key: Optional[Tensor], value: Optional[Tensor], key_keep, self_attention: bool):
        """Attention as one :func:`~dynmask.onnx_fusion.key_masked_attention` node (an ONNX export's fused
        attention): ``query`` (B, Lq, D), ``key``/``value`` (B, Lk, D) or None in self-attention, all with
        their not-kept rows already zero; ``key_keep`` bool[B, Lk], True = may be attended. Returns (B, Lq, D).
        In self-attention a row without a key is a query that is not kept either (one mask for both), so
        the caller's zeroing covers it; otherwise such a query reads nothing: out_proj(0), its bias."""
        w, b, width = self.in_proj_weight, self.in_proj_bias, self.embed_dim
        if self_attention:
            q, k, v = F.linear(query, w, b).split(width, -1)  # (B, L, D) each
        else:
            bq, bk, bv = (None, None, None) if b is None else b.split(width)
            wq, wk, wv = w.split(width)
            q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)  # (B, Lq|Lk, D)
        batch, key_len = k.shape[:2]
        keep = key_keep if key_keep is not None else torch.ones(batch, key_len, dtype=torch.bool, device=k.device)
        has_key = keep.any(-1, keepdim=True)  # (B, 1)
        y = self.out_proj(key_masked_attention(q, k, v, keep | ~has_key, self.num_heads))  # (B, Lq, D)
        if self_attention or key_keep is None:
            return y
        return _read_nothing(self.out_proj, y, has_key[:, :, None])  # has_key (B, 1, 1)

    def gate_queries(self, q: Tensor) -> Tensor:
        """Projected queries (B, H, Lq, hd) as attention reads them: unchanged here; a baseline's
        attention (:class:`dynmask.ablation.LiteralGateAttention`) overrides this."""
        return q

    def project_kv(self, x: Tensor, keep: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Keys and values (B, H, L, hd) of ``x`` (B, L, D), for a cache; rows where ``keep`` (bool[B, L],
        True = observed) is False are replaced by zero before the projection."""
        x = _keep_rows(x, keep)
        d, b = self.embed_dim, self.in_proj_bias
        k, v = self._split_heads(F.linear(x, self.in_proj_weight[d:], None if b is None else b[d:]))  # (B, L, 2D)
        return k, v  # (B, H, L, hd) each

    def attend(self, query: Tensor, k: Tensor, v: Tensor, key_keep: Optional[Tensor] = None) -> Tensor:
        """Attend from ``query`` (B, Lq, D) to cached ``k``/``v`` (B, H, Lk, hd) -> (B, Lq, D).

        ``key_keep`` bool[B, Lk], True = the key may be attended; None = all. Used by incremental decoding.
        """
        d, b = self.embed_dim, self.in_proj_bias
        batch, q_len, _ = query.shape
        q = self._heads(F.linear(query, self.in_proj_weight[:d], None if b is None else b[:d]))  # (B, H, Lq, hd)
        allowed = None if key_keep is None else key_keep[:, None, None, :]  # (B, 1, 1, Lk)
        out, has_key = self.kernel(q, k, v, allowed, 0.0)  # (B, H, Lq, hd)
        return _project_out(self.out_proj, out, has_key, batch, q_len)

    def forward_packed(
        self, x: Tensor, packing, *, causal: bool = False, key_bias: Optional[Tensor] = None, **method_inputs: Tensor
    ) -> Tensor:
        """Self-attention over packed tokens ``x`` (T, D): the kept tokens of a batch, none missing, none
        filler (:class:`dynmask.packing.Packing`) -> (T, D). The projections run on the T rows; the heads
        attend in the padded layout [B, N], where ``packing.keep`` (bool[B, N], True = a token) marks the
        only keys. Every token is its own key (causal order follows the original positions), so every row
        read back attended to something. ``key_bias`` float[B, N] and ``method_inputs`` are in the padded
        layout (:meth:`Packing.pad`)."""
        keep, width = packing.keep, self.embed_dim
        batch, slots = keep.shape
        qkv = packing.pad(F.linear(x, self.in_proj_weight, self.in_proj_bias))  # (B, N, 3D); filler rows zero
        if not causal and key_bias is None and not method_inputs and self._fusable():
            q, k, v = qkv.split(width, -1)  # (B, N, D) each
            has_key = keep.any(-1, keepdim=True)  # (B, 1): a row without tokens is opened (and never read)
            out = key_masked_attention(q, k, v, keep | ~has_key, self.num_heads)  # (B, N, D)
            return self.out_proj(packing.unpad(out))  # (T, D)
        q, k, v = self._split_heads(qkv)  # (B, H, N, hd) each
        q = self.gate_queries(q, **method_inputs)  # (B, H, N, hd)
        positions = packing.positions if causal else None  # (B, N) original positions
        allowed = allowed_keys(keep, causal=causal, query_pos=positions, key_pos=positions)  # (B, 1, 1|N, N)
        bias = None if key_bias is None else key_bias[:, None, None, :]  # (B, 1, 1, N)
        out, _ = self.kernel(q, k, v, allowed, self.dropout if self.training else 0.0, bias)  # (B, H, N, hd)
        out = out.transpose(1, 2).reshape(batch, slots, width)  # (B, N, D)
        return self.out_proj(packing.unpad(out))  # (T, D)

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor] = None,
        value: Optional[Tensor] = None,
        *,
        key_keep: Optional[Tensor] = None,
        query_keep: Optional[Tensor] = None,
        causal: bool = False,
        query_pos: Optional[Tensor] = None,
        key_pos: Optional[Tensor] = None,
        key_bias: Optional[Tensor] = None,
        **method_inputs: Tensor,
    ) -> Tensor:
        """Attend from ``query`` (B, Lq, D) to ``key``/``value`` (B, Lk, D); self-attention when key is None.

        ``key_keep`` bool[B, Lk], True = the key is observed (may be attended); None = all keys.
        ``query_keep`` bool[B, Lq], True = keep this query's output. When None: in self-attention it
        is ``key_keep`` (a missing position is neither a key nor a query, so whatever it holds never
        reaches a product, forward or backward); in cross-attention every query is kept. Pass it
        explicitly to let missing positions ask queries (their inputs must then be finite).
        Returns float[B, Lq, D]: zero at queries that are not kept; a kept query with no allowed key
        reads nothing (its attention output is zero, so it gets the output projection's bias).
        ``key_bias`` float[B, Lk] (finite): added to each key's logit (``Mask.key_bias``: log-confidence).
        ``method_inputs``: what a method's attention takes besides the masks, handed to
        :meth:`gate_queries` (the ``seed_literal`` ablation's ``literal_gate``).
        """
        if query.dim() != 3 or query.shape[-1] != self.embed_dim:
            raise ValueError(f"query must have shape [B, Lq, {self.embed_dim}], got {list(query.shape)}")
        self_attention = key is None
        source = query if self_attention else key
        if source.dim() != 3 or source.shape[0] != query.shape[0] or source.shape[-1] != self.embed_dim:
            raise ValueError(f"key must have shape [{query.shape[0]}, Lk, {self.embed_dim}], got {list(source.shape)}")
        batch, key_len = source.shape[:2]
        if value is not None and (self_attention or tuple(value.shape) != tuple(source.shape)):
            raise ValueError(
                "value needs key (self-attention reads query for both)"
                if self_attention
                else f"value must have the shape of key {list(source.shape)}, got {list(value.shape)}"
            )
        for name, m, length in (("key_keep", key_keep, key_len), ("query_keep", query_keep, query.shape[1])):
            if m is not None and (m.dtype != torch.bool or tuple(m.shape) != (batch, length)):
                raise ValueError(f"{name} must be bool[{batch}, {length}], got {m.dtype} {list(m.shape)}")
        if key_bias is not None and (not key_bias.is_floating_point() or tuple(key_bias.shape) != (batch, key_len)):
            raise ValueError(f"key_bias must be float[{batch}, {key_len}], got {key_bias.dtype} {list(key_bias.shape)}")
        for name, pos, length in (("key_pos", key_pos, key_len), ("query_pos", query_pos, query.shape[1])):
            if pos is not None and (
                pos.is_floating_point() or pos.dtype == torch.bool or tuple(pos.shape) != (batch, length)
            ):
                raise ValueError(
                    f"{name} must be an integer tensor [{batch}, {length}] of original positions, got "
                    f"{pos.dtype} {list(pos.shape)}"
                )
        check_input_dtype("query", query, self.in_proj_weight)
        if not self_attention:
            check_input_dtype("key", source, self.in_proj_weight)
        if self_attention and query_keep is None:
            query_keep = key_keep  # a position that is not a key is not a query either

        # Replace what is never read before it is projected, so NaN/inf there cannot leak.
        raw_query = query
        query = _keep_rows(query, query_keep)
        if self_attention and not _same_mask(key_keep, query_keep):
            # queries and keys differ (e.g. missing positions still ask): keys get their own cleaning
            self_attention, key = False, raw_query
        if not self_attention:
            key = _keep_rows(key, key_keep)
            value = key if value is None else _keep_rows(value, key_keep)
        if not causal and key_bias is None and not method_inputs and self._fusable():
            out = self._fused(query, key, value, key_keep, self_attention)  # (B, Lq, D)
            return out if query_keep is None else zero_rows(out, query_keep)
        q, k, v = self._project(query, key, value)  # key None: self-attention

        q = self.gate_queries(q, **method_inputs)  # (B, H, Lq, hd)

        if key_keep is None and not causal:  # decided from the arguments, never from values
            allowed = None
        else:
            keep = (
                key_keep if key_keep is not None else torch.ones(batch, key_len, dtype=torch.bool, device=query.device)
            )
            allowed = allowed_keys(keep, causal=causal, query_pos=query_pos, key_pos=key_pos, query_len=query.shape[1])
        p = self.dropout if self.training else 0.0
        bias = None if key_bias is None else key_bias[:, None, None, :]  # (B, 1, 1, Lk)
        out, has_key = self.kernel(q, k, v, allowed, p, bias)  # (B, H, Lq, hd)
        out = _project_out(self.out_proj, out, has_key, batch, query.shape[1])  # (B, Lq, D)
        return out if query_keep is None else zero_rows(out, query_keep)  # computed here: finite
