"""The micro-batcher on its own: batch sizes, the linger, failures fanned out per caller."""

from __future__ import annotations

import asyncio

import pytest

from monitor.adapters.batching import MicroBatcher
from monitor.errors import AdapterError


class Recorder:
    """A batch sender that echoes each row doubled and records the batches."""

    def __init__(self, fail: Exception | None = None, drop: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail, self.drop = fail, drop

    async def __call__(self, rows: list[int]) -> tuple[list[int], float]:
        self.batches.append(rows)
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        answers = [2 * r for r in rows]
        return (answers[1:] if self.drop else answers), 0.25


async def test_full_batches_leave_at_once_and_the_rest_after_the_linger() -> None:
    send = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(send, size=4, linger=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    await batcher.aclose()
    assert results == [(2 * i, 0.25) for i in range(10)]
    assert send.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_late_rows_start_a_new_batch() -> None:
    send = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(send, size=8, linger=0.01)
    first = await batcher.submit(1)
    second = await asyncio.gather(batcher.submit(2), batcher.submit(3))
    await batcher.aclose()
    assert first == (2, 0.25) and list(second) == [(4, 0.25), (6, 0.25)]
    assert send.batches == [[1], [2, 3]]


@pytest.mark.parametrize(
    ("send", "kind", "message"),
    [
        (Recorder(fail=AdapterError("timeout", "POST u: no answer")), "timeout", "no answer"),
        (Recorder(fail=RuntimeError("bug")), "bad_response", "RuntimeError"),
        (Recorder(drop=True), "bad_response", "2 predictions for a batch of 3 rows"),
    ],
    ids=["adapter-error", "unexpected-error", "count-mismatch"],
)
async def test_a_failed_batch_fails_each_caller(send: Recorder, kind: str, message: str) -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(send, size=3, linger=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    await batcher.aclose()
    assert all(isinstance(r, AdapterError) and r.kind == kind for r in results)
    assert all(message in str(r) for r in results)
    assert len({id(r) for r in results}) == 3  # one exception object per caller


async def test_cancelled_callers_are_not_sent() -> None:
    send = Recorder()
    batcher: MicroBatcher[int, int] = MicroBatcher(send, size=4, linger=0.05)
    gone = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    gone.cancel()
    kept = await batcher.submit(2)
    await batcher.aclose()
    assert kept == (4, 0.25) and send.batches == [[2]]
