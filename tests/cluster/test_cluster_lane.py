"""The per-slot fast lane on a cluster: a node that answers MOVED did not run the call, so the call goes the
cluster client's way (and is done once), and the lane reconnects to the slot's owner."""

from __future__ import annotations

from conveyor import Conveyor, JobState
from tests.cluster.servers import TestCluster


async def test_a_lane_on_the_wrong_node_falls_back_then_reconnects_to_the_slots_owner(
    cluster_app: Conveyor, redis_cluster: TestCluster
) -> None:
    queue = cluster_app.queue("indexing")
    lane = queue.scripts.lane
    assert lane.usable
    owner = redis_cluster.owner_of(queue.keys.wait)
    stranger = next(node for node in redis_cluster.primary_nodes() if node.port != owner.port)
    resolve = lane._address
    assert resolve is not None

    async def wrong_then_right(refresh: bool) -> tuple[str, int]:
        return await resolve(refresh) if refresh else ("127.0.0.1", stranger.port)

    lane.close()
    lane._address = wrong_then_right
    lane._connects = 0
    first = await queue.add("x", {"n": 1})  # MOVED on the stranger: added through the cluster client instead
    second = await queue.add("x", {"n": 2})  # the lane reconnected, to the owner this time
    assert lane._wire is not None
    assert lane._wire.transport is not None
    assert lane._wire.transport.get_extra_info("peername")[1] == owner.port
    assert [await queue.state_of(job_id) for job_id in (first, second)] == [JobState.WAITING] * 2
    assert (await queue.counts()).waiting == 2
