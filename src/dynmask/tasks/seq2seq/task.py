"""Translation and summarization with missing source tokens: batches, loss, evaluation, generation.

Sources get missing tokens from the text itself (markers, unknown words) and from a missingness
process; masks are built from the ids at run time (True = observed). Targets may contain missing
tokens too: they are never decoder keys and carry zero loss weight.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ...baselines.memory import TranslationMemory
from ...data.pairs import PairSplits
from ...data.tokenizer import TextTokenizer
from ...decoding import beam_search, greedy_decode
from ...devices import device_of, to_device
from ...losses import masked_cross_entropy
from ...masks import Mask
from ...metrics import bleu_chrf, rouge
from ...missingness import apply_missingness
from ..common import MissingSpec, TokenHoles
from .sources import append_memory, cut_source, observed_texts, target_pieces

__all__ = ["Seq2SeqTask", "SEQ2SEQ_TASKS"]

SEQ2SEQ_TASKS = ("translate", "summarize")


class Seq2SeqTask:
    def __init__(
        self,
        splits: PairSplits,
        tokenizer: TextTokenizer,
        train_missing: MissingSpec,
        *,
        kind: str,
        seed: int = 0,
        max_src_len: int = 128,
        max_tgt_len: int = 64,
        eval_batch_size: int = 64,
        label_smoothing: float = 0.1,
        memory: bool = False,
        no_repeat_ngram: int = 0,
    ) -> None:
        if kind not in SEQ2SEQ_TASKS:
            raise ValueError(f"kind must be one of {SEQ2SEQ_TASKS}, got {kind!r}")
        self.splits, self.tokenizer, self.kind, self.seed = splits, tokenizer, kind, seed
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self.eval_batch_size, self.label_smoothing = eval_batch_size, label_smoothing
        self.no_repeat_ngram = no_repeat_ngram  # decoding's guard against loops (0: off)
        cut = lambda ids: cut_source(tokenizer, ids, max_src_len)
        self.src = {
            s: [cut(ids) for ids in tokenizer.encode([p.source for p in splits.split(s)])]
            for s in ("train", "valid", "test")
        }
        # the target's pieces only: batches add bos / eos ([CLS] / [SEP] for a pretrained tokenizer)
        self.tgt = {
            s: target_pieces(tokenizer, [p.target for p in splits.split(s)], max_tgt_len)
            for s in ("train", "valid", "test")
        }
        self.holes = TokenHoles(train_missing, self.src["train"], tokenizer.vocab_size, seed, max_src_len)
        # the source followed by the target of the nearest training pair (found from the observed text)
        self.memory = (
            TranslationMemory([p.source for p in splits.train], [p.target for p in splits.train]) if memory else None
        )

    # ------------------------------------------------------------------ batches
    def source_batch(self, split: str, indices: Sequence[int], process, schedule, draw: int):
        tok = self.tokenizer
        src = tok.pad([self.src[split][i] for i in indices])  # (B, S)
        if process is not None:  # holes fall on text only (never padding, [CLS] or [SEP])
            src = apply_missingness(src, tok.content(src), process, schedule, indices, draw, tok.missing_id)
        return src, tok.mask(src)

    def observed_texts(self, src: torch.Tensor, mask: Mask) -> list[str]:
        return observed_texts(self.tokenizer, src, mask)

    def model_source_batch(self, split: str, indices: Sequence[int], process, schedule, draw: int):
        """(ids, mask) the model reads: the gappy source, and with a memory the nearest pair's target after it."""
        src, mask = self.source_batch(split, indices, process, schedule, draw)
        if self.memory is None:
            return src, mask
        exclude = indices if split == "train" else None  # a training pair never retrieves itself
        # the memory is the training pairs: their targets' pieces are self.tgt["train"], encoded once
        return append_memory(self.tokenizer, self.memory, src, mask, self.max_tgt_len, exclude, self.tgt["train"])

    def _batch(self, split: str, indices: Sequence[int], process, schedule, draw: int):
        tok = self.tokenizer
        src, src_mask = self.model_source_batch(split, indices, process, schedule, draw)
        tgt_in = tok.pad([[tok.bos_id] + self.tgt[split][i] for i in indices])  # (B, T)
        tgt_out = tok.pad([self.tgt[split][i] + [tok.eos_id] for i in indices])  # (B, T)
        tgt_mask = tok.mask(tgt_in)  # missing target tokens are not decoder keys
        counted = tok.mask(tgt_out).observed  # (B, T): missing targets and padding carry no loss
        return src, src_mask, tgt_in, tgt_mask, tgt_out, counted

    def num_train(self) -> int:
        return len(self.src["train"])

    def lengths(self) -> list[int]:
        """Training example lengths, so the trainer can bucket batches by length (less padding)."""
        return [len(s) + 2 * len(t) for s, t in zip(self.src["train"], self.tgt["train"])]

    def train_batch(self, indices: list[int], draw: int):
        return self._batch("train", indices, self.holes.train_process, self.holes.train_schedule, draw)

    def batch_size(self, batch) -> int:
        return batch[0].shape[0]

    def loss(self, model, batch) -> torch.Tensor:
        src, src_mask, tgt_in, tgt_mask, tgt_out, counted = batch
        logits = model(src, src_mask, tgt_in, tgt_mask, select=counted).float()  # (N, V): counted positions only
        return F.cross_entropy(logits, tgt_out[counted], label_smoothing=self.label_smoothing)

    def evaluate(self, model, split: str = "valid", missing: Optional[MissingSpec] = None) -> dict:
        """Teacher-forced loss and token accuracy (fast; used for early stopping: score = -loss)."""
        missing = self.holes.valid_missing if missing is None else missing
        process = self.holes.process(missing)
        schedule = self.holes.test_schedule(process, split)
        was_training = model.training
        model.eval()
        total, correct, count = 0.0, 0, 0
        n, device = len(self.src[split]), device_of(model)
        with torch.no_grad():
            for start in range(0, n, self.eval_batch_size):
                idx = list(range(start, min(n, start + self.eval_batch_size)))
                src, src_mask, tgt_in, tgt_mask, tgt_out, counted = to_device(
                    self._batch(split, idx, process, schedule, 0), device
                )
                logits = model(src, src_mask, tgt_in, tgt_mask).float()
                k = int(counted.sum())
                total += float(masked_cross_entropy(logits, tgt_out, counted)) * k
                correct += int(((logits.argmax(-1) == tgt_out) & counted).sum())
                count += k
        model.train(was_training)
        loss = total / max(1, count)
        return {"loss": loss, "token_accuracy": correct / max(1, count), "score": -loss, "missing_rate": missing.rate}

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        model,
        split: str = "test",
        missing: Optional[MissingSpec] = None,
        *,
        beam: int = 4,
        max_len: Optional[int] = None,
        length_penalty: float = 1.0,
        limit: Optional[int] = None,
        batch_size: int = 32,
        progress: Optional[bool] = False,
    ) -> tuple[list[str], list[str], dict]:
        """Decode ``split`` with seeded test-time holes; returns (hypotheses, references, timing).
        ``progress``: a bar over the texts (``None``: only on a terminal)."""
        from tqdm import tqdm

        missing = missing or MissingSpec(0.0)
        process = self.holes.process(missing)
        schedule = self.holes.test_schedule(process, split)
        tok = self.tokenizer
        n = len(self.src[split]) if limit is None else min(limit, len(self.src[split]))
        hyps, tokens, t0, device = [], 0, time.perf_counter(), device_of(model)
        bar = tqdm(
            total=n,
            desc=f"decoding {split}, {missing.rate:g} missing",
            unit="text",
            leave=False,
            disable=None if progress is None else not progress,
        )
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            src, src_mask = to_device(self.model_source_batch(split, idx, process, schedule, 0), device)
            kw = dict(
                bos=tok.bos_id,
                eos=tok.eos_id,
                max_len=max_len or self.max_tgt_len,
                no_repeat_ngram=self.no_repeat_ngram,
            )
            out = (
                greedy_decode(model, src, src_mask, **kw)
                if beam == 1
                else beam_search(model, src, src_mask, beam=beam, length_penalty=length_penalty, **kw)
            )
            for h in out:
                tokens += len(h.tokens) + int(h.finished)
                hyps.append(tok.decode(h.tokens, skip_special_tokens=True))
            bar.update(len(idx))
        bar.close()
        refs = [p.target for p in self.splits.split(split)[:n]]
        seconds = time.perf_counter() - t0
        return hyps, refs, {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / max(seconds, 1e-9)}

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> dict:
        return bleu_chrf(hyps, refs) if self.kind == "translate" else rouge(hyps, refs)

    def save_assets(self, folder: Path) -> None:
        self.tokenizer.save(folder)
        if self.memory is not None:
            self.memory.save(folder)
