"""API tokens: roles, optional queue scopes, stored hashed in Redis, checked in constant time.

A token reads `cvy_<id>_<secret>`. Redis keeps, in one hash `<prefix>:conveyor:api-tokens` (field = token
id), the token's name, role, queues and the SHA-256 of its secret, never the secret itself; the secret has
256 bits of entropy, so a fast hash is enough. The full token is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from redis.asyncio import Redis

from conveyor.errors import ConveyorError
from conveyor.queue.tenants import TenantStore
from conveyor.redis.cluster import is_cluster
from conveyor.redis.keys import ConveyorKeys

TOKEN_PREFIX = "cvy"
_TOKEN = re.compile(r"^cvy_([0-9a-f]{16})_([A-Za-z0-9_\-]{20,100})$")


class Role(StrEnum):
    """What a token may do: `viewer` reads, `operator` also enqueues, retries, pauses and cancels,
    `admin` also clears queues and manages tokens."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of privilege (viewer 0 < operator 1 < admin 2)."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role has at least `needed`'s rights."""
        return self.rank >= needed.rank


class TokenError(ConveyorError):
    """A token could not be created as asked (bad role, name or queue scope)."""


@dataclass(frozen=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: str
    name: str
    role: Role
    queues: tuple[str, ...] | None  # None: every queue
    created_at: datetime
    tenant: str | None = None  # None: the deployment's own queues; else only that tenant's namespace


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `token` is the secret to hand to the client, shown only now."""

    token: str
    info: TokenInfo


def api_tokens_key(prefix: str, *, tagged: bool = False) -> str:
    """The Redis hash holding every API token (field: token id; value: JSON with the secret's SHA-256);
    `tagged` on a cluster."""
    return ConveyorKeys(prefix, tagged).api_tokens


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Creates, lists, revokes and verifies API tokens in Redis."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.key = api_tokens_key(prefix, tagged=is_cluster(client))
        self.tenants = TenantStore(client, prefix)

    async def create(
        self,
        name: str,
        role: Role | str,
        queues: list[str] | None = None,
        *,
        known_queues: list[str] | None = None,
        tenant: str | None = None,
    ) -> IssuedToken:
        """Create a token; the returned `token` string is the only copy of its secret.

        Args:
            name: who or what uses it (shown by `list`).
            role: `viewer`, `operator` or `admin`.
            queues: the queues it may touch (None or empty: all).
            known_queues: when given, every scoped queue must be one of these.
            tenant: limits it to that tenant's namespace (which must exist).

        Raises:
            TokenError: bad role, empty name, an unknown queue in the scope, or an unknown tenant.
        """
        if tenant is not None and not await self.tenants.exists(tenant):
            raise TokenError(f"Unknown tenant {tenant!r}; create it first (`conveyor tenant create {tenant}`).")
        info = TokenInfo(
            id=secrets.token_hex(8),
            name=_check_name(name),
            role=_check_role(role),
            queues=_check_queues(queues, known_queues),
            created_at=datetime.now(UTC),
            tenant=tenant,
        )
        secret = secrets.token_urlsafe(32)
        record = {
            "name": info.name,
            "role": info.role.value,
            "queues": list(info.queues) if info.queues is not None else None,
            "sha256": _digest(secret),
            "created": info.created_at.isoformat(),
            "tenant": info.tenant,
        }
        await self.client.hset(self.key, info.id, json.dumps(record))
        return IssuedToken(f"{TOKEN_PREFIX}_{info.id}_{secret}", info)

    async def list(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        raw = cast("dict[str, str]", await self.client.hgetall(self.key))
        infos = [_info(token_id, json.loads(value)) for token_id, value in raw.items()]
        return sorted(infos, key=lambda info: (info.created_at, info.id))

    async def revoke(self, token_id: str) -> bool:
        """Delete a token by id (or by the full token); False when there was none."""
        match = _TOKEN.match(token_id)
        return bool(await self.client.hdel(self.key, match.group(1) if match else token_id))

    async def is_active(self, token_id: str) -> bool:
        """True while a verified token still works: it was not revoked and its tenant (if any) still exists.
        Open websocket connections ask this periodically, so revoking a token ends its subscriptions."""
        value = await self.client.hget(self.key, token_id)
        if value is None:
            return False
        tenant = json.loads(value).get("tenant")
        return tenant is None or await self.tenants.exists(tenant)

    async def verify(self, token: str) -> TokenInfo | None:
        """The token's info when it is valid, else None. The secret's hash is compared in constant time."""
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        token_id, secret = match.groups()
        value = await self.client.hget(self.key, token_id)
        expected = json.loads(value)["sha256"] if value else "0" * 64
        if not hmac.compare_digest(_digest(secret), expected) or not value:
            return None
        info = _info(token_id, json.loads(value))
        if info.tenant is not None and not await self.tenants.exists(info.tenant):
            return None  # the tenant was removed: its tokens stop working
        return info


def _info(token_id: str, record: dict[str, Any]) -> TokenInfo:
    queues = record.get("queues")
    return TokenInfo(
        id=token_id,
        name=str(record.get("name", "")),
        role=Role(record["role"]),
        queues=tuple(queues) if queues else None,
        created_at=datetime.fromisoformat(record["created"]),
        tenant=record.get("tenant") or None,
    )


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise TokenError("A token needs a name of 1 to 200 characters saying who uses it.")
    return name


def _check_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise TokenError(f"Unknown role {role!r}: use viewer, operator or admin.") from None


def _check_queues(queues: list[str] | None, known: list[str] | None) -> tuple[str, ...] | None:
    if not queues:
        return None
    unknown = sorted(set(queues) - set(known)) if known is not None else []
    if unknown:
        raise TokenError(
            f"Unknown queue(s) {', '.join(unknown)} in the token's scope; known: {', '.join(known or [])}."
        )
    return tuple(dict.fromkeys(queues))
