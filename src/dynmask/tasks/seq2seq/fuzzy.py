"""The fuzzy-match hybrid of a seq2seq run: a similarity threshold chosen on validation above which the
nearest training pair's target (found from the observed source text) replaces the model's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...baselines.fuzzy_match import FUZZY_FILE, METRIC, FuzzyMatch, choose_threshold, combine, memory_outputs
from ...baselines.memory import MEMORY_FILE, TranslationMemory
from ...baselines.seq2seq import gappy_sources
from ...training.run_folders import write_manifest
from ..common import MissingSpec
from .sources import cut_source, observed_texts
from .task import Seq2SeqTask


def one_line_each(texts: Sequence[str]) -> str:
    """One line per text (newlines inside a text become spaces), in order: a hypotheses file."""
    return "".join(t.replace("\n", " ") + "\n" for t in texts)


def fit_fuzzy_match(
    output: Path, task: "Seq2SeqTask", model, *, beam: int = 4, length_penalty: float = 1.0, progress: bool = False
):
    """(:class:`~dynmask.fuzzy_match.FuzzyMatch`, memory, validation hypotheses) for a run's best weights:
    decode the validation pairs (nothing missing), choose the threshold on them, save it and the memory
    (the training pairs) in ``output/best/`` (its manifest rewritten), so ``predict`` and ``evaluate`` use it.
    A choice already saved there from the same beam and length penalty is read back (hypotheses None):
    ``best/`` is replaced whenever the best weights change."""

    best_dir = Path(output) / "best"
    if not (best_dir / "model.safetensors").exists():
        raise FileNotFoundError(f"{best_dir} holds no model: a fuzzy-match threshold is chosen for the best weights")
    if (best_dir / FUZZY_FILE).exists() and (best_dir / MEMORY_FILE).exists():
        saved = FuzzyMatch.load(best_dir)
        if (saved.beam, saved.length_penalty) == (beam, length_penalty):  # chosen from the same decoding
            return saved, TranslationMemory.load(best_dir), None
    memory = task.memory or TranslationMemory(
        [p.source for p in task.splits.train], [p.target for p in task.splits.train]
    )
    spec = MissingSpec(0.0)
    hyps, refs, _ = task.generate(model, "valid", spec, beam=beam, length_penalty=length_penalty, progress=progress)
    targets, similarity = memory_outputs(memory, gappy_sources(task, "valid", spec))
    choice = choose_threshold(hyps, targets, similarity, refs, task.score, METRIC[task.kind])
    choice.beam, choice.length_penalty = beam, length_penalty
    choice.save(best_dir)
    if not (best_dir / MEMORY_FILE).exists():
        memory.save(best_dir)
    write_manifest(best_dir)
    return choice, memory, hyps


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
