"""A Redis Cluster of real servers for the tests: 3 primaries and 3 replicas (or as asked), started from the same
`redis-server` binary the embedded server uses, formed with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE (no
`redis-cli` needed), on free loopback ports, in a temporary folder."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis.client import Redis as SyncRedis

from conveyor.redis.server_binary import find_redis_server

SLOTS = 16384
NODE_TIMEOUT_MS = 1000  # how long a silent primary takes to be marked failed, before its replica takes over


def free_port() -> int:
    """A free TCP port whose cluster bus port (10000 higher, so at most 55535) is free too."""
    while True:
        port = random.randint(20000, 55535)
        if _bindable(port) and _bindable(port + 10000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class ClusterNodeProcess:
    """One `redis-server --cluster-enabled yes` process."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
        ]
        log = (self.data_dir / "redis.log").open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def client(self) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye to the cluster."""
        if self.alive:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class TestCluster:
    __test__ = False  # not a test class, whatever its name

    """A running cluster: `nodes` (the first `primaries` are primaries at start, the rest their replicas)."""

    root: Path
    primaries: int = 3
    replicas_per_primary: int = 1
    nodes: list[ClusterNodeProcess] = field(default_factory=list)

    @property
    def startup_nodes(self) -> str:
        """`127.0.0.1:p1,127.0.0.1:p2,…`, as REDIS_CLUSTER_NODES takes them."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout_s: float = 30.0) -> None:
        binary = find_redis_server()
        count = self.primaries * (1 + self.replicas_per_primary)
        self.nodes = [ClusterNodeProcess(free_port(), self.root / f"node{i}") for i in range(count)]
        for node in self.nodes:
            node.start(binary)
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            _wait(lambda n=node: _pings(n), deadline, f"node :{node.port} to start")
        self._form(deadline)

    def _form(self, deadline: float) -> None:
        primaries, replicas = self.nodes[: self.primaries], self.nodes[self.primaries :]
        per = SLOTS // self.primaries
        for i, node in enumerate(primaries):
            last = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * per - 1
            with node.client() as client:
                client.execute_command("CLUSTER ADDSLOTSRANGE", i * per, last)
        with self.nodes[0].client() as first:
            for node in self.nodes[1:]:
                first.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        for node in self.nodes:
            _wait(lambda n=node: _known_nodes(n) == len(self.nodes), deadline, "every node to know every other")
        for i, node in enumerate(replicas):
            primary = primaries[i % self.primaries]
            with primary.client() as client:
                primary_id = client.execute_command("CLUSTER MYID")
            with node.client() as client:
                client.execute_command("CLUSTER REPLICATE", primary_id)
        for node in self.nodes:
            _wait(lambda n=node: _state_ok(n), deadline, f"cluster_state:ok on :{node.port}")
        for node in replicas:
            _wait(lambda n=node: _replica_in_sync(n), deadline, f"replica :{node.port} in sync")

    def primary_nodes(self) -> list[ClusterNodeProcess]:
        """The live nodes that are primaries now (after failovers too)."""
        found = []
        for node in self.nodes:
            if node.alive:
                with node.client() as client:
                    if client.info("replication").get("role") == "master":
                        found.append(node)
        return found

    def owner_of(self, key: str) -> ClusterNodeProcess:
        """The live primary serving `key`'s slot now."""
        for node in self.primary_nodes():
            with node.client() as client:
                if _serves(client, int(client.execute_command("CLUSTER KEYSLOT", key))):
                    return node
        raise AssertionError(f"no live primary serves {key!r}")

    def flush(self) -> None:
        """Empty every primary (replicas follow)."""
        for node in self.primary_nodes():
            with node.client() as client:
                client.flushall()

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Until every live node reports cluster_state:ok."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if node.alive:
                _wait(lambda n=node: _state_ok(n), deadline, f"cluster_state:ok on :{node.port}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _serves(client: SyncRedis, slot: int) -> bool:
    myid = client.execute_command("CLUSTER MYID")
    for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
        if int(start) <= slot <= int(end):
            return bool(primary[2] == myid)
    return False


def _wait(predicate: Callable[[], bool], deadline: float, what: str) -> None:
    last: Exception | None = None
    while True:
        try:
            if predicate():
                return
        except Exception as exc:  # a node still starting refuses connections, answers LOADING and the like
            last = exc
        else:
            last = None
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last error: {type(last).__name__}: {last})")
        time.sleep(0.05)


def _pings(node: ClusterNodeProcess) -> bool:
    with node.client() as client:
        return bool(client.ping())


def _known_nodes(node: ClusterNodeProcess) -> int:
    with node.client() as client:
        return len(client.execute_command("CLUSTER NODES"))  # redis-py parses it: address -> node


def _state_ok(node: ClusterNodeProcess) -> bool:
    with node.client() as client:
        info = client.execute_command("CLUSTER INFO")
        return bool(info.get("cluster_state") == "ok") if isinstance(info, dict) else "cluster_state:ok" in info


def _replica_in_sync(node: ClusterNodeProcess) -> bool:
    with node.client() as client:
        info = client.info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"
