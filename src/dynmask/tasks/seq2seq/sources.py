"""Source texts as a seq2seq model reads them: cut to length, the observed text that baselines may use, the
training target of the nearest source appended (the memory input).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ...baselines.memory import TranslationMemory
from ...masks import Mask


def cut_source(tokenizer, ids: list, max_len: int) -> list:
    """The first ``max_len`` source ids, keeping the closing special token of a pretrained tokenizer."""
    if len(ids) <= max_len or not tokenizer.adds_special_tokens:
        return ids[:max_len]
    return ids[: max_len - 1] + ids[-1:]


def target_pieces(tokenizer, texts: Sequence[str], max_tgt_len: int) -> list[list[int]]:
    """Each target text's pieces only, cut to ``max_tgt_len - 1`` (batches add bos / eos: ``[CLS]`` /
    ``[SEP]`` for a pretrained tokenizer, which its own encoding has and these pieces drop)."""
    body = (lambda ids: ids[1:-1]) if tokenizer.adds_special_tokens else (lambda ids: ids)
    return [body(ids)[: max_tgt_len - 1] for ids in tokenizer.encode(texts)]


def observed_texts(tokenizer, src: torch.Tensor, mask: Mask) -> list[str]:
    """Each source row (ids long[B, S]) decoded from its observed tokens only (``mask``, True = observed)."""
    rows, keep = src.tolist(), mask.observed.tolist()
    return [tokenizer.decode([i for i, k in zip(r, m) if k], skip_special_tokens=True) for r, m in zip(rows, keep)]


def append_memory(
    tokenizer,
    memory: TranslationMemory,
    src: torch.Tensor,
    mask: Mask,
    max_tgt_len: int,
    exclude: Optional[Sequence[int]] = None,
    pieces: Optional[Sequence[list[int]]] = None,
) -> tuple[torch.Tensor, Mask]:
    """``src`` long[B, S] (``mask``: True = observed) with the target of its nearest ``memory`` pair appended
    to each row, cut to ``max_tgt_len - 1`` pieces: ``source </s> target </s>`` (``[CLS] source [SEP]
    target [SEP]`` for a pretrained tokenizer). The search reads the observed tokens only, so whatever
    the ids at missing positions the appended tokens are the same; they are all observed. ``exclude[b]``:
    a memory index row ``b`` may not retrieve (its own pair, in training). ``pieces``: the memory targets'
    :func:`target_pieces`, when already encoded (else the picked ones are encoded here). Returns long[B, S']
    and its mask."""
    tok = tokenizer
    lengths = mask.valid.sum(-1).tolist()  # (B,): source lengths (padding is at the end)
    picked = memory.nearest(observed_texts(tok, src, mask), exclude)
    if pieces is None:
        picked_pieces = target_pieces(tok, [memory.targets[i] for i in picked], max_tgt_len)
    else:
        picked_pieces = [pieces[i] for i in picked]
    sep = [] if tok.adds_special_tokens else [tok.eos_id]
    tails = [sep + ids + [tok.eos_id] for ids in picked_pieces]
    width = max(n + len(t) for n, t in zip(lengths, tails))
    out = torch.full((src.shape[0], width), tok.pad_id, dtype=src.dtype)  # (B, S')
    keep = torch.zeros((src.shape[0], width), dtype=torch.bool)  # (B, S'): True = observed
    valid = torch.zeros((src.shape[0], width), dtype=torch.bool)  # (B, S'): True = not padding
    for b, (n, tail) in enumerate(zip(lengths, tails)):
        out[b, :n], keep[b, :n] = src[b, :n], mask.observed[b, :n]
        out[b, n : n + len(tail)], keep[b, n : n + len(tail)] = torch.tensor(tail, dtype=src.dtype), True
        valid[b, : n + len(tail)] = True
    return out, Mask(keep, valid)
