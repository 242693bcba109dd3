"""An unsupported BullMQ layout is refused with a clear error instead of stalling: a queue last written by Node
bullmq 4.x (its `Queue` records `bullmq:4.x.y` in the meta hash, as written here) is not served."""

from __future__ import annotations

import asyncio

import pytest

from conveyor import Conveyor
from conveyor.queue.errors import UnsupportedLayoutError
from conveyor.queue.layout import check_layout, node_major
from tests.queue.conftest import QUEUE, running
from tests.queue.node_env import install, run_node


async def test_a_worker_refuses_a_queue_last_written_by_bullmq_4(app: Conveyor) -> None:
    await app.client.hset(f"bull:{QUEUE}:meta", mapping={"opts.maxLenEvents": 10000, "version": "bullmq:4.18.3"})
    with pytest.raises(UnsupportedLayoutError, match=r"bullmq:4\.18\.3.*Upgrade the Node processes"):
        await app.worker([QUEUE]).run()


async def test_a_worker_refuses_a_queue_a_real_node_bullmq_4_producer_wrote(app: Conveyor, redis_url: str) -> None:
    node = install("bullmq-4")  # an unsupported release, outside the matrix
    await asyncio.to_thread(run_node, node, redis_url, "add.mjs", QUEUE, "ok", "{}")
    with pytest.raises(UnsupportedLayoutError, match=rf"Node bullmq:{node.version}"):
        await app.worker([QUEUE]).run()


async def test_a_worker_refuses_a_queue_without_version_whose_newest_jobs_bullmq_4_ran(app: Conveyor) -> None:
    await app.client.hset(f"bull:{QUEUE}:7", mapping={"name": "ok", "data": "{}", "attemptsMade": 1})
    await app.client.zadd(f"bull:{QUEUE}:completed", {"7": 1})
    with pytest.raises(UnsupportedLayoutError, match="attemptsMade"):
        await app.worker([QUEUE]).run()


async def test_a_worker_serves_a_queue_last_written_by_bullmq_5(app: Conveyor) -> None:
    await app.client.hset(f"bull:{QUEUE}:meta", "version", "bullmq:5.81.5")
    async with running(app.worker([QUEUE])):
        pass


@pytest.mark.parametrize(
    ("version", "major"), [("bullmq:4.18.3", 4), ("bullmq:6.7.6", 6), ("bullmq-pro:7.1.0", None), (None, None)]
)
def test_the_node_major_is_read_from_the_meta_version(version: str | None, major: int | None) -> None:
    assert node_major(version) == major


def test_a_newer_major_than_tested_is_served_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    check_layout("q", "bullmq:9.0.0")
    assert "newer than the bullmq releases Conveyor is tested with" in caplog.text
