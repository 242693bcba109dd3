"""Search that answers what developers type: Unicode words, phrases, substrings and regexes, FTS syntax kept
inert, hard bounds with clear errors, exact-first ranking, and no index created by searching."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.indexer import IndexMissingError, SearchQueryError, SearchTimeoutError, search
from conveyor.indexer.budget import SearchBudget
from conveyor.indexer.query import MAX_QUERY_CHARS, MAX_TERMS
from conveyor.indexer.store import CodeIndex

SOURCE = '''# 日本語のコメント: 接続を開く、テスト用
class Müller:
    """Grüße from the connection pool."""

    def open(self):
        connection_pools = []  # 🚀 launch
        self.send(connection_pools)
        resend(self)
'''


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CodeIndex]:
    code_index = CodeIndex(tmp_path / "index.sqlite")
    yield code_index
    code_index.close()


@pytest.fixture
def source(tmp_path: Path, index: CodeIndex) -> Path:
    path = tmp_path / "repo" / "pool.py"
    path.parent.mkdir()
    path.write_text(SOURCE)
    index.index_file(path)
    return path


def _lines(hits: list[object]) -> list[int]:
    return [hit.line for hit in hits]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("query", "line"), [("日本語", 1), ("接続", 1), ("müller", 2), ("Grüße", 2), ("🚀", 6)])
def test_non_ascii_words_and_emoji_are_found(index: CodeIndex, source: Path, query: str, line: int) -> None:
    """(`Grüße` is in the docstring of the class on line 2: the definition is the hit.)"""
    hits = index.search(query)
    assert hits, query
    assert hits[0].line == line


def test_an_umlaut_word_is_one_term_not_two(index: CodeIndex, source: Path) -> None:
    (source.parent / "other.py").write_text("m = 1\nller = 2\n")
    index.index_file(source.parent / "other.py")
    assert {hit.file for hit in index.search("müller")} == {str(source)}


def test_a_quoted_phrase_does_not_match_joined_words(index: CodeIndex, source: Path) -> None:
    assert _lines(index.search('"connection pool"')) == [3]
    assert _lines(index.search("connection pool", mode="phrase")) == [3]


def test_unquoted_words_still_match_joined_words(index: CodeIndex, source: Path) -> None:
    assert 6 in _lines(index.search("connection pools"))


def test_a_regex_is_verified_on_each_line(index: CodeIndex, source: Path) -> None:
    hits = index.search(r"\bsend\(", mode="regex")
    assert _lines(hits) == [7]  # `resend(` has no word boundary before `send`
    assert hits[0].symbol == "Müller.open"


def test_a_substring_matches_inside_identifiers_and_punctuation(index: CodeIndex, source: Path) -> None:
    assert _lines(index.search("ion_po", mode="substring")) == [6, 7]
    assert _lines(index.search("send(self)", mode="substring")) == [8]


@pytest.mark.parametrize("query", ['"unbalanced AND (NEAR -', "a:b OR c*", "NOT ^x", "{col}: x", "'); DROP"])
def test_fts_syntax_in_queries_is_inert(index: CodeIndex, source: Path, query: str) -> None:
    for mode in ("lexical", "phrase", "substring"):
        index.search(query, mode=mode)  # no sqlite3 error, whatever the hits


@pytest.mark.parametrize(
    ("pattern", "says"),
    [("(", "not valid"), (r"\w+\(", "literal"), ("(a+)+$", "exponential"), ("x(ab+)*y", "exponential")],
)
def test_unusable_regexes_are_refused_with_a_reason(index: CodeIndex, source: Path, pattern: str, says: str) -> None:
    with pytest.raises(SearchQueryError, match=says):
        index.search(pattern, mode="regex")


def test_a_15000_word_query_is_refused_fast(index: CodeIndex, source: Path) -> None:
    query = " ".join(f"word{n}" for n in range(15_000))
    started = time.perf_counter()
    with pytest.raises(SearchQueryError, match=f"limit is {MAX_QUERY_CHARS}"):
        index.search(query)
    assert time.perf_counter() - started < 0.05


def test_too_many_words_are_refused(index: CodeIndex, source: Path) -> None:
    with pytest.raises(SearchQueryError, match=f"limit is {MAX_TERMS}"):
        index.search(" ".join(f"w{n}" for n in range(MAX_TERMS + 1)))


def test_a_statement_past_the_deadline_is_interrupted() -> None:
    db = sqlite3.connect(":memory:")
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.perf_counter()
    with pytest.raises(SearchTimeoutError, match=r"stopped after 0\.05 s"), SearchBudget(0.05).guarding(db):
        db.execute(endless).fetchone()
    assert time.perf_counter() - started < 1.0
    assert db.execute("SELECT 1").fetchone() == (1,)  # the handler is gone afterwards


def test_a_search_past_its_time_limit_is_an_error(tmp_path: Path) -> None:
    code_index = CodeIndex(tmp_path / "index.sqlite", search_timeout_s=1e-9)
    path = tmp_path / "a.py"
    path.write_text("value = 1\n" * 50)
    code_index.index_file(path)
    with pytest.raises(SearchTimeoutError):
        code_index.search("value", mode="substring")
    code_index.close()


def _define(root: Path, files: dict[str, str], index: CodeIndex) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        index.index_file(path)


def test_exact_definitions_outrank_prefix_matches(index: CodeIndex, tmp_path: Path) -> None:
    prefixed = "".join(f"def echo_{word}(x):\n    return echo_{word}\n\n" for word in "abcdefgh")
    _define(tmp_path, {"a_prefixes.py": prefixed, "z_echo.py": "def echo(x):\n    return x\n"}, index)
    _define(tmp_path, {"z_shell.py": "class Shell:\n    def echo(self, x):\n        return x\n"}, index)
    hits = index.search("echo", limit=5)
    assert [hit.symbol for hit in hits[:2]] == ["echo", "Shell.echo"]


def test_the_case_of_the_name_decides_between_exact_definitions(index: CodeIndex, tmp_path: Path) -> None:
    _define(tmp_path, {"filters.py": "class Filter:\n    def filter(self, items):\n        return items\n"}, index)
    assert index.search("Filter")[0].symbol == "Filter"
    assert index.search("filter")[0].symbol == "Filter.filter"


def test_generated_files_rank_after_source(index: CodeIndex, tmp_path: Path) -> None:
    _define(
        tmp_path,
        {"a/widget_pb2.py": "class Widget:\n    pass\n", "b/widget.py": "class Widget:\n    pass\n"},
        index,
    )
    assert [Path(hit.file).name for hit in index.search("Widget")[:2]] == ["widget.py", "widget_pb2.py"]


def test_searching_a_missing_index_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "index.sqlite"
    with pytest.raises(IndexMissingError, match="conveyor index"):
        search("anything", index=missing)
    assert not missing.parent.exists()


def test_an_index_from_before_trigrams_is_upgraded(tmp_path: Path, index: CodeIndex, source: Path) -> None:
    with index.writing() as db:
        db.execute("DROP TABLE chunk_grams")
        db.execute("ALTER TABLE files DROP COLUMN generated")
    index.close()
    reopened = CodeIndex(index.path)
    assert _lines(reopened.search("ion_po", mode="substring")) == [6, 7]
    reopened.close()


def test_a_substring_with_emoji_is_found(index: CodeIndex, source: Path) -> None:
    assert _lines(index.search("# 🚀 launch", mode="substring")) == [6]


def test_a_word_inside_a_run_of_japanese_is_found(index: CodeIndex, source: Path) -> None:
    """Japanese has no spaces between words: `スト用` is inside the token `テスト用`, not at its start."""
    assert _lines(index.search("スト用")) == [1]
