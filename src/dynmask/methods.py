"""The registry of missing-value methods: how a model treats the positions its mask calls missing.

Every place that takes ``method=`` (the stacks, the task models, the command line, the demo, export)
asks this registry; no other module keeps a list of method names. A method is

* a **mask transform**: which positions attention and pooling may read (:meth:`Method.keys`,
  :meth:`Method.transform_mask`): the observed ones (``dynamic``), or every valid one, missing
  positions holding a placeholder (the baselines ``static`` and ``seed_literal``);
* an optional **input transform** of token ids (:meth:`Method.prepare_ids`): ``delete`` removes the
  missing tokens and renumbers the rest, ``unk`` / ``mask`` write a placeholder id over them;
* the **attention class** a stack running it is built from (``seed_literal``:
  :class:`dynmask.ablation.LiteralGateAttention`), with what that attention takes besides the masks
  (:meth:`Method.attention_inputs`);
* **where it applies**: the models (``stack``: ``dm.Encoder`` / ``dm.Decoder``; ``text``: the
  from-scratch classifier; ``pretrained``: a Hugging Face encoder; ``seq2seq``; ``series``) and, per
  model, the architectures.

Only ``dynamic`` keeps the guarantee; the others are baselines, measured against it, never defaults.
Mask polarity everywhere: True = observed.

Adding a method: one :class:`Method` and one :func:`register` call below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import torch
from torch import Tensor

from .ablation import LiteralGateAttention
from .attention import MaskedMultiheadAttention
from .compaction import Compaction
from .masks import Mask

__all__ = ["Method", "METHODS", "register", "get_method", "method_names", "static_mask", "delete_missing"]

RNN_ARCHS = frozenset({"lstm", "gru"})
ALL_ARCHS = frozenset({"transformer", "lstm", "gru", "grud"})
TRANSFORMER = frozenset({"transformer"})


def static_mask(mask: Mask) -> Mask:
    """The mask the baselines see: every valid (non-padding) position counts as observed."""
    return Mask(mask.valid, mask.valid)


def delete_missing(ids: Tensor, mask: Mask) -> tuple[Tensor, Mask]:
    """``delete``: the observed ids of each row moved to the front and renumbered 0..n-1 (long[B, N]),
    with a length mask; a batch with nothing observed keeps one empty slot per row (long[B, 1])."""
    plan = Compaction.plan(mask.observed)
    if plan.width == 0:  # nothing observed anywhere: one empty slot per sample
        return ids[:, :1].clone(), Mask.from_lengths(plan.num_kept, max_len=1)
    kept = plan.gather(ids.unsqueeze(-1)).squeeze(-1)  # (B, N): observed ids, renumbered from 0
    return kept, Mask.from_lengths(plan.num_kept, max_len=plan.width)


def _no_inputs(mask: Mask) -> dict:
    return {}


@dataclass(frozen=True)
class Method:
    """One way of handling missing positions (see the module docstring)."""

    name: str
    summary: str
    reads_missing: bool  # True: missing positions are read as placeholders (only padding is masked)
    applies_to: Mapping[str, frozenset]  # model -> architectures it runs on
    attention: type[MaskedMultiheadAttention] = MaskedMultiheadAttention
    attention_inputs: Callable[[Mask], dict] = _no_inputs  # what ``attention`` takes besides the masks
    placeholder: Optional[str] = None  # "unk" / "mask": the placeholder token written over missing ids
    deletes: bool = False  # removes missing tokens before the model (the length changes with the data)
    arch_note: str = field(default="", compare=False)  # why it does not run on other architectures

    @property
    def stack_method(self) -> str:
        """The method the model's ``Encoder`` runs: input transforms hand it an ordinary mask."""
        return self.name if "stack" in self.applies_to else "dynamic"

    def keys(self, mask: Mask) -> Tensor:
        """bool[B, L], True = a stack running this method may attend here. Read from ``mask`` directly
        (building the transformed :class:`Mask` on every forward would re-run its eager validation)."""
        return mask.valid if self.reads_missing else mask.observed

    def transform_mask(self, mask: Mask) -> Mask:
        """The mask a model running this method reads with (the baselines: :func:`static_mask`)."""
        return static_mask(mask) if self.reads_missing else mask

    def prepare_ids(self, ids: Tensor, mask: Mask, placeholder_id: Optional[int] = None) -> tuple[Tensor, Mask]:
        """Token ids long[B, L] and their mask as the model reads them (the input transform)."""
        if self.deletes:
            return delete_missing(ids, mask)
        if self.placeholder is not None:
            if placeholder_id is None:
                raise ValueError(f"method={self.name!r} needs the id of its placeholder token")
            return torch.where(mask.missing, torch.full_like(ids, placeholder_id), ids), static_mask(mask)
        return ids, mask

    def check(self, model: str, arch: Optional[str] = None) -> "Method":
        """Raise ``ValueError`` unless this method runs on ``model`` (and ``arch``); returns self."""
        if model not in self.applies_to:
            raise ValueError(f"method must be one of {method_names(model)}, got {self.name!r}")
        archs = self.applies_to[model]
        if arch is not None and arch not in archs:
            if arch == "grud":
                raise ValueError(
                    f"arch='grud' handles missing tokens itself: it takes method='dynamic', got {self.name!r}"
                )
            raise ValueError(f"method={self.name!r} {self.arch_note or 'runs on'}: use arch in {sorted(archs)}")
        return self


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its name must be new)."""
    if method.name in METHODS:
        raise ValueError(f"a method named {method.name!r} is registered already")
    METHODS[method.name] = method
    return method


def get_method(name: str, model: str = "stack", arch: Optional[str] = None) -> Method:
    """The registered method ``name``, checked to run on ``model`` (and ``arch``)."""
    if name not in METHODS or model not in METHODS[name].applies_to:
        raise ValueError(f"method must be one of {method_names(model)}, got {name!r}")
    return METHODS[name].check(model, arch)


def method_names(model: Optional[str] = None) -> tuple[str, ...]:
    """Registered method names (those that run on ``model``, when given), in registration order."""
    return tuple(n for n, m in METHODS.items() if model is None or model in m.applies_to)


register(
    Method(
        "dynamic",
        "the dynamic mask: missing positions are never attended, never pooled (the guarantee)",
        reads_missing=False,
        applies_to={
            "stack": TRANSFORMER,
            "text": ALL_ARCHS,
            "pretrained": TRANSFORMER,
            "seq2seq": TRANSFORMER,
            "series": ALL_ARCHS,
        },
    )
)
register(
    Method(
        "static",
        "baseline: missing positions hold a placeholder and are read like any token (only padding masked)",
        reads_missing=True,
        applies_to={
            "stack": TRANSFORMER,
            "text": TRANSFORMER | RNN_ARCHS,
            "seq2seq": TRANSFORMER,
            "series": ALL_ARCHS,
        },
    )
)
register(
    Method(
        "seed_literal",
        "ablation: the original write-up's softmax((Q*A)Kᵀ/√d)V, which zeroes queries, not keys",
        reads_missing=True,
        applies_to={"stack": TRANSFORMER, "text": TRANSFORMER, "seq2seq": TRANSFORMER},
        attention=LiteralGateAttention,
        attention_inputs=lambda mask: {"literal_gate": mask.observed},  # (B, L) the write-up's A
        arch_note="is an attention formula",
    )
)
for _token in ("unk", "mask"):
    register(
        Method(
            _token,
            f"baseline: missing word pieces become the pretrained [{_token.upper()}] token, read like any token",
            reads_missing=True,
            applies_to={"pretrained": TRANSFORMER},
            placeholder=_token,
        )
    )

register(
    Method(
        "delete",
        "baseline: missing tokens are removed and the rest renumbered, as if they never existed",
        reads_missing=False,
        applies_to={"text": TRANSFORMER | RNN_ARCHS, "pretrained": TRANSFORMER},
        deletes=True,
    )
)
