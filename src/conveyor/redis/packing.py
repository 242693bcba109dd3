"""How commands are packed and replies decoded, so that bytes that are not UTF-8 never break a connection.

Clients decode replies as UTF-8 with `surrogateescape`: a job hash written by another tool with bytes that are
not UTF-8 reads back as a string holding lone surrogates (U+DC80..U+DCFF, which valid UTF-8 never yields)
instead of an error that would drop the connection with every reply queued on it. Such a string is packed back
as the same bytes, so reading and writing it round-trips. `has_undecodable` tells the worker a field was not
UTF-8, so it fails that one job instead of running it. `pack_with_hiredis` gives a client's asyncio connections
hiredis' C packer.
"""

from __future__ import annotations

import re
from typing import Any

import hiredis
from redis.asyncio.client import Redis
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import UnixDomainSocketConnection as AsyncUnixDomainSocketConnection
from redis.utils import HIREDIS_AVAILABLE

ENCODING = "utf-8"
ENCODING_ERRORS = "surrogateescape"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def pack_command(args: tuple[Any, ...]) -> bytes:
    """One command in RESP with hiredis' C packer; strings holding escaped bytes are packed as those bytes."""
    try:
        packed: bytes = hiredis.pack_command(args)
    except UnicodeEncodeError:  # only for strings read back from bytes that were not UTF-8
        raw: tuple[Any, ...] = tuple(
            arg.encode(ENCODING, ENCODING_ERRORS) if isinstance(arg, str) else arg for arg in args
        )
        packed = hiredis.pack_command(raw)
    return packed


def has_undecodable(text: str) -> bool:
    """Whether `text` came from bytes that are not UTF-8 (it holds escaped bytes)."""
    return _ESCAPED_BYTE.search(text) is not None


def first_undecodable(text: str) -> tuple[int, int] | None:
    """(character offset, byte value) of the first escaped byte in `text`, or None."""
    if text.isascii():  # most job hashes: nothing to search
        return None
    found = _ESCAPED_BYTE.search(text)
    return None if found is None else (found.start(), ord(found.group()) - 0xDC00)


def _hiredis_pack(args: tuple[Any, ...]) -> list[bytes]:
    # Like redis-py's packer, split a multi-word command name ("CLIENT INFO") into its words.
    if isinstance(args[0], str) and " " in args[0]:
        args = (*args[0].split(), *args[1:])
    return [pack_command(args)]


class _HiredisPackingConnection(AsyncConnection):
    """A TCP connection that packs commands with hiredis' C packer (same bytes on the wire)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_pack(args)


class _HiredisPackingUnixConnection(AsyncUnixDomainSocketConnection):
    """A unix-socket connection that packs commands with hiredis' C packer."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_pack(args)


def pack_with_hiredis(client: Redis) -> None:
    """redis-py's sync connections pack commands with hiredis when it is installed, its asyncio ones in Python.
    Every job costs a script call with a dozen arguments, so the worker's and producer's hot path uses the C
    packer too (TLS and Sentinel connections keep redis-py's own)."""
    pool = client.connection_pool
    swap = {AsyncConnection: _HiredisPackingConnection, AsyncUnixDomainSocketConnection: _HiredisPackingUnixConnection}
    if HIREDIS_AVAILABLE and pool.connection_class in swap:
        pool.connection_class = swap[pool.connection_class]
