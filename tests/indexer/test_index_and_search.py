"""Indexing a repository into SQLite/FTS5 and searching it: symbols, content, ranking, incremental updates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.indexer.jobs import plan_full_index
from conveyor.indexer.store import CodeIndex
from conveyor.indexer.walker import walk_repository


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CodeIndex]:
    code_index = CodeIndex(tmp_path / "index.sqlite")
    yield code_index
    code_index.close()


def _index_all(index: CodeIndex, repo: Path) -> None:
    for found in walk_repository(repo):
        index.index_file(found.path)


@pytest.mark.parametrize(
    ("query", "file", "symbol", "line"),
    [
        ("InvoiceCalculator", "billing/invoice.py", "InvoiceCalculator", 6),
        ("total with tax", "billing/invoice.py", "InvoiceCalculator.total_with_tax", 9),
        ("renderWidget", "web/dashboard.ts", "DashboardRenderer.renderWidget", 7),
        ("subscribeTopic", "web/events.js", "EventBus.subscribeTopic", 2),
        ("LookupKey", "store/kv.go", "KeyValueStore.LookupKey", 8),
        ("push_sample", "dsp/ring.rs", "RingBuffer.push_sample", 7),
        ("placeOrder", "shop/OrderService.java", "OrderService.placeOrder", 7),
    ],
)
def test_search_finds_symbols_of_every_language_first(
    index: CodeIndex, repo: Path, query: str, file: str, symbol: str, line: int
) -> None:
    _index_all(index, repo)
    best = index.search(query, limit=5)[0]
    assert (best.file, best.symbol, best.line) == (str(repo / file), symbol, line)
    assert best.kind != "content"
    assert best.score > 0


def test_content_hits_name_the_line_and_the_enclosing_symbol(index: CodeIndex, repo: Path) -> None:
    _index_all(index, repo)
    hits = index.search("System.out.println", limit=5)
    assert hits[0].file == str(repo / "shop/OrderService.java")
    assert hits[0].line == 8
    assert hits[0].symbol == "OrderService.placeOrder"
    assert "println" in hits[0].snippet


def test_a_definition_outranks_a_mention(index: CodeIndex, repo: Path) -> None:
    (repo / "web" / "uses.ts").write_text(
        "import { DashboardRenderer } from './dashboard';\nnew DashboardRenderer();\n"
    )
    _index_all(index, repo)
    hits = index.search("DashboardRenderer", limit=10)
    assert hits[0].kind == "class"
    assert hits[0].file.endswith("dashboard.ts")
    assert any(h.file.endswith("uses.ts") for h in hits[1:])


def test_camel_case_words_are_searchable_separately(index: CodeIndex, repo: Path) -> None:
    _index_all(index, repo)
    assert index.search("layout", limit=3)[0].symbol == "parseLayout"
    assert "KeyValueStore" in [h.symbol for h in index.search("value store", limit=3)]


def test_ignored_and_binary_files_are_not_searchable(index: CodeIndex, repo: Path) -> None:
    _index_all(index, repo)
    assert index.search("ignoredLogEntry") == []
    assert index.search("generatedButIgnored") == []
    assert index.search("binaryBlobMarker") == []


def test_query_syntax_in_user_input_is_treated_as_words(index: CodeIndex, repo: Path) -> None:
    _index_all(index, repo)
    assert index.search('"unbalanced AND (NEAR -') == []
    assert index.search("") == []
    assert index.search("   ") == []


def test_unchanged_content_is_skipped_by_its_hash(index: CodeIndex, repo: Path) -> None:
    path = repo / "billing" / "invoice.py"
    assert index.index_file(path).status == "indexed"
    path.write_text(path.read_text())  # same bytes, new mtime
    assert index.index_file(path).status == "unchanged"
    assert index.index_file(path, force=True).status == "indexed"


def test_reindex_after_edit_replaces_symbols_and_content(index: CodeIndex, repo: Path) -> None:
    path = repo / "billing" / "invoice.py"
    index.index_file(path)
    path.write_text("def refund_payment(order):\n    return order\n")
    outcome = index.index_file(path)
    assert (outcome.status, outcome.symbols) == ("indexed", 1)
    assert index.search("InvoiceCalculator") == []
    assert index.search("refund_payment")[0].symbol == "refund_payment"
    assert [s.name for s in index.symbols(path)] == ["refund_payment"]


def test_deleted_file_leaves_the_index(index: CodeIndex, repo: Path) -> None:
    path = repo / "store" / "kv.go"
    index.index_file(path)
    path.unlink()
    assert index.index_file(path).status == "vanished"
    assert index.search("LookupKey") == []
    assert index.file(path) is None


def test_full_index_plan_prunes_deleted_and_newly_ignored_files_and_skips_untouched_ones(
    index: CodeIndex, repo: Path
) -> None:
    first = plan_full_index(index, repo)
    for found in first.changed:
        index.index_file(found.path)
    (repo / "dsp" / "ring.rs").unlink()
    (repo / ".gitignore").write_text("*.log\nbuild/\nweb/\n")
    (repo / "shop" / "OrderService.java").write_text("class OrderService { void cancelOrder() {} }\n")
    second = plan_full_index(index, repo)
    assert sorted(Path(p).name for p in second.removed) == ["dashboard.ts", "events.js", "ring.rs"]
    assert sorted(f.relative for f in second.changed) == [".gitignore", "shop/OrderService.java"]
    assert second.unchanged == len(first.changed) - 3 - 2
    assert index.search("average_samples") == []
    assert index.search("renderWidget") == []


def test_a_file_that_became_binary_or_too_large_leaves_the_index(tmp_path: Path, repo: Path) -> None:
    index = CodeIndex(tmp_path / "small.sqlite", max_file_bytes=200)
    path = repo / "README.md"
    assert index.index_file(path).status == "indexed"
    path.write_text("word " * 100)
    assert index.index_file(path).status == "too-large"
    assert index.file(path) is None
    index.close()


def test_optimize_and_vacuum_keep_the_index_searchable(index: CodeIndex, repo: Path) -> None:
    _index_all(index, repo)
    for found in walk_repository(repo):
        index.index_file(found.path, force=True)
    stats = index.optimize(vacuum=True)
    assert stats.files == 8
    assert stats.symbols > 15
    assert index.search("RingBuffer")[0].symbol == "RingBuffer"
