"""Errors of the codebase indexer; each says what to do."""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import ConveyorError


class IndexerError(ConveyorError):
    """Base of the indexer's errors."""


class GrammarUnavailableError(IndexerError):
    """A tree-sitter grammar wheel is missing from the environment."""

    def __init__(self, language: str, module: str) -> None:
        package = module.replace("_", "-")
        super().__init__(
            f"The {language} grammar ({module}) is not installed: `pip install {package}` "
            "(Conveyor's dependencies include it; reinstall Conveyor if it went missing)."
        )


class NotARepositoryError(IndexerError):
    """`full-index` was given something that is not a directory."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"Cannot index {root}: it is not a directory. Pass the root folder of a repository.")


class IndexUnavailableError(IndexerError):
    """The index database cannot be opened or written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"Cannot open the code index at {path}: {reason}. Check the folder exists and is writable, "
            "or point CONVEYOR_INDEX_PATH elsewhere."
        )
