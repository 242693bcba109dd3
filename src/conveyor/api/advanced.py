"""The parts of the schema beyond the queue basics (dead letters, flows, schedules, tenants, code search,
housekeeping and Redis info), merged
into `Query` and `Mutation` by `conveyor.api.schema`."""

from __future__ import annotations

from conveyor.api.code import CodeQuery
from conveyor.api.dlq import DeadLetterMutation, DeadLetterQuery
from conveyor.api.flows import FlowMutation
from conveyor.api.housekeeping import HousekeepingMutation, HousekeepingQuery
from conveyor.api.schedules import ScheduleMutation, ScheduleQuery
from conveyor.api.tenants import TenantMutation, TenantQuery

QUERIES: tuple[type, ...] = (DeadLetterQuery, ScheduleQuery, TenantQuery, CodeQuery, HousekeepingQuery)
MUTATIONS: tuple[type, ...] = (DeadLetterMutation, FlowMutation, ScheduleMutation, TenantMutation, HousekeepingMutation)
