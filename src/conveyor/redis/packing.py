"""How commands are packed and replies decoded, so that bytes that are not UTF-8 never break a connection.

Clients decode replies as UTF-8 with `surrogateescape`: a job hash written by another tool with bytes that are
not UTF-8 reads back as a string holding lone surrogates (U+DC80..U+DCFF, which valid UTF-8 never yields)
instead of an error that would drop the connection with every reply queued on it. Such a string is packed back
as the same bytes, so reading and writing it round-trips. `has_undecodable` tells the worker a field was not
UTF-8, so it fails that one job instead of running it.
"""

from __future__ import annotations

import re
from typing import Any

import hiredis

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
    found = _ESCAPED_BYTE.search(text)
    return None if found is None else (found.start(), ord(found.group()) - 0xDC00)
