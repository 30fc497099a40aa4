"""The ONNX graph of an imputer: values with NaN in, every hole filled out (observed values unchanged)."""

from __future__ import annotations

from pathlib import Path

from ..common import series_export
from ..registry import run_config_folder
from .trained import load_imputer


def export_graph(run: Path, backend: str):
    trained = load_imputer(run)
    meta = {"task": "impute", "window": trained.window, "column_names": trained.column_names}
    return series_export(trained.model, backend, True, run_config_folder(run), meta)
