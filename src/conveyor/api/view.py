"""The GraphQL endpoint: Strawberry's ASGI view with Conveyor's authentication and refusals.

HTTP: POST with a JSON body only (GET serves the IDE page in development mode and is refused otherwise, so
no query runs from a link or a form: CSRF). Every request needs a valid token unless anonymous loopback
access is on. Refusals before execution are GraphQL-shaped JSON with an error code.
Websockets: graphql-transport-ws only; the token comes in the `connection_init` payload (or the handshake's
Authorization header); a connection without a valid one is closed with 4403. While Redis is away a token cannot be
checked: HTTP answers 503 REDIS_UNAVAILABLE and a websocket is closed with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any, cast

from cross_web import HTTPException
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from starlette.websockets import WebSocketDisconnected as SocketClosedError
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, Message
from strawberry.types.unset import UNSET, UnsetType

from conveyor.api.auth import authenticate, bearer_token, token_from_params
from conveyor.api.context import ApiContext, ApiState
from conveyor.api.errors import REDIS_DOWN, REDIS_MESSAGE, ErrorCode, error_body
from conveyor.api.principal import Principal
from conveyor.api.schema import ConveyorSchema

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.REQUEST_TOO_LARGE,
}
# The websocket close code "try again later" (RFC 6455 registry): the server is up but cannot check a token yet.
TRY_AGAIN_LATER = 1013


class RequestRefusedError(Exception):
    """An HTTP request refused before execution."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def refusal(status: int, code: ErrorCode, message: str) -> Response:
    """A GraphQL-shaped JSON refusal."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


class CodedTransportWSHandler(BaseGraphQLTransportWSHandler[ApiContext, None]):
    """graphql-transport-ws, with an error code on the protocol's own errors (e.g. the subscription cap), and
    closed (4403) once its token is revoked: the token is checked again every `token_recheck_s`. A client that
    goes away while a result is on its way logs nothing above DEBUG."""

    revocation_watch: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except REDIS_DOWN:
            # Not a refusal (the token may be fine) and not a crash: the client retries and says live updates
            # are interrupted, not that the server is gone.
            log.info("closing a websocket connection: Redis is unavailable, its API token cannot be checked")
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=REDIS_MESSAGE)
            return
        principal = self.context.principal
        if self.connection_acknowledged and principal is not None and principal.token_id is not None:
            self.revocation_watch = asyncio.create_task(self._close_when_revoked(principal.token_id))

    async def _close_when_revoked(self, token_id: str) -> None:
        state = self.context.state
        tokens = state.started()[1]
        while True:
            await asyncio.sleep(state.config.token_recheck_s)
            try:
                active = await tokens.is_active(token_id)
            except (RedisError, OSError):
                continue  # Redis is away: keep the connection, check again
            if not active:
                log.info("closing a websocket connection: its API token %s was revoked", token_id)
                await self.websocket.close(code=4403, reason="API token revoked")
                return

    async def shutdown(self) -> None:
        if self.revocation_watch is not None:
            self.revocation_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.revocation_watch
        await super().shutdown()

    async def send_message(self, message: Message) -> None:
        if message.get("type") == "error":
            payload = cast("list[dict[str, Any]]", message.get("payload", []))
            for error in payload:
                extensions = error.get("extensions") or {}
                if "code" not in extensions:
                    limited = "limit" in str(error.get("message", ""))
                    code = ErrorCode.SUBSCRIPTION_LIMIT if limited else ErrorCode.BAD_REQUEST
                    error["extensions"] = {**extensions, "code": code.value}
        try:
            await super().send_message(message)
        except (WebSocketDisconnected, SocketClosedError):
            # The client went away (closed, or its connection dropped) while a result was on its way: normal,
            # not an error. The connection's shutdown then ends its operations.
            log.debug("websocket client gone before a %s message could be sent", message.get("type"))


class ConveyorGraphQL(GraphQL[ApiContext, None]):
    """The `/graphql` endpoint."""

    graphql_transport_ws_handler_class = CodedTransportWSHandler

    def __init__(self, schema: ConveyorSchema, state: ApiState) -> None:
        config = state.config
        super().__init__(
            schema,
            graphql_ide="graphiql" if config.ide else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=config.max_subscriptions_per_connection,
            allowed_origins=config.cors_origins,
        )
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._http(request)
        except RequestRefusedError as exc:
            response = refusal(exc.status, exc.code, str(exc))
        except HTTPException as exc:
            status = exc.status_code
            response = refusal(status, STATUS_CODES.get(status, ErrorCode.BAD_REQUEST), exc.reason)
        await response(scope, receive, send)

    async def _http(self, request: Request) -> Response:
        if request.method == "GET":
            if self.graphql_ide and "text/html" in request.headers.get("accept", ""):
                return HTMLResponse(self.graphql_ide_html)
            raise RequestRefusedError(
                405, ErrorCode.METHOD_NOT_ALLOWED, "GET is not accepted: POST the query as JSON (CSRF protection)."
            )
        if request.method != "POST":
            raise RequestRefusedError(405, ErrorCode.METHOD_NOT_ALLOWED, "Use POST with a JSON body.")
        response: Response = await self.run(request)
        return response

    def parse_json(self, data: str | bytes) -> Any:
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestRefusedError(
                400, ErrorCode.MALFORMED_JSON, f"The request body is not valid JSON: {exc}"
            ) from exc
        if not isinstance(body, dict):
            raise RequestRefusedError(
                400, ErrorCode.BAD_REQUEST, 'The body must be one JSON object: {"query": …, "variables": {…}}.'
            )
        return body

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> ApiContext:
        context = ApiContext(self.state, request, response)
        if isinstance(request, WebSocket):
            return context  # authenticated by on_ws_connect
        header = request.headers.get("authorization")
        token = bearer_token(header)
        if header and token is None:
            raise RequestRefusedError(401, ErrorCode.UNAUTHENTICATED, "Use `Authorization: Bearer <token>`.")
        try:
            context.principal = await self._authenticate(token, request)
        except REDIS_DOWN as exc:
            raise RequestRefusedError(503, ErrorCode.REDIS_UNAVAILABLE, REDIS_MESSAGE) from exc
        if context.principal is None:
            message = "Invalid or revoked API token." if token else "Authentication required: send a Bearer token."
            raise RequestRefusedError(401, ErrorCode.UNAUTHENTICATED, message)
        return context

    async def on_ws_connect(self, context: ApiContext) -> UnsetType | dict[str, object] | None:
        token = token_from_params(context.connection_params)
        if token is None:
            token = bearer_token(context.request.headers.get("authorization"))
        context.principal = await self._authenticate(token, context.request)
        if context.principal is None:
            raise ConnectionRejectionError({"code": ErrorCode.UNAUTHENTICATED.value})
        return cast("UnsetType", UNSET)

    async def _authenticate(self, token: str | None, request: Request | WebSocket) -> Principal | None:
        _, tokens = self.state.started()
        host = request.client.host if request.client is not None else None
        return await authenticate(tokens, token, host, anonymous_loopback=self.state.config.anonymous_loopback)
