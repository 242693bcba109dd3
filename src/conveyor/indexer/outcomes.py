"""How indexing one file can end. Every per-file problem is an outcome, recorded and counted, never an
exception that a retry could fix: the file system does not change because a job runs again.

- `indexed` (content re-parsed and stored), `unchanged` (same content hash: nothing re-parsed);
- `vanished`: the file was deleted before it could be read (its entry leaves the index);
- skipped, not indexed: `binary`, `too-large`, `empty`, `minified` (a bundle with very long lines), `symlink`
  (links are not followed: they may leave the repository) and `not-a-file` (a folder, socket, device);
- failures: `unreadable` (permissions, I/O errors) and `symlink-loop`.
"""

from __future__ import annotations

import errno

INDEXED, UNCHANGED, VANISHED = "indexed", "unchanged", "vanished"
BINARY, TOO_LARGE, EMPTY, MINIFIED, SYMLINK, NOT_A_FILE = (
    "binary",
    "too-large",
    "empty",
    "minified",
    "symlink",
    "not-a-file",
)
UNREADABLE, SYMLINK_LOOP = "unreadable", "symlink-loop"
SKIPPED = frozenset({BINARY, TOO_LARGE, EMPTY, MINIFIED, SYMLINK, NOT_A_FILE})
FAILURES = frozenset({UNREADABLE, SYMLINK_LOOP})
_BY_ERRNO = {
    errno.ENOENT: VANISHED,
    errno.ENOTDIR: VANISHED,
    errno.ELOOP: SYMLINK_LOOP,
    errno.EISDIR: NOT_A_FILE,
    errno.EACCES: UNREADABLE,
    errno.EPERM: UNREADABLE,
}


def outcome_of_error(exc: OSError | RuntimeError) -> str:
    """The outcome a file-system error means (Python 3.11's `Path.resolve` reports a loop as RuntimeError)."""
    if isinstance(exc, RuntimeError):
        return SYMLINK_LOOP
    return _BY_ERRNO.get(exc.errno or 0, UNREADABLE)
