"""Micro-batching for a server: requests that arrive within a short window are run as one batch, off the
event loop, with a bounded queue (a full queue is refused at once, never buffered without limit)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any, Callable, Sequence

__all__ = ["MicroBatcher", "QueueFull"]


class QueueFull(RuntimeError):
    """The batcher holds ``max_queue`` items already: the caller should answer 503 and retry later."""


class MicroBatcher:
    """Runs ``fn(items) -> results`` (one result per item, same order) on batches gathered from concurrent
    :meth:`submit` calls: a batch takes every request already queued, then waits for more until it holds
    ``max_batch`` items or ``wait_ms`` after its first request (``wait_ms=0``: what is queued, no wait).
    ``fn`` runs in one worker thread, so the event loop keeps accepting requests meanwhile.
    At most ``max_queue`` items wait; :meth:`close` finishes what was accepted, then stops."""

    def __init__(self, fn: Callable[[list], Sequence], max_batch: int = 64, wait_ms: float = 0.0,
                 max_queue: int = 1024) -> None:  # fmt: skip
        if max_batch < 1 or max_queue < 1 or wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and wait_ms >= 0")
        self.fn, self.max_batch, self.wait, self.max_queue = fn, max_batch, wait_ms / 1000, max_queue
        self.pending = 0  # items accepted, not yet answered
        self.batches = 0  # batches run (for /health and the tests)
        self.largest = 0  # the largest batch run
        self._queue: asyncio.Queue = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dynmask-model")
        self._worker: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, items: list) -> list:
        """The results for ``items`` (run with other requests' items); :class:`QueueFull` when the queue
        cannot take them."""
        if self._closing:
            raise QueueFull("the server is shutting down")
        if self.pending + len(items) > self.max_queue:
            raise QueueFull(f"{self.pending} items are queued (the limit is {self.max_queue})")
        self.start()
        self.pending += len(items)
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        try:
            return await future
        finally:
            self.pending -= len(items)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:  # close(): everything before the sentinel has been answered
                return
            batch, size = [first], len(first[0])
            deadline = time.monotonic() + self.wait
            stop = False
            while size < self.max_batch:
                try:  # what is queued already joins without a timer; only an empty queue is waited on
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                size += len(nxt[0])
            items = [item for request, _ in batch for item in request]
            try:
                results = await loop.run_in_executor(self._executor, self.fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"the model gave {len(results)} results for {len(items)} items")
            except Exception as e:  # every request of the batch gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
            else:
                start = 0
                for request, future in batch:
                    if not future.done():
                        future.set_result(list(results[start : start + len(request)]))
                    start += len(request)
            self.batches += 1
            self.largest = max(self.largest, len(items))
            if stop:
                return

    async def close(self) -> None:
        """Stop taking requests, answer every accepted one, then stop the worker."""
        self._closing = True
        if self._worker is not None:
            await self._queue.put(None)
            await self._worker
        self._executor.shutdown(wait=True)

    def stats(self) -> dict[str, Any]:
        return {"pending": self.pending, "batches": self.batches, "largest_batch": self.largest,
                "max_batch": self.max_batch, "max_queue": self.max_queue}  # fmt: skip
