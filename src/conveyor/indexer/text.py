"""Text helpers shared by indexing and search: identifier splitting, chunking and FTS5 query building."""

from __future__ import annotations

import re
import unicodedata

CHUNK_LINES = 30  # content is searchable in blocks of this many lines; a hit's line is found inside its block
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Letters other than ASCII capitals count as lower case, so `müller` and `日本語` stay whole words.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][^\W\d_A-Z])|[A-Z]?[^\W\d_A-Z]+|[A-Z]+|[0-9]+")


def split_identifier(identifier: str) -> list[str]:
    """The words of an identifier, lower-cased: `parseHTTPConfig` → parse, http, config; `snake_case` too."""
    return [word.lower() for part in identifier.split("_") for word in _WORD.findall(part)]


def identifier_terms(text: str) -> str:
    """Extra search terms for a block of code: the words of its camelCase identifiers, which FTS5's tokenizer
    would otherwise keep glued together (`parseConfig` is one token; this adds `parse config`)."""
    words: dict[str, None] = {}
    for identifier in set(_IDENTIFIER.findall(text)):
        parts = split_identifier(identifier)
        if len(parts) > 1 and not identifier.islower():
            words.update(dict.fromkeys(parts))
    return " ".join(sorted(words))


def chunk_lines(text: str) -> list[str]:
    """The text cut into blocks of `CHUNK_LINES` lines (block n starts at line n * CHUNK_LINES + 1)."""
    lines = text.splitlines()
    return ["\n".join(lines[i : i + CHUNK_LINES]) for i in range(0, len(lines), CHUNK_LINES)]


def query_terms(words: list[str]) -> list[str]:
    """The terms of a query's words, lower-cased, with identifiers split as the index splits them."""
    terms: dict[str, None] = {}
    for raw in words:
        terms[fold(raw)] = None
        for word in split_identifier(raw):
            terms[fold(word)] = None
    return list(terms)


def fts_query(words: list[str], *, any_term: bool = False) -> str | None:
    """An FTS5 MATCH expression for a query's words: each as a quoted prefix term, all required (or any one
    with `any_term`). Quoting keeps FTS5 operators in user input (`AND`, `-`, `:`) from being parsed.
    """
    if not words:
        return None
    parts = []
    for word in dict.fromkeys(words):
        pieces = split_identifier(word)
        if len(pieces) > 1 and "_" not in word:  # `parseConfig`: the glued token, or its words together
            together = " AND ".join(f'"{piece}"*' for piece in pieces)
            parts.append(f'("{word.lower()}"* OR ({together}))')
        else:
            parts.append(f'"{word.lower()}"*')
    return (" OR " if any_term else " AND ").join(parts)


def fold(text: str) -> str:
    """Text lower-cased and without diacritics (`Müller` → `muller`), as the word index compares words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
