"""`searchCode`: ranked hits from the codebase index that the `indexing` queue's jobs build."""

from __future__ import annotations

import asyncio
from enum import Enum

import strawberry

from conveyor.api import fields as described
from conveyor.api.auth import require
from conveyor.api.context import ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.tokens import Role
from conveyor.indexer import (
    EmbeddingError,
    Hit,
    IndexMissingError,
    SearchMode,
    SearchQueryError,
    SearchTimeoutError,
    SemanticIndexEmptyError,
    search,
)

MAX_HITS = 200


@strawberry.type(description="One code search hit: where it is, in which symbol, and how well it matched.")
class CodeHit:
    file: str
    line: int
    symbol: str | None
    kind: str
    score: float
    snippet: str

    @classmethod
    def of(cls, hit: Hit) -> CodeHit:
        return cls(file=hit.file, line=hit.line, symbol=hit.symbol, kind=hit.kind, score=hit.score, snippet=hit.snippet)


@strawberry.enum(
    name="CodeSearchMode",
    description="How `searchCode` reads its query: words (quoted parts are phrases), one phrase, an exact "
    "substring, a Python regular expression, meaning (SEMANTIC: symbols by embedding similarity), or words and "
    "meaning fused (HYBRID, exact names first).",
)
class CodeSearchMode(Enum):
    LEXICAL = SearchMode.LEXICAL.value
    PHRASE = SearchMode.PHRASE.value
    SUBSTRING = SearchMode.SUBSTRING.value
    REGEX = SearchMode.REGEX.value
    SEMANTIC = SearchMode.SEMANTIC.value
    HYBRID = SearchMode.HYBRID.value


@strawberry.type
class CodeQuery:
    @described.field("Search the code index (exact definitions first, then parts, then text), best match first.")
    async def search_code(
        self, info: ApiInfo, query: str, limit: int = 20, mode: CodeSearchMode = CodeSearchMode.LEXICAL
    ) -> list[CodeHit]:
        principal = require(info.context, Role.VIEWER, "indexing")
        if principal.tenant is not None:
            raise ApiError(ErrorCode.FORBIDDEN, "The code index belongs to the deployment, not to a tenant.")
        if not 1 <= limit <= MAX_HITS:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`limit` must be between 1 and {MAX_HITS}.")
        if not query.strip():
            raise ApiError(ErrorCode.BAD_USER_INPUT, "`query` is empty.")
        try:
            hits = await asyncio.to_thread(search, query, limit, mode=SearchMode(mode.value))
        except IndexMissingError as exc:
            raise ApiError(ErrorCode.INDEX_NOT_FOUND, str(exc)) from exc
        except (SearchQueryError, SemanticIndexEmptyError) as exc:
            raise ApiError(ErrorCode.BAD_USER_INPUT, str(exc)) from exc
        except EmbeddingError as exc:
            raise ApiError(ErrorCode.EMBEDDINGS_UNAVAILABLE, str(exc)) from exc
        except SearchTimeoutError as exc:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, str(exc)) from exc
        return [CodeHit.of(hit) for hit in hits]
