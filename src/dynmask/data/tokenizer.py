"""Tokenizers (Hugging Face ``tokenizers``) trained on the training split, saved with the model.

Both are BPE over Metaspace pre-tokenization (SentencePiece-style, reversible): ``kind="uncased"``
lower-cases (classification); ``kind="cased"`` keeps case
(translation, summaries). Not WordPiece, nor BPE over BERT pre-tokenization: with the library's
trainers those gave a different vocabulary in each of three runs on the same texts (measured), which
would make two runs with the same seed differ; this combination gave the same one every time.

Special tokens: ``[PAD]`` = 0, ``[UNK]`` = 1, ``[MISSING]`` = 2, ``[BOS]`` = 3, ``[EOS]`` = 4.
Placeholder strings that mark holes in real text (``[missing]``, ``<unk>``, ``???``, ... —
configurable) become ``[MISSING]``; an empty text is one ``[MISSING]``. :meth:`TextTokenizer.mask`
marks ``[UNK]`` and ``[MISSING]`` missing and ``[PAD]`` padding (True = observed). Works on any
Unicode text (Chinese is segmented by the learned pieces, as SentencePiece does).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from ..errors import RunFolderError
from ..files import read_json_object
from ..masks import Mask

__all__ = [
    "TextTokenizer",
    "encode_prefixes",
    "DEFAULT_MISSING_MARKERS",
    "PAD",
    "UNK",
    "MISSING",
    "BOS",
    "EOS",
    "KINDS",
]

PAD, UNK, MISSING, BOS, EOS = "[PAD]", "[UNK]", "[MISSING]", "[BOS]", "[EOS]"
SPECIALS = [PAD, UNK, MISSING, BOS, EOS]
KINDS = ("uncased", "cased")
DEFAULT_MISSING_MARKERS = ("[missing]", "<missing>", "<unk>", "[unk]", "???", "[illegible]", "[redacted]")


def marker_pattern(marker: str, leading_spaces: bool = True) -> str:
    r"""A marker is found wherever it stands ("写得[missing]好", "x<unk>y"), except that an edge that is
    a letter or digit must not cut a word ("NA" is not found in "NAME"), and a marker with no letter
    or digit at all (``???``) right after a word is punctuation ("what???"), not a hole.

    ``leading_spaces``: the whitespace before the marker is part of the match. The run is matched only
    from its start (``(?<!\s)``), so a text of 40,000 spaces is scanned once, not once per space."""
    wordy = any(ch.isalnum() for ch in marker)
    before = r"(?<!\w)" if (re.match(r"\w", marker[0]) or not wordy) else ""
    after = r"(?!\w)" if re.match(r"\w", marker[-1]) else ""
    spaces = r"(?<!\s)\s*" if leading_spaces else ""
    return rf"{spaces}{before}{re.escape(marker)}{after}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


_MARGIN = 16  # pieces past max_len that a cut inside an unspaced run (e.g. Chinese) may change


def encode_prefixes(texts: Sequence[str], encode_batch, max_len: int, start_chars: int = 1024) -> list[list[int]]:
    """``encode_batch(texts) -> ids`` applied to a prefix of each text just long enough to decide its
    first ``max_len`` ids, so a 14 MB line costs no more than a short one. A prefix ends at a space
    (whole words tokenize as they do in the whole text) and is doubled while it gives too few ids;
    the ids returned are the prefix's (cut them to ``max_len``)."""
    texts = [str(t) for t in texts]
    out: list = [None] * len(texts)
    chars = max(1024, start_chars)
    todo = list(range(len(texts)))
    while todo:
        prefixes = [_prefix(texts[i], chars) for i in todo]
        again = []
        for i, prefix, ids in zip(todo, prefixes, encode_batch(prefixes)):
            if len(prefix) == len(texts[i]) or len(ids) > max_len + _MARGIN:
                out[i] = ids
            else:
                again.append(i)
        todo, chars = again, 2 * chars
    return out


def checked_words(text: str, confidences: Sequence[float]) -> list[str]:
    """``text``'s whitespace-separated words, which ``confidences`` must match one for one."""
    words = text.split()
    if len(words) != len(confidences):
        raise ValueError(f"{len(confidences)} confidences for {len(words)} words; give one per word")
    return words


def inherited_confidences(
    ids: Sequence[int], owners: Sequence[Optional[int]], confidences: Sequence[float], missing_id: int
) -> list[float]:
    """Each piece's confidence: its word's (``owners[i]``, the word it came from; None for a special token,
    which gets 1), and 0 for a missing piece (a marker's) whatever its word's number."""
    return [1.0 if w is None else 0.0 if i == missing_id else float(confidences[w]) for i, w in zip(ids, owners)]


def _prefix(text: str, chars: int) -> str:
    """``text`` cut to at most ``chars`` characters, at the last whitespace when there is one."""
    if len(text) <= chars:
        return text
    cut = text[:chars]
    space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
    return cut[:space] if space > 0 else cut


class TextTokenizer:
    adds_special_tokens = False  # encode() gives the text's pieces only; seq2seq adds <s> / </s> itself

    def __init__(
        self,
        tokenizer: Tokenizer,
        missing_markers: Sequence[str] = DEFAULT_MISSING_MARKERS,
        max_len: int = 128,
        kind: str = "uncased",
    ) -> None:
        self.tokenizer = tokenizer
        self.missing_markers = tuple(missing_markers)
        self.max_len = max_len
        self.kind = kind
        ids = [tokenizer.token_to_id(t) for t in SPECIALS]
        if ids != [0, 1, 2, 3, 4]:
            raise ValueError(f"tokenizer must have special tokens {SPECIALS} at ids 0-4, got {ids}")
        self.pad_id, self.unk_id, self.missing_id, self.bos_id, self.eos_id = ids
        markers = sorted(self.missing_markers, key=len, reverse=True)
        # see marker_pattern; the spaces before a marker go with it, so no lone word-boundary piece is
        # left in front
        self._marker_re = re.compile("|".join(marker_pattern(m) for m in markers), re.IGNORECASE) if markers else None
        self._longest_marker = max((len(m) for m in markers), default=0)

    # ------------------------------------------------------------------ training and storage
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        min_frequency: int = 2,
        missing_markers: Sequence[str] = DEFAULT_MISSING_MARKERS,
        max_len: int = 128,
        kind: str = "uncased",
    ) -> "TextTokenizer":
        if kind not in KINDS:
            raise ValueError(f"tokenizer kind must be one of {KINDS}, got {kind!r}")
        tok = Tokenizer(models.BPE(unk_token=UNK))
        if kind == "uncased":
            tok.normalizer = normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=True
            )
        else:
            tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False
        )
        tok.train_from_iterator(texts, trainer)
        return cls(tok, missing_markers, max_len, kind)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # each file atomically, tokenizer.json last: a reader that finds it finds a complete pair
        _write_atomic(
            folder / "tokenizer_config.json",
            json.dumps(
                {"missing_markers": list(self.missing_markers), "max_len": self.max_len, "kind": self.kind}, indent=2
            ),
        )
        _write_atomic(folder / "tokenizer.json", self.tokenizer.to_str())

    @classmethod
    def load(cls, folder: Path) -> "TextTokenizer":
        folder = Path(folder)
        path = folder / "tokenizer_config.json"
        config = read_json_object(path)
        markers, max_len, kind = config.get("missing_markers"), config.get("max_len"), config.get("kind", "uncased")
        if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
            raise RunFolderError(f"{path}: missing_markers must be a list of strings, got {markers!r:.80}")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise RunFolderError(f"{path}: max_len must be a positive whole number, got {max_len!r:.80}")
        if kind not in KINDS:
            raise RunFolderError(f"{path}: kind must be one of {KINDS}, got {kind!r:.80}")
        try:
            tokenizer = Tokenizer.from_str((folder / "tokenizer.json").read_text(encoding="utf-8"))
        except Exception as e:  # OSError, UnicodeDecodeError, or tokenizers' bare Exception
            raise RunFolderError(f"{folder / 'tokenizer.json'} is not a readable tokenizer ({e})") from None
        return cls(tokenizer, markers, max_len, kind)

    # ------------------------------------------------------------------ use
    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def mark_missing(self, text: str) -> str:
        """Replace missing-value markers with ``[MISSING]``; an empty text becomes ``[MISSING]``."""
        if not text.strip():
            return MISSING
        if self._marker_re is None:
            return text
        return self._marker_re.sub(MISSING, text)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to ``max_len`` (huge texts are cut before tokenizing:
        :func:`encode_prefixes`)."""
        start = 8 * (self.max_len + 2) * (self._longest_marker + 2)
        encode = lambda batch: [
            e.ids for e in self.tokenizer.encode_batch([self.mark_missing(t) for t in batch], add_special_tokens=False)
        ]
        return [ids[: self.max_len] or [self.missing_id] for ids in encode_prefixes(texts, encode, self.max_len, start)]

    def encode_with_confidences(
        self, texts: Sequence[str], confidences: Sequence[Sequence[float]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """(ids, confidence per id) per text: each whitespace-separated word's pieces inherit its
        confidence (an OCR / speech engine's, in [0, 1]; a missing-word marker's pieces are missing
        whatever its number). The ids equal :meth:`encode`'s for single-spaced text."""
        all_ids, all_conf = [], []
        for text, conf in zip(texts, confidences):
            words = checked_words(text, conf)
            if not words:
                all_ids.append([self.missing_id])
                all_conf.append([0.0])
                continue
            enc = self.tokenizer.encode(
                [self.mark_missing(w) for w in words], is_pretokenized=True, add_special_tokens=False
            )
            ids, owners = enc.ids[: self.max_len], enc.word_ids[: self.max_len]
            all_ids.append(ids)
            all_conf.append(inherited_confidences(ids, owners, conf, self.missing_id))
        return all_ids, all_conf

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def pad(self, batch: Sequence[Sequence[int]]) -> torch.Tensor:
        """long[B, L], right-padded with [PAD]."""
        length = max((len(s) for s in batch), default=0)
        out = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
        for i, s in enumerate(batch):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        return out

    def content(self, ids: torch.Tensor) -> torch.Tensor:
        """bool[B, L]: positions holding text, where artificial holes may fall (not padding)."""
        return ids != self.pad_id

    def observed_text_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """long[B]: observed tokens per row."""
        return self.mask(ids).observed.sum(1)

    def mask(self, ids: torch.Tensor) -> Mask:
        """True = observed: [UNK] and [MISSING] are missing, [PAD] is padding."""
        return Mask.from_tokens(ids, missing=[self.unk_id, self.missing_id], pad=self.pad_id)
