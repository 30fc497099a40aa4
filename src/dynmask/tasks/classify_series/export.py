"""The ONNX graph of a series classifier: values with NaN in, class logits out."""

from __future__ import annotations

from pathlib import Path

from ...models.series import SeriesClassifier, SeriesConfig
from ...training import load_run_model
from ...training.run_folders import config_from_dict
from ..common import series_export
from ..registry import run_config_folder


def export_graph(run: Path, backend: str):
    build = lambda c: SeriesClassifier(config_from_dict(SeriesConfig, c, "config.json"))
    model, _, _ = load_run_model(run, build, expect_task="classify-series")
    return series_export(model, backend, False, run_config_folder(run), {"task": "classify-series"})
