"""The read-only dashboard (`CONVEYOR_DASHBOARD_READ_ONLY=1`): the server refuses every mutation that comes
from a web browser, so neither the dashboard nor any page or tool in a browser can change anything, whatever
the token's role. The CLI and API clients (no browser) keep writing with their tokens.

A browser is recognised by the headers it adds itself and page scripts cannot remove or forge: `Origin` (on
every websocket handshake and cross-origin or POST fetch) and `Sec-Fetch-Mode` (on every request of a current
browser). Hiding the dashboard's buttons alone would only be a suggestion; this is the enforcement.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from conveyor.api.errors import ErrorCode

BROWSER_HEADERS = ("origin", "sec-fetch-mode")
REFUSAL = (
    "The dashboard is read-only (CONVEYOR_DASHBOARD_READ_ONLY): changes from a browser are refused. Use the CLI "
    "or an API client with an operator token."
)


def dashboard_read_only() -> bool:
    """True when the deployment's dashboard settings make it read-only (False without the dashboard package)."""
    try:
        from conveyor.dashboard.routes import load_dashboard_config
    except ImportError:
        return False
    return load_dashboard_config().read_only


def from_browser(context: object) -> bool:
    """True when the request (or websocket connection) of a GraphQL context was made by a web browser."""
    request = getattr(context, "request", None)
    headers = getattr(request, "headers", None)
    return headers is not None and any(name in headers for name in BROWSER_HEADERS)


class BrowserWritesRefused(SchemaExtension):
    """Refuses mutations from browsers (FORBIDDEN) before they run; queries and subscriptions pass."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.operation_type is OperationType.MUTATION and from_browser(ctx.context):
            error = GraphQLError(REFUSAL, extensions={"code": ErrorCode.FORBIDDEN.value})
            ctx.result = ExecutionResult(data=None, errors=[error])
        yield
