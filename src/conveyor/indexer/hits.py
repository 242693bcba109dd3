"""Search hits and how they are ranked, shared by the word search (`search`) and the text search (`grep`).

A hit's score is its tier times `TIER_SPAN` plus its relevance squashed into `[0, TIER_SPAN)`, so sorting by
score puts every hit of a higher tier first:

3. a definition whose name (or qualified name) is the query, with the same case;
2. the same, ignoring case;
1. a definition whose name's words start with every query word (prefixes and parts);
0. everything else (other definitions, content lines).

Within a tier, relevance decides: bm25 for word searches, whether the line defines something for text
searches. Hits in generated files drop to tier 0 at half their relevance.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

MAX_SNIPPET = 160
TIER_SPAN = 100.0
RELEVANCE_HALF = 10.0  # the relevance that scores half a tier
EXACT, EXACT_IGNORING_CASE, NAME_PARTS, OTHER = 3, 2, 1, 0


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: where (file, 1-based line), in which symbol, how well it matched, and the text.

    `kind` is the symbol's kind (`function`, `class`, …) for a definition hit, `content` for a text hit.
    """

    file: str
    line: int
    symbol: str | None
    score: float
    snippet: str
    kind: str = "content"


def rank(tier: int, relevance: float, *, generated: bool = False) -> float:
    """The score of a hit in `tier` with `relevance` (>= 0); see the module's description."""
    if generated:
        tier, relevance = OTHER, relevance / 2
    relevance = max(relevance, 0.0)
    return tier * TIER_SPAN + TIER_SPAN * relevance / (relevance + RELEVANCE_HALF)


def best(hits: list[Hit], limit: int) -> list[Hit]:
    """The `limit` best hits, one per line (the higher score wins), best first."""
    chosen: dict[tuple[str, int], Hit] = {}
    for hit in hits:
        key = (hit.file, hit.line)
        if key not in chosen or hit.score > chosen[key].score:
            chosen[key] = hit
    return sorted(chosen.values(), key=lambda h: (-h.score, h.file, h.line))[:limit]


@dataclass(frozen=True, slots=True)
class Place:
    """The file of a content row and the innermost definition around one of its lines."""

    path: str
    generated: bool
    symbol: str | None
    defines: bool  # the line is where that definition starts


def place_of(db: sqlite3.Connection, file_id: int, line: int) -> Place | None:
    """Where a line of an indexed file is; None when the file left the index meanwhile."""
    found = db.execute("SELECT path, generated FROM files WHERE id = ?", (file_id,)).fetchone()
    if found is None:
        return None
    symbol = db.execute(
        "SELECT qualified, start_line FROM symbols WHERE file_id = ? AND start_line <= ? AND end_line >= ? "
        "ORDER BY end_line - start_line LIMIT 1",
        (file_id, line, line),
    ).fetchone()
    if symbol is None:
        return Place(found[0], bool(found[1]), None, False)
    return Place(found[0], bool(found[1]), symbol[0], symbol[1] == line)
