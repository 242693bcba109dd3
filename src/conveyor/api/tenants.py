"""Tenants in the API: list, create or update (quotas) and remove tenants. Only an admin of the deployment
(a token without queue scope and without tenant) manages them; create their tokens with
`createApiToken(tenant: …)`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from conveyor.api import fields as described
from conveyor.api.context import ApiInfo
from conveyor.api.query import require_token_admin
from conveyor.api.types import QueueNode, RateLimitNode
from conveyor.queue.tenants import Tenant, TenantStore, UnknownTenantError, tenant_quotas


@strawberry.type(name="Tenant", description="A tenant: its own namespace of queues, with quotas.")
class TenantNode:
    id: str
    prefix: str = strawberry.field(description="The key prefix of its queues.")
    created_at: datetime
    max_waiting_jobs: int | None
    max_payload_bytes: int | None
    rate_limit: RateLimitNode | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantNode:
        quotas = tenant.quotas
        limit = quotas.rate_limit
        return cls(
            id=tenant.id,
            prefix=tenant.prefix,
            created_at=tenant.created_at,
            max_waiting_jobs=quotas.max_waiting_jobs,
            max_payload_bytes=quotas.max_payload_bytes,
            rate_limit=RateLimitNode(max=limit.max, duration_ms=limit.duration_ms) if limit else None,
        )

    @described.field("The tenant's queues with their counts (deployment admins only).")
    async def queues(self, info: ApiInfo) -> list[QueueNode]:
        require_token_admin(info.context)
        state = info.context.state
        view = state.tenants.app(state.app, self.id)
        return [
            QueueNode.of(name, await view.queue(name).counts(), view.queue_settings[name].concurrency)
            for name in view.queue_names
        ]


@strawberry.input(name="RateLimitInput")
class RateLimitInput:
    max: int
    duration_ms: int


@strawberry.input(name="TenantQuotasInput", description="A tenant's limits; null: unlimited.")
class TenantQuotasInput:
    max_waiting_jobs: int | None = None
    max_payload_bytes: int | None = None
    rate_limit: RateLimitInput | None = None


def _store(info: ApiInfo) -> TenantStore:
    require_token_admin(info.context)
    app = info.context.state.app
    return TenantStore(app.client, app.settings.conveyor_prefix)


@strawberry.type
class TenantQuery:
    @described.field("Every tenant (deployment admins only).")
    async def tenants(self, info: ApiInfo) -> list[TenantNode]:
        return [TenantNode.of(tenant) for tenant in await _store(info).all()]

    @described.field("One tenant (deployment admins only); null when there is none.")
    async def tenant(self, info: ApiInfo, id: str) -> TenantNode | None:
        try:
            return TenantNode.of(await _store(info).get(id))
        except UnknownTenantError:
            return None


@strawberry.type
class TenantMutation:
    @described.mutation("Create a tenant, or replace its quotas (deployment admins only).")
    async def save_tenant(self, info: ApiInfo, id: str, quotas: TenantQuotasInput | None = None) -> TenantNode:
        given = quotas or TenantQuotasInput()
        limit = given.rate_limit
        checked = tenant_quotas(
            max_waiting_jobs=given.max_waiting_jobs,
            max_payload_bytes=given.max_payload_bytes,
            rate_limit={"max": limit.max, "duration_ms": limit.duration_ms} if limit else None,
        )
        return TenantNode.of(await _store(info).save(id, checked))

    @described.mutation(
        "Remove a tenant (deployment admins only): its tokens stop working, its queues refuse new jobs; its data "
        "stays. False when there was none."
    )
    async def remove_tenant(self, info: ApiInfo, id: str) -> bool:
        return await _store(info).remove(id)
