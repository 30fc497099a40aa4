"""The masks of :mod:`dynmask.keras` (True = observed, Keras' own convention), built from the data with
``keras.ops`` only, and the checks every layer applies to a mask it is given: a float mask or float ids are
refused, missing rows are replaced by zero with ``where`` before any arithmetic."""

from __future__ import annotations

from typing import Optional, Sequence

import keras
from keras import ops

__all__ = ["mask_from_nan", "mask_from_tokens", "mask_from_lengths"]


def mask_from_nan(x):
    """(observed bool[B, L], observed_values bool[B, L, F]) from float[B, L, F]: NaN / inf = missing;
    a step is observed when any of its features is."""
    observed_values = ops.isfinite(x)
    return ops.any(observed_values, axis=-1), observed_values


def mask_from_tokens(ids, missing_ids: Sequence[int] = (), pad_id: Optional[int] = None):
    """(observed, valid) bool[B, L] from int ids [B, L]: ``missing_ids`` are missing, ``pad_id`` padding.
    Float ids are refused (an Embedding would truncate 3.7 to token 3)."""
    if "int" not in _dtype(ids):
        raise TypeError(f"ids must be integer token ids, got {_dtype(ids)}; cast them with ops.cast(ids, 'int32')")
    valid = ops.ones_like(ids, dtype="bool") if pad_id is None else ops.not_equal(ids, pad_id)
    observed = valid
    for m in missing_ids:
        observed = ops.logical_and(observed, ops.not_equal(ids, m))
    return observed, valid


def mask_from_lengths(lengths, max_len: int):
    """bool[B, L]: position < length."""
    return ops.less(ops.expand_dims(ops.arange(max_len), 0), ops.expand_dims(lengths, 1))


def _keep_rows(x, keep):
    """x [B, L, D] with rows where ``keep`` [B, L] is False replaced by zero (``where``, not a product)."""
    if keep is None:
        return x
    return ops.where(ops.expand_dims(keep, -1), x, ops.zeros_like(x))


def _dtype(x) -> str:
    return keras.backend.standardize_dtype(getattr(x, "dtype", None) or ops.convert_to_tensor(x).dtype)


def _as_bool(mask):
    """``mask`` as bool (True = observed). A float mask is refused: 0.3 or 1e-9 would silently read as
    observed; pass a comparison (``m > 0.5``) or Keras' own bool masks."""
    if mask is None:
        return None
    if "float" in _dtype(mask):
        raise TypeError(
            f"mask must be bool (True = observed) or integer 0/1, got {_dtype(mask)}; pass e.g. `mask > 0.5`"
        )
    return ops.cast(mask, "bool")
