"""Tenants in the API: a tenant's token gets the tenant's view of the app and of the event streams.

`ApiContext.app` and `ApiContext.hub` return these views for a tenant's caller, so every resolver — those that
exist and those to come — reads and writes the tenant's namespace only, without checking tenants itself. The
views are made once per tenant and server, and the event hubs closed with the server.
"""

from __future__ import annotations

from conveyor.app import Conveyor
from conveyor.app.tenants import TenantConveyor
from conveyor.queue.events import EventHub


class TenantViews:
    """The tenants' views of one server's app and event hub, made on first use."""

    def __init__(self) -> None:
        self._apps: dict[str, TenantConveyor] = {}
        self._hubs: dict[str, EventHub] = {}

    def app(self, root: Conveyor, tenant: str) -> Conveyor:
        """The tenant's view of the app (sharing its connection)."""
        view = self._apps.get(tenant)
        if view is None:
            view = self._apps[tenant] = TenantConveyor(root, tenant)
        return view

    def hub(self, root_hub: EventHub, root: Conveyor, tenant: str) -> EventHub:
        """An event hub reading the tenant's queues' streams."""
        hub = self._hubs.get(tenant)
        if hub is None:
            prefix = TenantConveyor(root, tenant).prefix
            hub = self._hubs[tenant] = EventHub(root_hub.client, root_hub.make_blocking_client, prefix)
        return hub

    async def close(self) -> None:
        """Stop the tenants' event readers (with the server)."""
        hubs = list(self._hubs.values())
        self._hubs.clear()
        self._apps.clear()
        for hub in hubs:
            await hub.close()
