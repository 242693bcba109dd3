"""The API server serves the cluster's Prometheus metrics at /metrics, to unscoped tokens only unless made public."""

from __future__ import annotations

from conveyor import Conveyor
from conveyor.api import TokenStore
from tests.api.conftest import Api, StartApi, code_of
from tests.api.test_mutations import add


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_metrics_endpoint_shows_queue_depth_to_a_viewer_token(api: Api) -> None:
    await add(api, "background", "ok", delay=60_000)
    response = await api.http.get("/metrics", headers=bearer(api.tokens["viewer"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'conveyor_queue_jobs{queue="background",state="delayed"} 1.0' in lines
    assert "conveyor_redis_up 1.0" in lines


async def test_metrics_without_a_token_are_refused_and_name_no_queue(api: Api) -> None:
    response = await api.http.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert code_of(response.json()) == "UNAUTHENTICATED"
    assert "background" not in response.text
    invalid = await api.http.get("/metrics", headers=bearer("cvy_0123456789abcdef_" + "x" * 43))
    assert invalid.status_code == 401


async def test_metrics_are_refused_to_a_queue_scoped_token(api: Api, api_app: Conveyor) -> None:
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    scoped = (await store.create("indexing only", "admin", ["indexing"])).token
    response = await api.http.get("/metrics", headers=bearer(scoped))
    assert response.status_code == 403
    assert code_of(response.json()) == "FORBIDDEN"
    assert "background" not in response.text


async def test_public_metrics_need_no_token(start_api: StartApi) -> None:
    api = await start_api(metrics_public=True)
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert "conveyor_redis_up 1.0" in response.text.splitlines()
