"""The per-user registry of running embedded servers: written by the process that starts one, cleaned by readers."""

from __future__ import annotations

from pathlib import Path

from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.registry import RegisteredServer, ServerRegistry


def test_a_started_server_is_registered_until_it_stops(tmp_path: Path) -> None:
    registry = ServerRegistry(tmp_path / "state")
    server = EmbeddedRedis(tmp_path / "data", registry=registry)
    server.start()
    try:
        assert server.pid is not None
        assert registry.running() == [RegisteredServer(server.data_dir, server.pid)]
    finally:
        server.stop()
    assert registry.running() == []


def test_a_killed_server_is_dropped_from_the_registry_when_it_is_read(tmp_path: Path) -> None:
    registry = ServerRegistry(tmp_path / "state")
    server = EmbeddedRedis(tmp_path / "data", registry=registry)
    server.start()
    server.kill()  # as a crash would: no chance to unregister
    assert registry.running() == []
    assert "data" not in registry.path.read_text()


def test_an_attached_handle_does_not_register_or_create_anything(tmp_path: Path) -> None:
    registry = ServerRegistry(tmp_path / "state")
    assert EmbeddedRedis.attach(tmp_path / "nothing") is None
    assert not (tmp_path / "nothing").exists()
    with EmbeddedRedis(tmp_path / "data", registry=registry) as owner:
        attached = EmbeddedRedis.attach(owner.data_dir)
        assert attached is not None
        assert (attached.owner, attached.pid, attached.url) == (False, owner.pid, owner.url)
        assert len(registry.running()) == 1
