"""A fragment-doubling query bomb is refused in milliseconds and never stalls the server."""

from __future__ import annotations

import asyncio
import time

from tests.api.conftest import Api, code_of

BOMB_LEVELS = 22  # fragment F22 is used once, F0 2**22 times: 4 million aliases in 0.8 KB


def fragment_bomb(levels: int) -> str:
    """`{ ...F<levels> }` where F0 selects one aliased field and each next fragment spreads the previous twice."""
    fragments = ["fragment F0 on Query { a: queues { name } }"]
    fragments += [f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)]
    return f"{{ ...F{levels} }}\n" + "\n".join(fragments)


async def _timed_post(api: Api, query: str) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    result = await api.gql(query)
    return result, time.perf_counter() - started


async def _health_latencies(api: Api, done: asyncio.Event) -> list[float]:
    latencies = []
    while not done.is_set():
        started = time.perf_counter()
        assert (await api.http.get("/healthz")).status_code == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


async def test_fragment_bomb_is_refused_within_a_second(api: Api) -> None:
    query = fragment_bomb(BOMB_LEVELS)
    assert len(query.encode()) < 1024
    result, elapsed = await _timed_post(api, query)
    assert code_of(result) == "TOO_MANY_ALIASES"
    assert elapsed < 1.0, f"the bomb was refused after {elapsed:.3f} s"


async def test_server_answers_health_checks_while_a_bomb_is_refused(api: Api) -> None:
    done = asyncio.Event()
    health = asyncio.create_task(_health_latencies(api, done))
    await asyncio.sleep(0.05)  # the health checks are under way
    try:
        results = await asyncio.gather(*(_timed_post(api, fragment_bomb(BOMB_LEVELS)) for _ in range(3)))
    finally:
        done.set()
    latencies = await health
    assert all(code_of(result) == "TOO_MANY_ALIASES" for result, _ in results)
    slowest = max(latencies)
    assert slowest < 1.0, f"/healthz took up to {slowest:.3f} s while bombs were refused: {latencies}"
