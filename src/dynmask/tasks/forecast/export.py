"""The ONNX graph of a forecaster: the imputer's graph (values with NaN in, every NaN filled out); a window
is the history followed by ``horizon`` rows of NaN, and the filled rows are the forecast."""

from __future__ import annotations

from pathlib import Path

from ..common import series_export
from ..registry import run_config_folder
from .trained import load_forecaster


def export_graph(run: Path, backend: str):
    trained = load_forecaster(run)
    meta = {
        "task": "forecast",
        "context": trained.context,
        "horizon": trained.horizon,
        "season": trained.season,
        "column_names": trained.column_names,
    }
    folder = run_config_folder(run)
    graph, example, meta, files = series_export(trained.model, backend, True, folder, meta)
    return graph, example, meta, [folder / "forecast.json"] + [f for f in files[1:]]
