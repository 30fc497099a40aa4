"""Text pairs for generation: (source, target) for translation, (document, summary) for summarization.

``--data`` is a file (CSV / TSV / JSONL / Parquet with named columns), a file pattern with
``{split}`` (e.g. ``corpus.{split}.tsv`` for separate train / valid / test files), or the built-in
``aclsum`` (ACLSum, from PyPI: document = abstract + introduction + conclusion, summary = its
challenge / approach / outcome summaries). Empty fields are kept: an empty source is fully missing.
"""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import DataError
from .confidence import column_confidences
from .sources import Source, fetch
from .tables import read_table

__all__ = ["Pair", "PairSplits", "load_pairs", "ACLSUM"]

ACLSUM_WHEEL = "c75ffc48d3eabc5f37c68ea087943780a85950087957759e89746f21111f2213"  # sha256 of the wheel
ACLSUM = {
    "train": Source(
        "aclsum",
        "0.1.2",
        "aclsum/dataset/train.jsonl",
        "be8ee16765e0691745875e7e380382eaa5eb426d7c1bbe70270809729534e3eb",
        "MIT",
        "ACLSum train",
        ACLSUM_WHEEL,
    ),
    "valid": Source(
        "aclsum",
        "0.1.2",
        "aclsum/dataset/val.jsonl",
        "354ca637395a8597388f1751c288cb38a4697f7d7783722c1727135d3934ee60",
        "MIT",
        "ACLSum validation",
        ACLSUM_WHEEL,
    ),
    "test": Source(
        "aclsum",
        "0.1.2",
        "aclsum/dataset/test.jsonl",
        "491ee57a8bb2bc65af4c7c1cfe5a114dc140b093fc24c242a21785ea4ed9786f",
        "MIT",
        "ACLSum test",
        ACLSUM_WHEEL,
    ),
}


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    confidences: Optional[tuple] = None  # an engine's confidence per whitespace-separated word of the source


@dataclass
class PairSplits:
    name: str
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> list[Pair]:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)


def _field(value):
    return value if isinstance(value, dict) else ast.literal_eval(value)


def _aclsum(cache) -> PairSplits:
    parts = {}
    for split, source in ACLSUM.items():
        pairs = []
        for line in fetch(source, cache).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            sentences, summary = _field(rec["sentences"]), _field(rec["summary"])
            document = " ".join(
                s for part in ("abstract", "introduction", "conclusion") for s in sentences.get(part, [])
            )
            target = " ".join(summary[a].strip() for a in ("challenge", "approach", "outcome") if a in summary)
            pairs.append(Pair(document, target))
        parts[split] = pairs
    return PairSplits("aclsum", parts["train"], parts["valid"], parts["test"], {"source": "aclsum==0.1.2"})


def _read_pairs(
    path: Path, source_column: str, target_column: str, encoding: str, confidence_column: Optional[str] = None
):
    sources, _, frame = read_table(path, source_column, None, encoding)
    if target_column not in [str(c) for c in frame.columns]:
        raise DataError(
            f"column {target_column!r} is not in {path.name}; its columns are "
            f"{[str(c) for c in frame.columns]}. Pass --target-column with one of them"
        )
    targets = ["" if v is None or v != v else str(v) for v in frame[target_column].tolist()]
    confidences = [None] * len(sources)
    if confidence_column is not None:
        confidences = [tuple(c) for c in column_confidences(frame, sources, confidence_column, path.name)]
    return [Pair(s, t, c) for s, t, c in zip(sources, targets, confidences)], frame


def load_pairs(
    data: str,
    *,
    source_column: str = "source",
    target_column: str = "target",
    seed: int = 0,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    encoding: str = "utf-8",
    max_train: Optional[int] = None,
    cache: Optional[Path] = None,
    confidence_column: Optional[str] = None,
) -> PairSplits:
    """Load pairs; ``max_train`` keeps a seeded random subset of the training split (a CPU budget);
    ``confidence_column``: an engine's confidence per word of the source (OCR'd or transcribed sources)."""
    if data == "aclsum":
        splits = _aclsum(cache)
    elif "{split}" in data:
        parts = {}
        for split in ("train", "valid", "test"):
            path = Path(data.format(split=split))
            if not path.exists():
                raise DataError(f"{path} does not exist (from the pattern --data {data!r})")
            parts[split], _ = _read_pairs(path, source_column, target_column, encoding, confidence_column)
        splits = PairSplits(
            Path(data).name.replace(".{split}", ""),
            parts["train"],
            parts["valid"],
            parts["test"],
            {"split": "given files"},
        )
    else:
        path = Path(data)
        if not path.exists():
            raise DataError(f"--data {data!r} is neither 'aclsum', a file, nor a pattern with {{split}}")
        pairs, _ = _read_pairs(path, source_column, target_column, encoding, confidence_column)
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        n_test, n_valid = max(1, int(test_fraction * len(pairs))), max(1, int(valid_fraction * len(pairs)))
        if len(pairs) < n_test + n_valid + 1:
            raise DataError(f"{path.name} has {len(pairs)} pairs: too few to split into train / valid / test")
        test = [pairs[i] for i in order[:n_test]]
        valid = [pairs[i] for i in order[n_test : n_test + n_valid]]
        train = [pairs[i] for i in order[n_test + n_valid :]]
        splits = PairSplits(path.stem, train, valid, test, {"split": "random rows", "seed": seed})
    if max_train is not None and len(splits.train) > max_train:
        splits.train = random.Random(seed).sample(splits.train, max_train)
        splits.info["train_subset"] = max_train
    # where the pairs came from, so that `dynmask evaluate` can find them again without being told
    where = (
        data
        if data == "aclsum"
        else str(Path(data).resolve())
        if "{split}" not in data
        else str(Path(data).parent.resolve() / Path(data).name)
    )
    splits.info.update(
        {
            "data": where,
            "source_column": source_column,
            "target_column": target_column,
            "encoding": encoding,
            "data_seed": seed,
            **({"confidence_column": confidence_column} if confidence_column is not None else {}),
        }
    )
    return splits
