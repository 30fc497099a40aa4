"""The ONNX graph of a text classifier: token ids in, logits out, the mask built inside the graph from
the ids (missing / unknown ids and padding; True = observed)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...data.tokenizer import TextTokenizer
from ...errors import DataError
from ...layers import with_backend
from ...methods import get_method
from ...traced import TextClassifierGraph
from ..common import confidence_files, stored_threshold
from ..registry import run_config_folder
from .task import load_classifier


def export_graph(run: Path, backend: str, confidences: bool = False):
    """(graph, example inputs, export.json metadata, files to copy beside the graph) of a classify run;
    ``confidences``: the graph takes a confidence per token as its second input."""
    model, tokenizer, labels = load_classifier(run)
    if confidences and not isinstance(tokenizer, TextTokenizer):  # the graph's confidence input: TextClassifierGraph
        raise DataError("a confidence input is exported for dynmask's own tokenizer; this run uses a pretrained one")
    if model.__class__.__name__ == "TextClassifier" and model.config.arch != "transformer":
        raise DataError(f"export covers Transformer text classifiers; this run's arch is {model.config.arch!r}")
    if get_method(model.config.method).deletes:
        raise DataError(
            "a 'delete' model renumbers tokens by a data-dependent plan that export does not cover; "
            "export a dynamic run"
        )
    missing = [tokenizer.unk_id, tokenizer.missing_id] if hasattr(tokenizer, "missing_id") else []
    missing = sorted({i for i in missing if i is not None})
    config = model.config
    vocab = config.vocab_size if hasattr(config, "vocab_size") else config.encoder["vocab_size"]
    graph = TextClassifierGraph(with_backend(model, backend), missing, tokenizer.pad_id, confidences, vocab).eval()
    example = tokenizer.pad(tokenizer.encode(["an example text with a ??? hole", "another one"]))
    if confidences:
        example = (example, torch.rand(example.shape))
    folder = run_config_folder(run)
    meta = {
        "task": "classify",
        "labels": labels,
        "input": "ids",
        "missing_ids": missing,
        "pad_id": tokenizer.pad_id,
        "vocab_size": vocab,  # ids outside [0, vocab_size) are missing in the graph
        "tokenizer": "pretrained" if model.__class__.__name__ == "PretrainedClassifier" else "dynmask",
        "confidence_input": confidences,
        "confidence_threshold": stored_threshold(run),
    }
    prefixes = ("tokenizer", "special_tokens", "vocab", "merges", "dynmask_tokenizer")
    copy_files = [p for p in folder.iterdir() if p.name.startswith(prefixes)] + confidence_files(run)
    return graph, example, meta, copy_files
