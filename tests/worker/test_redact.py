"""Secrets are taken out of error text before the worker stores it."""

from __future__ import annotations

import pytest

from conveyor.worker.redact import redact_secrets


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('401: {"error": "Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuv"}', "sk-proj-abcdefghijkl"),
        ("sent Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ('{"x-api-key": "k-123456789"}', "k-123456789"),
        ("GET https://api.example.com/v1/models?key=AIzaSyA-secret&alt=json", "AIzaSyA-secret"),
        ("cannot connect to redis://default:hunter22@cache:6379/0", "hunter22"),
        ("password=swordfish; retry", "swordfish"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij"),
    ],
)
def test_credential_shapes_are_redacted(text: str, secret: str) -> None:
    redacted = redact_secrets(text)
    assert secret not in redacted
    assert "[REDACTED]" in redacted


def test_a_known_secret_is_redacted_wherever_it_appears() -> None:
    assert redact_secrets("the key plain-value-42 was refused", ["plain-value-42"]) == "the key [REDACTED] was refused"


def test_ordinary_error_text_is_left_alone() -> None:
    text = "ConnectionRefusedError: [Errno 111] Connection refused (host 127.0.0.1:6379); retry in 2 s"
    assert redact_secrets(text, ["abc"]) == text  # too short to be a secret worth redacting
