"""The single-server feature suites, run again on the cluster (see `app` in conftest.py): each test keeps its
name, prefixed with its suite. Tests that need one server (a URL, a raw client, a kill) skip themselves; those
that cannot hold on a cluster by design are marked here with the reason. Not adopted: the tenant isolation suite,
whose shared fixture builds a flow across queues (refused on a cluster); tenants are covered by `test_tenants`."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from conveyor.queue.flows import FlowError
from tests.advanced import (
    test_dead_letter_alerts,
    test_dead_letters,
    test_flows,
    test_schedules,
    test_tenants,
)
from tests.api import test_mutations, test_pagination, test_queries, test_subscriptions
from tests.indexer import test_index_jobs
from tests.observability import test_metrics
from tests.queue import test_adding, test_events, test_inspecting, test_job_ids, test_managing, test_options
from tests.worker import test_hooks, test_limits, test_processing, test_registry, test_retries, test_scheduling

CROSS_QUEUE_FLOWS = [
    "test_parent_runs_after_all_children_across_queues_and_reads_their_results",
    "test_children_and_parent_are_visible_before_anything_ran",
    "test_chain_runs_steps_in_order_each_receiving_the_previous_result",
    "test_a_failing_step_fails_the_rest_of_the_chain_by_default",
    "test_continue_runs_the_next_step_and_shows_the_failure",
    "test_ignore_lets_the_parent_run_after_its_other_children",
    "test_wait_keeps_the_parent_waiting_until_the_failed_child_is_retried",
    "test_a_refused_payload_writes_nothing_of_the_flow",
]
# A flow across queues is refused on a cluster with a FlowError that says why (tests/cluster/test_flows.py runs
# the same flows within one queue).
REFUSED = {name: FlowError for name in CROSS_QUEUE_FLOWS}
# Tests whose promise differs on a cluster, each checked there by a test of its own.
DIFFERENT_ON_CLUSTER = {
    "test_each_tenant_sees_only_its_own_jobs": "asserts the untagged key layout (tests/cluster/test_cluster_basics.py)",
}


def _adopt(module: ModuleType) -> None:
    suite = module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    for name, test in vars(module).items():
        if name.startswith("test_") and callable(test) and getattr(test, "__module__", "") == module.__name__:
            refused = REFUSED.get(name) if suite == "flows" else None
            adopted: Callable[..., Any] = test
            if name in DIFFERENT_ON_CLUSTER:
                adopted = pytest.mark.skip(reason=DIFFERENT_ON_CLUSTER[name])(test)
            elif refused is not None:
                adopted = pytest.mark.xfail(raises=refused, strict=True, reason="cross-queue flow on a cluster")(test)
            globals()[f"test_{suite}__{name.removeprefix('test_')}"] = adopted


for _module in (
    test_adding,
    test_job_ids,
    test_options,
    test_inspecting,
    test_processing,
    test_hooks,
    test_limits,
    test_registry,
    test_retries,
    test_scheduling,
    test_managing,
    test_events,
    test_flows,
    test_schedules,
    test_dead_letters,
    test_tenants,
    test_queries,
    test_mutations,
    test_pagination,
    test_subscriptions,
    test_index_jobs,
    test_dead_letter_alerts,
    test_metrics,
):
    _adopt(_module)
