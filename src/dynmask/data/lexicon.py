"""The words a model's training texts hold, read as a second confidence: an engine's word that no
training text contains is most likely misread.

OCR engines turn a smudged word into a string that is not a word ("wrivag", "ditretion") and often
give it a fair confidence. Measured on the engine benchmark (``experiments/engine_noise.py``), whether
a word was seen in the training texts tells wrong from right words better than tesseract's own
confidence (ROC AUC 0.89 vs 0.83 on Rotten Tomatoes at the harshest OCR level) and the two together
better still (0.93). A speech recogniser only writes words of its dictionary, so there it adds little.

:meth:`Lexicon.cap` sets the confidence of every word the lexicon does not hold to 0, so any threshold
above 0 reads it as missing (``True`` = observed stays the mask convention downstream: a capped word's
pieces are all missing); a threshold of 0 keeps every word, as without a lexicon.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence, Union

from ..errors import DataError

__all__ = ["Lexicon", "normalise_word", "LEXICON_FILE", "MIN_COUNT"]

LEXICON_FILE = "lexicon.txt"  # one word per line, beside the run's tokenizer / best weights
MIN_COUNT = 2  # a word seen once may be a typo or, in engine-read training text, a misreading


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"  # punctuation and symbols: quotes, dashes, «, ~, \, $


def normalise_word(word: str) -> str:
    """``word`` lowercased with the punctuation around it stripped ("Hello," -> "hello"); a word of
    punctuation alone stays itself, lowercased ("--" -> "--"), so a dash the texts use is known."""
    lowered = word.lower()
    start, end = 0, len(lowered)
    while start < end and _is_punctuation(lowered[start]):
        start += 1
    while end > start and _is_punctuation(lowered[end - 1]):
        end -= 1
    return lowered[start:end] or lowered


class Lexicon:
    """A set of normalised words (:func:`normalise_word`); ``word in lexicon`` normalises ``word`` first."""

    def __init__(self, words: Iterable[str]):
        self.words = frozenset(normalise_word(w) for w in words if w.strip())

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = MIN_COUNT) -> "Lexicon":
        """The words seen at least ``min_count`` times in ``texts`` (split on whitespace)."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts = Counter(normalise_word(w) for text in texts for w in text.split())
        return cls(w for w, n in counts.items() if n >= min_count)

    def __contains__(self, word: str) -> bool:
        return normalise_word(word) in self.words

    def __len__(self) -> int:
        return len(self.words)

    def cap(self, text: str, confidences: Sequence[float]) -> list[float]:
        """``confidences`` (one per whitespace-separated word of ``text``) with every word the lexicon does
        not hold set to 0 (missing at any threshold above 0); NaN (missing) stays NaN."""
        words = text.split()
        if len(words) != len(confidences):
            raise DataError(f"{len(confidences)} confidences for {len(words)} words; give one per word")
        return [c if (w in self or math.isnan(c)) else 0.0 for w, c in zip(words, confidences)]

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text("".join(f"{w}\n" for w in sorted(self.words)), encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Lexicon":
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot read the lexicon ({e})") from None
        if any(len(line.split()) != 1 for line in lines):
            raise DataError(f"{path}: expected one word per line, without spaces")
        return cls(lines)
