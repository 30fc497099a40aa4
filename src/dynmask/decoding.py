"""Greedy and beam-search decoding for :class:`dynmask.models.Seq2Seq`.

Both decode a batch, honour the source mask at every step (missing source tokens are never read),
and use the decoder's key/value cache by default (``use_cache=False`` re-runs the decoder over the
whole prefix each step: the reference the cached path is tested against; :class:`DecoderCache`, built and
grown by :meth:`dynmask.layers.Decoder.start` / ``step``). Scores are sums of
token log-probabilities, end-of-sequence included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .masks import Mask

__all__ = ["DecoderCache", "Hypothesis", "greedy_decode", "beam_search"]


@dataclass
class DecoderCache:
    """Keys and values of every decoder layer for incremental decoding.

    ``self_kv[i]``: (k, v) of the tokens generated so far, (B, H, t, hd) each; ``cross_kv[i]``: the
    memory's keys and values, computed once; ``memory_keep`` bool[B, S], True = observed source token.
    """

    self_kv: list
    cross_kv: list
    memory_keep: Tensor
    position: int = 0

    def reorder(self, index: Tensor) -> "DecoderCache":
        """Select batch rows (beam search: follow each surviving beam's parent)."""
        pick = lambda kv: None if kv is None else (kv[0].index_select(0, index), kv[1].index_select(0, index))
        return DecoderCache(
            [pick(kv) for kv in self.self_kv],
            [pick(kv) for kv in self.cross_kv],
            self.memory_keep.index_select(0, index),
            self.position,
        )


@dataclass
class Hypothesis:
    tokens: list[int]  # generated tokens, without BOS, without EOS
    score: float  # sum of log-probabilities (EOS included when it was generated)
    finished: bool


class _Stepper:
    """Next-token log-probabilities for a batch of prefixes, with or without the cache."""

    def __init__(self, model, memory: Tensor, src_mask: Mask, use_cache: bool, src: Optional[Tensor] = None) -> None:
        self.model, self.memory, self.src_mask, self.use_cache, self.src = model, memory, src_mask, use_cache, src
        self.copy = bool(getattr(getattr(model, "config", None), "copy", False))  # a copy model reads the ids
        extra = {"src": src} if self.copy else {}
        self.cache = model.start(memory, src_mask, **extra) if use_cache else None

    def __call__(self, prefix: Tensor) -> Tensor:
        """prefix long[N, t] (BOS first) -> log-probs float[N, V] of token t+1."""
        if self.use_cache:
            logits, self.cache = self.model.next_logits(prefix[:, -1], self.cache)
        else:
            mask = Mask.full(prefix.shape[0], prefix.shape[1], prefix.device)
            extra = {"src": self.src} if self.copy else {}
            logits = self.model.decode(self.memory, self.src_mask, prefix, mask, **extra)[:, -1]
        return torch.log_softmax(logits.float(), dim=-1)

    def reorder(self, index: Tensor) -> None:
        self.memory = self.memory.index_select(0, index)
        self.src_mask = Mask(self.src_mask.observed.index_select(0, index), self.src_mask.valid.index_select(0, index))
        if self.src is not None:
            self.src = self.src.index_select(0, index)
        if self.cache is not None:
            self.cache = self.cache.reorder(index)


def ban_repeated_ngrams(logp: Tensor, prefix: Tensor, n: int) -> Tensor:
    """``logp`` (rows, V) with -inf at every token that would repeat an n-gram already in its row's
    ``prefix`` (rows, T; the start token included), as ``no_repeat_ngram_size`` does in Hugging Face's
    generation: the guard against the loops ("Fenster Fenster Fenster ...") a weak model decodes into."""
    if n < 1 or prefix.shape[1] < n:
        return logp
    banned_rows, banned_tokens = [], []
    for row, seq in enumerate(prefix.tolist()):
        context = tuple(seq[len(seq) - n + 1 :]) if n > 1 else ()
        for i in range(len(seq) - n + 1):
            if tuple(seq[i : i + n - 1]) == context:
                banned_rows.append(row)
                banned_tokens.append(seq[i + n - 1])
    if not banned_rows:
        return logp
    out = logp.clone()
    out[torch.tensor(banned_rows, device=logp.device), torch.tensor(banned_tokens, device=logp.device)] = float("-inf")
    return out


@torch.no_grad()
def greedy_decode(
    model,
    src: Tensor,
    src_mask: Mask,
    *,
    bos: int,
    eos: int,
    max_len: int = 128,
    use_cache: bool = True,
    no_repeat_ngram: int = 0,
) -> list[Hypothesis]:
    """The most probable next token, step by step, for each source in the batch; ``no_repeat_ngram``
    (n > 0): never the token that would repeat an n-gram of the output so far (:func:`ban_repeated_ngrams`)."""
    model.eval()
    memory = model.encode(src, src_mask)
    step = _Stepper(model, memory, src_mask, use_cache, src)
    batch = src.shape[0]
    prefix = torch.full((batch, 1), bos, dtype=torch.long, device=src.device)
    scores = torch.zeros(batch, dtype=torch.float64)
    done = torch.zeros(batch, dtype=torch.bool)
    for _ in range(max_len):
        logp = ban_repeated_ngrams(step(prefix), prefix, no_repeat_ngram)  # (B, V)
        best = logp.argmax(-1)  # (B,)
        scores += torch.where(done, 0.0, logp.gather(1, best[:, None])[:, 0].double().cpu())
        best = torch.where(done.to(best.device), torch.full_like(best, eos), best)
        prefix = torch.cat([prefix, best[:, None]], dim=1)
        done |= (best == eos).cpu()
        if bool(done.all()):
            break
    out = []
    for b in range(batch):
        toks = prefix[b, 1:].tolist()
        finished = eos in toks
        out.append(Hypothesis(toks[: toks.index(eos)] if finished else toks, float(scores[b]), finished))
    return out


@torch.no_grad()
def beam_search(
    model,
    src: Tensor,
    src_mask: Mask,
    *,
    bos: int,
    eos: int,
    beam: int = 4,
    max_len: int = 128,
    length_penalty: float = 1.0,
    use_cache: bool = True,
    no_repeat_ngram: int = 0,
) -> list[Hypothesis]:
    """Batched beam search; the best hypothesis per source by ``score / length ** length_penalty``;
    ``no_repeat_ngram`` as in :func:`greedy_decode`."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    model.eval()
    batch = src.shape[0]
    memory = model.encode(src, src_mask)
    rows = torch.arange(batch, device=src.device).repeat_interleave(beam)  # (B*K,): source of each beam
    step = _Stepper(model, memory, src_mask, use_cache, src)
    step.reorder(rows)
    prefix = torch.full((batch * beam, 1), bos, dtype=torch.long, device=src.device)
    alive = torch.full((batch, beam), float("-inf"), dtype=torch.float64, device=src.device)
    alive[:, 0] = 0.0  # all beams start identical: keep one
    finished: list[list[tuple[float, float, list[int]]]] = [[] for _ in range(batch)]
    norm = lambda score, length: score / (max(length, 1) ** length_penalty)
    active = [True] * batch
    for t in range(max_len):
        logp = ban_repeated_ngrams(step(prefix), prefix, no_repeat_ngram).double()  # (B*K, V), on the model's device
        vocab = logp.shape[-1]
        cand = (alive.view(-1, 1) + logp).view(batch, beam * vocab)  # (B, K*V)
        top_scores, top_idx = cand.topk(min(2 * beam, beam * vocab), dim=1)  # (B, 2K)
        top_scores, top_idx = top_scores.cpu(), top_idx.cpu()  # only the (B, 2K) candidates leave the device
        parents, tokens = top_idx // vocab, top_idx % vocab
        new_alive = torch.full((batch, beam), float("-inf"), dtype=torch.float64)
        new_parent = torch.zeros(batch, beam, dtype=torch.long)
        new_token = torch.full((batch, beam), eos, dtype=torch.long)
        for b in range(batch):
            if not active[b]:
                continue
            k = 0
            for score, parent, token in zip(top_scores[b].tolist(), parents[b].tolist(), tokens[b].tolist()):
                if score == float("-inf"):
                    break
                if token == eos:
                    seq = prefix[b * beam + parent, 1:].tolist()
                    finished[b].append((norm(score, len(seq) + 1), score, seq))
                else:
                    new_alive[b, k], new_parent[b, k], new_token[b, k] = score, parent, token
                    k += 1
                if k == beam:
                    break
            if k == 0:  # every continuation ended: nothing left alive
                active[b] = False
                continue
            # done when K hypotheses have finished and no live beam can still beat the best of them
            best_done = max((f[0] for f in finished[b]), default=float("-inf"))
            best_live = norm(float(new_alive[b].max()), t + 2) if length_penalty >= 0 else float("inf")
            if len(finished[b]) >= beam and best_done >= best_live:
                active[b] = False
        if not any(active):
            break
        alive = torch.where(torch.tensor(active)[:, None], new_alive, torch.full_like(new_alive, float("-inf")))
        alive = alive.to(src.device)
        index = (torch.arange(batch)[:, None] * beam + new_parent).view(-1).to(src.device)  # (B*K,)
        step.reorder(index)
        prefix = torch.cat([prefix.index_select(0, index), new_token.view(-1, 1).to(src.device)], dim=1)
    out = []
    alive = alive.cpu()
    for b in range(batch):
        pool = list(finished[b])
        if not pool or active[b]:  # ran out of length: live beams count too, unfinished
            for k in range(beam):
                if alive[b, k] > float("-inf"):
                    seq = prefix[b * beam + k, 1:].tolist()
                    pool.append((norm(float(alive[b, k]), len(seq)), float(alive[b, k]), seq, False))
        best = max(pool, key=lambda f: f[0])
        out.append(Hypothesis(best[2], best[1], len(best) == 3))
    return out
