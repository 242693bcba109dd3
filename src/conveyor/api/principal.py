"""The caller of a request or connection, as the API knows it once its token was verified.

Its own module because both the request context (which carries it) and the authorization checks (which read it
from that context) need it; `conveyor.api.auth` decides who a caller is and what it may do."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.api.tokens import Role, TokenInfo


@dataclass(frozen=True)
class Principal:
    """The caller: a token's name, role, queue scope (None: every queue) and tenant (None: the deployment's own
    queues; else the caller sees and touches only that tenant's namespace)."""

    name: str
    role: Role
    queues: tuple[str, ...] | None
    token_id: str | None = None
    tenant: str | None = None

    @classmethod
    def of(cls, info: TokenInfo) -> Principal:
        """The principal of a verified token."""
        return cls(info.name, info.role, info.queues, info.id, info.tenant)

    def may_access(self, queue: str) -> bool:
        """True when the token's scope includes the queue."""
        return self.queues is None or queue in self.queues


ANONYMOUS_LOOPBACK = Principal("anonymous (loopback, development mode)", Role.ADMIN, None)
