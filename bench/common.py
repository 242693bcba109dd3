"""What every benchmark needs: producers for both implementations, worker processes, Redis and process stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from redis.asyncio.client import Redis

from conveyor.redis.keys import QueueKeys

ROOT = Path(__file__).resolve().parents[1]


class Producer(Protocol):
    """Enqueue and observe jobs of one queue through one implementation."""

    async def add(self) -> None: ...
    async def add_bulk(self, n: int) -> None: ...
    async def completed(self) -> int: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def close(self) -> None: ...


class ConveyorProducer:
    """Our producer: `Conveyor.add` / `add_bulk` with payload validation, as applications call it."""

    def __init__(self, url: str, queue: str) -> None:
        from conveyor import Conveyor, NewJob, load_settings

        self.app = Conveyor(load_settings(redis_url=url, conveyor_queues={queue: {}}))
        self.queue_name = queue
        self.new_job = NewJob

    async def start(self) -> ConveyorProducer:
        await self.app.connect()
        self.queue = self.app.queue(self.queue_name)
        return self

    async def add(self) -> None:
        await self.app.add(self.queue_name, "job", {"n": 1})

    async def add_bulk(self, n: int) -> None:
        await self.app.add_bulk(self.queue_name, [self.new_job("job", {"n": 1})] * n)

    async def completed(self) -> int:
        return (await self.queue.counts()).completed

    async def pause(self) -> None:
        await self.queue.pause()

    async def resume(self) -> None:
        await self.queue.resume()

    async def close(self) -> None:
        await self.app.close()


class StockProducer:
    """The stock `bullmq` package's Queue."""

    def __init__(self, url: str, queue: str) -> None:
        from bullmq import Queue

        self.queue = Queue(queue, {"connection": url})

    async def start(self) -> StockProducer:
        return self

    async def add(self) -> None:
        await self.queue.add("job", {"n": 1})

    async def add_bulk(self, n: int) -> None:
        await self.queue.addBulk([{"name": "job", "data": {"n": 1}} for _ in range(n)])

    async def completed(self) -> int:
        counts: dict[str, int] = await self.queue.getJobCounts("completed")
        return counts["completed"]

    async def pause(self) -> None:
        await self.queue.pause()

    async def resume(self) -> None:
        await self.queue.resume()

    async def close(self) -> None:
        await self.queue.close()


async def producer(impl: str, url: str, queue: str) -> ConveyorProducer | StockProducer:
    """A started producer of `impl` (`conveyor` or `stock`)."""
    if impl == "conveyor":
        return await ConveyorProducer(url, queue).start()
    return await StockProducer(url, queue).start()


@dataclass
class WorkerProcess:
    """A benchmark worker in its own process (see worker_proc.py)."""

    proc: subprocess.Popen[str]

    @classmethod
    def start(cls, impl: str, url: str, queue: str, concurrency: int, handler: str) -> WorkerProcess:
        env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "bench.worker_proc", impl, queue, str(concurrency), handler]
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise RuntimeError(f"{impl} worker did not start")
        return cls(proc)

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        """Resident memory in MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def redis_calls(client: Redis) -> int:
    """Commands Redis has executed, Lua-internal calls included (INFO commandstats), minus INFO itself."""
    stats: dict[str, Any] = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


async def redis_cpu_s(client: Redis) -> float:
    """CPU seconds the Redis server has used."""
    info: dict[str, Any] = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def returned_values(client: Redis, queue: str, prefix: str = "bull") -> dict[str, Any]:
    """Each completed job's return value, by id (read straight from BullMQ's job hashes)."""
    keys = QueueKeys(prefix, queue)
    ids = await client.zrange(keys.completed, 0, -1)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(keys.job(str(job_id)), "returnvalue")
    values = await pipe.execute()
    return {str(i): json.loads(v) for i, v in zip(ids, values, strict=True) if v}
