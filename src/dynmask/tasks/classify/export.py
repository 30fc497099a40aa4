"""The ONNX graph of a text classifier: token ids in, logits out, the mask built inside the graph from
the ids (missing / unknown ids and padding; True = observed)."""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ...layers import with_backend
from ...methods import get_method
from ...traced import TextClassifierGraph
from ..registry import run_config_folder
from .task import load_classifier


def export_graph(run: Path, backend: str):
    """(graph, example input, export.json metadata, files to copy beside the graph) of a classify run."""
    model, tokenizer, labels = load_classifier(run)
    if model.__class__.__name__ == "TextClassifier" and model.config.arch != "transformer":
        raise DataError(f"export covers Transformer text classifiers; this run's arch is {model.config.arch!r}")
    if get_method(model.config.method).deletes:
        raise DataError(
            "a 'delete' model renumbers tokens by a data-dependent plan that export does not cover; "
            "export a dynamic run"
        )
    missing = [tokenizer.unk_id, tokenizer.missing_id] if hasattr(tokenizer, "missing_id") else []
    missing = sorted({i for i in missing if i is not None})
    graph = TextClassifierGraph(with_backend(model, backend), missing, tokenizer.pad_id).eval()
    example = tokenizer.pad(tokenizer.encode(["an example text with a ??? hole", "another one"]))
    folder = run_config_folder(run)
    meta = {
        "task": "classify",
        "labels": labels,
        "input": "ids",
        "missing_ids": missing,
        "pad_id": tokenizer.pad_id,
        "tokenizer": "pretrained" if model.__class__.__name__ == "PretrainedClassifier" else "dynmask",
    }
    prefixes = ("tokenizer", "special_tokens", "vocab", "merges", "dynmask_tokenizer")
    copy_files = [p for p in folder.iterdir() if p.name.startswith(prefixes)]
    return graph, example, meta, copy_files
