"""What resolvers get: the server's shared state and the caller of the current request or connection."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info

from conveyor.api.config import ApiConfig
from conveyor.api.principal import Principal
from conveyor.api.tenancy import TenantViews
from conveyor.api.tokens import TokenStore
from conveyor.app import Conveyor
from conveyor.queue.events import EventHub


class ServerNotStartedError(RuntimeError):
    """The API was used outside its server's lifespan (the event hub and token store start with it)."""


@dataclass
class ApiState:
    """Shared by every request of one server: the app, the config, and what the lifespan starts."""

    app: Conveyor
    config: ApiConfig
    hub: EventHub | None = None
    tokens: TokenStore | None = None
    tenants: TenantViews = field(default_factory=TenantViews)

    def started(self) -> tuple[EventHub, TokenStore]:
        """The hub and token store (after the server's startup)."""
        if self.hub is None or self.tokens is None:
            raise ServerNotStartedError("The API server has not started: serve it with uvicorn (lifespan on).")
        return self.hub, self.tokens


@dataclass
class ApiContext:
    """The GraphQL context of one HTTP request or one websocket connection."""

    state: ApiState
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    principal: Principal | None = None
    connection_params: dict[str, object] | None = field(default=None)
    warnings: list[str] = field(default_factory=list)  # the response's `extensions.warnings`

    @property
    def tenant(self) -> str | None:
        """The caller's tenant (None: the deployment's own queues)."""
        return self.principal.tenant if self.principal is not None else None

    @property
    def app(self) -> Conveyor:
        """The Conveyor application, as the caller may see it: a tenant's caller gets the tenant's view."""
        if self.tenant is not None:
            return self.state.tenants.app(self.state.app, self.tenant)
        return self.state.app

    @property
    def config(self) -> ApiConfig:
        """The API settings."""
        return self.state.config

    @property
    def hub(self) -> EventHub:
        """The shared reader of queue event streams (of the caller's tenant's queues, for a tenant)."""
        hub = self.state.started()[0]
        if self.tenant is not None:
            return self.state.tenants.hub(hub, self.state.app, self.tenant)
        return hub

    @property
    def tokens(self) -> TokenStore:
        """The API token store."""
        return self.state.started()[1]


ApiInfo = Info[ApiContext, None]
