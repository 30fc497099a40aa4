"""The trivial baselines a translation or summary model must beat, fed the same gappy sources.

Every baseline reads the source *as the model sees it*: truncated to the task's ``max_src_len`` and
with the test-time holes removed (a baseline cannot copy a token it was not given).

* ``copy-source``: the source itself as the output (technical text keeps many names untranslated);
* ``translation memory`` / ``nearest training summary``: the target of the training source nearest to
  the gappy source, by cosine of character n-gram TF-IDF (scikit-learn);
* ``lead-1``: the first sentence of the gappy source (summarization).
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..metrics import lead_sentences
from .memory import TranslationMemory

__all__ = ["gappy_sources", "nearest_targets", "baseline_outputs", "score_baselines"]


def gappy_sources(task, split: str, missing, limit: Optional[int] = None, batch_size: int = 256) -> list[str]:
    """The ``split`` sources of a :class:`~dynmask.tasks.seq2seq.task.Seq2SeqTask` with its seeded test-time
    holes for ``missing``, decoded from their observed tokens only (True = observed)."""
    process = task.holes.process(missing)
    schedule = task.holes.test_schedule(process, split)
    n = len(task.src[split]) if limit is None else min(limit, len(task.src[split]))
    out = []
    for start in range(0, n, batch_size):
        idx = list(range(start, min(n, start + batch_size)))
        out.extend(task.observed_texts(*task.source_batch(split, idx, process, schedule, 0)))
    return out


def nearest_targets(train_sources: Sequence[str], train_targets: Sequence[str], queries: Sequence[str]) -> list[str]:
    """For each query, the target of the most similar training source (character 2-4-gram TF-IDF,
    cosine; :class:`~dynmask.memory.TranslationMemory`)."""
    return TranslationMemory(train_sources, train_targets).nearest_targets(queries)


def baseline_outputs(task, split: str, missing, limit: Optional[int] = None) -> dict:
    """{baseline name: outputs}, for translation or summarization."""
    sources = gappy_sources(task, split, missing, limit)
    train = task.splits.train
    nearest = nearest_targets([p.source for p in train], [p.target for p in train], sources)
    if task.kind == "translate":
        return {"copy-source": sources, "translation memory": nearest}
    return {"lead-1": [lead_sentences(s) for s in sources], "nearest training summary": nearest}


def score_baselines(task, split: str, missing, limit: Optional[int] = None) -> dict:
    """{baseline name: scores} on the same references as the model (BLEU/chrF or ROUGE)."""
    outputs = baseline_outputs(task, split, missing, limit)
    refs = [p.target for p in task.splits.split(split)][: len(next(iter(outputs.values())))]
    return {name: task.score(hyps, refs) for name, hyps in outputs.items()}
