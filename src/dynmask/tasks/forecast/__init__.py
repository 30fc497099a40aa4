"""Forecasting gappy multivariate series (a wide or long CSV): the next ``horizon`` steps from the observed
history, no imputation step, with calibrated intervals; ``dynmask forecast`` writes a CSV's next rows."""

from ..registry import TaskSpec
from .cli import add_arguments, train
from .export import export_graph

TASK = TaskSpec(
    "forecast",
    "train a forecaster on a wide (or long) CSV of series with blanks",
    add_arguments,
    train,
    export=export_graph,
    unsupported="its test scores (with the baselines) are in test_results.json; forecast a CSV with `dynmask forecast`",
)
