"""Planning a full index: walk the repository, drop entries of files that are gone, and list what to index;
and indexing one file so that its last save lands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.indexer.errors import NotARepositoryError
from conveyor.indexer.store import CodeIndex, IndexOutcome
from conveyor.indexer.walker import RepoFile, walk_repository

SETTLE_ROUNDS = 3  # re-index a file edited while it was being indexed, at most this many times


@dataclass(frozen=True)
class FullIndexPlan:
    """What a full index has to do: files to (re)index, how many are unchanged, which left the index, and how
    many files the walk skipped, by outcome (`binary`, `symlink`, `unreadable`, …)."""

    root: Path
    changed: list[RepoFile]
    unchanged: int
    removed: list[str]
    skipped: dict[str, int] = field(default_factory=dict)


def plan_full_index(index: CodeIndex, root: Path, *, force: bool = False) -> FullIndexPlan:
    """Walk the repository, drop index entries of files that are gone or now ignored, and list the files to
    index: new ones and ones whose size or mtime changed (all of them with `force`). The content hash decides
    in `index-file`; size and mtime only spare enqueuing files that cannot have changed."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise NotARepositoryError(root)
    skipped: Counter[str] = Counter()
    files = list(
        walk_repository(root, max_file_bytes=index.max_file_bytes, skipped=lambda _, why: skipped.update([why]))
    )
    known = index.known_files(root)
    removed = index.prune(root, {str(f.path) for f in files})
    changed = [f for f in files if force or not _same(known.get(str(f.path)), f)]
    return FullIndexPlan(root, changed, len(files) - len(changed), removed, dict(skipped))


def _same(record: Any, found: RepoFile) -> bool:
    return record is not None and record.size == found.size and record.mtime_ns == found.mtime_ns


def index_settled(index: CodeIndex, path: Path, *, force: bool = False) -> IndexOutcome:
    """Index a file and, if it was saved again while being read, once more (so the last save always lands)."""
    outcome = index.index_file(path, force=force)
    for _ in range(SETTLE_ROUNDS):
        try:
            current = path.resolve().stat().st_mtime_ns
        except (OSError, RuntimeError):  # gone, or a symlink loop: the outcome already says so
            current = None
        if outcome.mtime_ns is None or current == outcome.mtime_ns:
            break
        outcome = index.index_file(path)
    return outcome
