"""The dashboard's page and files as served over HTTP: base path, security headers, static files."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from conveyor import Conveyor
from conveyor.api import ApiConfig, create_api
from conveyor.config.errors import ConfigError
from conveyor.dashboard import load_dashboard_config


@pytest.fixture
async def http(dashboard_app: Conveyor) -> AsyncIterator[httpx.AsyncClient]:
    api = create_api(dashboard_app, ApiConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://conveyor.test") as client:
        yield client


def base_href(page: str) -> str:
    match = re.search(r'<base href="([^"]*)">', page)
    assert match, page
    return match.group(1)


async def test_page_is_served_at_the_root_with_a_strict_content_security_policy(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert base_href(response.text) == "/"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "script-src 'self'" in policy


async def test_base_follows_the_proxy_prefix_header(http: httpx.AsyncClient) -> None:
    response = await http.get("/", headers={"X-Forwarded-Prefix": "/ops/conveyor/"})
    assert base_href(response.text) == "/ops/conveyor/"


async def test_a_malformed_prefix_header_is_ignored(http: httpx.AsyncClient) -> None:
    response = await http.get("/", headers={"X-Forwarded-Prefix": '/x"><script>alert(1)</script>'})
    assert base_href(response.text) == "/"
    assert "<script>alert" not in response.text


async def test_a_configured_prefix_wins(dashboard_app: Conveyor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_DASHBOARD_URL_PREFIX", "/jobs/")
    api = create_api(dashboard_app, ApiConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://conveyor.test") as client:
        response = await client.get("/", headers={"X-Forwarded-Prefix": "/other"})
    assert base_href(response.text) == "/jobs/"


async def test_the_dashboard_can_be_turned_off(dashboard_app: Conveyor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_DASHBOARD_ENABLED", "false")
    api = create_api(dashboard_app, ApiConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://conveyor.test") as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


def test_a_prefix_that_is_not_a_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="CONVEYOR_DASHBOARD_URL_PREFIX"):
        load_dashboard_config(url_prefix="/a b")


async def test_scripts_are_served_as_javascript(http: httpx.AsyncClient) -> None:
    response = await http.get("/static/js/main.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_no_file_refers_to_another_host() -> None:
    from conveyor.dashboard.routes import PAGE_TEMPLATE, STATIC_DIR

    files = [PAGE_TEMPLATE, *(p for p in STATIC_DIR.rglob("*") if p.is_file())]
    for path in files:
        text = path.read_text(encoding="utf-8")
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        assert urls == [] or all("w3.org" in url for url in urls), (path.name, urls)
