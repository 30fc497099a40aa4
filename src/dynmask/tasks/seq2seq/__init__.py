"""Translation and summarization over sources with missing tokens (an encoder-decoder)."""

from ..registry import TaskSpec
from .cli import add_summarize_arguments, add_translate_arguments, evaluate, predict, train

TRANSLATE = TaskSpec(
    "translate", "translation with missing source tokens (encoder-decoder)", add_translate_arguments, train, evaluate,
    predict,
)  # fmt: skip
SUMMARIZE = TaskSpec(
    "summarize", "summarization with missing source tokens (encoder-decoder)", add_summarize_arguments, train,
    evaluate, predict,
)  # fmt: skip
