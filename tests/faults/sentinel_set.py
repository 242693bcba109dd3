"""A Redis master, its replica and three Sentinels, all started from the `redis-server` binary the other
fixtures use, for failover tests. Servers run without persistence (the loss under test is replication's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.client import Redis as SyncRedis
from redis.exceptions import RedisError

from conveyor.redis.server_binary import find_redis_server
from tests.support import free_port

MASTER_NAME = "mymaster"
# A master silent this long is subjectively down. 1 s saw false alarms on a loaded 2-core machine: a master
# promoted a moment before was marked down and failed over again, to the old one back empty.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 5000
RELAY_FAILOVER_TIMEOUT_MS = 120_000  # see SentinelSet


@dataclass
class Node:
    """One `redis-server` process (a data server or a Sentinel) with its config, log and port."""

    name: str
    port: int
    config: Path
    log: Path
    sentinel: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until it answers PING (10 s at most)."""
        args = [find_redis_server(), str(self.config), *(["--sentinel"] if self.sentinel else [])]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text() if self.log.exists() else ''}")
            try:
                with self.client() as client:
                    client.ping()
                return
            except RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within 10 s")

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye to replicas or clients."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 5 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> SyncRedis:
        """A direct client of this node (not through Sentinel)."""
        return SyncRedis(host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True)


@dataclass
class SentinelSet:
    """1 master, 1 replica, 3 Sentinels (quorum 2) in `work`, on free loopback ports.

    With `relay`, the replica replicates through a TCP relay process (`tests.faults.tcp_relay`) that
    `freeze_replication` stops and `cut_replication` kills: a replica that lags by as long as the test wants.
    Sentinel then gets a long `failover-timeout`, or it would soon point the replica straight at the master
    (`+fix-slave-config`: the replica names the relay as its master, not the address Sentinel knows).
    """

    work: Path
    relay: bool = False
    nodes: dict[str, Node] = field(default_factory=dict)
    relay_process: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelSet:
        """Start the master, the replica (and relay), then the Sentinels; return once the replica is in sync."""
        master = self._server("redis-a", None)
        master.start()
        upstream = master.port
        if self.relay:
            upstream = free_port()
            relay = [sys.executable, "-m", "tests.faults.tcp_relay", str(upstream), str(master.port)]
            self.relay_process = subprocess.Popen(relay, cwd=Path(__file__).resolve().parents[2])
        replica = self._server("redis-b", upstream)
        replica.start()
        for index in range(3):
            self._sentinel(f"sentinel-{index}", master.port).start()
        self.wait_until_replicated(master, 1)
        return self

    def freeze_replication(self) -> None:
        """Stop the relay: from now on the replica receives nothing (its lag grows)."""
        assert self.relay_process is not None
        self.relay_process.send_signal(signal.SIGSTOP)

    def cut_replication(self) -> None:
        """Kill the relay: what it held back never reaches the replica."""
        if self.relay_process is not None and self.relay_process.poll() is None:
            self.relay_process.kill()
            self.relay_process.wait(5)

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The Sentinels' addresses, as `REDIS_SENTINELS` takes them."""
        return [("127.0.0.1", node.port) for node in self.nodes.values() if node.sentinel]

    @property
    def sentinels_setting(self) -> str:
        """`REDIS_SENTINELS` for this set."""
        return ",".join(f"{host}:{port}" for host, port in self.sentinels)

    def master(self) -> Node:
        """The node Sentinel currently names master."""
        port = self.master_port()
        return next(node for node in self.nodes.values() if node.port == port and not node.sentinel)

    def master_port(self) -> int:
        """The master's port as the first Sentinel that answers names it."""
        ports = self.master_ports()
        if not ports:
            raise RuntimeError("no Sentinel answered")
        return ports[0]

    def master_ports(self) -> list[int]:
        """The master's port as each Sentinel that answers names it (they differ while a failover spreads)."""
        ports = []
        for host, port in self.sentinels:
            try:
                with SyncRedis(host=host, port=port, socket_timeout=1, decode_responses=True) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
                if address:
                    ports.append(int(address[1]))
            except RedisError:
                continue
        return ports

    def failed_over_from(self, old: Node) -> bool:
        """True once every Sentinel names one master other than `old` and sees it up (the failover settled)."""
        views = []
        for host, port in self.sentinels:
            try:
                with SyncRedis(host=host, port=port, socket_timeout=1, decode_responses=True) as sentinel:
                    views.append(sentinel.sentinel_master(MASTER_NAME))
            except RedisError:
                return False
        ports = {int(view["port"]) for view in views}
        return len(ports) == 1 and old.port not in ports and all(view["flags"] == "master" for view in views)

    def replica_of(self, master: Node) -> Node:
        """The data node that is not `master`."""
        return next(node for node in self.nodes.values() if not node.sentinel and node is not master)

    def wait_until_replicated(self, master: Node, replicas: int, timeout: float = 20) -> None:
        """Until `master` reports `replicas` replicas online and caught up (and Sentinels have seen them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with master.client() as client:
                    info = client.info("replication")
                online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
                caught_up = [v for v in online if v.get("state") == "online"]
                if len(caught_up) >= replicas and self._sentinels_know(replicas):
                    return
            except RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{master.name} did not get {replicas} replica(s) within {timeout} s")

    def _sentinels_know(self, replicas: int) -> bool:
        for host, port in self.sentinels:
            with SyncRedis(host=host, port=port, socket_timeout=1, decode_responses=True) as sentinel:
                known = sentinel.sentinel_slaves(MASTER_NAME)
                if sum(1 for r in known if "s_down" not in r.get("flags", "")) < replicas:
                    return False
        return True

    def stop(self) -> None:
        """Stop every process of the set, whatever state a test left it in."""
        self.cut_replication()
        for node in self.nodes.values():
            node.stop()

    def _server(self, name: str, master_port: int | None) -> Node:
        port = free_port()
        config = self.work / f"{name}.conf"
        data = self.work / name
        data.mkdir(exist_ok=True)
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {data}",
            f"logfile {self.work / f'{name}.log'}",
            'save ""',
            "appendonly no",
            "maxmemory-policy noeviction",
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
        ]
        if master_port is not None:
            lines.append(f"replicaof 127.0.0.1 {master_port}")
        config.write_text("\n".join(lines) + "\n")
        node = Node(name, port, config, self.work / f"{name}.log")
        self.nodes[name] = node
        return node

    def _sentinel(self, name: str, master_port: int) -> Node:
        port = free_port()
        config = self.work / f"{name}.conf"  # Sentinel rewrites its config: a file of its own, writable
        failover_timeout = RELAY_FAILOVER_TIMEOUT_MS if self.relay else FAILOVER_TIMEOUT_MS
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.work}\nlogfile {self.work / f'{name}.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {failover_timeout}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        node = Node(name, port, config, self.work / f"{name}.log", sentinel=True)
        self.nodes[name] = node
        return node


@pytest.fixture(name="sentinel_set")
def sentinel_set_fixture(tmp_path: Path) -> Iterator[SentinelSet]:
    """A started master, replica and three Sentinels (`mymaster`), stopped after the test. A test module that
    imports `sentinel_set_fixture` has the fixture `sentinel_set`."""
    work = tmp_path / "sentinel"
    work.mkdir()
    servers = SentinelSet(work).start()
    yield servers
    servers.stop()
