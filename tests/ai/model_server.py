"""A local HTTP server that speaks OpenAI chat completions and Anthropic Messages, with scripted failures.

The requested model name picks the scenario, so one server serves every case:

| model | behaviour |
|---|---|
| `ok` | answers at once |
| `rate-limited-short` | first request 429 with `Retry-After: 1`, then answers |
| `rate-limited-long` | first request 429 with `Retry-After: 120`, then answers |
| `flaky-500` | first request 500, then answers |
| `bad-request` | always 400 |
| `slow-once` | first request answers after 3 s (longer than the client's timeout), then at once |
| `garbage` | 200 with a body that is not a completion |
| `rate-limited-twice` | first two requests 429 with `retry-after-ms: 300`, then answers |
| `unavailable-503` | first request 503 with `retry-after-ms: 300`, then answers |
| `echo-key` | always 401, quoting the credentials it was sent |
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-key"
SLOW_S = 3.0


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class ModelServer:
    """Start with `start()`, stop with `stop()`; `requests` lists what arrived."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = server.respond(self.path, dict(self.headers), body)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    data = json.dumps(payload).encode()
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def respond(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        lowered = {k.lower(): v for k, v in headers.items()}
        model = str(body.get("model"))
        with self.lock:
            self.requests.append(Recorded(path, lowered, body, time.monotonic()))
            self.seen[model] += 1
            first = self.seen[model] == 1
        protocol = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}.get(path)
        if protocol is None:
            return 404, {}, {"error": f"no route {path}"}
        if model == "echo-key":
            sent = lowered.get("authorization") or lowered.get("x-api-key")
            return 401, {}, {"error": {"message": f"Incorrect API key provided: {sent}", "headers": lowered}}
        if not self._authorized(protocol, lowered):
            return 401, {}, {"error": {"message": "invalid api key"}}
        return self._scenario(model, first, protocol)

    @staticmethod
    def _authorized(protocol: str, headers: dict[str, str]) -> bool:
        if protocol == "openai":
            return headers.get("authorization") == f"Bearer {API_KEY}"
        return headers.get("x-api-key") == API_KEY and bool(headers.get("anthropic-version"))

    def _scenario(self, model: str, first: bool, protocol: str) -> tuple[int, dict[str, str], Any]:
        if model == "bad-request":
            return 400, {}, {"error": {"message": "model does not exist"}}
        if model == "garbage":
            return 200, {}, {"unexpected": True}
        if first and model == "rate-limited-short":
            return 429, {"retry-after": "1"}, {"error": {"message": "slow down"}}
        if model == "rate-limited-twice" and self.seen[model] <= 2:
            return 429, {"retry-after-ms": "300"}, {"error": {"message": "slow down, twice"}}
        if first and model == "unavailable-503":
            return 503, {"retry-after-ms": "300"}, {"error": {"message": "overloaded"}}
        if first and model == "rate-limited-long":
            return 429, {"retry-after": "120"}, {"error": {"message": "slow down a lot"}}
        if first and model == "flaky-500":
            return 500, {}, {"error": {"message": "internal error"}}
        if first and model == "slow-once":
            time.sleep(SLOW_S)
        text = f"Model answer ({protocol}, {model})"
        if protocol == "openai":
            return 200, {}, {"choices": [{"message": {"role": "assistant", "content": text}}], "usage": {"total": 1}}
        return (
            200,
            {},
            {"content": [{"type": "text", "text": text}], "usage": {"input_tokens": 1}, "stop_reason": "end"},
        )
