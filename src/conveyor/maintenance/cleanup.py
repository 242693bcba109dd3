"""Deleting old temporary files, only ever inside one allowed root folder.

Every candidate is checked on its own: the folder to clean must be the root or inside it (after resolving
symlinks), folders are walked without following symlinks, a matching symlink is removed as a link (its target
is never touched), and only files whose modification time is older than the cutoff go.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from conveyor.maintenance.errors import PathOutsideRootError, UnsafeCleanupError

log = logging.getLogger(__name__)


@dataclass
class CleanupReport:
    """What a cleanup removed (or, in a dry run, would remove)."""

    directory: str
    pattern: str
    removed: list[str] = field(default_factory=list)
    kept: int = 0
    freed_bytes: int = 0
    dry_run: bool = False


def inside(path: Path, root: Path) -> bool:
    """True when `path` is `root` or below it (both already resolved)."""
    return path == root or root in path.parents


def checked_directory(root: Path, directory: str | Path | None) -> Path:
    """The folder to clean, resolved, or an error when it is not inside the allowed root."""
    root = root.resolve()
    if root == Path(root.anchor):
        raise UnsafeCleanupError(f"Refusing to use the file system root {root} as CONVEYOR_CLEANUP_ROOT.")
    target = root if directory is None else Path(directory).expanduser()
    resolved = (target if target.is_absolute() else root / target).resolve()
    if not inside(resolved, root):
        raise PathOutsideRootError(directory or resolved, root)
    return resolved


def checked_pattern(pattern: str) -> str:
    """A glob relative to the folder (`*.tmp`, `uploads/*.part`); absolute ones and `..` are refused."""
    pure = PurePosixPath(pattern)
    if not pattern or pure.is_absolute() or ".." in pure.parts:
        raise UnsafeCleanupError(f"Invalid pattern {pattern!r}: use a relative glob such as '*.tmp', without '..'.")
    return pattern


def cleanup_temp_files(
    root: Path, directory: str | Path | None, pattern: str, older_than_s: float, *, now: float, dry_run: bool = False
) -> CleanupReport:
    """Delete files under `directory` (default: the root) matching `pattern` and last modified more than
    `older_than_s` seconds before `now`.

    A pattern without `/` matches file names at any depth; one with `/` matches paths relative to the folder.

    Raises:
        PathOutsideRootError: the folder is outside `root`; nothing is deleted.
        UnsafeCleanupError: the pattern or the root is unsafe; nothing is deleted.
    """
    folder = checked_directory(root, directory)
    pattern = checked_pattern(pattern)
    report = CleanupReport(str(folder), pattern, dry_run=dry_run)
    if not folder.is_dir():
        return report
    cutoff = now - older_than_s
    for current, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(current) / name
            relative = path.relative_to(folder).as_posix()
            if not fnmatch.fnmatch(relative if "/" in pattern else name, pattern):
                continue
            _consider(path, root.resolve(), cutoff, report)
    return report


def _consider(path: Path, root: Path, cutoff: float, report: CleanupReport) -> None:
    try:
        info = path.lstat()
        if not inside(path.parent.resolve(), root):  # belt and braces: a folder swapped for a symlink meanwhile
            raise PathOutsideRootError(path, root)
        if info.st_mtime >= cutoff:
            report.kept += 1
            return
        if not report.dry_run:
            path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
        report.kept += 1
        return
    report.removed.append(str(path))
    report.freed_bytes += info.st_size
