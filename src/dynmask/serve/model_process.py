"""The text model in a process of its own, so that it and the event loop each hold an interpreter lock.

In one process the event loop (parsing requests, answering them) and the model's thread take turns on one
lock: the server used about one core under any load, the rest of the machine idle
(``benchmarks/results/serve-load.md``). Here the model runs in a child process started by ``spawn`` (a
fork would copy the parent's OpenMP and onnxruntime thread pools mid-state), which loads the run once;
batches travel to it and rows back by pickling, a few hundred bytes a text.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from pathlib import Path
from typing import Optional

__all__ = ["model_process", "predict"]

_served = None  # the child's ServedModel (set by _load, the pool's initializer)


def _load(path: str, threads: Optional[int]) -> None:
    global _served
    from .models import ServedModel

    _served = ServedModel(Path(path), threads)


def predict(items: list) -> list[dict]:
    """Rows for ``items`` (text, text as read), run by the child's model: what ``ServedModel.predict`` gives."""
    return _served.predict(items)


def model_process(path: Path, threads: Optional[int] = None) -> concurrent.futures.ProcessPoolExecutor:
    """A one-process pool whose process holds the run at ``path`` (``threads``: its model threads, None: the
    runtime's default); submit :func:`predict` to it."""
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_load,
        initargs=(str(path), threads),
    )
