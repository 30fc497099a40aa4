"""Labelled text: the built-in sets and a user's own CSV / TSV / JSONL / Parquet files.

Missing text is kept, not dropped: an empty text field is a fully missing sample, and placeholder
strings that mark holes in real data (``[missing]``, ``<unk>``, ``???``, ...) become the tokenizer's
``[MISSING]`` token (see :mod:`dynmask.data.tokenizer`).
"""

from __future__ import annotations

import bz2
import io
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import DataError
from ..extras import require as _require
from .confidence import column_confidences
from .sources import SOURCES, fetch
from .tables import read_table

__all__ = ["Example", "TextSplits", "load_text_dataset", "read_table", "BUILTIN_TEXT_SETS", "DataError"]

BUILTIN_TEXT_SETS = ("rotten_tomatoes", "20newsgroups")


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    group: Optional[str] = None
    confidences: Optional[tuple] = None  # an engine's confidence per whitespace-separated word, in [0, 1]


@dataclass
class TextSplits:
    name: str
    labels: list[str]
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)


def _split_by_group(examples: list[Example], seed: int, valid_fraction: float, test_fraction: float):
    """Whole groups go to one split (no movie's reviews in both train and test)."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[ex.group if ex.group is not None else f"#{i}"].append(ex)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n = len(examples)
    out = {"test": [], "valid": [], "train": []}
    for key in keys:
        if len(out["test"]) < test_fraction * n:
            out["test"].extend(groups[key])
        elif len(out["valid"]) < valid_fraction * n:
            out["valid"].extend(groups[key])
        else:
            out["train"].extend(groups[key])
    return out["train"], out["valid"], out["test"]


def _label_ids(raw: list[str], path_name: str) -> tuple[list[str], list[int]]:
    names = sorted(set(raw))
    if len(names) < 2:
        raise DataError(f"{path_name} has only one class ({names[0]!r}); classification needs at least two")
    seen: dict[str, str] = {}
    for name in names:  # "Positive" and "positive" would silently become two classes
        key = " ".join(name.casefold().replace("_", " ").replace("-", " ").split())
        if key in seen:
            raise DataError(
                f"{path_name}: labels {seen[key]!r} and {name!r} differ only in case or spelling; write them "
                "the same way if they are one class"
            )
        seen[key] = name
    index = {n: i for i, n in enumerate(names)}
    return names, [index[r] for r in raw]


def _rotten_tomatoes(seed: int, valid_fraction: float, test_fraction: float, cache) -> TextSplits:
    pd = _require("pandas")

    path = fetch(SOURCES["rotten_tomatoes"]["all"], cache)
    frame = pd.read_csv(
        io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8")), dtype=str, keep_default_na=False
    )
    frame = frame[frame["category"] != "plot"]  # plot summaries are not reviews
    names, ids = _label_ids(frame["category"].tolist(), "rotten_tomatoes")
    examples = [Example(t, y, g) for t, y, g in zip(frame["text"].tolist(), ids, frame["movie_name"].tolist())]
    train, valid, test = _split_by_group(examples, seed, valid_fraction, test_fraction)
    return TextSplits("rotten_tomatoes", names, train, valid, test, {"split": "by movie_name", "seed": seed})


def _read_tab(path: Path) -> tuple[list[str], list[str]]:
    labels, texts = [], []
    lines = path.read_text(encoding="utf-8").split("\n")
    for line in lines[3:]:  # three header rows: names, types, flags
        if "\t" in line:
            label, text = line.split("\t", 1)
            labels.append(label)
            texts.append(text)
    return labels, texts


def _newsgroups(seed: int, valid_fraction: float, cache) -> TextSplits:
    train_labels, train_texts = _read_tab(fetch(SOURCES["20newsgroups"]["train"], cache))
    test_labels, test_texts = _read_tab(fetch(SOURCES["20newsgroups"]["test"], cache))
    names = sorted(set(train_labels))
    index = {n: i for i, n in enumerate(names)}
    train = [Example(t, index[y]) for t, y in zip(train_texts, train_labels)]
    test = [Example(t, index[y]) for t, y in zip(test_texts, test_labels)]
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    n_valid = int(valid_fraction * len(train))
    valid = [train[i] for i in order[:n_valid]]
    train = [train[i] for i in order[n_valid:]]
    return TextSplits(
        "20newsgroups", names, train, valid, test, {"split": "given train/test; valid from train", "seed": seed}
    )


def load_text_dataset(
    name_or_path: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split_column: Optional[str] = None,
    group_column: Optional[str] = None,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    encoding: str = "utf-8",
    cache: Optional[Path] = None,
    confidence_column: Optional[str] = None,
) -> TextSplits:
    """A built-in set by name, or a user's file. Splits are seeded and reproducible.

    A user's file is split by ``split_column`` (values train / valid / test) when given, else by
    ``group_column`` (whole groups per split) or row, at random with ``seed``. ``confidence_column``:
    an OCR / speech engine's confidence per word of the text (space-separated numbers in [0, 1]).
    """
    if name_or_path == "rotten_tomatoes":
        return _rotten_tomatoes(seed, valid_fraction, test_fraction, cache)
    if name_or_path == "20newsgroups":
        return _newsgroups(seed, valid_fraction, cache)
    path = Path(name_or_path)
    if not path.exists():
        raise DataError(f"--data {name_or_path!r} is neither a built-in set {BUILTIN_TEXT_SETS} nor an existing file")
    texts, raw_labels, frame = read_table(path, text_column, label_column, encoding)
    names, ids = _label_ids(raw_labels, path.name)
    groups = [None] * len(texts)
    if group_column is not None:
        if group_column not in frame.columns:
            raise DataError(
                f"column {group_column!r} is not in {path.name}; pass --group-column with one of "
                f"{[str(c) for c in frame.columns]}"
            )
        groups = [str(g) for g in frame[group_column].tolist()]
    confidences = [None] * len(texts)
    if confidence_column is not None:
        confidences = [tuple(c) for c in column_confidences(frame, texts, confidence_column, path.name)]
    examples = [Example(t, y, g, c) for t, y, g, c in zip(texts, ids, groups, confidences)]
    if split_column is not None:
        if split_column not in frame.columns:
            raise DataError(
                f"column {split_column!r} is not in {path.name}; pass --split-column with one of "
                f"{[str(c) for c in frame.columns]}"
            )
        parts = {"train": [], "valid": [], "test": []}
        for ex, s in zip(examples, frame[split_column].tolist()):
            s = str(s).strip().lower()
            s = {"validation": "valid", "val": "valid", "dev": "valid"}.get(s, s)
            if s not in parts:
                raise DataError(f"{split_column!r} holds {s!r}; expected train, valid or test")
            parts[s].append(ex)
        train, valid, test = parts["train"], parts["valid"], parts["test"]
    else:
        train, valid, test = _split_by_group(examples, seed, valid_fraction, test_fraction)
    if not train or not valid or not test:
        raise DataError(
            f"{path.name} gives an empty split (train {len(train)}, valid {len(valid)}, test "
            f"{len(test)}); add rows or adjust the split fractions"
        )
    return TextSplits(
        path.stem,
        names,
        train,
        valid,
        test,
        {
            "split": split_column or group_column or "random rows",
            "seed": seed,
            # where the data came from, so that `dynmask evaluate` can find it again without being told
            "data": str(path.resolve()),
            "text_column": text_column,
            "label_column": label_column,
            "split_column": split_column,
            "group_column": group_column,
            "encoding": encoding,
            "confidence_column": confidence_column,
        },
    )
