"""Connection names as BullMQ uses them to find a queue's workers."""

from __future__ import annotations

import pytest

from conveyor.redis.client_names import bullmq_worker_name, is_conveyor_worker, parse_bullmq_worker_name


def test_a_worker_connection_is_named_as_a_node_bullmq_worker_names_it_marked_as_conveyors() -> None:
    # Node: `${prefix}:${base64(queue)}:w:${name}`
    assert bullmq_worker_name("bull", "emails", "host:12:ab12cd") == "bull:ZW1haWxz:w:conveyor@host:12:ab12cd"


def test_whitespace_in_a_worker_name_is_replaced_since_setname_refuses_it() -> None:
    assert bullmq_worker_name("bull", "q", "my worker") == "bull:cQ==:w:conveyor@my_worker"


def test_conveyors_own_connections_are_told_from_node_workers() -> None:
    parsed = parse_bullmq_worker_name("bull", bullmq_worker_name("bull", "q", "host:1:ab"))
    assert parsed == ("q", "conveyor@host:1:ab")
    assert is_conveyor_worker(parsed[1])
    assert not is_conveyor_worker("node-a")


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("bull:ZW1haWxz:w:host:12:ab", ("emails", "host:12:ab")),
        ("bull:ZW1haWxz", ("emails", "")),  # an unnamed Node worker
        ("bull:ZW1haWxz:qe", None),  # QueueEvents
        ("conveyor-blocking", None),
        ("other:ZW1haWxz:w:x", None),
        ("bull:not base64:w:x", None),
        ("bull:/w==:w:x", None),  # not UTF-8
    ],
)
def test_only_names_bullmq_counts_as_workers_are_parsed(name: str, parsed: tuple[str, str] | None) -> None:
    assert parse_bullmq_worker_name("bull", name) == parsed
