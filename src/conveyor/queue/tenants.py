"""Tenants: namespaces of queues with quotas, for one Conveyor deployment shared by several customers or teams.

A tenant's queues live under their own key prefix, `<prefix>:t:<tenant>` (its `indexing` queue is
`<prefix>:t:<tenant>:indexing:*`), so they are separate BullMQ queues: nothing a tenant does through its
namespace can name another tenant's keys. Its workers, schedules, dead letters and events live in the same
namespace. The tenants themselves (id, quotas) are stored in `<prefix>:conveyor:tenants`.

Quotas, checked when jobs are added to a tenant's queue (`TenantQueue`): at most `max_waiting_jobs` jobs not
yet started across the tenant's queues (waiting, prioritized, delayed), and payloads of at most
`max_payload_bytes`. The check runs before the write, so concurrent producers can overshoot the waiting-jobs
quota by the jobs they add at the same moment. `rate_limit` (N jobs per period) is stored here for the worker
runtime, which enforces it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from conveyor.config import RateLimit
from conveyor.queue.errors import InvalidOptionsError, QueueError
from conveyor.queue.limits import QueueLimits
from conveyor.queue.options import JobOptions
from conveyor.queue.queue import NewJob, Queue
from conveyor.redis.cluster import is_cluster
from conveyor.redis.keys import ConveyorKeys

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
QUOTA_CACHE_S = 1.0  # how stale a queue's view of its tenant's quotas may be


class TenantError(QueueError):
    """A tenant operation was refused."""


class UnknownTenantError(TenantError):
    """No tenant with that id."""

    def __init__(self, tenant: str) -> None:
        super().__init__(f"Unknown tenant {tenant!r}; create it with `conveyor tenant create {tenant}`.")
        self.tenant = tenant


class QuotaExceededError(TenantError):
    """Adding the jobs would exceed the tenant's quota of jobs waiting to run; nothing was written."""


def check_tenant_id(tenant: str) -> str:
    """The id if it is valid (lower-case letters, digits, '_' and '-', at most 63), else `TenantError`."""
    if not TENANT_ID.match(tenant):
        raise TenantError(
            f"Invalid tenant id {tenant!r}: use lower-case letters, digits, '_' or '-' (at most 63 characters)."
        )
    return tenant


class TenantQuotas(BaseModel):
    """A tenant's limits; None means unlimited (the deployment's own limits still apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_waiting_jobs: int | None = Field(default=None, ge=0)
    max_payload_bytes: int | None = Field(default=None, gt=0)
    rate_limit: RateLimit | None = None


def tenant_quotas(**fields: Any) -> TenantQuotas:
    """`TenantQuotas` from keywords, raising `InvalidOptionsError` naming each bad field."""
    try:
        return TenantQuotas(**fields)
    except ValidationError as exc:
        names = [".".join(str(p) for p in err["loc"]) or "quotas" for err in exc.errors()]
        details = "; ".join(f"{name}: {err['msg']}" for name, err in zip(names, exc.errors(), strict=True))
        raise InvalidOptionsError(f"Invalid tenant quotas: {details}", names) from exc


@dataclass(frozen=True)
class Tenant:
    """A tenant: its id, key prefix and quotas."""

    id: str
    prefix: str
    quotas: TenantQuotas
    created_at: datetime


class TenantStore:
    """Creates, reads and removes tenants of one deployment (`prefix` is the deployment's, not a tenant's)."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.keys = ConveyorKeys(prefix, is_cluster(client))

    def prefix_of(self, tenant: str) -> str:
        """The key prefix of a tenant's namespace."""
        return self.keys.tenant_prefix(check_tenant_id(tenant))

    def _tenant(self, tenant: str, raw: str) -> Tenant:
        record = json.loads(raw)
        created = datetime.fromtimestamp(int(record.get("created", 0)) / 1000, UTC)
        quotas = TenantQuotas.model_validate(record.get("quotas") or {})
        return Tenant(tenant, self.keys.tenant_prefix(tenant), quotas, created)

    async def save(self, tenant: str, quotas: TenantQuotas | None = None) -> Tenant:
        """Create a tenant, or replace the quotas of an existing one (its data stays)."""
        check_tenant_id(tenant)
        current = await self.client.hget(self.keys.tenants, tenant)
        created = json.loads(current)["created"] if current else int(time.time() * 1000)
        record = {"quotas": (quotas or TenantQuotas()).model_dump(mode="json"), "created": created}
        await self.client.hset(self.keys.tenants, tenant, json.dumps(record, separators=(",", ":")))
        return await self.get(tenant)

    async def get(self, tenant: str) -> Tenant:
        """One tenant, or `UnknownTenantError`."""
        raw = cast("str | None", await self.client.hget(self.keys.tenants, tenant))
        if raw is None:
            raise UnknownTenantError(tenant)
        return self._tenant(tenant, raw)

    async def exists(self, tenant: str) -> bool:
        """True when the tenant exists."""
        return bool(await self.client.hexists(self.keys.tenants, tenant))

    async def all(self) -> list[Tenant]:
        """Every tenant, by id."""
        raw = cast("dict[str, str]", await self.client.hgetall(self.keys.tenants))
        return [self._tenant(tenant, value) for tenant, value in sorted(raw.items())]

    async def remove(self, tenant: str) -> bool:
        """Delete a tenant's record: its tokens stop working and its queues refuse new jobs. Its jobs and other
        keys stay in Redis (clear its queues first to delete them). False when there was none."""
        return bool(await self.client.hdel(self.keys.tenants, tenant))


class TenantQueue(Queue):
    """A queue in a tenant's namespace: a `Queue` that enforces the tenant's quotas when jobs are added.

    Args:
        store: the deployment's tenant store (where the quotas are).
        tenant: the tenant's id; the queue's `prefix` must be the tenant's.
        siblings: the tenant's queue names (the waiting-jobs quota counts across all of them).
    """

    def __init__(
        self, client: Redis, name: str, *, store: TenantStore, tenant: str, siblings: Sequence[str], **kwargs: Any
    ) -> None:
        super().__init__(client, name, **kwargs)
        self.store = store
        self.tenant = tenant
        self.siblings = list(siblings)
        self.base_max_payload_bytes = self.max_payload_bytes
        self._quotas: TenantQuotas | None = None
        self._loaded_at = 0.0
        self._monotonic: Callable[[], float] = time.monotonic

    async def quotas(self) -> TenantQuotas:
        """The tenant's quotas, re-read at most every `QUOTA_CACHE_S` (`UnknownTenantError` if it is gone)."""
        if self._quotas is None or self._monotonic() - self._loaded_at > QUOTA_CACHE_S:
            self._quotas = (await self.store.get(self.tenant)).quotas
            self._loaded_at = self._monotonic()
            limit = self._quotas.max_payload_bytes
            self.max_payload_bytes = min(self.base_max_payload_bytes, limit or self.base_max_payload_bytes)
        return self._quotas

    async def apply_limits(self, rate_limit: RateLimit | None, global_concurrency: int | None) -> QueueLimits:
        """The queue's limits, with the tenant's rate-limit quota on top (the stricter of the two applies):
        BullMQ's scripts then enforce it for every worker of the tenant's queue."""
        quota = (await self.quotas()).rate_limit
        if quota is not None and (rate_limit is None or _per_ms(quota) < _per_ms(rate_limit)):
            rate_limit = quota
        return await super().apply_limits(rate_limit, global_concurrency)

    async def waiting_jobs(self) -> int:
        """Jobs not yet started across the tenant's queues (waiting, paused, prioritized, delayed)."""
        pipe = self.client.pipeline(transaction=False)
        for name in self.siblings:
            keys = self.conveyor_keys.queue_keys(name)
            pipe.llen(keys.wait)
            pipe.llen(keys.paused)
            pipe.zcard(keys.prioritized)
            pipe.zcard(keys.delayed)
        return int(sum(await pipe.execute()))

    async def admit(self, new_jobs: int) -> None:
        """Refuse `new_jobs` more jobs if they would exceed the waiting-jobs quota (also refreshes the payload
        limit from the quotas).

        Raises:
            QuotaExceededError: nothing should be written. UnknownTenantError: the tenant was removed.
        """
        quotas = await self.quotas()
        if quotas.max_waiting_jobs is None or new_jobs == 0:
            return
        waiting = await self.waiting_jobs()
        if waiting + new_jobs > quotas.max_waiting_jobs:
            raise QuotaExceededError(
                f"Tenant {self.tenant!r} has {waiting} job(s) waiting to run; its quota is "
                f"{quotas.max_waiting_jobs}. Wait for workers to catch up, or raise the quota."
            )

    async def add(self, job_type: str, data: Any = None, options: JobOptions | None = None) -> str:
        """`Queue.add` within the tenant's quotas."""
        await self.admit(1)
        return await super().add(job_type, data, options)

    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        """`Queue.add_bulk` within the tenant's quotas."""
        await self.admit(len(jobs))
        return await super().add_bulk(jobs)


async def admit(queue: Queue, new_jobs: int) -> None:
    """Check a tenant queue's quotas before adding `new_jobs` jobs by other means than `add` (flows, schedules);
    a no-op for other queues.

    Raises:
        QuotaExceededError / UnknownTenantError: nothing should be written.
    """
    if isinstance(queue, TenantQueue):
        await queue.admit(new_jobs)


def _per_ms(limit: RateLimit) -> float:
    return limit.max / limit.duration_ms
