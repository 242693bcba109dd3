"""What a code search asks for, parsed and bounded before it touches the index.

Four modes answer what developers type:

- `lexical` (the default): words and identifiers, prefix-matched against the word index, camelCase and
  snake_case split as indexed; any Unicode letters and digits form words (`müller`, `日本語`). A part in double
  quotes (`"connection pool"`) is a phrase: those words, in that order, as whole words. A query of symbols
  only (`🚀`, `->`) is searched as a substring.
- `phrase`: the whole query is one phrase.
- `substring`: the exact text anywhere (case-insensitive), found through the trigram index.
- `regex`: a Python regular expression, narrowed through the trigram index by the literal text it requires
  and verified line by line.

Every query is refused up front, with a message that says what to change, when it is longer than
`MAX_QUERY_CHARS` or has more than `MAX_TERMS` words, so its cost is bounded before it runs; the time a search
may take is bounded separately (see `conveyor.indexer.budget`).

Two more modes compare meanings rather than text (see `conveyor.indexer.semantic`): `semantic` ranks symbols
by the cosine similarity of their embedding to the query's, and `hybrid` fuses that ranking with the lexical
one. Their queries are bounded by length only (a description in words may be long).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

# The parsed form of a pattern (the stdlib's own parser): its literal runs narrow a regex search.
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from conveyor.indexer.errors import SearchQueryError

MAX_QUERY_CHARS = 500
MAX_TERMS = 16
MAX_PHRASES = 4
MIN_GRAM = 3  # the trigram index narrows by literals of at least this many characters
_TERM = re.compile(r"\w+")
_PHRASE = re.compile(r'"([^"]*)"')
_UNBOUNDED = sre.MAXREPEAT


class SearchMode(StrEnum):
    """How a query's text is read (see the module's description)."""

    LEXICAL = "lexical"
    PHRASE = "phrase"
    SUBSTRING = "substring"
    REGEX = "regex"
    SEMANTIC = "semantic"
    HYBRID = "hybrid"

    @property
    def uses_vectors(self) -> bool:
        """True for the modes answered with embeddings (see `conveyor.indexer.semantic`)."""
        return self in (SearchMode.SEMANTIC, SearchMode.HYBRID)


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query.

    `terms` are the words searched in the word index (lexical mode). `literals` are texts every matching block
    contains (found through the trigram index), and `patterns` what each must also match, checked line by
    line (phrases, substrings and regexes); a hit's line is the first that matches one of them.
    """

    text: str
    mode: SearchMode
    terms: tuple[str, ...] = ()
    literals: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = field(default=())

    @property
    def is_lexical(self) -> bool:
        """True when only the word index answers (no text to verify line by line)."""
        return not self.patterns


def parse_query(text: str, mode: SearchMode | str = SearchMode.LEXICAL) -> SearchQuery:
    """Parse and bound a query.

    Raises:
        SearchQueryError: the query is empty, too long, has too many words or phrases, or is a regex that is
            invalid, could take exponential time, or has no literal text to narrow it by.
    """
    mode = SearchMode(mode)
    stripped = text.strip()
    if not stripped:
        raise SearchQueryError("The query is empty: give words, an identifier, a phrase or a pattern.")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchQueryError(
            f"The query has {len(text):,} characters; the limit is {MAX_QUERY_CHARS}. Search for the few words "
            "that matter (names, identifiers) instead of pasting text."
        )
    if mode.uses_vectors:
        return SearchQuery(stripped, mode, terms=tuple(words_of(stripped)))
    if mode is SearchMode.REGEX:
        return _regex_query(text)
    if mode is SearchMode.SUBSTRING:
        return _substring_query(stripped, mode)
    if mode is SearchMode.PHRASE:
        return _with_phrases(stripped, mode, [stripped], [])
    return _lexical_query(stripped)


def inside_words(query: SearchQuery) -> SearchQuery | None:
    """For a word query with non-ASCII words, the same words searched as substrings (the word index matches
    words from their start, and scripts without spaces, like Japanese, glue many words into one token:
    `日本語` is inside `テスト日本語の`); None when every word is ASCII."""
    inside = [term for term in query.terms if not term.isascii()]
    if query.mode is not SearchMode.LEXICAL or not query.is_lexical or not inside:
        return None
    ascii_terms = tuple(term for term in query.terms if term.isascii())
    patterns = tuple(re.compile(re.escape(term), re.IGNORECASE) for term in inside)
    return SearchQuery(query.text, query.mode, terms=ascii_terms, literals=tuple(inside), patterns=patterns)


def words_of(text: str) -> list[str]:
    """The searchable words of a text: runs of Unicode letters, digits and underscores with at least one
    letter or digit, in order, without repeats."""
    return list(dict.fromkeys(w for w in _TERM.findall(text) if any(ch.isalnum() for ch in w)))


def _lexical_query(text: str) -> SearchQuery:
    phrases = [p.strip() for p in _PHRASE.findall(text) if p.strip()]
    terms = words_of(_PHRASE.sub(" ", text))
    if len(terms) > MAX_TERMS:
        raise SearchQueryError(
            f"The query has {len(terms)} words; the limit is {MAX_TERMS}. Keep the words that identify what you "
            "are looking for."
        )
    if phrases:
        return _with_phrases(text, SearchMode.LEXICAL, phrases, terms)
    if not terms:  # only symbols (`🚀`, `->`): there is no word to look up, so look for the text itself
        return _substring_query(text.replace('"', "").strip() or text, SearchMode.LEXICAL)
    return SearchQuery(text, SearchMode.LEXICAL, terms=tuple(terms))


def _with_phrases(text: str, mode: SearchMode, phrases: list[str], terms: list[str]) -> SearchQuery:
    if len(phrases) > MAX_PHRASES:
        raise SearchQueryError(f"The query has {len(phrases)} phrases; the limit is {MAX_PHRASES}.")
    literals, patterns = [], []
    for phrase in phrases:
        words = phrase.split()
        literals.append(" ".join(words))
        body = r"\s+".join(re.escape(word) for word in words)
        patterns.append(re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE))
    return SearchQuery(text, mode, terms=tuple(terms), literals=tuple(literals), patterns=tuple(patterns))


def _substring_query(text: str, mode: SearchMode) -> SearchQuery:
    return SearchQuery(text, mode, literals=(text,), patterns=(re.compile(re.escape(text), re.IGNORECASE),))


def _regex_query(text: str) -> SearchQuery:
    try:
        compiled = re.compile(text)
        parsed = sre_parse.parse(text)
    except re.error as exc:
        raise SearchQueryError(f"The regex is not valid: {exc}. Escape special characters with a backslash.") from exc
    if _nested_unbounded(parsed.data, inside_repeat=False):
        raise SearchQueryError(
            "The regex nests unbounded repetitions (like `(a+)+`), which can take exponential time. Rewrite it "
            "without a repeated group that itself repeats."
        )
    literals = [lit for lit in required_literals(parsed.data) if len(lit) >= MIN_GRAM]
    if not literals:
        raise SearchQueryError(
            f"The regex has no run of {MIN_GRAM} or more literal characters that every match must contain, so "
            r"the index cannot narrow it. Include one (for example `\bsend\(` rather than `\bs\w+\(`)."
        )
    literals = sorted(literals, key=len, reverse=True)[:MAX_PHRASES]
    return SearchQuery(text, SearchMode.REGEX, literals=tuple(literals), patterns=(compiled,))


def required_literals(items: list[tuple[Any, Any]]) -> list[str]:
    """The runs of literal characters a parsed regex's every match contains (a conservative subset: text
    inside alternatives and optional parts is left out)."""
    found: list[str] = []
    run: list[str] = []
    for op, arg in items:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        found.append("".join(run))
        run = []
        if op is sre.SUBPATTERN:
            found.extend(required_literals(arg[-1].data))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[0] >= 1:
            found.extend(required_literals(arg[2].data))
    found.append("".join(run))
    return [literal for literal in found if literal]


def _nested_unbounded(items: list[tuple[Any, Any]], *, inside_repeat: bool) -> bool:
    for op, arg in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            unbounded = arg[1] is _UNBOUNDED or arg[1] > 100
            if unbounded and inside_repeat:
                return True
            if _nested_unbounded(arg[2].data, inside_repeat=inside_repeat or unbounded):
                return True
        elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP, sre.BRANCH) and any(
            _nested_unbounded(part.data, inside_repeat=inside_repeat) for part in _parts(op, arg)
        ):
            return True
    return False


def _parts(op: Any, arg: Any) -> list[Any]:
    """The sub-patterns of a group (its pattern is last in its argument), atomic group or alternation."""
    if op is sre.SUBPATTERN:
        return [arg[-1]]
    return [arg] if op is sre.ATOMIC_GROUP else list(arg[1])
