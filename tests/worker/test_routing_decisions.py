"""What a worker does with a job it has no handler for, decided without Redis or sleeping (time passed in)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.queue.job import REFUSALS_FIELD, REFUSED_AT_FIELD
from conveyor.worker.errors import UnknownJobTypeError
from conveyor.worker.registry import WorkerInfo
from conveyor.worker.routing import JobTypeRouting

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _worker(worker_id: str, types: dict[str, list[str]]) -> WorkerInfo:
    queues = dict.fromkeys(types, 1)
    return WorkerInfo(worker_id, worker_id, "host", 1, queues, dict.fromkeys(types, 0), 0, EPOCH, EPOCH, types)


def _routing(*workers: WorkerInfo, grace_s: float = 30.0) -> tuple[JobTypeRouting, list[int]]:
    reads: list[int] = []

    async def live() -> list[WorkerInfo]:
        reads.append(1)
        return list(workers)

    return JobTypeRouting(live, "me", grace_s), reads


async def test_a_type_another_worker_advertises_is_put_back_for_50_ms_doubling_up_to_250_ms() -> None:
    routing, _ = _routing(_worker("other", {"background": ["send-email"]}))
    fields: dict[str, str] = {}
    delays = []
    for now in range(0, 7000, 1000):
        refusal = await routing.refuse("background", "send-email", fields, now)
        delays.append(refusal.retry_after_ms)
        fields = {**fields, **refusal.fields}
    assert delays == [50, 100, 200, 250, 250, 250, 250]
    assert fields == {REFUSED_AT_FIELD: "0", REFUSALS_FIELD: "7"}  # first refusal kept; no failure past grace


async def test_a_type_no_other_worker_advertises_fails_once_the_grace_period_after_the_first_refusal_ended() -> None:
    routing, _ = _routing(_worker("me", {"background": ["send-email"]}), _worker("other", {"indexing": ["x"]}))
    first = await routing.refuse("background", "send-email", {}, 10_000)  # its own advertisement does not count
    later = await routing.refuse("background", "send-email", first.fields, 39_000)
    assert later.retry_after_ms == 100  # still within the 30 s grace
    with pytest.raises(UnknownJobTypeError, match="'send-email' on queue 'background'"):
        await routing.refuse("background", "send-email", later.fields, 40_000)


async def test_advertised_types_are_read_from_redis_at_most_once_a_second() -> None:
    routing, reads = _routing(_worker("other", {"background": ["a"]}))
    for now in (0, 400, 999, 1000, 1500):
        await routing.advertised_elsewhere("background", "a", now)
    assert len(reads) == 2
