"""Errors of the codebase indexer; each says what to do."""

from __future__ import annotations

from pathlib import Path

from conveyor.app import NonRetryableError
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


class NotARepositoryError(IndexerError, NonRetryableError):
    """`full-index` was given something that is not a directory (not retried: it would not become one)."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"Cannot index {root}: it is not a directory. Pass the root folder of a repository.")


class IndexUnavailableError(IndexerError):
    """The index database cannot be opened or written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"Cannot open the code index at {path}: {reason}. Check the folder exists and is writable, "
            "or point CONVEYOR_INDEX_PATH elsewhere."
        )


class IndexMissingError(IndexerError):
    """A search was asked of an index database that does not exist (searching never creates one)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"No code index at {path}: run `conveyor index PATH` first, or point CONVEYOR_INDEX_PATH at one."
        )


class SearchQueryError(IndexerError):
    """A search query that cannot be answered as given: too long, too many terms, or an unusable pattern."""


class SearchTimeoutError(IndexerError):
    """A search ran past its time limit and was stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The search was stopped after {seconds:g} s. Use fewer or more specific words, or a longer literal "
            "in a regex (CONVEYOR_SEARCH_TIMEOUT_S sets the limit)."
        )


class EmbeddingError(IndexerError):
    """Embeddings could not be computed: the provider is unavailable, misconfigured or refused the request (the
    message never holds the API key)."""


class SemanticIndexEmptyError(IndexerError):
    """A semantic search found no embeddings in the index."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"The index at {path} has no embeddings yet: with CONVEYOR_EMBED_PROVIDER set (default `offline`), "
            "index the repository with a worker running (`conveyor index PATH`) or run `conveyor embed`, then "
            "search again. Lexical search works meanwhile."
        )
