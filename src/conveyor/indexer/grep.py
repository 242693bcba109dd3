"""Text search: substrings, phrases and regular expressions, narrowed through the trigram index and verified
line by line.

`chunk_grams` indexes the same blocks as `chunk_text` (it reads their text from it: an external-content FTS5
table) with the trigram tokenizer, so a `LIKE` for any run of three or more characters — in any script, emoji
included, and punctuation such as `send(` — finds its blocks through the index (case-insensitively for ASCII
letters). Those candidate blocks are then checked line by line with the query's patterns (phrase word
boundaries, the regex itself). A literal without three consecutive characters other than `%` and `_` has no
trigram to look up: its blocks are found by a scan, which the search's time limit bounds.

Hits are content lines; a line where a definition starts ranks above one inside it, and generated files rank
last. At most `MAX_CANDIDATE_BLOCKS` blocks are read and `HITS_PER_LIMIT` times the limit of hits gathered, so
memory stays bounded however common the text is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from conveyor.indexer.budget import SearchBudget
from conveyor.indexer.hits import MAX_SNIPPET, OTHER, Hit, best, place_of, rank
from conveyor.indexer.query import MIN_GRAM, SearchQuery
from conveyor.indexer.text import CHUNK_LINES, fts_query

MAX_CANDIDATE_BLOCKS = 20_000
HITS_PER_LIMIT = 5
MAX_VERIFIED_LINE = 4_000  # longer lines are not checked against a regex (their cost is unbounded)
DEFINITION_RELEVANCE, LINE_RELEVANCE = 10.0, 2.0


def text_search(
    db: sqlite3.Connection, query: SearchQuery, limit: int, *, chunk_bits: int, budget: SearchBudget
) -> list[Hit]:
    """The best `limit` lines matching a query's patterns (see the module's description)."""
    hits: list[Hit] = []
    for rowid, body in _candidates(db, query):
        budget.check()
        if not all(pattern.search(body) for pattern in query.patterns):
            continue  # every phrase of a query must be in the block
        file_id, block = rowid >> chunk_bits, rowid & ((1 << chunk_bits) - 1)
        for offset, line in _matching_lines(body, query):
            hit = _hit(db, file_id, block * CHUNK_LINES + offset + 1, line)
            if hit is not None:
                hits.append(hit)
        if len(hits) >= limit * HITS_PER_LIMIT:
            break
    return best(hits, limit)


def _candidates(db: sqlite3.Connection, query: SearchQuery) -> Iterator[tuple[int, str]]:
    conditions, parameters = [], []
    for literal in query.literals:
        if _indexable(literal):  # `%` and `_` act as wildcards: a superset of candidates, whose lines are checked
            conditions.append("body LIKE ?")
            parameters.append(f"%{literal}%")
        else:  # no trigram to look up: a scan, bounded by the search's time limit
            conditions.append("instr(body, ?) > 0")
            parameters.append(literal)
    words = fts_query(list(query.terms))
    if words is not None:
        conditions.append("rowid IN (SELECT rowid FROM chunk_text WHERE chunk_text MATCH ?)")
        parameters.append(words)
    sql = f"SELECT rowid, body FROM chunk_grams WHERE {' AND '.join(conditions)} LIMIT ?"
    cursor = db.execute(sql, (*parameters, MAX_CANDIDATE_BLOCKS))
    for rowid, body in cursor:
        yield int(rowid), str(body)


def _indexable(literal: str) -> bool:
    """Whether the trigram index can narrow a literal: three characters or more, none outside Unicode's basic
    plane (SQLite 3.40's trigram LIKE misses matches of emoji and other 4-byte characters)."""
    return len(literal) >= MIN_GRAM and all(ord(ch) <= 0xFFFF for ch in literal)


def _matching_lines(body: str, query: SearchQuery) -> Iterator[tuple[int, str]]:
    for offset, line in enumerate(body.split("\n")):
        if len(line) <= MAX_VERIFIED_LINE and any(pattern.search(line) for pattern in query.patterns):
            yield offset, line


def _hit(db: sqlite3.Connection, file_id: int, line: int, text: str) -> Hit | None:
    place = place_of(db, file_id, line)
    if place is None:
        return None
    relevance = DEFINITION_RELEVANCE if place.defines else LINE_RELEVANCE
    return Hit(place.path, line, place.symbol, rank(OTHER, relevance, generated=place.generated),
               text.strip()[:MAX_SNIPPET])  # fmt: skip
