"""Data: registry-shipped sets (fetched, checked, cached), user files, tokenizers."""

from .sources import SOURCES, Source, cache_dir, fetch
from .text import BUILTIN_TEXT_SETS, DataError, Example, TextSplits, load_text_dataset, read_table
from .tokenizer import DEFAULT_MISSING_MARKERS, TextTokenizer

__all__ = [
    "SOURCES",
    "Source",
    "cache_dir",
    "fetch",
    "BUILTIN_TEXT_SETS",
    "DataError",
    "Example",
    "TextSplits",
    "load_text_dataset",
    "read_table",
    "DEFAULT_MISSING_MARKERS",
    "TextTokenizer",
]
