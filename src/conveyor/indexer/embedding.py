"""Embedding providers for semantic code search: texts in, unit-length float32 vectors out.

Two providers stand behind one interface (`Embedder`):

- `OfflineEmbedder` (the default): WordLlama's `l2_supercat` token embeddings (256 dimensions), whose weights
  and tokenizer ship inside the `wordllama` wheel (`pip install conveyor[semantic]`). It is loaded from the
  package's own files, never from a model hub, so it runs with no network at all.
- `HttpEmbedder`: any OpenAI-compatible `POST {base_url}/embeddings` endpoint. Its errors never hold the API
  key (a 401 body may echo it).

`embedder_from(settings)` builds the configured one; `model` names what made a vector, so vectors of two
models are never compared.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from conveyor.app import redact_secrets
from conveyor.indexer.errors import EmbeddingError
from conveyor.indexer.settings import IndexerSettings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

MAX_ERROR_BODY = 300
OFFLINE_MODEL = "wordllama-l2_supercat-256"


class Embedder(Protocol):
    """Turns texts into unit-length vectors (one row per text, `float32`)."""

    model: str

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length row per text."""
        ...

    def close(self) -> None:
        """Release connections (nothing for the offline model, which stays loaded for the process)."""
        ...


def numpy_module() -> Any:
    """numpy, or an `EmbeddingError` that says how to install it."""
    try:
        import numpy
    except ImportError as exc:
        raise EmbeddingError(_MISSING) from exc
    return numpy


_MISSING = (
    "Semantic search needs the `semantic` extra: `pip install 'conveyor[semantic]'` (or set "
    "CONVEYOR_EMBED_PROVIDER=off to index without embeddings)."
)


def normalized(rows: Any) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    np = numpy_module()
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: Vectors = matrix / np.where(norms == 0, 1.0, norms)
    return result


class OfflineEmbedder:
    """WordLlama from the files inside its wheel: mean-pooled token embeddings, no network."""

    model = OFFLINE_MODEL

    def __init__(self) -> None:
        self._inference = _load_wordllama()

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length 256-dimensional row per text."""
        if not texts:
            return normalized(numpy_module().zeros((0, 256)))
        return normalized(self._inference.embed(texts, norm=False))

    def close(self) -> None:
        """Nothing to release: the model stays loaded for the process."""


@functools.cache
def _load_wordllama() -> Any:
    """The WordLlama model, loaded once per process from the package's own weights and tokenizer files."""
    try:
        from safetensors import safe_open
        from wordllama.config import Config
        from wordllama.inference import WordLlamaInference
        from wordllama.tokenizers import tokenizer_from_file
    except ImportError as exc:
        raise EmbeddingError(_MISSING) from exc
    package = importlib.resources.files("wordllama")
    config = Config._configurations["l2_supercat"]
    tokenizer = tokenizer_from_file(package / "tokenizers" / "l2_supercat_tokenizer_config.json")
    with safe_open(str(package / "weights" / "l2_supercat_256.safetensors"), framework="np", device="cpu") as f:
        weights = f.get_tensor("embedding.weight")
    return WordLlamaInference(weights, config, tokenizer, binary=False)


class HttpEmbedder:
    """An OpenAI-compatible `/embeddings` endpoint (`base_url` like `https://host/v1`)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._key = api_key or ""
        self._client = httpx.Client(timeout=timeout_s)

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length row per text, in order (rows are ordered by the response's `index`)."""
        if not texts:
            return normalized(numpy_module().zeros((0, 1)))
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            response = self._client.post(
                f"{self.base_url}/embeddings", json={"model": self.model, "input": texts}, headers=headers
            )
        except httpx.HTTPError as exc:
            message = f"The embeddings endpoint {self.base_url} is unreachable: {exc}"
            raise EmbeddingError(self._redact(message)) from None
        if response.status_code != 200:
            body = response.text[:MAX_ERROR_BODY].strip()
            raise EmbeddingError(
                self._redact(f"The embeddings endpoint answered {response.status_code}: {body}. Check "
                             "CONVEYOR_EMBED_BASE_URL, CONVEYOR_EMBED_MODEL and CONVEYOR_EMBED_API_KEY.")
            )  # fmt: skip
        return normalized(self._rows(response, len(texts)))

    def _rows(self, response: httpx.Response, count: int) -> list[list[float]]:
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            rows = [list(map(float, item["embedding"])) for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"The embeddings endpoint answered something else than embeddings: {exc}") from exc
        if len(rows) != count:
            raise EmbeddingError(f"The embeddings endpoint returned {len(rows)} vectors for {count} texts.")
        return rows

    def _redact(self, text: str) -> str:
        return redact_secrets(text, (self._key,))

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def embedder_from(settings: IndexerSettings) -> Embedder | None:
    """The configured provider (None when `CONVEYOR_EMBED_PROVIDER=off`).

    Raises:
        EmbeddingError: the offline model is not installed.
    """
    if settings.conveyor_embed_provider == "off":
        return None
    if settings.conveyor_embed_provider == "openai":
        key = settings.conveyor_embed_api_key.get_secret_value() if settings.conveyor_embed_api_key else None
        return HttpEmbedder(
            settings.conveyor_embed_base_url,
            settings.conveyor_embed_model,
            key,
            timeout_s=settings.conveyor_embed_timeout_s,
        )
    return OfflineEmbedder()
