"""The dashboard's routes: its page at `/` (with the URL prefix it is served under) and its static files.

The page uses relative URLs only (`static/…`, `graphql`) resolved against a `<base href>` set per request, so
the dashboard works behind a reverse proxy that mounts it under a prefix. The prefix is, in order: the
configured `CONVEYOR_DASHBOARD_URL_PREFIX`, the proxy's `X-Forwarded-Prefix` header, or the ASGI `root_path`.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from conveyor.config.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
PAGE_TEMPLATE = PACKAGE_DIR / "index.html"
BASE_PLACEHOLDER = "{{BASE_HREF}}"
READ_ONLY_PLACEHOLDER = "{{READ_ONLY}}"
# A prefix is a path of plain segments: nothing that could leave the attribute it is written into.
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~\-]+)*$")

# Everything comes from this server: scripts, styles and the API (the websocket is same-origin too).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'self'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class DashboardConfig(BaseSettings):
    """Whether the dashboard is served and under which URL prefix (`CONVEYOR_DASHBOARD_<NAME>` variables).

    `url_prefix` is the path a reverse proxy serves Conveyor under (e.g. `/conveyor`); leave it empty to use
    the proxy's `X-Forwarded-Prefix` header or the server's root path. `read_only` hides every control that
    changes something, and the API server then refuses mutations from browsers (`conveyor.api.readonly`).
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_DASHBOARD_", extra="ignore", frozen=True)

    enabled: bool = True
    url_prefix: str = ""
    read_only: bool = False

    @field_validator("url_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        prefix = clean_prefix(value)
        if prefix is None:
            raise ValueError(f"{value!r} is not a URL path like /conveyor (letters, digits, '.', '_', '~', '-')")
        return prefix


def load_dashboard_config(**overrides: Any) -> DashboardConfig:
    """The dashboard settings from the environment, with keyword overrides.

    Raises:
        ConfigError: a value is invalid; the message names the variable.
    """
    try:
        return DashboardConfig(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"CONVEYOR_DASHBOARD_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid dashboard configuration: {problems}") from exc


def clean_prefix(value: str | None) -> str | None:
    """A URL prefix without its trailing slash (`""` for none), or None when it is not a plain path."""
    prefix = (value or "").strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix if _PREFIX.match(prefix) else None


def base_path(request: Request, configured: str = "") -> str:
    """The path the dashboard is served under, ending with `/`: the configured prefix, else the proxy's
    `X-Forwarded-Prefix`, else the ASGI root path. A malformed header is ignored."""
    for candidate in (configured, request.headers.get("x-forwarded-prefix"), request.scope.get("root_path")):
        prefix = clean_prefix(candidate)
        if candidate and prefix:
            return prefix + "/"
    return "/"


class _StaticFiles(StaticFiles):
    """Static files with the dashboard's security headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def dashboard_routes(config: DashboardConfig | None = None) -> list[BaseRoute]:
    """The dashboard's routes: the page at `/` and its files under `/static` (none when it is turned off).

    Raises:
        ConfigError: the environment's dashboard settings are invalid.
    """
    config = config or load_dashboard_config()
    if not config.enabled:
        return []
    template = PAGE_TEMPLATE.read_text(encoding="utf-8")

    async def page(request: Request) -> Response:
        base = html.escape(base_path(request, config.url_prefix), quote=True)
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        page = template.replace(BASE_PLACEHOLDER, base).replace(READ_ONLY_PLACEHOLDER, str(config.read_only).lower())
        return HTMLResponse(page, headers=headers)

    return [
        Route("/", page, methods=["GET", "HEAD"], name="dashboard"),
        Mount("/static", app=_StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    ]
