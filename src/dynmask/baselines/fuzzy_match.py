"""Fuzzy-match hybrid: the translation memory's target where the nearest training source is similar
enough, the model's output everywhere else.

This is how computer-assisted translation combines a memory with machine translation: a fuzzy match
above a threshold is used as it is, the rest is machine-translated. The threshold is chosen on the
validation pairs, from :data:`GRID`, as the one with the best score of the task's metric (BLEU for
translation, ROUGE-L for summarization); "never" (above every similarity) is in the grid, so on
validation the hybrid is never below the model alone.

Similarity is the cosine of character n-gram TF-IDF vectors (:class:`~dynmask.memory.TranslationMemory`)
of the text the model is given: the *observed* tokens only. Which output a source gets therefore
depends on observed tokens alone, and the dynamic mask's guarantee carries over to the hybrid.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..training.run_folders import RunFolderError, read_json
from .memory import TranslationMemory

__all__ = ["FuzzyMatch", "GRID", "NEVER", "FUZZY_FILE", "combine", "choose_threshold", "memory_outputs"]

NEVER = 1.01  # above every cosine similarity: the model alone
GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(11)) + (NEVER,)  # 0.50, 0.55, ..., 1.00, never
FUZZY_FILE = "fuzzy_match.json"
METRIC = {"translate": "bleu", "summarize": "rougeL"}


@dataclass
class FuzzyMatch:
    """The threshold chosen on validation, with the validation scores it was chosen from."""

    threshold: float
    metric: str
    valid_model: float  # the model alone, on validation
    valid_hybrid: float  # the hybrid at ``threshold``, on validation
    share_from_memory: float  # of the validation sources, at ``threshold``
    grid: dict = field(default_factory=dict)  # {threshold: validation score}
    beam: int = 4  # the decoding the validation outputs came from
    length_penalty: float = 1.0

    def save(self, folder: Path) -> None:
        (Path(folder) / FUZZY_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> "FuzzyMatch":
        """Read ``folder/fuzzy_match.json``, checked as untrusted input."""
        path = Path(folder) / FUZZY_FILE
        data = read_json(path)
        try:
            choice = cls(**data)
        except TypeError as e:
            raise RunFolderError(f"{path} is damaged ({e})") from None
        numbers = (
            choice.threshold,
            choice.valid_model,
            choice.valid_hybrid,
            choice.share_from_memory,
            choice.beam,
            choice.length_penalty,
        )
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
            raise RunFolderError(f"{path} is damaged: threshold, scores and decoding settings must be finite numbers")
        if not 0.0 <= choice.threshold <= NEVER:
            raise RunFolderError(f"{path}: threshold must be in [0, {NEVER}], got {choice.threshold}")
        return choice


def memory_outputs(memory: TranslationMemory, sources: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(the target of each source's nearest memory pair, its similarity in [0, 1]); ``sources``: the
    observed text only (e.g. :func:`dynmask.baselines.gappy_sources`)."""
    picked, similarity = memory.nearest_with_similarity(list(sources))
    return [memory.targets[i] for i in picked], similarity


def combine(
    model_outputs: Sequence[str], memory_targets: Sequence[str], similarity: np.ndarray, threshold: float
) -> list[str]:
    """The memory's target where ``similarity >= threshold``, the model's output elsewhere."""
    if not len(model_outputs) == len(memory_targets) == len(similarity):
        raise ValueError(
            f"model_outputs, memory_targets and similarity must have one entry per source, got "
            f"{len(model_outputs)}, {len(memory_targets)} and {len(similarity)}"
        )
    return [m if s >= threshold else h for h, m, s in zip(model_outputs, memory_targets, similarity)]


def choose_threshold(
    model_outputs: Sequence[str],
    memory_targets: Sequence[str],
    similarity: np.ndarray,
    references: Sequence[str],
    score: Callable[[Sequence[str], Sequence[str]], dict],
    metric: str,
    grid: Sequence[float] = GRID,
) -> FuzzyMatch:
    """The threshold of ``grid`` with the best ``score(outputs, references)[metric]`` on these (validation)
    pairs; ties go to the higher threshold (fewer memory outputs)."""
    if NEVER not in grid:
        raise ValueError(f"grid must contain {NEVER} (the model alone), got {list(grid)}")
    scores = {t: score(combine(model_outputs, memory_targets, similarity, t), references)[metric] for t in grid}
    best = max(sorted(scores, reverse=True), key=lambda t: scores[t])  # first maximum from the top
    return FuzzyMatch(
        threshold=best,
        metric=metric,
        valid_model=scores[NEVER],
        valid_hybrid=scores[best],
        share_from_memory=float(np.mean(np.asarray(similarity) >= best)) if len(similarity) else 0.0,
        grid={str(t): v for t, v in scores.items()},
    )
