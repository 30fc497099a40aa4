"""Encoder and decoder layers and stacks that honour a dynamic mask.

Dimension letters: B batch, L (T) sequence length, S source (memory) length, N compact length,
D model width. Mask polarity: True = observed.

Layer parameters are named as in ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
and the stacks as in ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` (``layers.i``,
``norm``), so their state dicts load into each other.

Stacks run one of two ways (``backend=``):

* ``"dense"``: full length, SDPA with the mask;
* ``"compact"``: gather the kept tokens to the front once, run every layer on the shorter batch,
  scatter back once (positions and causal order follow the tokens' original positions). The encoder
  packs them instead (:class:`~dynmask.packing.Packing`): the kept tokens of the whole batch as one
  [T, D] stream, laid out per row [B, N, D] inside attention only, so every other step runs on exactly
  the kept tokens;
* ``"auto"``: compact when enough is missing to pay for it, dense otherwise (and never any mask
  work when everything is observed).

``queries="observed"``: outputs at missing positions are zero and missing positions are never
computed on the compact path. ``queries="all"``: missing positions still ask queries (of
observed keys only), starting from a learned ``missing_query`` vector plus their position; used for
imputation and generation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MaskedMultiheadAttention
from .compaction import Compaction
from .decoding import DecoderCache  # the decoder's incremental state (re-exported here)
from .embeddings import make_positions
from .graph import traced_width, tracing
from .masks import Mask, check_input_dtype
from .methods import get_method
from .onnx_fusion import clean_rows, computed_rows, zero_rows
from .packing import Packing, packing_pays

__all__ = ["with_backend", "EncoderLayer", "DecoderLayer", "Encoder", "Decoder", "DecoderCache", "BACKENDS", "QUERIES"]

BACKENDS = ("auto", "dense", "compact")
# backend="auto" (measured with benchmarks/attention.py; see the README's speed tables):
COMPACT_BELOW = 0.9  # compact when the longest kept row is at most this share of the length
COMPACT_BELOW_ALL_QUERIES = 0.5  # queries="all": missing positions still ask queries, so fewer rows drop
TRIM_PADDING_BELOW = 0.9  # queries="all": compact anyway when padding alone trims the rows this much
CUDA_MIN_ELEMENTS = 1 << 24  # on CUDA a smaller step (B·L·D) stays dense: launches, not arithmetic, bound it
QUERIES = ("observed", "all")


def _activation(name: str) -> Callable[[Tensor], Tensor]:
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    if name == "gelu_tanh":  # GPT-2's / BERT variants' "gelu_new"
        return lambda x: F.gelu(x, approximate="tanh")
    raise ValueError(f"activation must be 'relu', 'gelu' or 'gelu_tanh', got {name!r}")


@dataclass(frozen=True)
class _Run:
    """How one batch runs through the layers (all masks bool, True = kept)."""

    key_keep: Optional[Tensor]  # (B, L) keys that may be attended; None = all
    query_keep: Optional[Tensor]  # (B, L) queries whose output is kept; None = all
    positions: Optional[Tensor] = None  # (B, L) original positions (causal order); None = arange
    key_len: Optional[int] = None  # keys are the first key_len slots (compact, queries="all")
    # what the method's attention takes besides the masks (Method.attention_inputs; nothing for dynamic)
    method_inputs: dict = field(default_factory=dict)
    key_bias: Optional[Tensor] = None  # (B, L) log-confidence of each key (Mask.key_bias); None = 0
    # packed runs: h is (T, D), the kept tokens only; key_bias and method_inputs are in its padded layout (B, N)
    packing: Optional[Packing] = None

    def self_attend(self, attn: MaskedMultiheadAttention, h: Tensor, causal: bool) -> Tensor:
        if self.packing is not None:
            return attn.forward_packed(h, self.packing, causal=causal, key_bias=self.key_bias, **self.method_inputs)
        common = dict(query_keep=self.query_keep, causal=causal, query_pos=self.positions, **self.method_inputs)
        if self.key_len is None:
            return attn(h, key_keep=self.key_keep, key_pos=self.positions, key_bias=self.key_bias, **common)
        n = self.key_len
        keys = h[:, :n]  # (B, N, D): kept tokens sit in the first N slots
        key_pos = None if self.positions is None else self.positions[:, :n]
        bias = None if self.key_bias is None else self.key_bias[:, :n]
        return attn(h, keys, keys, key_keep=self.key_keep[:, :n], key_pos=key_pos, key_bias=bias, **common)


class _Block(nn.Module):
    """What encoder and decoder layers share: self-attention, (cross-attention), a feed-forward block,
    their norms and dropouts, named as in ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        norm_first: bool = True,
        attn_dropout: float = 0.0,
        bias: bool = True,
        attention: type[MaskedMultiheadAttention] = MaskedMultiheadAttention,
        kernel: str = "sdpa",
        *,
        cross: bool = False,
    ) -> None:
        super().__init__()
        attend = lambda: attention(d_model, nhead, dropout=attn_dropout, bias=bias, kernel=kernel)
        self.self_attn = attend()
        if cross:
            self.multihead_attn = attend()
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        for i in range(1, 4 if cross else 3):  # norm1, norm2 (, norm3) and dropout1, dropout2 (, dropout3)
            setattr(self, f"norm{i}", nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        for i in range(1, 4 if cross else 3):
            setattr(self, f"dropout{i}", nn.Dropout(dropout))
        self.activation = _activation(activation)
        self.activation_name = activation


class EncoderLayer(_Block):
    """Pre-norm (default) or post-norm Transformer encoder layer over a dynamic mask."""

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, x: Tensor, run: _Run, causal: bool = False) -> Tensor:
        if self.norm_first:
            x = x + self.dropout1(run.self_attend(self.self_attn, self.norm1(x), causal))
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self.dropout1(run.self_attend(self.self_attn, x, causal)))
            x = self.norm2(x + self._ff(x))
        if run.query_keep is not None:
            x = zero_rows(x, run.query_keep)
        return x


class DecoderLayer(_Block):
    """Decoder layer: causal masked self-attention, cross-attention to observed memory, feed-forward."""

    def __init__(self, d_model: int, nhead: int, *args, **kwargs) -> None:
        super().__init__(d_model, nhead, *args, **kwargs, cross=True)

    def step(self, x: Tensor, self_kv, cross_kv, memory_keep: Tensor):
        """One new position ``x`` (B, 1, D) attending to the cached keys; returns (x, new self (k, v))."""
        h = self.norm1(x) if self.norm_first else x  # what self-attention reads (post-norm: the raw input)
        k_new, v_new = self.self_attn.project_kv(h)  # (B, H, 1, hd) each
        k = k_new if self_kv is None else torch.cat([self_kv[0], k_new], dim=2)  # (B, H, t+1, hd)
        v = v_new if self_kv is None else torch.cat([self_kv[1], v_new], dim=2)
        # generated tokens are all observed; causal by construction
        if self.norm_first:
            x = x + self.self_attn.attend(h, k, v)
            x = x + self.multihead_attn.attend(self.norm2(x), cross_kv[0], cross_kv[1], memory_keep)
            x = x + self._ff(self.norm3(x))
        else:
            x = self.norm1(x + self.self_attn.attend(h, k, v))
            x = self.norm2(x + self.multihead_attn.attend(x, cross_kv[0], cross_kv[1], memory_keep))
            x = self.norm3(x + self._ff(x))
        return x, (k, v)

    def _cross(self, h: Tensor, memory: Tensor, memory_keep: Optional[Tensor], run: _Run) -> Tensor:
        return self.multihead_attn(
            h, memory, memory, key_keep=memory_keep, query_keep=run.query_keep, **run.method_inputs
        )

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self, x: Tensor, memory: Tensor, memory_keep: Optional[Tensor], run: _Run, causal: bool = True
    ) -> Tensor:
        if self.norm_first:
            x = x + self.dropout1(run.self_attend(self.self_attn, self.norm1(x), causal))
            x = x + self.dropout2(self._cross(self.norm2(x), memory, memory_keep, run))
            x = x + self._ff(self.norm3(x))
        else:
            x = self.norm1(x + self.dropout1(run.self_attend(self.self_attn, x, causal)))
            x = self.norm2(x + self.dropout2(self._cross(x, memory, memory_keep, run)))
            x = self.norm3(x + self._ff(x))
        if run.query_keep is not None:
            x = zero_rows(x, run.query_keep)
        return x


class _Stack(nn.Module):
    """What encoder and decoder stacks share: input cleaning, positions, backend choice, compaction."""

    packs = False  # compact runs pack the kept tokens (queries="observed"); the decoder's cross-attention reads rows

    def __init__(
        self,
        layer: type[_Block],
        d_model: int,
        n_heads: int,
        n_layers: int,
        *,
        d_ff: Optional[int] = None,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        activation: str = "relu",
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
        backend: str = "auto",
        method: str = "dynamic",
        queries: str = "observed",
        positional: Optional[str] = None,
        max_len: int = 4096,
        compact_below: Optional[float] = None,
        kernel: str = "sdpa",
    ) -> None:
        super().__init__()
        spec = get_method(method, "stack")  # a method of dynmask.methods that runs on a stack
        blocks = [
            layer(
                d_model,
                n_heads,
                d_ff or 4 * d_model,
                dropout,
                activation,
                layer_norm_eps,
                norm_first,
                attn_dropout,
                attention=spec.attention,
                kernel=kernel,
            )
            for _ in range(n_layers)
        ]
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if queries not in QUERIES:
            raise ValueError(f"queries must be one of {QUERIES}, got {queries!r}")
        self.layers = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm_first else None
        self.d_model = d_model
        self.backend = backend  # the execution path: dense / compact / auto (the kernel is the attention's)
        self.method = method  # its name; the registered Method is method_spec
        self.method_spec = spec
        self.queries = queries
        self.positions = make_positions(positional, d_model, max_len)
        # missing positions that still ask queries start from this vector (+ their position)
        self.missing_query = nn.Parameter(torch.zeros(d_model)) if queries == "all" else None
        self.compact_below = compact_below
        self.auto_reason = ""  # why backend="auto" chose as it did in the last eager forward

    def _prepare(self, x: Tensor, mask: Mask, backend: Optional[str], causal: bool, positions: Optional[Tensor] = None):
        """Clean the input, add positions (``positions``: long[B, L], each slot's own, or 0..L-1), choose
        the backend; returns (x, run, plan or None)."""
        if not isinstance(mask, Mask):
            raise TypeError(f"mask must be a dynmask.Mask, got {type(mask).__name__}")
        mask.check_matches("x", x)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape [B, L, {self.d_model}], got {list(x.shape)}")
        check_input_dtype("x", x, self.layers[0].self_attn.in_proj_weight if len(self.layers) else x)
        backend = backend or self.backend
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")

        spec = self.method_spec
        inputs = spec.attention_inputs(mask)  # what the method's attention takes besides the masks
        bias = mask.key_bias()  # (B, L) log-confidence of each key, or None
        keep = spec.keys(mask)  # (B, L) keys; the baselines: padding only, missing read as tokens
        asks_all = self.queries == "all" and not spec.reads_missing  # the baselines have nothing missing
        query_keep = mask.valid if asks_all else keep  # (B, L) queries whose output is kept

        # Replace what must not be read *before* any arithmetic: NaN/inf cannot leak.
        if asks_all:  # missing positions still ask: they read the learned query, padding reads zero
            fill = self.missing_query.to(x.dtype)
            x = torch.where(keep.unsqueeze(-1), x, torch.where(query_keep.unsqueeze(-1), fill, x.new_zeros(())))
        else:  # where, or a multiply in fused exports whose model computed x (clean_rows)
            x = clean_rows(x, keep)
        if self.positions is not None:
            batch, length = keep.shape
            if positions is None:
                positions = torch.arange(length, device=x.device).expand(batch, length)  # (B, L)
            pe = self.positions(positions)  # (B, L, D)
            x = x + zero_rows(pe.to(x.dtype), query_keep)

        length = keep.shape[1]
        if tracing():  # one graph for every batch: decisions from arguments, sizes symbolic
            return self._prepare_traced(x, keep, query_keep, inputs, bias, backend, causal, asks_all)
        # eager: every value this forward decides on, in one device sync
        if keep.numel():
            stats = torch.stack([keep.sum(1).max(), query_keep.sum(1).max(), keep.all() & query_keep.all()])
            width, query_width, everything = stats.tolist()
        else:
            width, query_width, everything = 0, 0, True
        if backend == "auto":
            backend, self.auto_reason = self._choose(x, width, query_width, length, asks_all)

        if backend == "compact" and width == 0 and not asks_all:
            backend = "dense"  # nothing observed anywhere: no compact batch to run; dense returns zeros
        if backend == "dense":
            if everything:
                return x, _Run(None, None, method_inputs=inputs, key_bias=bias), None  # nothing to mask
            return x, _Run(keep, query_keep, method_inputs=inputs, key_bias=bias), None
        return self._compact(
            x, keep, query_keep, inputs, bias, causal, asks_all, max(width, 1), query_width if asks_all else width
        )

    def _choose(self, x: Tensor, width: int, query_width: int, length: int, asks_all: bool) -> tuple[str, str]:
        """``auto``'s choice and its reason (kept in ``self.auto_reason``, like torch's
        ``why_not_sparsity_fast_path``): compact when the longest kept row is short enough to pay for
        the gather and scatter; on CUDA only when the step is large enough too."""
        below = self.compact_below
        if below is None:
            below = COMPACT_BELOW_ALL_QUERIES if asks_all else COMPACT_BELOW
        if x.device.type == "cuda" and x.numel() < CUDA_MIN_ELEMENTS:
            return "dense", f"a CUDA step of {x.numel()} elements (< {CUDA_MIN_ELEMENTS}) is bound by kernel launches"
        if width <= below * length:
            return "compact", f"the longest kept row ({width}) is at most {below:g} of the length ({length})"
        if asks_all and query_width <= TRIM_PADDING_BELOW * length:
            return "compact", f"padding trims the rows to {query_width} of {length}"
        return "dense", f"the longest kept row ({width}) is over {below:g} of the length ({length})"

    def _compact(self, x, keep, query_keep, inputs: dict, bias, causal: bool, asks_all: bool, key_width, width):
        if not asks_all and self.packs and packing_pays():  # the kept tokens of the whole batch as one stream
            packing = Packing.plan(keep, width=width)
            inputs = {name: packing.gather(t) for name, t in inputs.items()}  # (B, N) each
            bias = None if bias is None else packing.gather(bias)  # (B, N)
            run = _Run(None, None, method_inputs=inputs, key_bias=bias, packing=packing)
            return packing.pack(x), run, packing  # x (T, D)
        if not asks_all:  # drop everything not kept
            plan = Compaction.plan(keep, width=width)
            inputs = {name: plan.gather(t) for name, t in inputs.items()}  # (B, N) each
            bias = None if bias is None else plan.gather(bias)  # (B, N)
            positions = plan.positions if causal else None
            run = _Run(plan.valid, plan.valid, positions=positions, method_inputs=inputs, key_bias=bias)
            return plan.gather(x), run, plan
        # kept tokens first, then the missing ones (which still ask queries); keys are the first `key_width` slots
        plan = Compaction.plan(keep, include_dropped=True, limit=query_keep, width=width)  # padding trimmed
        bias = None if bias is None else plan.gather(bias)  # (B, N): kept keys first
        run = _Run(plan.kept, plan.valid, positions=plan.positions, key_len=key_width, key_bias=bias)
        return plan.gather(x), run, plan

    def _prepare_traced(self, x, keep, query_keep, inputs: dict, bias, backend: str, causal: bool, asks_all: bool):
        """Tracing: ``auto`` runs dense (the choice depends on values); ``compact`` takes its width as a
        symbolic size of at least 2 (filler slots are harmless: an all-missing batch returns zeros; at
        least 2 keeps kernels from specialising on a width of 1). Traced lengths must be >= 2."""
        length = keep.shape[1]
        if backend in ("auto", "dense"):
            return x, _Run(keep, query_keep, method_inputs=inputs, key_bias=bias), None
        if length < 2:
            return x, _Run(keep, query_keep, method_inputs=inputs, key_bias=bias), None  # nothing to compact
        key_width = traced_width(keep)
        width = traced_width(query_keep) if asks_all else key_width
        return self._compact(x, keep, query_keep, inputs, bias, causal, asks_all, key_width, width)

    def _finish(self, x: Tensor, run: _Run, plan: Optional[Compaction | Packing]) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        if run.query_keep is not None:
            x = zero_rows(x, run.query_keep)
        return x if plan is None else plan.scatter(x)


class Encoder(_Stack):
    """A stack of :class:`EncoderLayer` over a dynamic mask.

    ``forward(x, mask)``: ``x`` float[B, L, D], ``mask`` a :class:`Mask` (True = observed). Returns
    float[B, L, D]; with ``queries="observed"`` it is zero at missing and padding positions.
    Whatever ``x`` holds at missing positions (0, 1e30, NaN, inf) changes no output at observed
    positions and receives exactly zero gradient.

    Options (keywords, for both stacks): ``d_ff`` (default 4 × d_model), ``dropout``, ``attn_dropout``,
    ``activation`` (relu / gelu / gelu_tanh), ``norm_first``, ``layer_norm_eps``, ``backend`` (the
    execution path: auto / dense / compact), ``method`` (a stack method of :mod:`dynmask.methods`),
    ``queries`` (observed / all), ``positional`` (None / sinusoidal / learned), ``max_len``,
    ``compact_below`` (``auto``'s threshold), ``kernel`` (:data:`dynmask.attention.KERNELS`).
    """

    packs = True

    def __init__(
        self, d_model: int, n_heads: int, n_layers: int, *, backend: str = "auto", queries: str = "observed", **options
    ) -> None:
        super().__init__(EncoderLayer, d_model, n_heads, n_layers, backend=backend, queries=queries, **options)

    def forward(
        self,
        x: Tensor,
        mask: Mask,
        *,
        causal: bool = False,
        backend: Optional[str] = None,
        positions: Optional[Tensor] = None,
    ) -> Tensor:
        """``positions`` (long[B, L]): each slot's position for the positional encoding, when ``x`` holds
        tokens gathered from a longer sequence (:meth:`Compaction.gather`, kept tokens in order);
        default 0..L-1."""
        if positions is not None and positions.shape != x.shape[:2]:
            raise ValueError(f"positions must have shape {list(x.shape[:2])}, got {list(positions.shape)}")
        x, run, plan = self._prepare(x, mask, backend, causal, positions)  # cleans x (clean_rows)
        with computed_rows():  # the layers read what the stack computed from its cleaned input
            for layer in self.layers:
                x = layer(x, run, causal=causal)
        return self._finish(x, run, plan)


class Decoder(_Stack):
    """A stack of :class:`DecoderLayer`: causal self-attention composed with the target's missing mask,
    cross-attention to the memory's observed positions.

    ``forward(tgt, memory, tgt_mask, memory_mask)``: ``tgt`` float[B, T, D], ``memory`` float[B, S, D],
    masks True = observed. Default ``queries="all"``: every target position (missing ones too) gets
    an output, computed from observed target tokens before it and observed memory only.
    """

    def __init__(
        self, d_model: int, n_heads: int, n_layers: int, *, backend: str = "dense", queries: str = "all", **options
    ) -> None:
        super().__init__(DecoderLayer, d_model, n_heads, n_layers, backend=backend, queries=queries, **options)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Mask,
        memory_mask: Mask,
        *,
        causal: bool = True,
        backend: Optional[str] = None,
    ) -> Tensor:
        if not isinstance(memory_mask, Mask):
            raise TypeError(f"memory_mask must be a dynmask.Mask, got {type(memory_mask).__name__}")
        memory_mask.check_matches("memory", memory)
        if memory.shape[0] != tgt.shape[0]:
            raise ValueError(f"memory has batch {memory.shape[0]} but tgt has batch {tgt.shape[0]}")
        memory_keep = self._memory_keep(memory_mask)  # (B, S)
        memory = clean_rows(memory, memory_keep)  # handed in: where, unless the caller computed it
        x, run, plan = self._prepare(tgt, tgt_mask, backend, causal)  # cleans tgt (clean_rows)
        with computed_rows():  # the layers read what the stack computed and the cleaned memory
            for layer in self.layers:
                x = layer(x, memory, memory_keep, run, causal=causal)
        return self._finish(x, run, plan)

    def _memory_keep(self, memory_mask: Mask) -> Tensor:
        return self.method_spec.keys(memory_mask)

    # ------------------------------------------------------------------ incremental decoding
    def start(self, memory: Tensor, memory_mask: Mask) -> DecoderCache:
        """Cache for decoding against ``memory`` (B, S, D): its keys and values, computed once per layer."""
        memory_mask.check_matches("memory", memory)
        keep = self._memory_keep(memory_mask)
        cross = [layer.multihead_attn.project_kv(memory, keep) for layer in self.layers]
        return DecoderCache([None] * len(self.layers), cross, keep, 0)

    def step(self, y: Tensor, cache: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Decode one position: ``y`` (B, 1, D) is the embedding of the newest (observed) token.

        Returns its output (B, 1, D) and the grown cache; equal to :meth:`forward` on the whole prefix.
        """
        if self.positions is not None:
            pos = torch.full((y.shape[0], 1), cache.position, dtype=torch.long, device=y.device)
            y = y + self.positions(pos).to(y.dtype)
        new_self = []
        for layer, self_kv, cross_kv in zip(self.layers, cache.self_kv, cache.cross_kv):
            y, kv = layer.step(y, self_kv, cross_kv, cache.memory_keep)
            new_self.append(kv)
        if self.norm is not None:
            y = self.norm(y)
        return y, DecoderCache(new_self, cache.cross_kv, cache.memory_keep, cache.position + 1)


def with_backend(model: nn.Module, backend: str) -> nn.Module:
    """A copy of ``model`` whose Transformer stacks run ``backend``."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, _Stack):
            module.backend = backend
    return model
