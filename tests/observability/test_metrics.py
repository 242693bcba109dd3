"""Prometheus metrics: exact cluster-wide job counts from one scrape, queue depth, workers, Redis health."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import pytest
from prometheus_client import generate_latest

from conveyor import Conveyor, JobState, NewJob, load_settings
from conveyor.observability import enable_worker_metrics, instrument, load_observability_settings, metrics_asgi_app
from conveyor.observability.process import ProcessMetrics
from conveyor.observability.process_export import process_registry
from conveyor.observability.recorder import MetricsRecorder
from conveyor.observability.store import MetricsStore
from conveyor.redis.keys import ConveyorKeys, MetricsKeys
from conveyor.worker.context import JobInfo
from conveyor.worker.hooks import AttemptEnd, Outcome
from tests.conftest import OwnRedisFactory
from tests.observability.conftest import WorkerProcesses, make_app
from tests.observability.scraping import Samples, asgi_get, http_scrape, parse, value
from tests.worker.conftest import running, state_is, wait_until

FIXED_50MS = {"type": "fixed", "delay": 50}


async def _enqueue_mix(app: Conveyor) -> None:
    # ok: 6 completed. boom: 3 failed at once + 2 failed after 2 retries each. flaky: 4 retried then completed.
    await app.add_bulk("background", [NewJob("ok") for _ in range(6)])
    for _ in range(3):
        await app.add("background", "boom", attempts=1)
    for _ in range(2):
        await app.add("background", "boom", attempts=3, backoff=FIXED_50MS)
    for _ in range(4):
        await app.add("background", "flaky", attempts=2, backoff=FIXED_50MS)


EXPECTED = {
    ("ok", "completed"): 6, ("ok", "failed"): 0, ("ok", "retried"): 0,
    ("boom", "completed"): 0, ("boom", "failed"): 5, ("boom", "retried"): 4,
    ("flaky", "completed"): 4, ("flaky", "failed"): 0, ("flaky", "retried"): 4,
}  # fmt: skip
ATTEMPTS = {"ok": 6, "boom": 9, "flaky": 8}


def _job_counts(samples: Samples) -> dict[tuple[str, str], float | None]:
    return {
        (job_type, counter): value(samples, f"conveyor_jobs_{counter}_total", queue="background", job_type=job_type)
        for job_type, counter in EXPECTED
    }


async def test_one_scrape_counts_the_jobs_of_every_worker_process_exactly(
    app: Conveyor, worker_processes: WorkerProcesses
) -> None:
    worker_processes.start()
    worker_processes.start()
    await wait_until(lambda: _live_workers(app, 2), timeout=60)
    server = enable_worker_metrics(app, 0, addr="127.0.0.1", cluster=True)  # a real HTTP server, this process
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        await _enqueue_mix(app)
        queue = app.queue("background")
        await wait_until(lambda: _finished(queue, completed=10, failed=5), timeout=30)

        async def counted() -> bool:
            return _job_counts(await http_scrape(url)) == EXPECTED

        await wait_until(counted, timeout=10)
        samples = await http_scrape(url)
    finally:
        server.close()
    for job_type, attempts in ATTEMPTS.items():
        for histogram in ("conveyor_job_wait_seconds", "conveyor_job_run_seconds"):
            labels = {"queue": "background", "job_type": job_type}
            assert value(samples, f"{histogram}_count", **labels) == attempts, (histogram, job_type)
            assert value(samples, f"{histogram}_bucket", le="+Inf", **labels) == attempts
    assert value(samples, "conveyor_jobs_stalled_total", queue="background", job_type="ok") == 0
    assert value(samples, "conveyor_jobs_dead_lettered_total", queue="background", job_type="ok") == 0
    assert value(samples, "conveyor_jobs_dead_lettered_total", queue="background", job_type="boom") == 5
    assert value(samples, "conveyor_queue_jobs", queue="background", state="completed") == 10
    assert value(samples, "conveyor_queue_jobs", queue="background", state="failed") == 5
    assert value(samples, "conveyor_queue_jobs", queue="background", state="waiting") == 0
    assert value(samples, "conveyor_workers") == 2
    assert len([key for key in samples if key[0] == "conveyor_worker_up"]) == 2
    assert value(samples, "conveyor_redis_up") == 1


async def test_api_metrics_app_shows_queue_depth_and_only_live_workers(redis_url: str) -> None:
    app = make_app(redis_url, conveyor_heartbeat_s=0.1)
    async with app:

        @app.handler("background", "hold")
        async def hold(payload: dict[str, Any]) -> None:
            await asyncio.sleep(float(payload["seconds"]))

        asgi = metrics_asgi_app(app)
        await app.add_bulk("indexing", [NewJob("later") for _ in range(3)])
        async with running(app.worker(["background"])) as worker:
            await app.add("background", "hold", {"seconds": 1.0})
            await wait_until(lambda: _active_in_registry(app, 1), timeout=10)
            status, headers, body = await asgi_get(asgi)
        after = parse((await asgi_get(asgi))[2].decode())
    during = parse(body.decode())
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert value(during, "conveyor_queue_jobs", queue="indexing", state="prioritized") == 3  # priority "normal"
    assert value(during, "conveyor_queue_jobs", queue="background", state="active") == 1
    assert value(during, "conveyor_worker_up", worker=worker.name) == 1
    assert value(during, "conveyor_worker_active_jobs", worker=worker.name, queue="background") == 1
    assert value(during, "conveyor_redis_ping_seconds") is not None
    assert value(after, "conveyor_workers") == 0
    assert value(after, "conveyor_worker_up", worker=worker.name) is None  # a stopped worker drops out


async def test_global_labels_from_the_environment_are_on_every_series(app: Conveyor) -> None:
    settings = load_observability_settings(conveyor_metrics_labels="env=prod,instance=a")
    await app.add("background", "x")
    _, _, body = await asgi_get(metrics_asgi_app(app, settings))
    samples = parse(body.decode())
    assert samples
    assert all(("env", "prod") in labels and ("instance", "a") in labels for _, labels in samples)


async def test_openmetrics_is_served_when_the_scraper_asks_for_it(app: Conveyor) -> None:
    _, headers, body = await asgi_get(metrics_asgi_app(app), accept="application/openmetrics-text; version=1.0.0")
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_scrape_while_redis_is_down_answers_redis_up_zero(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    app = Conveyor(load_settings(redis_url=server.url))
    await app.connect()
    try:
        asgi = metrics_asgi_app(app)
        server.stop()
        status, _, body = await asgi_get(asgi)
    finally:
        await app.close()
    samples = parse(body.decode())
    assert status == 200
    assert value(samples, "conveyor_redis_up") == 0
    assert not [name for name, _ in samples if name.startswith("conveyor_queue_")]


async def test_jobs_requeued_after_their_worker_died_are_counted_as_stalled(redis_url: str) -> None:
    app = make_app(redis_url, conveyor_lock_duration_ms=1000, conveyor_stalled_interval_ms=500)
    async with app:

        @app.handler("background", "ok")
        async def ok(payload: dict[str, Any]) -> None:
            return None

        instrumentation = instrument(app, load_observability_settings(conveyor_metrics_flush_ms=20))
        queue = app.queue("background")
        job = await app.add("background", "ok")
        # A worker that took the job and died: the job is active and its lock runs out.
        await queue.scripts.move_to_active(token="dead", lock_ms=1000, worker="dead", timestamp=int(time.time() * 1000))
        assert await queue.state_of(job) is JobState.ACTIVE
        async with running(app.worker(["background"])):
            await wait_until(lambda: state_is(queue, job, JobState.COMPLETED), timeout=15)
        await instrumentation.aclose()
        _, _, body = await asgi_get(metrics_asgi_app(app))
    samples = parse(body.decode())
    assert value(samples, "conveyor_jobs_stalled_total", queue="background", job_type="ok") == 1
    assert value(samples, "conveyor_jobs_completed_total", queue="background", job_type="ok") == 1


async def test_worker_metrics_port_shows_what_this_process_ran(app: Conveyor) -> None:
    release = asyncio.Event()

    @app.handler("background", "ok")
    async def ok(payload: dict[str, Any]) -> None:
        return None

    @app.handler("background", "held")
    async def held(payload: dict[str, Any]) -> None:
        await release.wait()

    server = enable_worker_metrics(app, 0, addr="127.0.0.1")
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        async with running(app.worker(["background"])):
            held_ids = await app.add_bulk("background", [NewJob("held") for _ in range(2)])
            await wait_until(lambda: _scraped(url, "conveyor_process_active_jobs", 2, queue="background"))
            release.set()
            ids = await app.add_bulk("background", [NewJob("ok") for _ in range(3)])
            await wait_until(lambda: _all_completed(app, [*held_ids, *ids]))
        samples = await http_scrape(url)
    finally:
        server.close()
    labels = {"queue": "background", "job_type": "ok", "outcome": "completed"}
    assert value(samples, "conveyor_process_attempts_total", **labels) == 3
    assert value(samples, "conveyor_process_job_run_seconds_count", queue="background", job_type="ok") == 3
    assert value(samples, "conveyor_process_active_jobs", queue="background") == 0
    assert value(samples, "process_cpu_seconds_total") is not None
    assert not [name for name, _ in samples if name.startswith("conveyor_jobs_")]  # cluster series: API only


async def test_counts_held_while_redis_was_down_are_written_when_it_returns(
    own_redis: OwnRedisFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = own_redis()
    app = Conveyor(load_settings(redis_url=server.url))
    async with app:
        recorder = instrument(app, load_observability_settings(conveyor_metrics_flush_ms=20)).recorder
        job = JobInfo("1", "background", "ok", attempt=1, max_attempts=1, worker="test")
        recorder.attempt_ended(AttemptEnd(job, "completed", 0.01, None))
        await recorder.flush()
        server.stop()
        recorder.attempt_ended(AttemptEnd(job, "completed", 0.01, None))
        recorder.attempt_ended(AttemptEnd(job, "completed", 0.01, None))
        await recorder.flush()  # fails: Redis is down
        server.start()
        await recorder.aclose()
        keys = MetricsKeys(ConveyorKeys("bull"))
        total = await app.client.hget(keys.counters, "completed|background|ok")
        timed = await app.client.hget(keys.histogram("run"), "b|0.01|background|ok")  # 0.01 s falls in le=0.01
    assert "could not write job metrics" in caplog.text
    assert int(total or 0) == 3
    assert int(timed or 0) == 3  # the run times too: each once, none lost with the failed write


async def test_the_recorder_stops_flushing_once_everything_counted_is_written(redis_url: str) -> None:
    app = Conveyor(load_settings(redis_url=redis_url))
    async with app:
        recorder = instrument(app, load_observability_settings(conveyor_metrics_flush_ms=20)).recorder
        job = JobInfo("1", "background", "idle", attempt=1, max_attempts=1, worker="test")
        recorder.attempt_ended(AttemptEnd(job, "completed", 0.01, None))
        assert not recorder.idle  # a flush is due
        key = MetricsKeys(ConveyorKeys("bull")).counters
        await wait_until(lambda: _counted(app, key, "completed|background|idle", 1))
        await asyncio.sleep(0.1)  # five flush periods: a timer still running would be due again by now
        assert recorder.idle
        await recorder.aclose()


async def test_counts_held_when_the_app_closes_first_log_no_error_and_are_written_once_it_reconnects(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Closing an instrumented app without `Instrumentation.aclose` leaves a flush due on a closed app.
    app = Conveyor(load_settings(redis_url=redis_url))
    await app.connect()
    recorder = instrument(app, load_observability_settings(conveyor_metrics_flush_ms=20)).recorder
    job = JobInfo("1", "background", "held", attempt=1, max_attempts=1, worker="test")
    recorder.attempt_ended(AttemptEnd(job, "completed", 0.01, None))
    await app.close()
    await asyncio.sleep(0.3)  # the flush runs, and finds the app closed
    gc.collect()  # asyncio reports a task failure nobody read when the task is collected
    await asyncio.sleep(0)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    await app.connect()
    try:
        recorder.attempt_ended(AttemptEnd(job, "completed", 0.01, None))
        key = MetricsKeys(ConveyorKeys("bull")).counters
        await wait_until(lambda: _counted(app, key, "completed|background|held", 2))
    finally:
        await recorder.aclose()
        await app.close()


async def _scraped(url: str, name: str, n: float, **labels: str) -> bool:
    return value(await http_scrape(url), name, **labels) == n


async def _counted(app: Conveyor, key: str, field: str, n: int) -> bool:
    return int(await app.client.hget(key, field) or 0) == n


async def _live_workers(app: Conveyor, n: int) -> bool:
    return len(await app.workers()) == n


async def _active_in_registry(app: Conveyor, n: int) -> bool:
    return sum(sum(w.active.values()) for w in await app.workers()) == n


async def _finished(queue: Any, *, completed: int, failed: int) -> bool:
    counts = await queue.counts()
    return bool(counts.completed == completed and counts.failed == failed)


async def _all_completed(app: Conveyor, ids: list[str]) -> bool:
    return all([await state_is(app.queue("background"), i, JobState.COMPLETED) for i in ids])


async def test_process_metrics_render_counts_a_histogram_and_the_active_gauge_with_the_extra_labels() -> None:
    running = {"background": 2}
    metrics = ProcessMetrics({"env": "prod"}, running=lambda: dict(running))
    recorder = MetricsRecorder(MetricsStore(lambda: None, MetricsKeys(ConveyorKeys("bull"))), "bull", 3600, metrics)
    job = JobInfo("1", "background", "ok", attempt=1, max_attempts=1, worker="test")
    for run_s, outcome in ((0.003, "completed"), (0.005, "completed"), (0.2, "completed"), (0.01, "failed")):
        recorder.attempt_ended(AttemptEnd(job, outcome, run_s, None))
    recorder.attempt_ended(AttemptEnd(job, Outcome.REFUSED, 0.5, None))  # counted, but no run of this worker's
    samples = parse(generate_latest(process_registry(metrics)).decode())
    assert value(samples, "conveyor_process_active_jobs", queue="background", env="prod") == 2
    running.clear()
    after = parse(generate_latest(process_registry(metrics)).decode())
    assert value(after, "conveyor_process_active_jobs", queue="background", env="prod") == 0  # a queue it ran
    series = {"queue": "background", "job_type": "ok", "env": "prod"}
    assert value(samples, "conveyor_process_attempts_total", outcome="completed", **series) == 3
    assert value(samples, "conveyor_process_attempts_total", outcome="failed", **series) == 1
    assert value(samples, "conveyor_process_attempts_total", outcome="refused", **series) == 1
    # Cumulative buckets; a value on a bound counts in that bucket (as Prometheus' `le` says).
    assert value(samples, "conveyor_process_job_run_seconds_bucket", le="0.005", **series) == 2
    assert value(samples, "conveyor_process_job_run_seconds_bucket", le="0.01", **series) == 3
    assert value(samples, "conveyor_process_job_run_seconds_bucket", le="0.1", **series) == 3
    assert value(samples, "conveyor_process_job_run_seconds_bucket", le="+Inf", **series) == 4
    assert value(samples, "conveyor_process_job_run_seconds_count", **series) == 4
    assert value(samples, "conveyor_process_job_run_seconds_sum", **series) == pytest.approx(0.218)
