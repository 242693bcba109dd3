"""The Grafana dashboard only queries metrics Conveyor exports."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from conveyor import Conveyor, JobState
from conveyor.observability import instrument, load_observability_settings, metrics_asgi_app
from tests.observability.scraping import asgi_get, parse
from tests.worker.conftest import running, state_is, wait_until

DASHBOARD = Path(__file__).resolve().parents[2] / "src" / "conveyor" / "observability" / "grafana-dashboard.json"


def _queries(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            q for key, value in node.items() for q in ([value] if key in ("expr", "definition") else _queries(value))
        ]
    if isinstance(node, list):
        return [q for item in node for q in _queries(item)]
    return []


async def test_every_metric_the_dashboard_queries_is_exported(app: Conveyor) -> None:
    @app.handler("background", "ok")
    async def ok(payload: dict[str, Any]) -> None:
        return None

    queried = {
        name for query in _queries(json.loads(DASHBOARD.read_text())) for name in re.findall(r"conveyor_\w+", query)
    }
    assert len(queried) > 10
    instrumentation = instrument(app, load_observability_settings(conveyor_metrics_flush_ms=20))
    exported: set[str] = set()
    async with running(app.worker(["background"])):
        job = await app.add("background", "ok")
        await wait_until(lambda: state_is(app.queue("background"), job, JobState.COMPLETED))
        # The job reads completed in Redis a moment before the worker counts its outcome (flushed every 20 ms
        # here): a loaded machine stretches that moment, so read the export until it settles.
        for _ in range(100):
            exported = {name for name, _ in parse((await asgi_get(metrics_asgi_app(app)))[2].decode())}
            if queried <= exported:
                break
            await asyncio.sleep(0.1)
        await instrumentation.aclose()
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
