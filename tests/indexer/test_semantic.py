"""Semantic and hybrid search: the offline embedder for real (no network), an OpenAI-compatible endpoint over
real HTTP (a local server in the test), `embed` jobs through a real worker, and how hybrid ranks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conveyor import Conveyor, JobState
from conveyor.indexer import CodeIndex, IndexerSettings, SearchMode, SearchQueryError
from conveyor.indexer.embedding import OFFLINE_MODEL, HttpEmbedder, OfflineEmbedder, embedder_from
from conveyor.indexer.embedjobs import EMBED, embed_missing
from conveyor.indexer.errors import EmbeddingError, SemanticIndexEmptyError
from conveyor.indexer.hits import Hit
from conveyor.indexer.semantic import fuse, search_code
from conveyor.indexer.vectors import SymbolVectors
from tests.indexer.helpers import running, wait_until

pytest.importorskip("wordllama")

SOURCE = '''
def read_config_file(path):
    """Load the settings from a TOML document on disk."""
    return open(path).read()


def send_email(to, subject, body):
    """Deliver a mail message to a recipient over SMTP."""


def shuffle_deck(cards):
    """Randomly reorder the playing cards."""


class HttpRetryPolicy:
    """Backoff between attempts when a web request fails."""
'''


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CodeIndex]:
    code_index = CodeIndex(tmp_path / "index.sqlite")
    path = tmp_path / "repo" / "tools.py"
    path.parent.mkdir()
    path.write_text(SOURCE)
    code_index.index_file(path)
    yield code_index
    code_index.close()


@pytest.fixture(scope="module")
def offline() -> OfflineEmbedder:
    return OfflineEmbedder()


def test_offline_embedder_gives_unit_vectors_that_place_related_texts_closer(offline: OfflineEmbedder) -> None:
    vectors = offline.embed(["send an email message", "deliver mail to a recipient", "shuffle playing cards"])
    assert vectors.shape == (3, 256)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])


def test_semantic_search_finds_a_symbol_by_a_description_in_other_words(
    index: CodeIndex, offline: OfflineEmbedder
) -> None:
    embed_missing(index, offline, [], batch=2)
    hits = search_code(index, "transmit a letter to somebody", 3, mode=SearchMode.SEMANTIC, embedder=offline)
    assert hits[0].symbol == "send_email"


def test_hybrid_search_keeps_an_exact_name_first(index: CodeIndex, offline: OfflineEmbedder) -> None:
    embed_missing(index, offline, [], batch=64)
    hits = search_code(index, "shuffle_deck", 5, mode=SearchMode.HYBRID, embedder=offline)
    assert hits[0].symbol == "shuffle_deck"


def test_semantic_search_of_an_index_without_embeddings_says_how_to_make_them(
    index: CodeIndex, offline: OfflineEmbedder
) -> None:
    with pytest.raises(SemanticIndexEmptyError, match="no embeddings"):
        search_code(index, "send mail", 5, mode=SearchMode.SEMANTIC, embedder=offline)


def test_vector_modes_without_an_embedder_are_a_clear_error(index: CodeIndex) -> None:
    with pytest.raises(SearchQueryError, match="CONVEYOR_EMBED_PROVIDER"):
        search_code(index, "send mail", 5, mode=SearchMode.HYBRID)
    assert embedder_from(IndexerSettings(conveyor_embed_provider="off")) is None


def test_reindexing_a_file_drops_its_old_vectors(index: CodeIndex, offline: OfflineEmbedder, tmp_path: Path) -> None:
    embed_missing(index, offline, [], batch=64)
    vectors = SymbolVectors(index)
    assert vectors.count(OFFLINE_MODEL) == 4
    path = tmp_path / "repo" / "tools.py"
    path.write_text(SOURCE + "\n\ndef extra():\n    pass\n")
    index.index_file(path)
    assert vectors.count(OFFLINE_MODEL) == 0
    assert embed_missing(index, offline, [str(path.resolve())], batch=64) == 5


def _hit(name: str, score: float = 1.0) -> Hit:
    return Hit(f"/{name}.py", 1, name, score, name, "function")


def test_fusion_ranks_a_hit_found_by_both_lists_above_hits_found_by_one() -> None:
    lexical = [_hit("a"), _hit("both"), _hit("c")]
    semantic = [_hit("d"), _hit("both"), _hit("e")]
    assert fuse(lexical, semantic, 3)[0].symbol == "both"


def test_fusion_puts_exact_name_hits_first_whatever_the_semantic_ranking() -> None:
    lexical = [_hit("exact", 350.0), _hit("part", 150.0)]
    semantic = [_hit("other"), _hit("part"), _hit("third")]
    fused = [hit.symbol for hit in fuse(lexical, semantic, 4)]
    assert fused[:2] == ["exact", "part"]


# --- the OpenAI-compatible provider, over real HTTP ---------------------------------------------------------


class FakeEmbeddings(BaseHTTPRequestHandler):
    """`POST /v1/embeddings`: a vector per input (from its length), or 401 echoing the key."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if key != "good-key-123456789":
            self._send(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
            return
        data = [{"index": i, "embedding": [len(t), 1.0, 0.0]} for i, t in enumerate(body["input"])]
        self._send(200, {"object": "list", "data": list(reversed(data)), "model": body["model"]})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeEmbeddings.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_http_embedder_posts_texts_and_returns_rows_in_input_order(endpoint: str) -> None:
    embedder = HttpEmbedder(endpoint, "tiny-embed", "good-key-123456789")
    vectors = embedder.embed(["ab", "aaaa"])
    embedder.close()
    assert vectors.shape == (2, 3)
    assert float(vectors[0][0]) < float(vectors[1][0])  # "ab" (length 2) first, though the server reversed them
    assert FakeEmbeddings.seen[0]["path"] == "/v1/embeddings"
    assert FakeEmbeddings.seen[0]["body"] == {"model": "tiny-embed", "input": ["ab", "aaaa"]}
    assert FakeEmbeddings.seen[0]["auth"] == "Bearer good-key-123456789"


def test_http_embedder_error_never_holds_the_key_the_server_echoed(endpoint: str) -> None:
    secret = "wrong-key-abcdefghijklmnop"
    embedder = embedder_from(
        IndexerSettings(
            conveyor_embed_provider="openai", conveyor_embed_base_url=endpoint, conveyor_embed_api_key=secret
        )
    )
    assert isinstance(embedder, HttpEmbedder)
    with pytest.raises(EmbeddingError, match="401") as caught:
        embedder.embed(["x"])
    assert secret not in str(caught.value)
    assert "Incorrect API key" in str(caught.value)


def test_http_embedder_reports_an_unreachable_endpoint() -> None:
    embedder = HttpEmbedder("http://127.0.0.1:9/v1", "m", "k", timeout_s=2)
    with pytest.raises(EmbeddingError, match="unreachable"):
        embedder.embed(["x"])


# --- embed jobs through a real worker ------------------------------------------------------------------------


async def test_indexing_a_file_enqueues_an_embed_job_that_a_worker_runs(
    app: Conveyor, tmp_path: Path, index_path: Path, offline: OfflineEmbedder
) -> None:
    path = tmp_path / "repo2" / "tools.py"
    path.parent.mkdir()
    path.write_text(SOURCE)
    queue = app.queue("indexing")
    async with running(app.worker(["indexing"])):
        job_id = await app.add("indexing", "index-file", {"path": str(path)})
        await wait_until(lambda: _done(queue, job_id), timeout=30)
        embed_ids = await _jobs_of_type(queue, EMBED)
        assert len(embed_ids) == 1
        await wait_until(lambda: _done(queue, embed_ids[0]), timeout=60)
    job = await queue.get_job(embed_ids[0])
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.result == {"model": OFFLINE_MODEL, "embedded": 4}
    index = CodeIndex(index_path)
    hits = search_code(index, "randomly reorder cards", 1, mode=SearchMode.SEMANTIC, embedder=offline)
    index.close()
    assert hits[0].symbol == "shuffle_deck"


async def _done(queue: Any, job_id: str) -> bool:
    return await queue.state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


_STATES = (JobState.WAITING, JobState.PRIORITIZED, JobState.ACTIVE, JobState.COMPLETED)


async def _jobs_of_type(queue: Any, name: str) -> list[str]:
    for _ in range(100):
        jobs = [job for state in _STATES for job in await queue.jobs(state)]
        found = [job.id for job in jobs if job.type == name]
        if found:
            return found
        await asyncio.sleep(0.05)
    return []


def test_offline_embedder_runs_without_any_network() -> None:
    """In a process with no network interface but loopback (a new network namespace), the model loads from the
    installed wheel's files and embeds."""
    script = "from conveyor.indexer.embedding import OfflineEmbedder; print(OfflineEmbedder().embed(['x']).shape)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace here (needs unshare and privileges)")
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 256)"
