"""The API server serves the cluster's Prometheus metrics at /metrics."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.test_mutations import add


async def test_metrics_endpoint_shows_queue_depth(api: Api) -> None:
    await add(api, "background", "ok", delay=60_000)
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'conveyor_queue_jobs{queue="background",state="delayed"} 1.0' in lines
    assert "conveyor_redis_up 1.0" in lines
