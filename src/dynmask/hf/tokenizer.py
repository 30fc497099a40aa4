"""A pretrained checkpoint's own tokenizer, with dynmask's missing-word markers: marked words become
missing word pieces (True = observed).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..data.tokenizer import (
    DEFAULT_MISSING_MARKERS,
    checked_words,
    encode_prefixes,
    inherited_confidences,
    marker_pattern,
)
from ..errors import DataError
from ..files import read_json_object
from ..masks import Mask

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
)

# ---------------------------------------------------------------------------------------- tokenizer
_LATIN_WORD = r"[A-Za-z0-9\u00C0-\u024F]"


class PretrainedTokenizer:
    """A checkpoint's fast tokenizer (``tokenizer.json``) with missing markers.

    :meth:`encode` gives ids with the model's special tokens; each marker (and any Latin word
    characters glued to it: ``Ver[illegible]ung`` hides the whole word) becomes one position holding
    the mask token, which :meth:`mask` marks missing together with ``[UNK]`` pieces; padding is
    padding. An empty text is one missing position between ``[CLS]`` and ``[SEP]``."""

    def __init__(self, folder, max_len: int = 128, missing_markers: Sequence[str] = DEFAULT_MISSING_MARKERS) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            raise DataError(
                f"{folder} has no tokenizer.json (a fast tokenizer): save the tokenizer with "
                "transformers' save_pretrained first"
            )
        self.folder, self.max_len = folder, max_len
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config = (
            read_json_object(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").exists() else {}
        )
        special = (
            read_json_object(folder / "special_tokens_map.json")
            if (folder / "special_tokens_map.json").exists()
            else {}
        )

        def token(name: str, fallbacks: Sequence[str]) -> Optional[str]:
            value = config.get(name) or special.get(name)
            if isinstance(value, dict):
                value = value.get("content")
            for candidate in ([value] if value else []) + list(fallbacks):
                if candidate and self.tokenizer.token_to_id(candidate) is not None:
                    return candidate
            return None

        self.mask_token = token("mask_token", ["[MASK]", "<mask>"])
        self.pad_token = token("pad_token", ["[PAD]", "<pad>"])
        self.unk_token = token("unk_token", ["[UNK]", "<unk>"])
        if self.mask_token is None or self.pad_token is None:
            raise DataError(f"the tokenizer in {folder} has no mask or pad token; dynmask needs both")
        self.mask_id = self.tokenizer.token_to_id(self.mask_token)
        self.missing_id = self.mask_id  # what artificial holes write (the interface of TextTokenizer)
        self.pad_id = self.tokenizer.token_to_id(self.pad_token)
        self.unk_id = self.tokenizer.token_to_id(self.unk_token) if self.unk_token else None
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()  # dynmask cuts (keeping the closing special token)
        self.missing_markers = tuple(missing_markers)
        markers = sorted(self.missing_markers, key=len, reverse=True)
        self._longest_marker = max((len(m) for m in markers), default=0)
        # a marker glued to a word hides the whole word; the word is matched only from its start, so a
        # long run of letters is scanned once, not once per letter
        word = f"(?<!{_LATIN_WORD}){_LATIN_WORD}*"
        patterns = [word + marker_pattern(m, leading_spaces=False) + _LATIN_WORD + "*" for m in markers]
        self._marker_re = re.compile("|".join(patterns), re.IGNORECASE) if markers else None

    adds_special_tokens = True  # encode() wraps each text in the model's [CLS] ... [SEP] (or <s> ... </s>)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def bos_id(self) -> int:
        """The opening special token ([CLS] / <s>): a warm-started decoder starts from it."""
        return self._special(("[CLS]", "<s>"))

    @property
    def eos_id(self) -> int:
        """The closing special token ([SEP] / </s>): a warm-started decoder stops at it."""
        return self._special(("[SEP]", "</s>"))

    def _special(self, candidates: Sequence[str]) -> int:
        for token in candidates:
            i = self.tokenizer.token_to_id(token)
            if i is not None:
                return i
        raise DataError(f"the tokenizer in {self.folder} has none of {list(candidates)}")

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids`` (word pieces joined by the tokenizer's own decoder)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def mark_missing(self, text: str) -> str:
        """Markers (with Latin word characters glued to them) -> the mask token; empty -> one mask token."""
        if not text.strip():
            return self.mask_token
        if self._marker_re is None:
            return text
        return self._marker_re.sub(f" {self.mask_token} ", text)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids per text, special tokens included, cut at ``max_len`` keeping the closing special token
        (huge texts are cut before tokenizing: :func:`dynmask.data.tokenizer.encode_prefixes`)."""
        encode = lambda batch: [e.ids for e in self.tokenizer.encode_batch([self.mark_missing(t) for t in batch])]
        start = 8 * (self.max_len + 2) * (self._longest_marker + 2)
        return [self._truncate(ids) for ids in encode_prefixes(texts, encode, self.max_len, start)]

    def encode_with_confidences(
        self, texts: Sequence[str], confidences: Sequence[Sequence[float]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """(ids, confidence per id) per text, the ids as :meth:`encode` gives them for single-spaced text:
        each whitespace-separated word's pieces inherit its confidence (an OCR / speech engine's, in
        [0, 1]); the special tokens get 1 and a missing-word marker's pieces 0 (missing whatever its
        number). Feed them to :func:`dynmask.data.confidence.soft_mask` for the soft prior."""
        all_ids, all_conf = [], []
        for text, conf in zip(texts, confidences):
            words = checked_words(text, conf)[: 8 * self.max_len]  # a word is a piece at least, unless it vanishes
            pieces = [self.mark_missing(w) for w in words] or [self.mask_token]  # empty: one missing piece
            enc = self.tokenizer.encode(pieces, is_pretokenized=True)
            ids, owners = self._truncate(enc.ids), self._truncate(enc.word_ids)
            all_ids.append(ids)
            all_conf.append(inherited_confidences(ids, owners, conf, self.mask_id))
        return all_ids, all_conf

    def _truncate(self, ids: list) -> list:
        if len(ids) <= self.max_len:
            return ids
        return ids[: self.max_len - 1] + [ids[-1]]  # keep the closing special token ([SEP] / </s>)

    def pad(self, batch: Sequence[Sequence[int]]) -> Tensor:
        """long[B, L], right-padded with the pad token."""
        length = max((len(s) for s in batch), default=0)
        out = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
        for i, s in enumerate(batch):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        return out

    def mask(self, ids: Tensor) -> Mask:
        """True = observed: the mask token (markers, artificial holes) and [UNK] are missing, pad is padding."""
        missing = [self.mask_id] + ([self.unk_id] if self.unk_id is not None else [])
        return Mask.from_tokens(ids, missing=missing, pad=self.pad_id)

    def content(self, ids: Tensor) -> Tensor:
        """bool[B, L]: positions that hold text (not padding, not [CLS]/[SEP]-style special tokens):
        where artificial holes may fall."""
        special = torch.tensor(sorted(self.special_ids()), dtype=ids.dtype, device=ids.device)
        return ~torch.isin(ids, special)

    def observed_text_tokens(self, ids: Tensor) -> Tensor:
        """long[B]: observed positions that hold text (special tokens not counted)."""
        return (self.mask(ids).observed & self.content(ids)).sum(1)

    def special_ids(self) -> set:
        ids = {self.pad_id}
        for token in ("[CLS]", "[SEP]", "<s>", "</s>", "<cls>", "<sep>"):
            i = self.tokenizer.token_to_id(token)
            if i is not None:
                ids.add(i)
        return ids

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in TOKENIZER_FILES:
            if (self.folder / name).exists():
                shutil.copy(self.folder / name, folder / name)
        (folder / "dynmask_tokenizer.json").write_text(
            json.dumps({"max_len": self.max_len, "missing_markers": list(self.missing_markers)}, indent=2)
        )

    @classmethod
    def load(cls, folder) -> "PretrainedTokenizer":
        folder = Path(folder)
        extra = read_json_object(folder / "dynmask_tokenizer.json")
        return cls(folder, int(extra["max_len"]), extra["missing_markers"])
