"""The GraphQL API: job management and live subscriptions over HTTP and websockets.

The server (Strawberry, Starlette, uvicorn, and the indexer behind the code-search fields) is imported on
first use of `ApiServer`, `create_api` or `serve`, not with this package: `conveyor worker` reads the API's
settings and token store through it and must not pay for a server it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conveyor.api.config import ApiConfig, load_api_config
from conveyor.api.tokens import IssuedToken, Role, TokenError, TokenInfo, TokenStore

if TYPE_CHECKING:
    from conveyor.api.server import ApiServer, create_api, serve

_LAZY = {"ApiServer": "conveyor.api.server", "create_api": "conveyor.api.server", "serve": "conveyor.api.server"}

__all__ = [
    "ApiConfig",
    "ApiServer",
    "IssuedToken",
    "Role",
    "TokenError",
    "TokenInfo",
    "TokenStore",
    "create_api",
    "load_api_config",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
