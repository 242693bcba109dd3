"""The GraphQL API: job management and live subscriptions over HTTP and websockets."""

from conveyor.api.config import ApiConfig, load_api_config
from conveyor.api.server import ApiServer, create_api, serve
from conveyor.api.tokens import IssuedToken, Role, TokenError, TokenInfo, TokenStore

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
