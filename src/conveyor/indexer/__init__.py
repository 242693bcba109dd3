"""The codebase indexer: files, symbols and content of repositories in SQLite with FTS5, kept current by jobs
on the `indexing` queue (`index-file`, `full-index`, `remove-file`, and `embed` for semantic search) and
searchable with `CodeIndex.search` (text modes) or `search_code` (every mode, semantic and hybrid included).

`register(app)` adds the handlers to an application; `search(query)` answers from the configured index.

The package's names are imported on first use (PEP 562): a worker of an app without the indexer's handlers,
or a CLI command that only needs `SearchMode`, does not load tree-sitter, SQLite stores or embedding models.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.indexer.query import SearchMode

# The submodule `search` first: importing it sets the package's attribute `search`, which the function below
# must then replace (as it would be replaced if any later import loaded the submodule). It is light (SQLite).
from conveyor.indexer.search import Hit

if TYPE_CHECKING:
    from conveyor.indexer.errors import (
        EmbeddingError,
        IndexMissingError,
        SearchQueryError,
        SearchTimeoutError,
        SemanticIndexEmptyError,
    )
    from conveyor.indexer.jobs import FULL_INDEX, INDEX_FILE, QUEUE, REMOVE_FILE, register, start_full_index
    from conveyor.indexer.semantic import search_code
    from conveyor.indexer.settings import IndexerSettings
    from conveyor.indexer.store import CodeIndex, IndexOutcome
    from conveyor.indexer.symbols import Symbol, extract_symbols

_LAZY = {
    **dict.fromkeys(
        ("EmbeddingError", "IndexMissingError", "SearchQueryError", "SearchTimeoutError", "SemanticIndexEmptyError"),
        "conveyor.indexer.errors",
    ),
    **dict.fromkeys(
        ("FULL_INDEX", "INDEX_FILE", "QUEUE", "REMOVE_FILE", "register", "start_full_index"), "conveyor.indexer.jobs"
    ),
    "search_code": "conveyor.indexer.semantic",
    "IndexerSettings": "conveyor.indexer.settings",
    "CodeIndex": "conveyor.indexer.store",
    "IndexOutcome": "conveyor.indexer.store",
    "Symbol": "conveyor.indexer.symbols",
    "extract_symbols": "conveyor.indexer.symbols",
}

__all__ = [
    "FULL_INDEX",
    "INDEX_FILE",
    "QUEUE",
    "REMOVE_FILE",
    "CodeIndex",
    "EmbeddingError",
    "Hit",
    "IndexMissingError",
    "IndexOutcome",
    "IndexerSettings",
    "SearchMode",
    "SearchQueryError",
    "SearchTimeoutError",
    "SemanticIndexEmptyError",
    "Symbol",
    "extract_symbols",
    "register",
    "search",
    "search_code",
    "start_full_index",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def search(
    query: str, limit: int = 20, *, index: Path | None = None, mode: SearchMode | str = SearchMode.LEXICAL
) -> list[Hit]:
    """Ranked hits for `query` read in `mode` from an index database (default: the configured one, see
    `IndexerSettings`).

    Raises:
        IndexMissingError: there is no index there (none is created).
        SearchQueryError: the query is out of bounds or an unusable regex.
        SearchTimeoutError: the search ran past CONVEYOR_SEARCH_TIMEOUT_S.
        SemanticIndexEmptyError: a `semantic` or `hybrid` search of an index without embeddings.
        EmbeddingError: the query could not be embedded (provider missing, unreachable or refusing).
    """
    from conveyor.app import Conveyor
    from conveyor.indexer.embedding import embedder_from
    from conveyor.indexer.semantic import search_code
    from conveyor.indexer.settings import IndexerSettings
    from conveyor.indexer.store import CodeIndex

    data_dir = Conveyor().settings.conveyor_data_dir
    settings = IndexerSettings()
    path = settings.index_path(data_dir, index)
    code_index = CodeIndex(path, search_timeout_s=settings.conveyor_search_timeout_s, create=False)
    embedder = None
    try:
        embedder = embedder_from(settings) if SearchMode(mode).uses_vectors else None
        return search_code(code_index, query, limit, mode=mode, embedder=embedder)
    finally:
        code_index.close()
        if embedder is not None:
            embedder.close()
