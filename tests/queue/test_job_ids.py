"""Job ids made by the producer: unique, fixed before the first try, and in the order they were made."""

from __future__ import annotations

import os
import re

from conveyor.queue.job import _JobIds, new_job_id


def test_ids_are_32_hex_digits_unique_and_count_up_in_the_order_they_were_made() -> None:
    ids = [new_job_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", job_id) for job_id in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_ids_keep_counting_up_within_one_millisecond_and_when_the_clock_steps_back() -> None:
    times = iter([1000.0] * 3 + [999.0] * 3 + [1000.5])
    ids = _JobIds(clock=lambda: next(times))
    made = [ids.make() for _ in range(7)]
    assert made == sorted(made)
    assert len(set(made)) == 7
    assert made[-1].startswith(f"{1_000_500:012x}0000")


def test_an_id_is_never_all_digits_even_when_its_time_and_sequence_are() -> None:
    ids = _JobIds(clock=lambda: 0x123456789012 / 1000)  # a time whose hex has no letter
    assert not any(ids.make().isdigit() for _ in range(2_000))


def test_a_forked_child_never_makes_the_random_digits_its_parent_makes_next() -> None:
    """The random digits are read from the OS ahead of use: a child that kept its parent's would repeat them, and
    with the same millisecond and sequence its add would be a no-op on the parent's job."""
    new_job_id()  # the parent has random bytes read ahead
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id's random part, to the parent
        try:
            os.write(write_end, new_job_id()[16:].encode())
        finally:
            os._exit(0)
    os.close(write_end)
    parents = new_job_id()[16:]
    with os.fdopen(read_end, "rb") as pipe:
        childs = pipe.read().decode()
    os.waitpid(pid, 0)
    assert len(childs) == len(parents) == 16
    assert childs != parents
