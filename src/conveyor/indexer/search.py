"""Ranked search over a code index: symbol definitions and file content, scored with FTS5's bm25.

Two FTS5 tables answer a query: `symbol_text` (names, split identifier words, signatures, doc comments) and
`chunk_text` (file content in blocks). Both are ranked with bm25; a symbol hit's score is weighted above a
content hit's and gets a bonus for query words that start words of its name (a definition named like the
query beats a line that mentions it), and a larger one for an exact name match. A content hit's line is the
line of its block that contains most query terms, and its symbol the innermost definition around that line.
When no hit has every term, hits with any term are returned.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from conveyor.indexer.text import CHUNK_LINES, fts_query, query_terms, split_identifier

SYMBOL_WEIGHT = 2.0
EXACT_NAME_BONUS = 2.0
SYMBOL_COLUMNS = (10.0, 2.0, 1.0)  # bm25 weights of symbol_text's terms, signature, doc
CHUNK_COLUMNS = (1.0, 0.5)  # bm25 weights of chunk_text's body, terms
MAX_SNIPPET = 160


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


def search_index(db: sqlite3.Connection, query: str, limit: int, *, chunk_bits: int) -> list[Hit]:
    """The best `limit` hits for a free-text query (words are prefix-matched, identifiers split as indexed)."""
    if limit <= 0:
        return []
    for any_term in (False, True):
        expression = fts_query(query, any_term=any_term)
        if expression is None:
            return []
        hits = _symbol_hits(db, expression, query, limit) + _content_hits(db, expression, query, limit, chunk_bits)
        if hits:
            return _best(hits, limit)
    return []


def _best(hits: list[Hit], limit: int) -> list[Hit]:
    best: dict[tuple[str, int], Hit] = {}
    for hit in hits:
        key = (hit.file, hit.line)
        if key not in best or hit.score > best[key].score:
            best[key] = hit
    return sorted(best.values(), key=lambda h: (-h.score, h.file, h.line))[:limit]


def _symbol_hits(db: sqlite3.Connection, expression: str, query: str, limit: int) -> list[Hit]:
    weights = ", ".join(str(w) for w in SYMBOL_COLUMNS)
    rows = db.execute(
        f"SELECT f.path, s.start_line, s.qualified, s.kind, s.signature, s.name, -bm25(symbol_text, {weights}) "
        "FROM symbol_text JOIN symbols s ON s.id = symbol_text.rowid JOIN files f ON f.id = s.file_id "
        f"WHERE symbol_text MATCH ? ORDER BY bm25(symbol_text, {weights}) LIMIT ?",
        (expression, limit * 3),
    ).fetchall()
    wanted = query.strip().lower()
    terms = query_terms(query)
    hits = []
    for path, line, qualified, kind, signature, name, score in rows:
        score = float(score) + _name_bonus(name, qualified, wanted, terms)
        hits.append(Hit(path, line, qualified, score * SYMBOL_WEIGHT, signature[:MAX_SNIPPET], kind))
    return hits


def _name_bonus(name: str, qualified: str, wanted: str, terms: list[str]) -> float:
    """Up to 1 for the share of query terms that start a word of the symbol's name, plus `EXACT_NAME_BONUS`
    when the name is the query. bm25 alone ranks poorly in small indexes, where every word is common."""
    if wanted in (name.lower(), qualified.lower()):
        return 1.0 + EXACT_NAME_BONUS
    words = [name.lower(), *split_identifier(name)]
    found = sum(1 for term in terms if any(word.startswith(term) for word in words))
    return found / len(terms) if terms else 0.0


def _content_hits(db: sqlite3.Connection, expression: str, query: str, limit: int, chunk_bits: int) -> list[Hit]:
    weights = ", ".join(str(w) for w in CHUNK_COLUMNS)
    rows = db.execute(
        f"SELECT rowid, body, -bm25(chunk_text, {weights}) FROM chunk_text WHERE chunk_text MATCH ? "
        f"ORDER BY bm25(chunk_text, {weights}) LIMIT ?",
        (expression, limit * 3),
    ).fetchall()
    terms = query_terms(query)
    hits = []
    for rowid, body, score in rows:
        file_id, block = rowid >> chunk_bits, rowid & ((1 << chunk_bits) - 1)
        offset, text = _best_line(body, terms)
        line = block * CHUNK_LINES + offset + 1
        found = db.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        if found is None:
            continue
        symbol = db.execute(
            "SELECT qualified FROM symbols WHERE file_id = ? AND start_line <= ? AND end_line >= ? "
            "ORDER BY end_line - start_line LIMIT 1",
            (file_id, line, line),
        ).fetchone()
        hits.append(Hit(found[0], line, symbol[0] if symbol else None, float(score), text))
    return hits


def _best_line(body: str, terms: list[str]) -> tuple[int, str]:
    """The offset and stripped text of the block's line holding the most query terms (first one on ties)."""
    best_offset, best_count = 0, -1
    lines = body.split("\n")
    for offset, line in enumerate(lines):
        lowered = line.lower()
        count = sum(1 for term in terms if term in lowered)
        if count > best_count:
            best_offset, best_count = offset, count
    return best_offset, lines[best_offset].strip()[:MAX_SNIPPET]
