"""Classification of variable-length multivariate series with NaN."""

from ..registry import TaskSpec
from .cli import add_arguments, train
from .export import export_graph

TASK = TaskSpec(
    "classify-series",
    "classify variable-length multivariate series with NaN",
    add_arguments,
    train,
    export=export_graph,
    unsupported="its test scores are in test_results.json; evaluate scores text classifiers and seq2seq models",
)
