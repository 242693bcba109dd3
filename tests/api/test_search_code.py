"""`searchCode` answers from the codebase index built by the indexing jobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.indexer import CodeIndex
from conveyor.indexer.embedding import OfflineEmbedder
from conveyor.indexer.embedjobs import embed_missing
from conveyor.indexer.vectors import SymbolVectors
from tests.api.conftest import Api, code_of

QUERY = "query($q: String!) { searchCode(query: $q, limit: 5) { file line symbol kind score snippet } }"


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = tmp_path / "repo" / "billing.py"
    source.parent.mkdir()
    source.write_text("class InvoiceCalculator:\n    def total(self) -> int:\n        return 42\n")
    index_path = tmp_path / "index.sqlite"
    monkeypatch.setenv("CONVEYOR_INDEX_PATH", str(index_path))
    index = CodeIndex(index_path)
    try:
        index.index_file(source)
    finally:
        index.close()
    return source


async def test_search_code_finds_a_symbol_with_file_and_line(api: Api, indexed: Path) -> None:
    hits = (await api.data(QUERY, {"q": "InvoiceCalculator"}, token="viewer"))["searchCode"]
    assert hits[0]["file"].endswith("billing.py")
    assert hits[0]["symbol"] == "InvoiceCalculator"
    assert hits[0]["line"] == 1
    assert hits[0]["kind"] == "class"


async def test_search_code_refuses_an_empty_query(api: Api, indexed: Path) -> None:
    assert code_of(await api.gql(QUERY, {"q": "  "}, token="viewer")) == "BAD_USER_INPUT"


async def test_search_code_reads_the_query_in_the_mode_asked(api: Api, indexed: Path) -> None:
    query = "query($q: String!) { searchCode(query: $q, mode: REGEX) { line snippet } }"
    hits = (await api.data(query, {"q": r"return \d+"}, token="viewer"))["searchCode"]
    assert [(hit["line"], hit["snippet"]) for hit in hits] == [(3, "return 42")]


async def test_search_code_refuses_an_unbounded_query_with_the_limit(api: Api, indexed: Path) -> None:
    result = await api.gql(QUERY, {"q": "word " * 15_000}, token="viewer")
    assert code_of(result) == "BAD_USER_INPUT"
    assert "limit is" in result["errors"][0]["message"]


async def test_search_code_without_an_index_is_an_error_and_creates_none(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "none" / "index.sqlite"
    monkeypatch.setenv("CONVEYOR_INDEX_PATH", str(missing))
    result = await api.gql(QUERY, {"q": "anything"}, token="viewer")
    assert code_of(result) == "INDEX_NOT_FOUND"
    assert "conveyor index" in result["errors"][0]["message"]
    assert not missing.exists()


async def test_search_code_in_hybrid_mode_ranks_by_meaning_and_keeps_exact_names_first(api: Api, indexed: Path) -> None:
    pytest.importorskip("wordllama")
    index = CodeIndex(Path(os.environ["CONVEYOR_INDEX_PATH"]))
    try:
        embed_missing(index, OfflineEmbedder(), [], batch=64)
    finally:
        index.close()
    query = "query($q: String!, $m: CodeSearchMode!) { searchCode(query: $q, mode: $m, limit: 3) { symbol } }"
    semantic = (await api.data(query, {"q": "compute the invoice sum", "m": "SEMANTIC"}, token="viewer"))["searchCode"]
    assert {hit["symbol"] for hit in semantic} >= {"InvoiceCalculator.total"}
    hybrid = (await api.data(query, {"q": "InvoiceCalculator", "m": "HYBRID"}, token="viewer"))["searchCode"]
    assert hybrid[0]["symbol"] == "InvoiceCalculator"


async def test_search_code_in_semantic_mode_without_embeddings_says_how_to_make_them(api: Api, indexed: Path) -> None:
    pytest.importorskip("wordllama")
    query = "query($q: String!) { searchCode(query: $q, mode: SEMANTIC) { symbol } }"
    result = await api.gql(query, {"q": "invoice"}, token="viewer")
    assert code_of(result) == "BAD_USER_INPUT"
    assert "no embeddings" in result["errors"][0]["message"]


async def test_search_code_with_an_unreachable_embeddings_endpoint_is_unavailable_without_the_key(
    api: Api, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("numpy")
    index = CodeIndex(Path(os.environ["CONVEYOR_INDEX_PATH"]))
    try:
        vectors = SymbolVectors.of(index)
        ids = [symbol_id for symbol_id, _ in vectors.missing([], "tiny-embed", 10)]
        vectors.put("tiny-embed", ids, [[1.0, 0.0, 0.0]] * len(ids))
    finally:
        index.close()
    secret = "sk-test-abcdefghijklmnopqrstuvwxyz"
    for name, value in {"PROVIDER": "openai", "BASE_URL": f"http://127.0.0.1:9/v1?api_key={secret}",
                        "MODEL": "tiny-embed", "API_KEY": secret, "TIMEOUT_S": "2"}.items():  # fmt: skip
        monkeypatch.setenv(f"CONVEYOR_EMBED_{name}", value)
    query = "query($q: String!) { searchCode(query: $q, mode: HYBRID) { symbol } }"
    result = await api.gql(query, {"q": "invoice"}, token="viewer")
    assert code_of(result) == "EMBEDDINGS_UNAVAILABLE"
    assert "unreachable" in result["errors"][0]["message"]
    assert secret not in str(result)
