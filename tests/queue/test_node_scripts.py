"""The Lua Conveyor runs (the pinned Python bullmq's) against each Node release of the matrix.

Every script it calls exists in that release with the same number of keys (BullMQ names a script
`<name>-<number of keys>`), but for the two known 5.x differences; and the scripts whose bodies differ from the
release's are the ones the README's "Which Lua runs, and why" measured and read. When a lock file moves to another
release, these tests name the scripts to read again.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from conveyor.redis.scripts import SCRIPT_FILES
from tests.queue.node_env import NodeBullmq

KNOWN_5X = {"moveToDelayed-11", "reprocessJob-9"}  # Node 5.81.5 has moveToDelayed-12 and reprocessJob-8
DIFFERENT_BODIES = {
    "5.81.5": {
        "addDelayedJob-6", "addParentJob-6", "addPrioritizedJob-9", "addStandardJob-9", "cleanJobsInSet-3", "drain-5",
        "moveJobFromActiveToWait-9", "moveJobsToWait-8", "moveStalledJobsToWait-9", "moveToActive-11",
        "moveToFinished-14", "obliterate-2", "pause-7", "promote-9", "removeJob-2", "retryJob-11",
        "addJobScheduler-11", "updateJobScheduler-12",
    },
    "6.7.6": {
        "addDelayedJob-6", "addParentJob-6", "addPrioritizedJob-9", "addStandardJob-9", "cleanJobsInSet-3", "drain-5",
        "getCounts-1", "moveToFinished-14", "obliterate-2", "removeJob-2", "addJobScheduler-11",
    },
}  # fmt: skip


def node_scripts(node_bullmq: NodeBullmq) -> Path:
    return node_bullmq.workdir / "node_modules" / "bullmq" / "dist" / "cjs" / "scripts"


def ours() -> set[str]:
    return {name.removesuffix(".lua") for name in SCRIPT_FILES.values()}


def body(lua: str) -> list[str]:
    """The code of a script: comments and blank lines dropped, lines stripped."""
    lua = re.sub(r"--[^\n]*", "", re.sub(r"--\[\[.*?\]\]", "", lua, flags=re.DOTALL))
    return [line.strip() for line in lua.splitlines() if line.strip()]


def node_body(path: Path) -> list[str]:
    """The Lua of one of Node bullmq's compiled script modules (a template literal, includes expanded)."""
    found = re.search(r"const content = `(.*?)`;\n", path.read_text(), re.DOTALL)
    assert found, path
    return body(found.group(1).replace("\\`", "`").replace("\\$", "$").replace("\\\\", "\\"))


def test_every_script_conveyor_runs_has_the_same_keys_in_node(node_bullmq: NodeBullmq) -> None:
    missing = {name for name in ours() if not (node_scripts(node_bullmq) / f"{name}.js").exists()}
    assert missing == (KNOWN_5X if node_bullmq.major == 5 else set())


def test_the_scripts_whose_bodies_differ_are_the_ones_measured(node_bullmq: NodeBullmq) -> None:
    pinned = resources.files("bullmq") / "commands"
    differ = {
        name
        for name in ours()
        if (node_scripts(node_bullmq) / f"{name}.js").exists()
        and body((pinned / f"{name}.lua").read_text()) != node_body(node_scripts(node_bullmq) / f"{name}.js")
    }
    assert differ == DIFFERENT_BODIES[node_bullmq.version], "read these again, then update the README's Lua notes"
