"""A Sentinel failover under load: 1 master, 1 replica, 3 Sentinels; producers in this process and two
`conveyor worker` subprocesses, all configured with REDIS_SENTINELS only. The master is killed with SIGKILL
mid-load and restarted once Sentinel has promoted the replica (it returns as a replica of the new master).

A ledger outside Redis decides: producers note each id Redis acknowledged (and when), handlers append each id
they run to a file. The replica replicates through a relay that is frozen half a second before the kill: the
replica lags by that much when it is promoted, as one across a slow network or busy with a resync would.

Asserted: producers and workers resume unaided within 30 s; without WAIT, the acknowledged jobs the new master
lacks were all acknowledged within the replica's lag before the kill (asynchronous replication: that is the
bound), and with `CONVEYOR_REDIS_WAIT_REPLICAS=1` there are none; every other job ends in exactly one state
(completed); duplicates only from runs whose completion the failover lost (at-least-once).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor import Conveyor, ConveyorError, JobOptions, load_settings
from conveyor.queue.job import new_job_id
from conveyor.redis.connection import RedisTarget
from tests.faults.failover_app import QUEUE
from tests.faults.sentinel_set import SentinelSet, sentinel_set_fixture  # noqa: F401 (the fixture `sentinel_set`)
from tests.support import ROOT, stop_processes, wait_until

PRODUCERS = 4
LOAD_BEFORE_KILL_S = 4.0
LOAD_AFTER_KILL_S = 12.0
RESUME_LIMIT_S = 30.0
LAG_S = 0.5  # how far the replica lags behind when the master dies
STATES = ("wait", "active", "completed", "failed", "delayed", "prioritized", "paused")


@pytest.fixture
def lagging_sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    """A `SentinelSet` whose replica replicates through a relay the test can freeze (see `SentinelSet`)."""
    work = tmp_path / "sentinel"
    work.mkdir()
    servers = SentinelSet(work, relay=True).start()
    yield servers
    servers.stop()


@dataclass
class Ledger:
    """What producers were told (`acked`: id -> time) and what handlers ran (read from the file)."""

    path: Path
    acked: dict[str, float] = field(default_factory=dict)
    refusals: list[tuple[float, str]] = field(default_factory=list)  # (time, error type) of failed adds

    def runs(self) -> list[tuple[str, float]]:
        rows = [line.split("\t") for line in self.path.read_text().splitlines()] if self.path.exists() else []
        return [(job_id, float(at)) for job_id, at in rows]


def _settings_env(servers: SentinelSet, durable: bool) -> dict[str, str]:
    env = {
        "REDIS_SENTINELS": servers.sentinels_setting,
        "REDIS_SENTINEL_MASTER": "mymaster",
        "CONVEYOR_QUEUES": '{"failover": {"concurrency": 8, "attempts": 5}}',
        "CONVEYOR_LOCK_DURATION_MS": "2000",
        "CONVEYOR_STALLED_INTERVAL_MS": "1000",
        "CONVEYOR_HEARTBEAT_S": "0.5",
        "CONVEYOR_SHUTDOWN_GRACE_S": "2",
    }
    if durable:
        env |= {"CONVEYOR_REDIS_WAIT_REPLICAS": "1", "CONVEYOR_REDIS_WAIT_TIMEOUT_MS": "500"}
    return env


def _start_workers(env: dict[str, str], ledger: Path, work: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for index in range(2):
        with open(work / f"worker-{index}.log", "wb") as out:
            args = ["worker", "--app", "tests.faults.failover_app:create_app", "--queues", QUEUE]
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "conveyor", *args],
                    env={**_base_env(), **env, "FAILOVER_LEDGER": str(ledger), "PYTHONPATH": str(ROOT)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def _base_env() -> dict[str, str]:
    """This process's environment without Redis and Conveyor settings (but the test run's server registry)."""
    kept = ("CONVEYOR_STATE_DIR",)
    return {k: v for k, v in os.environ.items() if k in kept or not k.startswith(("REDIS_", "CONVEYOR_"))}


async def _produce(app: Conveyor, ledger: Ledger, stop: asyncio.Event) -> None:
    """Add jobs one by one; a refused add is retried with the same id (safe: an id that exists adds nothing)
    until Redis acknowledges it."""
    queue = app.queue(QUEUE)
    while not stop.is_set():
        job_id = new_job_id()
        while True:
            try:
                await queue.add("record", {"n": len(ledger.acked)}, JobOptions(job_id=job_id))
            except ConveyorError as exc:
                ledger.refusals.append((time.time(), type(exc).__name__))
                await asyncio.sleep(0.05)
                continue
            ledger.acked[job_id] = time.time()
            break
        await asyncio.sleep(0.004)


@dataclass(frozen=True)
class Outcome:
    """What a run measured."""

    acked: int
    erased: list[str]  # acknowledged, and not in the new master at all (whether or not a worker ran them)
    erased_ages_s: list[float]  # how long before the kill each of those had been acknowledged
    lost: list[str]  # erased and never run: the producer was told "added" and the job never happened
    duplicates: int
    producer_resume_s: float
    worker_resume_s: float
    promoted_after_s: float
    lag_s: float  # how long the replica had received nothing when the master died
    bad_states: dict[str, list[str]]


async def _failover_under_load(servers: SentinelSet, work: Path, durable: bool) -> Outcome:
    env = _settings_env(servers, durable)
    ledger = Ledger(work / "ledger.txt")
    workers = _start_workers(env, ledger.path, work)
    app = Conveyor(load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()}))
    await app.connect()
    stop = asyncio.Event()
    try:
        await wait_until(lambda: _live_workers(app, 2), timeout=30, interval=0.1)
        producers = [asyncio.create_task(_produce(app, ledger, stop)) for _ in range(PRODUCERS)]
        await asyncio.sleep(LOAD_BEFORE_KILL_S)
        old = servers.master()
        frozen_at = time.time()
        servers.freeze_replication()  # the replica lags from now on, by about LAG_S at the kill
        await asyncio.sleep(LAG_S)
        killed_at = time.time()
        old.kill()
        servers.cut_replication()  # what the replica had not received is gone with the master
        await wait_until(lambda: servers.master_port() != old.port, timeout=30, interval=0.05)
        promoted_at = time.time()
        # Back only once every Sentinel knows the new master: a master without persistence that restarts sooner
        # comes back empty, and a Sentinel that still names it sends clients to it (see the README).
        await wait_until(lambda: servers.failed_over_from(old), timeout=30, interval=0.05)
        old.start()  # an empty master until Sentinel turns it into a replica of the new one
        await asyncio.sleep(max(0.0, LOAD_AFTER_KILL_S - (time.time() - killed_at)))
        # Load goes on until producers got through (durable mode waits for the old master to rejoin as a
        # replica), and a little beyond, so that jobs added on the new master run too.
        await wait_until(lambda: _acked_since(ledger, killed_at), timeout=RESUME_LIMIT_S, interval=0.1)
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*producers)
        await asyncio.to_thread(servers.wait_until_replicated, servers.master(), 1)
        try:
            await wait_until(lambda: _drained(app, ledger), timeout=40, interval=0.2)
        except AssertionError as exc:
            raise AssertionError(await _explain(app, ledger, work)) from exc
        return await _outcome(app, ledger, (frozen_at, killed_at, promoted_at))
    finally:
        stop.set()
        await app.close()
        stop_processes(workers, 10)


def _acked_since(ledger: Ledger, moment: float) -> bool:
    return any(at > moment + 0.1 for at in ledger.acked.values())


async def _live_workers(app: Conveyor, count: int) -> bool:
    return len(await app.workers()) >= count


async def _drained(app: Conveyor, ledger: Ledger) -> bool:
    """Nothing left to run, and every acknowledged job that still exists has run."""
    counts = await app.queue(QUEUE).counts()
    if counts.pending or counts.active:
        return False
    ran = {job_id for job_id, _ in ledger.runs()}
    missing = [job_id for job_id in ledger.acked if job_id not in ran]
    states = await _states(app, missing)
    return all(not found for found in states.values())  # the rest is gone from Redis: lost


async def _explain(app: Conveyor, ledger: Ledger, work: Path) -> str:
    """Why the queue did not drain: its counts, where the jobs that never ran are, the workers' last words."""
    ran = {job_id for job_id, _ in ledger.runs()}
    states = await _states(app, [job_id for job_id in ledger.acked if job_id not in ran])
    logs = "\n".join((work / f"worker-{index}.log").read_text()[-2000:] for index in range(2))
    return (
        f"not drained: {await app.queue(QUEUE).counts()}; never ran, by state: "
        f"{Counter(tuple(found) for found in states.values())}; refused adds: "
        f"{Counter(error for _, error in ledger.refusals)}\nworker logs:\n{logs}"
    )


async def _states(app: Conveyor, ids: list[str]) -> dict[str, list[str]]:
    """For each id, the state structures (lists, sorted sets) it is in."""
    keys = app.queue(QUEUE).keys
    pipe = app.client.pipeline(transaction=False)
    for job_id in ids:
        pipe.lpos(keys.wait, job_id)
        pipe.lpos(keys.active, job_id)
        pipe.zscore(keys.completed, job_id)
        pipe.zscore(keys.failed, job_id)
        pipe.zscore(keys.delayed, job_id)
        pipe.zscore(keys.prioritized, job_id)
        pipe.lpos(keys.paused, job_id)
    replies = await pipe.execute() if ids else []
    found: dict[str, list[str]] = {}
    for index, job_id in enumerate(ids):
        row = replies[index * len(STATES) : (index + 1) * len(STATES)]
        found[job_id] = [state for state, hit in zip(STATES, row, strict=True) if hit is not None]
    return found


async def _outcome(app: Conveyor, ledger: Ledger, moments: tuple[float, float, float]) -> Outcome:
    """The figures of a run, from the ledger, Redis, and when the replica froze, the master died, and the new
    one was named."""
    frozen_at, killed_at, promoted_at = moments
    runs = ledger.runs()
    counts = Counter(job_id for job_id, _ in runs)
    states = await _states(app, list(ledger.acked))
    erased = [job_id for job_id, found in states.items() if not found]
    bad = {job_id: found for job_id, found in states.items() if found and found != ["completed"]}
    # Resumed: the first add acknowledged after the kill; the first handler run half a second or more after it
    # (a handler takes 2 ms: a job run that late was taken from the new master).
    producer_resume = min((at for at in ledger.acked.values() if at > killed_at + 0.1), default=float("inf"))
    worker_resume = min((at for _, at in runs if at > killed_at + 0.5), default=float("inf"))
    return Outcome(
        acked=len(ledger.acked),
        erased=erased,
        erased_ages_s=[killed_at - ledger.acked[job_id] for job_id in erased],
        lost=[job_id for job_id in erased if job_id not in counts],
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        producer_resume_s=producer_resume - killed_at,
        worker_resume_s=worker_resume - killed_at,
        promoted_after_s=promoted_at - killed_at,
        lag_s=killed_at - frozen_at,
        bad_states=bad,
    )


def _report(mode: str, outcome: Outcome) -> None:
    ages = sorted(outcome.erased_ages_s)
    print(  # the measured figures, for the README (shown with -s)
        f"\n[{mode}] acked={outcome.acked} erased={len(outcome.erased)} (acked {ages[0] if ages else 0:.3f}-"
        f"{ages[-1] if ages else 0:.3f} s before the kill) of which never ran={len(outcome.lost)} "
        f"duplicates={outcome.duplicates} promoted_after={outcome.promoted_after_s:.2f}s "
        f"producers_resumed_after={outcome.producer_resume_s:.2f}s workers_resumed_after={outcome.worker_resume_s:.2f}s"
    )


@pytest.mark.slow
async def test_failover_under_load_resumes_unaided_and_loses_only_the_replication_lag(
    lagging_sentinel_set: SentinelSet, tmp_path: Path
) -> None:
    outcome = await _failover_under_load(lagging_sentinel_set, tmp_path, durable=False)
    _report("async replication", outcome)
    assert outcome.producer_resume_s < RESUME_LIMIT_S
    assert outcome.worker_resume_s < RESUME_LIMIT_S
    # Jobs the new master never got: each acknowledged within the replica's lag before the kill, no older.
    assert outcome.erased, "the replica's lag should have cost some acknowledged jobs"
    # (plus 0.1 s for what the relay had in hand when it was frozen, on a busy machine)
    assert all(age <= outcome.lag_s + 0.1 for age in outcome.erased_ages_s), (outcome.lag_s, outcome.erased_ages_s)
    assert outcome.bad_states == {}
    assert outcome.duplicates <= outcome.acked // 10  # runs whose completion the failover lost, no more


@pytest.mark.slow
async def test_failover_under_load_in_durable_mode_loses_no_acknowledged_job(
    lagging_sentinel_set: SentinelSet, tmp_path: Path
) -> None:
    outcome = await _failover_under_load(lagging_sentinel_set, tmp_path, durable=True)
    _report("durable (WAIT 1)", outcome)
    assert outcome.erased == []  # every acknowledged job is in the new master (so none is lost)
    assert outcome.producer_resume_s < RESUME_LIMIT_S
    assert outcome.worker_resume_s < RESUME_LIMIT_S
    assert outcome.bad_states == {}
    assert outcome.duplicates <= outcome.acked // 10


async def test_a_blocking_client_follows_the_master_after_a_failover(sentinel_set: SentinelSet) -> None:
    # The worker's blocking client keeps one connection; redis-py redials such a connection at the address it had
    # (the dead master, later a replica answering READONLY) unless Conveyor's connection asks Sentinel again.
    # The CLI's synchronous client: the first command after the failover reaches the new master too.
    target = RedisTarget(sentinels=tuple(sentinel_set.sentinels))
    blocking = target.client(blocking=True)
    sync = target.sync_client()
    try:
        assert await blocking.bzpopmin("marker", 0.01) is None
        assert sync.set("before", 1)
        old = sentinel_set.master()
        old.kill()
        await wait_until(lambda: sentinel_set.failed_over_from(old), timeout=30, interval=0.1)
        assert await blocking.bzpopmin("marker", 0.01) is None
        assert blocking.connection is not None
        assert blocking.connection.port == sentinel_set.master_port() != old.port
        assert sync.set("after", 1)
    finally:
        await blocking.aclose()
        sync.close()
