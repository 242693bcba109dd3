"""Walking a repository the way git sees it: `.gitignore` files (nested ones too) and `.git/info/exclude`
are honoured, version-control and tool folders are skipped, and binaries and huge files are left out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from conveyor.indexer.outcomes import BINARY, EMPTY, NOT_A_FILE, SYMLINK, TOO_LARGE, outcome_of_error

DEFAULT_MAX_FILE_BYTES = 1_000_000
SNIFF_BYTES = 8192
# Skipped even without a .gitignore: version control, dependency and tool caches, Conveyor's own data.
ALWAYS_SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".conveyor",
    }
)
_BINARY_EXTENSION_LIST = (
    ".png .jpg .jpeg .gif .bmp .ico .webp .pdf .zip .gz .tgz .bz2 .xz .7z .tar .jar .war .class .so .dll "
    ".dylib .exe .o .a .pyc .pyo .whl .egg .woff .woff2 .ttf .otf .eot .mp3 .mp4 .wav .mov .avi .sqlite "
    ".db .bin .dat .pkl .npy .npz .parquet"
)
BINARY_EXTENSIONS = frozenset(_BINARY_EXTENSION_LIST.split(" "))


@dataclass(frozen=True, slots=True)
class RepoFile:
    """A file the indexer should read: its absolute path, path inside the repository, size and mtime."""

    path: Path
    relative: str
    size: int
    mtime_ns: int


def absolute(path: str | Path) -> Path:
    """`path` made absolute (with `~` expanded) without touching the file system, so that a job names the
    same file whichever directory its worker runs in."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def is_binary(head: bytes) -> bool:
    """True when the first bytes of a file look binary (a NUL byte, as git decides)."""
    return b"\0" in head[:SNIFF_BYTES]


def looks_indexable(path: Path, size: int, max_file_bytes: int) -> bool:
    """Cheap checks before reading: not a known binary extension, not empty, not larger than the limit."""
    return skip_reason(path, size, max_file_bytes) is None


def skip_reason(path: Path, size: int, max_file_bytes: int) -> str | None:
    """Why a file is not read, from its name and size alone (`binary`, `empty`, `too-large`), or None."""
    if path.suffix.lower() in BINARY_EXTENSIONS:
        return BINARY
    if size <= 0:
        return EMPTY
    return TOO_LARGE if size > max_file_bytes else None


class IgnoreRules:
    """The ignore rules of one repository root, read lazily per directory and cached.

    Deeper `.gitignore` files take precedence over shallower ones, and a negation (`!keep.py`) re-includes
    a file, as in git. A path inside an ignored directory is ignored.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._specs: dict[Path, GitIgnoreSpec | None] = {}
        exclude = self.root / ".git" / "info" / "exclude"
        self._root_extra = _read_spec(exclude)

    def _spec(self, directory: Path) -> GitIgnoreSpec | None:
        if directory not in self._specs:
            self._specs[directory] = _read_spec(directory / ".gitignore")
        return self._specs[directory]

    def matches(self, path: Path, is_dir: bool) -> bool:
        """Whether `path` itself (not its ancestors) is ignored by the rules of the folders above it."""
        if is_dir and path.name in ALWAYS_SKIPPED_DIRS:
            return True
        directory = path.parent
        while True:
            spec = self._spec(directory)
            for candidate in (spec, self._root_extra if directory == self.root else None):
                if candidate is None:
                    continue
                relative = path.relative_to(directory).as_posix() + ("/" if is_dir else "")
                decision = candidate.check_file(relative).include
                if decision is not None:
                    return decision
            if directory == self.root or directory == directory.parent:
                return False
            directory = directory.parent

    def ignored(self, path: Path) -> bool:
        """Whether a path is ignored, itself or through one of its folders (for watch events)."""
        try:
            path = path.resolve()
            parts = path.relative_to(self.root).parts
        except (ValueError, OSError, RuntimeError):  # outside the root, or a symlink loop: not ours to index
            return True
        current = self.root
        for index, part in enumerate(parts):
            current = current / part
            is_dir = index < len(parts) - 1 or path.is_dir()
            if self.matches(current, is_dir):
                return True
        return False


def _read_spec(path: Path) -> GitIgnoreSpec | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return GitIgnoreSpec.from_lines(lines)


SkipReport = Callable[[Path, str], None]


def walk_repository(
    root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, skipped: SkipReport | None = None
) -> Iterator[RepoFile]:
    """Every indexable file under `root`, in a stable order.

    Ignored files and folders are pruned, symlinks are not followed (they could leave the repository),
    binaries (NUL in the first 8 KiB) and files above `max_file_bytes` are skipped. Each file that is not
    ignored but not yielded either — skipped, unreadable, a folder that cannot be listed — is reported to
    `skipped` with its outcome (see `conveyor.indexer.outcomes`).
    """
    report: SkipReport = skipped or (lambda path, reason: None)
    rules = IgnoreRules(root)

    def unlistable(error: OSError) -> None:
        report(Path(error.filename or rules.root), outcome_of_error(error))

    for directory, dirnames, filenames in os.walk(rules.root, topdown=True, onerror=unlistable, followlinks=False):
        here = Path(directory)
        dirnames[:] = sorted(d for d in dirnames if not rules.matches(here / d, is_dir=True))
        for name in sorted(filenames):
            path = here / name
            if rules.matches(path, is_dir=False):
                continue
            found = _indexable(path, rules.root, max_file_bytes)
            if isinstance(found, RepoFile):
                yield found
            else:
                report(path, found)


def _indexable(path: Path, root: Path, max_file_bytes: int) -> RepoFile | str:
    """The file, or why it is not indexed."""
    try:
        info = path.lstat()
        if os.path.islink(path):
            return SYMLINK
        if not os.path.isfile(path):
            return NOT_A_FILE
        reason = skip_reason(path, info.st_size, max_file_bytes)
        if reason is not None:
            return reason
        with path.open("rb") as handle:
            if is_binary(handle.read(SNIFF_BYTES)):
                return BINARY
    except OSError as exc:
        return outcome_of_error(exc)
    return RepoFile(path, path.relative_to(root).as_posix(), info.st_size, info.st_mtime_ns)
