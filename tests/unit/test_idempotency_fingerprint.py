"""Idempotency fingerprints of request bodies are keyed: a stored one cannot be used to test
guesses of what a body held (a body can carry integration secrets)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from spectra.config import get_settings
from spectra.http import idempotency

BODY = '{"secretProperties": {"apiKey": "hunter2"}}'


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RECORDS_TABLE", "records")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    monkeypatch.setenv("ORG_DATA_ROLE_ARN", "arn:aws:iam::123456789012:role/org")
    monkeypatch.setenv("API_KEY_PEPPER_SECRET_ARN", "pepper")
    monkeypatch.setenv("PAGE_TOKEN_SECRET_ARN", "signing")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_fingerprint_is_not_a_plain_hash_of_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "platform_secret", lambda _arn: b"platform key")

    fingerprint = idempotency.payload_fingerprint(BODY)

    assert fingerprint != hashlib.sha256(BODY.encode()).hexdigest()
    assert fingerprint == idempotency.payload_fingerprint(BODY)  # stable: a retry matches
    assert fingerprint != idempotency.payload_fingerprint(BODY.replace("hunter2", "hunter3"))


def test_the_fingerprint_depends_on_the_platform_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "platform_secret", lambda _arn: b"one key")
    first = idempotency.payload_fingerprint(BODY)
    monkeypatch.setattr(idempotency, "platform_secret", lambda _arn: b"another key")

    assert idempotency.payload_fingerprint(BODY) != first
