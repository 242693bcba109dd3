"""Word search over a code index: symbol definitions and file content, ranked in tiers (see `hits`).

Two FTS5 tables answer a query: `symbol_text` (names, split identifier words, signatures, doc comments) and
`chunk_text` (file content in blocks). Both are ranked with bm25. Definitions whose name is the query are
looked up directly by name as well (bm25 alone can leave a common name's exact definitions out of its top
rows), so they always lead. A content hit's line is the line of its block that contains most query terms,
and its symbol the innermost definition around that line. When no hit has every term, hits with any term are
returned.
"""

from __future__ import annotations

import re
import sqlite3

from conveyor.indexer.hits import (
    EXACT,
    EXACT_IGNORING_CASE,
    MAX_SNIPPET,
    NAME_PARTS,
    OTHER,
    Hit,
    best,
    place_of,
    rank,
)
from conveyor.indexer.query import SearchQuery
from conveyor.indexer.text import CHUNK_LINES, fold, fts_query, query_terms, split_identifier

__all__ = ["Hit", "word_search"]

SYMBOL_WEIGHT = 2.0
SYMBOL_COLUMNS = (10.0, 2.0, 1.0)  # bm25 weights of symbol_text's terms, signature, doc
CHUNK_COLUMNS = (1.0, 0.5)  # bm25 weights of chunk_text's body, terms
EXACT_RELEVANCE = 10.0
_NAME_LIKE = re.compile(r"[\w$#.:]+")


def word_search(db: sqlite3.Connection, query: SearchQuery, limit: int, *, chunk_bits: int) -> list[Hit]:
    """The best `limit` hits for a query's words (prefix-matched, identifiers split as indexed)."""
    terms = query_terms(list(query.terms))
    exact = _exact_name_hits(db, query.text, limit)
    for any_term in (False, True):
        expression = fts_query(list(query.terms), any_term=any_term)
        if expression is None:
            return best(exact, limit)
        hits = exact + _symbol_hits(db, expression, query.text, terms, limit)
        hits += _content_hits(db, expression, terms, limit, chunk_bits)
        if hits:
            return best(hits, limit)
    return []


def _exact_name_hits(db: sqlite3.Connection, text: str, limit: int) -> list[Hit]:
    wanted = text.strip()
    if not _NAME_LIKE.fullmatch(wanted):
        return []
    name = wanted.rsplit(".", 1)[-1]  # `Filter.filter` is looked up by `filter`, then its qualified name checked
    rows = db.execute(
        "SELECT f.path, s.start_line, s.qualified, s.kind, s.signature, s.name, f.generated "
        "FROM symbols s JOIN files f ON f.id = s.file_id WHERE s.name = ? COLLATE NOCASE LIMIT ?",
        (name, limit * 20 if "." in wanted else limit * 3),
    ).fetchall()
    return [
        Hit(path, line, qualified, rank(_tier(name, qualified, wanted, 0.0), EXACT_RELEVANCE, generated=bool(gen)),
            signature[:MAX_SNIPPET], kind)
        for path, line, qualified, kind, signature, name, gen in rows
        if "." not in wanted or qualified.lower() == wanted.lower()
    ]  # fmt: skip


def _tier(name: str, qualified: str, wanted: str, share: float) -> int:
    if wanted in (name, qualified):
        return EXACT
    if wanted.lower() in (name.lower(), qualified.lower()):
        return EXACT_IGNORING_CASE
    return NAME_PARTS if share >= 1.0 else OTHER


def _symbol_hits(db: sqlite3.Connection, expression: str, text: str, terms: list[str], limit: int) -> list[Hit]:
    weights = ", ".join(str(w) for w in SYMBOL_COLUMNS)
    rows = db.execute(
        "SELECT f.path, s.start_line, s.qualified, s.kind, s.signature, s.name, f.generated, "
        f"-bm25(symbol_text, {weights}) FROM symbol_text JOIN symbols s ON s.id = symbol_text.rowid "
        f"JOIN files f ON f.id = s.file_id WHERE symbol_text MATCH ? ORDER BY bm25(symbol_text, {weights}) LIMIT ?",
        (expression, limit * 3),
    ).fetchall()
    wanted = text.strip()
    hits = []
    for path, line, qualified, kind, signature, name, generated, score in rows:
        share = _name_share(name, terms)
        relevance = float(score) * SYMBOL_WEIGHT + share
        tier = _tier(name, qualified, wanted, share)
        hits.append(Hit(path, line, qualified, rank(tier, relevance, generated=bool(generated)),
                        signature[:MAX_SNIPPET], kind))  # fmt: skip
    return hits


def _name_share(name: str, terms: list[str]) -> float:
    """The share of query terms that start a word of the symbol's name (bm25 alone ranks poorly in small
    indexes, where every word is common)."""
    words = [fold(name), *(fold(word) for word in split_identifier(name))]
    found = sum(1 for term in terms if any(word.startswith(term) for word in words))
    return found / len(terms) if terms else 0.0


def _content_hits(db: sqlite3.Connection, expression: str, terms: list[str], limit: int, chunk_bits: int) -> list[Hit]:
    weights = ", ".join(str(w) for w in CHUNK_COLUMNS)
    rows = db.execute(
        f"SELECT rowid, body, -bm25(chunk_text, {weights}) FROM chunk_text WHERE chunk_text MATCH ? "
        f"ORDER BY bm25(chunk_text, {weights}) LIMIT ?",
        (expression, limit * 3),
    ).fetchall()
    hits = []
    for rowid, body, score in rows:
        file_id, block = rowid >> chunk_bits, rowid & ((1 << chunk_bits) - 1)
        offset, text = _best_line(body, terms)
        line = block * CHUNK_LINES + offset + 1
        place = place_of(db, file_id, line)
        if place is not None:
            score = rank(OTHER, float(score), generated=place.generated)
            hits.append(Hit(place.path, line, place.symbol, score, text))
    return hits


def _best_line(body: str, terms: list[str]) -> tuple[int, str]:
    """The offset and stripped text of the block's line holding the most query terms (first one on ties)."""
    best_offset, best_count = 0, -1
    lines = body.split("\n")
    for offset, line in enumerate(lines):
        lowered = fold(line)
        count = sum(1 for term in terms if term in lowered)
        if count > best_count:
            best_offset, best_count = offset, count
    return best_offset, lines[best_offset].strip()[:MAX_SNIPPET]
