"""Reading Prometheus exposition text in tests: over HTTP, or straight from an ASGI app."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample as `(name, labels) -> value`."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the sample with exactly these labels (plus any global ones), or None."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls and _only_extra(ls, labels)]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def _only_extra(labels: frozenset[tuple[str, str]], wanted: dict[str, str]) -> bool:
    # Series labels other than the wanted ones must be global labels (env, instance) or histogram `le`.
    return all(key in wanted or key in ("env", "instance") for key, _ in labels)


async def http_scrape(url: str) -> Samples:
    """GET a metrics URL in a thread (the server may need this event loop to answer)."""

    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    return parse(await asyncio.to_thread(get))


async def asgi_get(asgi: Any, method: str = "GET", accept: str = "") -> tuple[int, dict[str, str], bytes]:
    """Call an ASGI app with one request; returns status, headers and body."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    headers = [(b"accept", accept.encode())] if accept else []
    await asgi({"type": "http", "method": method, "path": "/metrics", "headers": headers}, receive, send)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body
