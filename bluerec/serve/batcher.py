"""Micro-batching: requests that arrive together are answered by one call of a batch function.

The first request of a batch waits at most ``max_wait_ms`` for company; a batch closes early when it holds
``max_batch_size`` requests. The batch function runs in a worker thread (the event loop keeps accepting
requests meanwhile) and requests that arrive during a call form the next batch. With ``enabled=False`` every
request is its own call (the load test's baseline). At most ``max_queue`` requests wait; more get
:class:`QueueFull` (HTTP 503) rather than unbounded latency.

Example::

    batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=8, max_wait_ms=5)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))  # 3 calls, not 20
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """More requests are waiting than ``max_queue`` allows."""


@dataclass
class _Pending(Generic[T]):
    item: T
    future: asyncio.Future
    arrived: float


@dataclass
class BatchStats:
    calls: int = 0
    items: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def record(self, n: int) -> None:
        self.calls += 1
        self.items += n
        self.largest = max(self.largest, n)
        self.sizes[n] = self.sizes.get(n, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "items": self.items, "largest": self.largest,
                "mean": round(self.items / self.calls, 3) if self.calls else 0.0}


class MicroBatcher(Generic[T, R]):
    """Collects :meth:`submit` ted items into batches for ``fn`` (one result per item, in order).

    Args:
        fn: the batch function, run in a worker thread; it must return ``len(items)`` results. If it raises,
            every request of that batch gets the exception.
        max_batch_size: most items per call.
        max_wait_ms: longest wait of a batch's first item before the call starts.
        enabled: False: one call per item (no waiting).
        max_queue: most items waiting for a call.
        executor: the worker thread(s); by default a private single thread, so calls never overlap (a model is
            not safe to run from two threads at once).
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch_size: int = 16, max_wait_ms: float = 10.0,
                 enabled: bool = True, max_queue: int = 1024, executor: ThreadPoolExecutor | None = None,
                 name: str = "batch") -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.fn = fn
        self.max_batch_size = max_batch_size if enabled else 1
        self.max_wait = max(0.0, max_wait_ms) / 1000.0 if enabled else 0.0
        self.enabled = enabled
        self.max_queue = max_queue
        self.name = name
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bluerec-{name}")
        self._pending: list[_Pending[T]] = []
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self.stats = BatchStats()

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait * 1000,
                "max_queue": self.max_queue, "waiting": len(self._pending), **self.stats.as_dict()}

    async def submit(self, item: T) -> R:
        """The result of ``fn`` for ``item``, computed in a batch with the items submitted around it."""
        if len(self._pending) >= self.max_queue:
            raise QueueFull(f"{self.name}: {len(self._pending)} requests already waiting")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(_Pending(item, future, time.monotonic()))
        if self._task is None or self._task.done():
            # A fresh event with each drain task: an event is bound to the loop that first waits on it.
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._drain())
        if len(self._pending) >= self.max_batch_size:
            self._wake.set()
        return await future

    async def _drain(self) -> None:
        """Form and run batches until nothing is waiting. Should anything here fail, every waiting request gets the
        error: none may wait forever."""
        try:
            await self._drain_loop()
        except BaseException as err:
            pending, self._pending = self._pending, []
            for p in pending:
                if not p.future.done():
                    p.future.set_exception(err if isinstance(err, Exception) else RuntimeError(f"{self.name} stopped"))
            raise

    async def _drain_loop(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None
        while self._pending:
            deadline = self._pending[0].arrived + self.max_wait
            while len(self._pending) < self.max_batch_size:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except asyncio.TimeoutError:
                    break
            batch = self._pending[: self.max_batch_size]
            del self._pending[: self.max_batch_size]
            batch = [p for p in batch if not p.future.done()]  # a client that went away needs no answer
            if not batch:
                continue
            self.stats.record(len(batch))
            try:
                results = await loop.run_in_executor(self.executor, self._call, [p.item for p in batch])
            except BaseException as err:  # noqa: BLE001 - handed to every waiting request
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(err)
                if isinstance(err, asyncio.CancelledError):
                    raise
                continue
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(result)

    def _call(self, items: list[T]) -> Sequence[R]:
        results = self.fn(items)
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: batch function returned {len(results)} results for {len(items)} items")
        return results

    def close(self) -> None:
        """Stop the worker thread (after the running call) if this batcher created it."""
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
