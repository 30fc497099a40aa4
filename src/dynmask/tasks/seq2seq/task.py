"""Translation and summarization with missing source tokens: batches, loss, evaluation, generation.

Sources get missing tokens from the text itself (markers, unknown words) and from a missingness
process; masks are built from the ids at run time (True = observed). Targets may contain missing
tokens too: they are never decoder keys and carry zero loss weight.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ...baselines.fuzzy_match import FUZZY_FILE, METRIC, FuzzyMatch, choose_threshold, combine, memory_outputs
from ...baselines.memory import MEMORY_FILE, TranslationMemory
from ...baselines.seq2seq import gappy_sources, score_baselines
from ...data.pairs import PairSplits
from ...data.tokenizer import TextTokenizer
from ...decoding import beam_search, greedy_decode
from ...devices import device_of, to_device
from ...hf import PretrainedTokenizer, check_encoder_config
from ...hf.bart import warm_start_seq2seq
from ...losses import masked_cross_entropy
from ...masks import Mask
from ...metrics import bleu_chrf, rouge
from ...missingness import apply_missingness
from ...models.seq2seq import Seq2Seq, Seq2SeqConfig
from ...training import Trainer, load_run_model, on_rank_zero_first, start_run_folder
from ...training.run_folders import RunFolderError, config_from_dict, fingerprint, write_manifest
from ..common import MissingSpec, TokenHoles

__all__ = ["Seq2SeqTask", "train_seq2seq", "load_seq2seq", "generate_texts", "SEQ2SEQ_TASKS"]

SEQ2SEQ_TASKS = ("translate", "summarize")


def cut_source(tokenizer, ids: list, max_len: int) -> list:
    """The first ``max_len`` source ids, keeping the closing special token of a pretrained tokenizer."""
    if len(ids) <= max_len or not tokenizer.adds_special_tokens:
        return ids[:max_len]
    return ids[: max_len - 1] + ids[-1:]


def load_tokenizer(folder: Path):
    """A run's tokenizer: a pretrained checkpoint's (``dynmask_tokenizer.json`` beside it) or dynmask's BPE."""
    if (Path(folder) / "dynmask_tokenizer.json").exists():
        return PretrainedTokenizer.load(folder)
    return TextTokenizer.load(folder)


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
    ) -> None:
        if kind not in SEQ2SEQ_TASKS:
            raise ValueError(f"kind must be one of {SEQ2SEQ_TASKS}, got {kind!r}")
        self.splits, self.tokenizer, self.kind, self.seed = splits, tokenizer, kind, seed
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self.eval_batch_size, self.label_smoothing = eval_batch_size, label_smoothing
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
    ) -> tuple[list[str], list[str], dict]:
        """Decode ``split`` with seeded test-time holes; returns (hypotheses, references, timing)."""
        missing = missing or MissingSpec(0.0)
        process = self.holes.process(missing)
        schedule = self.holes.test_schedule(process, split)
        tok = self.tokenizer
        n = len(self.src[split]) if limit is None else min(limit, len(self.src[split]))
        hyps, tokens, t0, device = [], 0, time.perf_counter(), device_of(model)
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            src, src_mask = to_device(self.model_source_batch(split, idx, process, schedule, 0), device)
            kw = dict(bos=tok.bos_id, eos=tok.eos_id, max_len=max_len or self.max_tgt_len)
            out = (
                greedy_decode(model, src, src_mask, **kw)
                if beam == 1
                else beam_search(model, src, src_mask, beam=beam, length_penalty=length_penalty, **kw)
            )
            for h in out:
                tokens += len(h.tokens) + int(h.finished)
                hyps.append(tok.decode(h.tokens, skip_special_tokens=True))
        refs = [p.target for p in self.splits.split(split)[:n]]
        seconds = time.perf_counter() - t0
        return hyps, refs, {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / max(seconds, 1e-9)}

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> dict:
        return bleu_chrf(hyps, refs) if self.kind == "translate" else rouge(hyps, refs)

    def save_assets(self, folder: Path) -> None:
        self.tokenizer.save(folder)
        if self.memory is not None:
            self.memory.save(folder)


def train_seq2seq(
    splits: PairSplits,
    output: Path,
    kind: str,
    model_config: dict,
    train_config,
    missing: MissingSpec,
    *,
    vocab_size: int = 8000,
    max_src_len: int = 128,
    max_tgt_len: int = 64,
    resume: bool = False,
    test_rates: Sequence[float] = (),
    beam: int = 4,
    test_limit: Optional[int] = None,
    overwrite: bool = False,
    length_penalty: float = 1.0,
    pretrained: Optional[Path] = None,
    memory: bool = False,
    fuzzy_match: bool = False,
) -> dict:
    """Tokenizer (BPE, shared by source and target), model, trainer; then BLEU/chrF or ROUGE at
    each test missing rate, with the trivial baselines (:mod:`dynmask.baselines`) fed the same gappy
    sources beside every score.

    ``pretrained``: a Hugging Face BERT-family checkpoint folder to warm-start from
    (:func:`dynmask.models.seq2seq.warm_start_seq2seq`, its own tokenizer; of ``model_config`` only
    ``method``, ``dec_layers``, ``copy`` and ``backend`` apply). ``memory``: the model also reads the target
    of the training pair nearest to each source (:func:`append_memory`); the pairs are saved
    with the run (``memory.json``) for ``predict``. ``fuzzy_match``: also choose a fuzzy-match threshold on
    the validation pairs (:func:`fit_fuzzy_match`) and score the hybrid beside every test score."""

    output = Path(output)
    start_run_folder(output, resume=resume, overwrite=overwrite)
    tokenizer_dir = output / "tokenizer"

    def make() -> None:
        if resume and (tokenizer_dir / "tokenizer.json").exists():
            return
        if pretrained is not None:
            PretrainedTokenizer(pretrained, max_len=max(max_src_len, max_tgt_len)).save(tokenizer_dir)
            return
        texts = [p.source for p in splits.train] + [p.target for p in splits.train]
        TextTokenizer.train(texts, vocab_size=vocab_size, max_len=max(max_src_len, max_tgt_len), kind="cased").save(
            tokenizer_dir
        )

    tokenizer = on_rank_zero_first(make, lambda: load_tokenizer(tokenizer_dir))
    task = Seq2SeqTask(
        splits,
        tokenizer,
        missing,
        kind=kind,
        seed=train_config.seed,
        max_src_len=max_src_len,
        max_tgt_len=max_tgt_len,
        memory=memory,
    )
    torch.manual_seed(train_config.seed)
    # positions: the source (and, with a memory, a separator, the nearest target and its end) or the target
    max_len = (max_src_len + max_tgt_len + 2) if memory else max(max_src_len, max_tgt_len) + 2
    if pretrained is None:
        config = Seq2SeqConfig(vocab_size=tokenizer.vocab_size, max_len=max_len, **model_config)
        model = Seq2Seq(config)
    else:
        keep = {k: model_config[k] for k in ("method", "dec_layers", "copy", "backend") if k in model_config}
        model = warm_start_seq2seq(pretrained, max_len=max_len, **keep)
        config = model.config
    run_config = {
        "task": kind,
        "model": config.to_dict(),
        "train": asdict(train_config),
        "missing": asdict(missing),
        "data": {
            "name": splits.name,
            **splits.info,
            "fingerprint": fingerprint(
                *([[p.source, p.target] for p in splits.split(k)] for k in ("train", "valid", "test"))
            ),
        },
        "max_src_len": max_src_len,
        "max_tgt_len": max_tgt_len,
        "vocab_size": vocab_size,
        "warm_start": None if pretrained is None else str(pretrained),
        "memory": memory,
    }
    trainer = Trainer(model, task, train_config, output, run_config)
    summary = trainer.fit(resume=resume)
    if test_rates and trainer.main:
        best = load_seq2seq(output)[0] if (output / "best").exists() else model
        hyp_dir = output / "test_hypotheses"
        hyp_dir.mkdir(exist_ok=True)
        decoded_with = {"model": _weights_digest(output), "beam": beam, "test_limit": test_limit}
        if length_penalty != 1.0:  # (absent at the default, so rates decoded before it existed still count)
            decoded_with["length_penalty"] = length_penalty

        def holes_at(rate: float) -> MissingSpec:  # the seeded test holes, the same for every method
            return MissingSpec(rate, missing.process, "static", missing.mean_span)

        def save_rate(result: dict) -> None:  # the rate's scores, keyed to the decoding that made them
            record = {"decoded_with": decoded_with, "result": result}
            (hyp_dir / f"missing{result['missing_rate']:.1f}.json").write_text(json.dumps(record, indent=2))

        results = []
        for rate in test_rates:
            done = hyp_dir / f"missing{rate:.1f}.json"  # a rate already decoded by this model is not redone
            previous = json.loads(done.read_text()) if done.exists() else {}
            reusable = decoded_with["model"] is not None and previous.get("decoded_with") == decoded_with
            if reusable and isinstance(previous.get("result"), dict):
                results.append(previous["result"])
                continue
            spec = holes_at(rate)
            hyps, refs, timing = task.generate(
                best, "test", spec, beam=beam, limit=test_limit, length_penalty=length_penalty
            )
            baselines = score_baselines(task, "test", spec, limit=test_limit)  # the same gappy sources
            result = {
                "missing_rate": rate,
                **task.score(hyps, refs),
                **timing,
                "examples": hyps[:3],
                "baselines": baselines,
            }
            results.append(result)
            # one line per test pair, in file order, so anyone can re-score them
            (hyp_dir / f"missing{rate:.1f}.txt").write_text(_one_line_each(hyps))
            save_rate(result)
        if fuzzy_match:
            choice, fuzzy_memory = fit_fuzzy_match(output, task, best, beam=beam, length_penalty=length_penalty)
            for result in results:
                rate = result["missing_rate"]
                if result.get("fuzzy_match", {}).get("threshold") == choice.threshold:
                    continue
                hyps = (hyp_dir / f"missing{rate:.1f}.txt").read_text().split("\n")[:-1]  # one line per pair
                outputs, scores = score_fuzzy_match(
                    task, "test", holes_at(rate), hyps, choice, fuzzy_memory, limit=test_limit
                )
                result["fuzzy_match"] = scores
                (hyp_dir / f"fuzzy-missing{rate:.1f}.txt").write_text(_one_line_each(outputs))
                save_rate(result)
        summary["test"] = results
        (output / "test_results.json").write_text(json.dumps(results, indent=2))
    return summary


def _one_line_each(texts: Sequence[str]) -> str:
    """One line per text (newlines inside a text become spaces), in order: a hypotheses file."""
    return "".join(t.replace("\n", " ") + "\n" for t in texts)


def fit_fuzzy_match(output: Path, task: "Seq2SeqTask", model, *, beam: int = 4, length_penalty: float = 1.0):
    """(:class:`~dynmask.fuzzy_match.FuzzyMatch`, memory) for a run's best weights: decode the validation
    pairs (nothing missing), choose the threshold on them, save it and the memory (the training pairs)
    in ``output/best/`` (its manifest rewritten), so ``predict`` and ``evaluate`` use it. A choice already
    saved there from the same beam and length penalty is read back: ``best/`` is replaced whenever the
    best weights change."""

    best_dir = Path(output) / "best"
    if not (best_dir / "model.safetensors").exists():
        raise FileNotFoundError(f"{best_dir} holds no model: a fuzzy-match threshold is chosen for the best weights")
    if (best_dir / FUZZY_FILE).exists() and (best_dir / MEMORY_FILE).exists():
        saved = FuzzyMatch.load(best_dir)
        if (saved.beam, saved.length_penalty) == (beam, length_penalty):  # chosen from the same decoding
            return saved, TranslationMemory.load(best_dir)
    memory = task.memory or TranslationMemory(
        [p.source for p in task.splits.train], [p.target for p in task.splits.train]
    )
    spec = MissingSpec(0.0)
    hyps, refs, _ = task.generate(model, "valid", spec, beam=beam, length_penalty=length_penalty)
    targets, similarity = memory_outputs(memory, gappy_sources(task, "valid", spec))
    choice = choose_threshold(hyps, targets, similarity, refs, task.score, METRIC[task.kind])
    choice.beam, choice.length_penalty = beam, length_penalty
    choice.save(best_dir)
    if not (best_dir / MEMORY_FILE).exists():
        memory.save(best_dir)
    write_manifest(best_dir)
    return choice, memory


def score_fuzzy_match(task, split: str, missing: MissingSpec, hypotheses: Sequence[str], choice, memory, limit=None):
    """(hybrid outputs, their scores + threshold + share taken from the memory) for the model's
    ``hypotheses`` of ``split`` with ``missing``'s seeded holes; the memory reads the observed text only."""
    targets, similarity = memory_outputs(memory, gappy_sources(task, split, missing, limit))
    if len(hypotheses) != len(targets):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(targets)} {split} sources")
    outputs = combine(hypotheses, targets, similarity, choice.threshold)
    refs = [p.target for p in task.splits.split(split)][: len(outputs)]
    share = float((similarity >= choice.threshold).mean()) if len(outputs) else 0.0
    return outputs, {**task.score(outputs, refs), "threshold": choice.threshold, "share_from_memory": share}


def _weights_digest(output: Path) -> Optional[str]:
    """The sha256 of the weights the test decodes with (``best/``'s manifest), or None without one: an
    interrupted test decoding resumes at the first rate not yet decoded by these very weights."""
    manifest = output / "best" / "manifest.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("sha256", {}).get("model.safetensors")


def load_seq2seq(folder: Path, device: Optional[torch.device] = None):
    """(model, tokenizer, run config) from a training run's folder (or its best/), checked as untrusted input;
    ``config["loaded_memory"]``: the run's :class:`~dynmask.memory.TranslationMemory` (or None)."""

    def build(c: dict) -> Seq2Seq:
        if isinstance(c, dict) and c.get("encoder") is not None:  # a warm-started model's shape
            check_encoder_config(c["encoder"], "config.json")
        return Seq2Seq(config_from_dict(Seq2SeqConfig, c, "config.json"))

    model, folder, config = load_run_model(folder, build, device, expect_task=("translate", "summarize"))
    for key in ("max_src_len", "max_tgt_len"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= model.config.max_len:
            raise RunFolderError(
                f"{folder / 'config.json'}: {key} must be an integer in [1, {model.config.max_len}], got {value!r}"
            )
    try:
        tokenizer = load_tokenizer(folder)
    except Exception as e:
        raise RunFolderError(f"the tokenizer in {folder} cannot be read ({type(e).__name__}: {e})") from None
    if tokenizer.vocab_size > model.config.vocab_size:
        raise RunFolderError(
            f"the tokenizer in {folder} has {tokenizer.vocab_size} tokens but the model only {model.config.vocab_size}"
        )
    if config.get("memory", False) not in (True, False):
        raise RunFolderError(f"{folder / 'config.json'}: memory must be true or false, got {config['memory']!r}")
    # the model reads the nearest pair of its memory after each source: loaded here, for generate_texts
    config["loaded_memory"] = TranslationMemory.load(folder) if config.get("memory") else None
    # a fuzzy-match threshold chosen on validation for these weights (fit_fuzzy_match), with its memory
    config["loaded_fuzzy_match"] = None
    if (folder / FUZZY_FILE).exists():
        memory = config["loaded_memory"] or TranslationMemory.load(folder)
        config["loaded_fuzzy_match"] = (FuzzyMatch.load(folder), memory)
    return model, tokenizer, config


def generate_texts(
    model: Seq2Seq,
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    *,
    beam: int = 4,
    max_len: int = 64,
    max_src_len: int = 128,
    length_penalty: float = 1.0,
    memory: Optional[TranslationMemory] = None,
    memory_len: int = 64,
) -> list[str]:
    """Translate or summarise raw texts (missing markers honoured); ``memory``: a run trained with one
    (``load_seq2seq``'s ``config["loaded_memory"]``) reads each text's nearest pair after it, cut as in
    training (``memory_len``: the run's ``max_tgt_len``)."""
    src = tokenizer.pad([cut_source(tokenizer, ids, max_src_len) for ids in tokenizer.encode(texts)])
    mask = tokenizer.mask(src)
    if memory is not None:
        src, mask = append_memory(tokenizer, memory, src, mask, memory_len)
    src, mask = to_device((src, mask), device_of(model))
    kw = dict(bos=tokenizer.bos_id, eos=tokenizer.eos_id, max_len=max_len)
    out = (
        greedy_decode(model, src, mask, **kw)
        if beam == 1
        else beam_search(model, src, mask, beam=beam, length_penalty=length_penalty, **kw)
    )
    return [tokenizer.decode(h.tokens, skip_special_tokens=True) for h in out]


def fuzzy_match_texts(tokenizer, texts: Sequence[str], outputs: Sequence[str], fuzzy, max_src_len: int) -> list[dict]:
    """For raw ``texts`` and the model's ``outputs``: {"output", "from_memory", "similarity"} per text, the
    memory's target where the observed text's nearest memory source is at least ``fuzzy``'s threshold
    similar (``fuzzy``: ``load_seq2seq``'s ``config["loaded_fuzzy_match"]``)."""
    choice, memory = fuzzy
    src = tokenizer.pad([cut_source(tokenizer, ids, max_src_len) for ids in tokenizer.encode(list(texts))])
    targets, similarity = memory_outputs(memory, observed_texts(tokenizer, src, tokenizer.mask(src)))
    hybrid = combine(outputs, targets, similarity, choice.threshold)
    return [
        {"output": h, "from_memory": bool(s >= choice.threshold), "similarity": round(float(s), 4)}
        for h, s in zip(hybrid, similarity)
    ]
