"""The command line against a cluster (REDIS_CLUSTER_NODES): add, show, list and count jobs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli


def test_cli_adds_shows_lists_and_counts_jobs_on_a_cluster(cluster_nodes: str, tmp_path: Path) -> None:
    cli = Cli({"REDIS_CLUSTER_NODES": cluster_nodes}, tmp_path)
    job_id = cli.invoke("add", "background", "echo", '{"marker": "xyzzy"}').stdout.strip()
    delayed = cli.invoke("add", "indexing", "echo", "--delay-ms", "60000").stdout.strip()
    assert "xyzzy" in cli.invoke("job", "background", job_id).stdout
    listed = json.loads(cli.invoke("jobs", "indexing", "--state", "delayed", "--json").stdout)
    assert [job["id"] for job in listed] == [delayed]
    stats = json.loads(cli.invoke("stats", "--json").stdout)
    assert stats["queues"]["background"]["waiting"] == 1
    assert stats["queues"]["indexing"]["delayed"] == 1
