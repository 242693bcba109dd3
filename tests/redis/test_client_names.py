"""Connection names as BullMQ uses them to find a queue's workers."""

from __future__ import annotations

import pytest

from conveyor.redis.client_names import bullmq_worker_name, parse_bullmq_worker_name


def test_a_worker_connection_is_named_as_a_node_bullmq_worker_names_it() -> None:
    # Node: `${prefix}:${base64(queue)}:w:${name}`
    assert bullmq_worker_name("bull", "emails", "host:12:ab12cd") == "bull:ZW1haWxz:w:host:12:ab12cd"


def test_whitespace_in_a_worker_name_is_replaced_since_setname_refuses_it() -> None:
    assert bullmq_worker_name("bull", "q", "my worker") == "bull:cQ==:w:my_worker"


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
