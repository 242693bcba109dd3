"""The Lua Conveyor runs (the pinned Python bullmq's) keeps the KEYS contract of each Node release of the matrix:
every script it calls exists in that release with the same number of keys (BullMQ names a script
`<name>-<number of keys>`), but for the two known 5.x differences the README's "Which Lua runs" names."""

from __future__ import annotations

from conveyor.redis.scripts import SCRIPT_FILES
from tests.queue.node_env import NodeBullmq

KNOWN_5X = {"moveToDelayed-11", "reprocessJob-9"}  # Node 5.81.5 has moveToDelayed-12 and reprocessJob-8


def test_every_script_conveyor_runs_has_the_same_keys_in_node(node_bullmq: NodeBullmq) -> None:
    scripts = node_bullmq.workdir / "node_modules" / "bullmq" / "dist" / "cjs" / "scripts"
    ours = {name.removesuffix(".lua") for name in SCRIPT_FILES.values()}
    missing = {name for name in ours if not (scripts / f"{name}.js").exists()}
    assert missing == (KNOWN_5X if node_bullmq.major == 5 else set())
