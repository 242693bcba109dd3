"""`pack`: the MessagePack of BullMQ's packed script arguments, from one reused Packer per thread."""

from __future__ import annotations

import msgpack
import pytest

from conveyor.redis.scripts import pack

VALUE = {"token": "t", "keepJobs": {"count": -1}, "attempts": 3, "name": "w\u00e9", "blob": b"\x00\xff"}


def test_pack_is_what_msgpack_packs_and_each_call_starts_afresh() -> None:
    expected = msgpack.packb(VALUE, use_bin_type=True)
    assert pack(VALUE) == expected
    assert pack(VALUE) == expected  # nothing of the first call is left in the reused Packer
    assert msgpack.unpackb(pack(VALUE), raw=False) == VALUE


@pytest.mark.parametrize("bad", [[1, object()], ["ok", "\ud800"]], ids=["not-packable", "lone-surrogate"])
def test_a_value_that_fails_to_pack_leaves_nothing_behind_for_the_next(bad: list[object]) -> None:
    with pytest.raises((TypeError, UnicodeEncodeError)):
        pack(bad)
    assert pack([2]) == msgpack.packb([2])
