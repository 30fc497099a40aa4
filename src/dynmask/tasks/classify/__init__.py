"""Text classification with missing tokens (from scratch, or a pretrained Hugging Face encoder)."""

from ..registry import TaskSpec
from .cli import add_arguments, evaluate, predict, train
from .export import export_graph

TASK = TaskSpec(
    "classify", "text classification with missing tokens", add_arguments, train, evaluate, predict, export_graph
)
