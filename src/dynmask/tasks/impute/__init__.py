"""Imputation of gappy multivariate series (a wide or long CSV): every hole filled, observed values
returned unchanged, with calibrated intervals on request; ``dynmask impute`` fills a user's CSV."""

from ..registry import TaskSpec
from .cli import add_arguments, train
from .export import export_graph

TASK = TaskSpec(
    "impute",
    "train an imputer on a wide (or long) CSV of series with blanks",
    add_arguments,
    train,
    export=export_graph,
    unsupported="its test scores are in test_results.json; evaluate scores text classifiers and seq2seq models",
)
