"""A translation memory: the training pair whose source is nearest to a (gappy) source.

Used two ways: as the ``translation memory`` / ``nearest training summary`` baseline, and as an
extra input of a seq2seq model (``Seq2SeqTask(memory=...)``: the source followed by the nearest
training pair's target, "neural fuzzy repair", Bulte & Tezcan, ACL 2019), so a model can copy the
parts of a similar, already translated sentence. Similarity is the cosine of character 2-4-gram
TF-IDF vectors (scikit-learn), computed from the text a model is given: the observed tokens only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..extras import require
from ..training.run_folders import RunFolderError, read_json

__all__ = ["TranslationMemory", "MEMORY_FILE"]

MEMORY_FILE = "memory.json"


class TranslationMemory:
    """Pairs (source, target) searchable by source similarity."""

    def __init__(self, sources: Sequence[str], targets: Sequence[str]) -> None:
        if len(sources) != len(targets):
            raise ValueError(f"a memory needs one target per source, got {len(sources)} and {len(targets)}")
        if not len(sources):
            raise ValueError("a memory needs at least one pair")
        text = require("sklearn.feature_extraction.text")
        self.sources, self.targets = list(sources), list(targets)
        self.vectorizer = text.TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(self.sources)  # (N, n-grams), rows L2-normalised
        self._by_gram = self.matrix.T.tocsr()  # (n-grams, N): transposed once, not at every search

    def __len__(self) -> int:
        return len(self.sources)

    def nearest(self, queries: Sequence[str], exclude: Optional[Sequence[int]] = None, chunk: int = 256) -> list[int]:
        """Index of the most similar source for each query; ``exclude[i]`` (e.g. the query's own index
        when the queries are the memory's sources) is never returned for query ``i``."""
        return self.nearest_with_similarity(queries, exclude, chunk)[0]

    def nearest_with_similarity(
        self, queries: Sequence[str], exclude: Optional[Sequence[int]] = None, chunk: int = 256
    ) -> tuple[list[int], np.ndarray]:
        """(index of the most similar source, its cosine similarity in [0, 1]) for each query."""
        if exclude is not None and len(exclude) != len(queries):
            raise ValueError(f"exclude has {len(exclude)} entries for {len(queries)} queries")
        out: list[int] = []
        best: list[np.ndarray] = []
        for start in range(0, len(queries), chunk):
            sims = (self.vectorizer.transform(queries[start : start + chunk]) @ self._by_gram).toarray()  # (q, N)
            if exclude is not None and len(self) > 1:
                rows = np.arange(sims.shape[0])
                sims[rows, np.asarray(exclude[start : start + chunk])] = -1.0
            picked = sims.argmax(axis=1)  # (q,)
            out.extend(int(i) for i in picked)
            best.append(sims[np.arange(sims.shape[0]), picked])
        return out, np.clip(np.concatenate(best) if best else np.zeros(0), 0.0, 1.0)

    def nearest_targets(self, queries: Sequence[str]) -> list[str]:
        return [self.targets[i] for i in self.nearest(queries)]

    def save(self, folder: Path) -> None:
        (Path(folder) / MEMORY_FILE).write_text(json.dumps({"sources": self.sources, "targets": self.targets}))

    @classmethod
    def load(cls, folder: Path) -> "TranslationMemory":
        """The memory saved in a run folder, checked as untrusted input (lists of strings, same length)."""
        path = Path(folder) / MEMORY_FILE
        data = read_json(path)
        sources, targets = (data.get(k) if isinstance(data, dict) else None for k in ("sources", "targets"))
        if not (
            isinstance(sources, list)
            and isinstance(targets, list)
            and len(sources) == len(targets) > 0
            and all(isinstance(t, str) for t in sources + targets)
        ):
            raise RunFolderError(
                f"{path} is damaged: expected equal, non-empty lists of strings 'sources' and 'targets'"
            )
        return cls(sources, targets)
