"""MicroBatcher: batch size and wait bounds, the off switch, errors, back-pressure."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bluerec.serve.batcher import MicroBatcher, QueueFull


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.delay, self.fail_on = delay, fail_on

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError("boom")
        return [x * 10 for x in items]


def _run(coro):
    return asyncio.run(coro)


def test_items_submitted_together_share_calls_bounded_by_max_batch_size():
    fn = Recorder()

    async def main():
        b = MicroBatcher(fn, max_batch_size=4, max_wait_ms=1000)
        out = await asyncio.gather(*(b.submit(i) for i in range(10)))
        b.close()
        return out, b.stats

    out, stats = _run(main())
    assert out == [i * 10 for i in range(10)]  # each caller gets its own result, in order
    assert [len(x) for x in fn.batches] == [4, 4, 2]
    assert stats.calls == 3 and stats.largest == 4
    assert threading.main_thread().name not in fn.threads  # runs in a worker thread


def test_a_lone_request_waits_at_most_max_wait_ms():
    fn = Recorder()

    async def main():
        b = MicroBatcher(fn, max_batch_size=64, max_wait_ms=50)
        t0 = time.perf_counter()
        await b.submit(1)
        b.close()
        return time.perf_counter() - t0

    waited = _run(main())
    assert 0.04 <= waited < 1.0
    assert fn.batches == [[1]]


def test_requests_arriving_during_a_call_form_the_next_batch():
    fn = Recorder(delay=0.2)

    async def main():
        b = MicroBatcher(fn, max_batch_size=8, max_wait_ms=0)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)  # the first call is running now
        rest = await asyncio.gather(*(b.submit(i) for i in range(1, 6)))
        b.close()
        return [await first, *rest]

    assert _run(main()) == [0, 10, 20, 30, 40, 50]
    assert fn.batches == [[0], [1, 2, 3, 4, 5]]


def test_disabled_batching_is_one_call_per_request():
    fn = Recorder()

    async def main():
        b = MicroBatcher(fn, max_batch_size=8, max_wait_ms=100, enabled=False)
        out = await asyncio.gather(*(b.submit(i) for i in range(4)))
        b.close()
        return out

    assert _run(main()) == [0, 10, 20, 30]
    assert fn.batches == [[0], [1], [2], [3]]


def test_a_failing_call_fails_its_batch_only():
    fn = Recorder(fail_on=1)

    async def main():
        b = MicroBatcher(fn, max_batch_size=2, max_wait_ms=1000)
        out = await asyncio.gather(*(b.submit(i) for i in range(4)), return_exceptions=True)
        b.close()
        return out

    out = _run(main())
    assert isinstance(out[0], ValueError) and isinstance(out[1], ValueError) and out[2:] == [20, 30]


def test_wrong_result_count_is_an_error():
    async def main():
        b = MicroBatcher(lambda xs: [1], max_batch_size=2, max_wait_ms=1000)
        out = await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)
        b.close()
        return out

    assert all(isinstance(x, RuntimeError) for x in _run(main()))


def test_queue_bound_refuses_instead_of_growing():
    fn = Recorder(delay=0.2)

    async def main():
        b = MicroBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=2)
        running = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await b.submit(3)
        out = [await running, *[await w for w in waiting]]
        b.close()
        return out

    assert _run(main()) == [0, 10, 20]
