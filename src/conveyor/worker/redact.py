"""Secrets kept out of stored error text.

An error message can carry what a remote side echoed back: a provider's 401 body quoting the API key, an
`Authorization` header in an HTTP library's message, a URL with credentials. Whatever a job's error says is
stored (failedReason, the retry history, stack traces, events, dead letters) and shown to anyone who may
read the queue, so the worker passes every such text through `redact_secrets` first.

The patterns are deliberately broad: a redacted word too many in an error message costs little, a leaked
key costs a rotation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
MIN_EXACT_SECRET = 6  # shorter values would redact ordinary words
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization schemes: `Bearer abc…`, `Basic dXNlcjpw…`, `token ghp_…`
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=\-]{6,}"), rf"\1\2{REDACTED}"),
    # name = value / name: value / "name": "value" (keys, tokens, secrets, passwords, cookies)
    (
        re.compile(
            r"(?i)([\"']?\b(?:x-)?(?:api[ _-]?key|access[ _-]?token|auth[ _-]?token|refresh[ _-]?token|"
            r"client[ _-]?secret|secret[ _-]?key|secret|password|passwd|authorization|cookie|session[ _-]?id)"
            r"[\"']?\s*(?:[:=]|\bis\b)\s*[\"']?)(?!\[REDACTED\])[^\s\"',;}&]{3,}"
        ),
        rf"\1{REDACTED}",
    ),
    # query parameters: ?key=…, &api_key=…, &access_token=…
    (re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token|sig|signature)=)[^&\s\"']+"), rf"\1{REDACTED}"),
    # credentials in URLs: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+@"), rf"\1{REDACTED}@"),
    # well-known key shapes: OpenAI/Anthropic `sk-…`, GitHub `ghp_…`, Slack `xox…-`, AWS access key ids
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
)


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with credentials replaced by `[REDACTED]`: the given `secrets` wherever they appear, and
    anything shaped like a credential (see the module's description)."""
    for secret in sorted((s for s in secrets if s and len(s) >= MIN_EXACT_SECRET), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
