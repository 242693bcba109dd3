"""Errors of the maintenance tasks; none of them is worth retrying."""

from __future__ import annotations

from pathlib import Path

from conveyor.app import NonRetryableError


class PathOutsideRootError(NonRetryableError):
    """`cleanup-temp-files` was asked to delete outside its allowed root."""

    def __init__(self, path: Path | str, root: Path) -> None:
        super().__init__(
            f"Refusing to clean {path}: it is outside the allowed root {root}. Clean a folder inside it, or set "
            "CONVEYOR_CLEANUP_ROOT to the folder temporary files live in."
        )


class UnsafeCleanupError(NonRetryableError):
    """The cleanup request is unsafe whatever the root (a pattern that climbs out, the file system root)."""
