"""The server check on a cluster: version and eviction policy read from the cluster, no false warnings."""

from __future__ import annotations

from conveyor import Conveyor


async def test_server_check_reads_version_and_policy_from_a_cluster(cluster_app: Conveyor) -> None:
    health = cluster_app.health
    assert health is not None
    assert health.version is not None
    assert health.version.startswith(("7.", "8."))
    assert health.eviction_policy == "noeviction"
    assert not health.degraded
    assert health.warnings == ()
