"""A tenant's view of an application: the same handlers and settings, its own namespace of queues.

`TenantConveyor(app, "acme")` behaves like `app` — `add`, `queue`, `worker`, `workers` — but every queue it
hands out lives under the tenant's key prefix and enforces the tenant's quotas. It shares the app's connection
(connect the app; closing the view leaves the app's connection open). The GraphQL API gives a tenant's token
exactly this view, so no resolver can reach another tenant's keys.

    acme = TenantConveyor(app, "acme")
    await acme.add("indexing", "index-file", {"filePath": "src/index.ts"})
    await acme.worker().run()  # serves acme's queues only
"""

from __future__ import annotations

from conveyor.app.conveyor import Conveyor
from conveyor.queue.queue import Queue
from conveyor.queue.tenants import TenantQueue, TenantStore, check_tenant_id
from conveyor.redis.replication import ReplicaWait


class TenantConveyor(Conveyor):
    """An application seen through one tenant's namespace (see the module docstring)."""

    def __init__(self, root: Conveyor, tenant: str) -> None:
        super().__init__(root.settings)
        self.root = root
        self.tenant = check_tenant_id(tenant)
        # Shared with the root app, so handlers and hooks added to it later apply here too.
        self.queue_settings = root.queue_settings
        self.handlers = root.handlers
        self.hooks = root.hooks
        self.producer_hooks = root.producer_hooks
        self._adopt()

    def _adopt(self) -> None:
        if self.root.target is not None:
            self._client = self.root.client
            self.target = self.root.target
            self.health = self.root.health

    @property
    def prefix(self) -> str:
        """The key prefix of the tenant's namespace."""
        return self.tenants.prefix_of(self.tenant)

    @property
    def tenants(self) -> TenantStore:
        """The deployment's tenant store."""
        return TenantStore(self.client, self.settings.conveyor_prefix)

    async def connect(self) -> None:
        """Connect the root app (if it is not yet) and share its connection."""
        await self.root.connect()
        self._adopt()

    async def close(self) -> None:
        """Forget this view's queues; the root app's connection stays open."""
        self._client = None
        self._queues.clear()

    def queue(self, name: str) -> Queue:
        """The tenant's queue of that name (a `TenantQueue`, enforcing the tenant's quotas)."""
        self._check_queue(name)
        if name not in self._queues:
            self._queues[name] = TenantQueue(
                self.client,
                name,
                store=self.tenants,
                tenant=self.tenant,
                siblings=self.queue_names,
                prefix=self.prefix,
                defaults=self.queue_settings[name],
                max_payload_bytes=self.settings.conveyor_max_payload_bytes,
                producer_hooks=self.producer_hooks,
                replica_wait=ReplicaWait.from_settings(self.settings),
            )
        return self._queues[name]
