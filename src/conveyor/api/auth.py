"""Who is calling and what they may do: tokens from `Authorization: Bearer` or the websocket
`connection_init` payload, roles, and per-queue scopes. Everything is denied unless allowed here."""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.api.config import is_loopback
from conveyor.api.context import ApiContext
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.principal import ANONYMOUS_LOOPBACK, Principal
from conveyor.api.tokens import Role, TokenStore
from conveyor.queue.errors import UnknownQueueError


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value (None when absent or not Bearer)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_from_params(params: Mapping[str, object] | None) -> str | None:
    """The token of a websocket `connection_init` payload: `{"authorization": "Bearer …"}` or `{"token": "…"}`."""
    if not params:
        return None
    for key in ("authorization", "Authorization"):
        value = params.get(key)
        if isinstance(value, str):
            return bearer_token(value) or value.strip() or None
    token = params.get("token")
    return token.strip() or None if isinstance(token, str) else None


async def authenticate(
    tokens: TokenStore, token: str | None, client_host: str | None, *, anonymous_loopback: bool
) -> Principal | None:
    """The principal of a request: its token's, or the anonymous admin for tokenless loopback requests when
    allowed. None means refuse. A token that is present but invalid is refused even on loopback."""
    if token is not None:
        info = await tokens.verify(token)
        return Principal.of(info) if info is not None else None
    if anonymous_loopback and client_host is not None and is_loopback(client_host):
        return ANONYMOUS_LOOPBACK
    return None


def require(ctx: ApiContext, role: Role, queue: str | None = None) -> Principal:
    """The caller, if its role is at least `role` and (with `queue`) the queue exists and is in its scope.

    Raises:
        ApiError: UNAUTHENTICATED or FORBIDDEN.
        UnknownQueueError: the queue is not configured.
    """
    principal = ctx.principal
    if principal is None:
        raise ApiError(ErrorCode.UNAUTHENTICATED, "Authentication required: send `Authorization: Bearer <token>`.")
    if not principal.role.allows(role):
        raise ApiError(
            ErrorCode.FORBIDDEN,
            f"This token's role is {principal.role.value}; this operation needs {role.value} or higher.",
        )
    if queue is not None:
        known = ctx.app.queue_names
        if queue not in known:
            raise UnknownQueueError(queue, known)
        if not principal.may_access(queue):
            raise ApiError(
                ErrorCode.FORBIDDEN,
                f"This token is limited to queue(s) {', '.join(principal.queues or ())}; it cannot use {queue!r}.",
            )
    return principal


def visible_queues(ctx: ApiContext) -> list[str]:
    """The queues the caller may read, in configuration order."""
    principal = require(ctx, Role.VIEWER)
    return [name for name in ctx.app.queue_names if principal.may_access(name)]


def may_read(ctx: ApiContext, queue: str) -> bool:
    """True when the caller may read the queue: for leaving out, without an error, what lies outside its scope
    (a flow's children in other queues, a worker's other queues)."""
    return queue in visible_queues(ctx)
