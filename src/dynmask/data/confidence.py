"""Per-word confidences from OCR and speech engines, read as a mask source.

An engine gives words that may be wrong, each with a confidence in [0, 1]. dynmask reads them from:

* a CSV / TSV column of space-separated numbers, one per whitespace-separated word of the text column
  (:func:`parse_confidences`);
* JSONL ``{"words": [...], "confidences": [...]}`` (:func:`read_words_jsonl`);
* tesseract's own TSV (``tesseract page.png out tsv`` or ``pytesseract.image_to_data``): word rows
  (level 5) with ``conf`` 0-100, one text per page (:func:`read_tesseract_tsv`);
* pocketsphinx's JSON lines (``pocketsphinx single audio.wav``): ``{"t": text, "w": [{"t": word, "p":
  posterior}, ...]}``, fillers and silences dropped (:func:`read_pocketsphinx_json`).

A word whose confidence is below the threshold is missing: :func:`mark_low_confidence` writes the
missing-word marker in its place, so every tokenizer, method and model of dynmask treats it as a hole
(its word pieces are all missing: they inherit the word's confidence). A NaN confidence is missing.
:meth:`dynmask.Mask.from_confidence` builds the mask from a confidence tensor directly.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence, TextIO, Union

import torch
from torch import Tensor

from ..errors import DataError
from ..masks import Mask
from .csv_layout import bom_encoding
from .tables import read_table

__all__ = [
    "parse_confidences",
    "check_confidences",
    "mark_low_confidence",
    "read_words_jsonl",
    "read_tesseract_tsv",
    "read_pocketsphinx_json",
    "pocketsphinx_words",
    "read_confidence_table",
    "read_engine_output",
    "MISSING_MARKER",
    "soft_mask",
    "pad_confidences",
    "column_confidences",
]

MISSING_MARKER = "[missing]"  # one of the tokenizers' default missing-word markers
_ALTERNATE = re.compile(r"\(\d+\)$")  # pocketsphinx's pronunciation variants: "was(2)"
_FILLERS = {"<s>", "</s>", "<sil>", "[noise]", "<unk>", "[speech]", "[laugh]", "[cough]", "[breath]"}


def check_confidences(values: Sequence[float], n_words: int, where: str) -> list[float]:
    """``values`` as floats, one per word, each in [0, 1] or NaN (missing); else a :class:`DataError`
    naming ``where`` (the file and row)."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"{where}: confidence {v!r} is not a number")
        v = float(v)
        if not (math.isnan(v) or 0.0 <= v <= 1.0):
            raise DataError(f"{where}: confidence {v} is outside [0, 1]")
        out.append(v)
    if len(out) != n_words:
        raise DataError(f"{where}: {len(out)} confidences for {n_words} words; give one per whitespace-separated word")
    return out


def parse_confidences(text: str, cell: Optional[str], where: str) -> list[float]:
    """The confidences of ``text``'s words from a cell of space-separated numbers (``nan`` = missing)."""
    words = text.split()
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        cell = ""
    values = []
    for token in str(cell).split():
        try:
            values.append(float(token))
        except ValueError:
            raise DataError(f"{where}: confidence {token!r} is not a number") from None
    return check_confidences(values, len(words), where)


def mark_low_confidence(
    text: str, confidences: Sequence[float], threshold: float, marker: str = MISSING_MARKER, *, lexicon=None
) -> str:
    """``text`` with every word whose confidence is below ``threshold`` (or NaN) replaced by ``marker``.
    A threshold of 0 keeps every word (the raw engine text). ``lexicon`` (:class:`dynmask.data.lexicon.Lexicon`):
    a word it does not hold counts as confidence 0, missing at any threshold above 0."""
    if not 0.0 <= threshold <= 1.0:
        raise DataError(f"--confidence-threshold {threshold} is outside [0, 1]")
    words = text.split()
    if len(words) != len(confidences):
        raise DataError(f"{len(confidences)} confidences for {len(words)} words; give one per word")
    if lexicon is not None:
        confidences = lexicon.cap(text, confidences)
    keep = lambda c: not math.isnan(c) and c >= threshold
    return " ".join(w if keep(c) else marker for w, c in zip(words, confidences))


def _records(lines: Iterable[str], source: str) -> list[dict]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{source} line {n}: not JSON ({e.msg})") from None
    return out


def read_words_jsonl(path: Union[str, Path], encoding: str = "utf-8") -> list[tuple[str, list[float]]]:
    """(text, confidences) per line of a JSONL file of ``{"words": [...], "confidences": [...]}``."""
    out = []
    with open(path, encoding=encoding) as f:
        for n, record in enumerate(_records(f, str(path)), 1):
            where = f"{path} record {n}"
            if not isinstance(record, dict) or not isinstance(record.get("words"), list):
                raise DataError(f'{where}: expected {{"words": [...], "confidences": [...]}}')
            words = [str(w) for w in record["words"]]
            if any(not w.strip() or len(w.split()) != 1 for w in words):
                raise DataError(f"{where}: every word must be one non-empty token without spaces")
            confidences = record.get("confidences")
            if not isinstance(confidences, list):
                raise DataError(f'{where}: "confidences" must be a list of numbers, one per word')
            out.append((" ".join(words), check_confidences(confidences, len(words), where)))
    return out


def read_tesseract_tsv(source: Union[str, Path, TextIO]) -> list[tuple[list[str], list[float]]]:
    """(words, confidences) per page of tesseract's TSV output (``conf`` 0-100 -> [0, 1]; rows that are
    not words, conf -1, are skipped)."""
    f = open(source, encoding="utf-8") if isinstance(source, (str, Path)) else source
    name = str(source) if isinstance(source, (str, Path)) else "tesseract TSV"
    with f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        need = {"level", "page_num", "conf", "text"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise DataError(f"{name}: not tesseract TSV (needs columns {sorted(need)})")
        pages: dict[int, tuple[list, list]] = {}
        for row in reader:
            try:
                level, page, conf = int(row["level"]), int(row["page_num"]), float(row["conf"])
            except (TypeError, ValueError):
                raise DataError(f"{name}: a row with a non-numeric level / page_num / conf: {row}") from None
            word = (row.get("text") or "").strip()
            if level != 5 or conf < 0 or not word:
                continue
            words, confidences = pages.setdefault(page, ([], []))
            for piece in word.split():
                words.append(piece)
                confidences.append(min(conf, 100.0) / 100.0)
    return [pages[p] for p in sorted(pages)]


def pocketsphinx_words(segments: Sequence[dict]) -> tuple[list[str], list[float]]:
    """Words and posteriors from pocketsphinx word segments ``{"t": word, "p": posterior}``; fillers
    (``<s>``, ``<sil>``, ``[NOISE]``, ...) dropped, pronunciation variants (``was(2)``) folded."""
    words, confidences = [], []
    for seg in segments:
        word = _ALTERNATE.sub("", str(seg.get("t", ""))).strip()
        if not word or word.lower() in _FILLERS:
            continue
        p = float(seg.get("p", float("nan")))
        words.append(word)
        confidences.append(min(max(p, 0.0), 1.0) if not math.isnan(p) else p)
    return words, confidences


def read_pocketsphinx_json(source: Union[str, Path, TextIO]) -> list[tuple[list[str], list[float]]]:
    """(words, confidences) per utterance of pocketsphinx's JSON lines (``pocketsphinx single ...``)."""
    f = open(source, encoding="utf-8") if isinstance(source, (str, Path)) else source
    name = str(source) if isinstance(source, (str, Path)) else "pocketsphinx JSON"
    with f:
        records = _records(f, name)
    out = []
    for n, record in enumerate(records, 1):
        if not isinstance(record, dict) or not isinstance(record.get("w"), list):
            raise DataError(f'{name} record {n}: expected pocketsphinx JSON with word segments "w"')
        out.append(pocketsphinx_words(record["w"]))
    return out


def column_confidences(frame, texts: Sequence[str], column: str, file_name: str) -> list[list[float]]:
    """The confidences of each text from a table's ``column`` of space-separated numbers (one per word),
    or a :class:`DataError` naming the file, row or column."""
    columns = [str(c) for c in frame.columns]
    if column not in columns:
        raise DataError(
            f"column {column!r} is not in {file_name}; its columns are {columns}. Pass --confidence-column "
            "with one of them"
        )
    cells = frame[column].tolist()
    return [parse_confidences(t, c, f"{file_name} data row {n}") for n, (t, c) in enumerate(zip(texts, cells), 1)]


def read_confidence_table(
    path: Union[str, Path], text_column: str, confidence_column: str, encoding: str = "utf-8"
) -> list[tuple[str, list[float]]]:
    """(text, confidences) per row of a CSV / TSV / JSONL / Parquet table: ``confidence_column`` holds
    space-separated numbers, one per whitespace-separated word of ``text_column``."""
    texts, _, frame = read_table(path, text_column, None, encoding)
    return list(zip(texts, column_confidences(frame, texts, confidence_column, Path(path).name)))


def read_engine_output(
    path: Union[str, Path],
    *,
    text_column: str = "text",
    confidence_column: Optional[str] = None,
    encoding: str = "utf-8",
) -> Optional[list[tuple[str, list[float]]]]:
    """(text, confidences) per text of a file that carries confidences, recognised by its content: a
    table with ``confidence_column``; JSONL words/confidences; tesseract TSV; pocketsphinx JSON lines.
    ``None`` when the file carries no confidences (plain text, one text per line)."""
    path = Path(path)
    if confidence_column is not None:
        return read_confidence_table(path, text_column, confidence_column, encoding)
    encoding = bom_encoding(path, encoding)
    try:
        with open(path, encoding=encoding) as f:
            head = f.readline()
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not {encoding} text ({e.reason} at byte {e.start}); pass its encoding with --encoding"
        ) from None
    if head.startswith("level\tpage_num\t"):
        return [(" ".join(w), c) for w, c in read_tesseract_tsv(open(path, encoding=encoding))]
    try:
        first = json.loads(head) if head.strip() else None
    except json.JSONDecodeError:
        return None
    if isinstance(first, dict) and "words" in first:
        return read_words_jsonl(path, encoding)
    if isinstance(first, dict) and "w" in first:
        return [(" ".join(w), c) for w, c in read_pocketsphinx_json(open(path, encoding=encoding))]
    return None


def pad_confidences(piece_confidences: Sequence[Sequence[float]], length: int) -> Tensor:
    """float[B, length]: each row's piece confidences, padded with 1 (padding is never read)."""
    conf = torch.ones(len(piece_confidences), length)
    for row, values in enumerate(piece_confidences):
        conf[row, : len(values)] = torch.tensor(values, dtype=torch.float)
    return conf


def soft_mask(mask: Mask, piece_confidences: Sequence[Sequence[float]], threshold: float = 0.0):
    """``mask`` (a :class:`dynmask.Mask` over token ids, True = observed) with the engine's confidence of
    each piece used softly: pieces below ``threshold`` (and of confidence 0 or NaN) are missing, the
    others keep their confidence as a log-prior on attention (:attr:`dynmask.Mask.confidence`)."""
    conf = pad_confidences(piece_confidences, mask.shape[1]).to(mask.device)
    return mask & Mask.from_confidence(torch.where(mask.valid, conf, torch.ones_like(conf)), threshold, soft=True)
