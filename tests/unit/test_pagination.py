"""Continuation tokens: signed, bound to the org and the query, expiring; anything else is a 400."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from spectra.errors import InvalidPageToken
from spectra.pagination import TOKEN_TTL_SECONDS, PageTokens, query_fingerprint
from spectra.tenancy.context import OrgContext
from tests.unit.factories import make_org_context

SIGNING_KEY = b"page-token-signing-key-for-tests"
NOW = 1_700_000_000.0
POSITION = {"pk": "ORG#x#APIKEYS#", "sk": "APIKEY#y#"}
FINGERPRINT = query_fingerprint("GET /api-keys", {"status": "active"})


class Clock:
    """A settable clock, so expiry is tested without sleeping."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_tokens(key: bytes = SIGNING_KEY, clock: Clock | None = None) -> PageTokens:
    return PageTokens(lambda: key, clock=clock or Clock())


@pytest.fixture
def org() -> OrgContext:
    return make_org_context()


@pytest.fixture
def token(org: OrgContext) -> str:
    return make_tokens().issue(org, FINGERPRINT, POSITION)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_token_round_trips_to_its_position(org: OrgContext, token: str) -> None:
    assert make_tokens().read(org, FINGERPRINT, token) == POSITION


def test_token_is_url_safe(token: str) -> None:
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_token_round_trips_nested_positions(org: OrgContext) -> None:
    position: dict[str, Any] = {"pk": "a", "sk": "b", "gsi1sk": "2024-01-01T00:00:00.000Z#c", "n": 3}
    tokens = make_tokens()
    assert tokens.read(org, FINGERPRINT, tokens.issue(org, FINGERPRINT, position)) == position


def test_tampered_body_is_refused(org: OrgContext, token: str) -> None:
    body, signature = token.split(".")
    payload = json.loads(unb64(body))
    payload["p"]["sk"] = "APIKEY#z#"
    forged = b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, f"{forged}.{signature}")


def test_extended_expiry_is_refused(org: OrgContext, token: str) -> None:
    body, signature = token.split(".")
    payload = json.loads(unb64(body))
    payload["e"] += 10 * TOKEN_TTL_SECONDS
    forged = b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, f"{forged}.{signature}")


def test_tampered_signature_is_refused(org: OrgContext, token: str) -> None:
    body, signature = token.split(".")
    raw = bytearray(unb64(signature))
    raw[0] ^= 0x01
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, f"{body}.{b64(bytes(raw))}")


def test_truncated_signature_is_refused(org: OrgContext, token: str) -> None:
    body, signature = token.split(".")
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, f"{body}.{signature[:-4]}")


def test_token_of_another_org_is_refused(org: OrgContext, token: str) -> None:
    with pytest.raises(InvalidPageToken):
        make_tokens().read(make_org_context(), FINGERPRINT, token)


def test_token_of_another_query_is_refused(org: OrgContext, token: str) -> None:
    other_query = query_fingerprint("GET /api-keys", {"status": "revoked"})
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, other_query, token)


def test_token_of_another_route_is_refused(org: OrgContext, token: str) -> None:
    other_route = query_fingerprint("GET /things", {"status": "active"})
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, other_route, token)


def test_token_is_valid_until_its_expiry(org: OrgContext) -> None:
    clock = Clock()
    tokens = make_tokens(clock=clock)
    token = tokens.issue(org, FINGERPRINT, POSITION)
    clock.now = NOW + TOKEN_TTL_SECONDS
    assert tokens.read(org, FINGERPRINT, token) == POSITION


def test_expired_token_is_refused(org: OrgContext) -> None:
    clock = Clock()
    tokens = make_tokens(clock=clock)
    token = tokens.issue(org, FINGERPRINT, POSITION)
    clock.now = NOW + TOKEN_TTL_SECONDS + 1
    with pytest.raises(InvalidPageToken, match="expired"):
        tokens.read(org, FINGERPRINT, token)


def test_custom_ttl_is_honoured(org: OrgContext) -> None:
    clock = Clock()
    tokens = PageTokens(lambda: SIGNING_KEY, ttl_seconds=60, clock=clock)
    token = tokens.issue(org, FINGERPRINT, POSITION)
    clock.now = NOW + 61
    with pytest.raises(InvalidPageToken):
        tokens.read(org, FINGERPRINT, token)


def test_token_signed_with_another_key_is_refused(org: OrgContext) -> None:
    token = make_tokens(key=b"another-signing-key").issue(org, FINGERPRINT, POSITION)
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, token)


def test_unsigned_token_is_refused(org: OrgContext) -> None:
    payload = {"o": org.org_id, "q": FINGERPRINT, "e": int(NOW) + 60, "p": POSITION}
    body = b64(json.dumps(payload).encode())
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, f"{body}.")


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("", id="empty"),
        pytest.param("nodot", id="no dot"),
        pytest.param("a.b.c", id="two dots"),
        pytest.param(".", id="only a dot"),
        pytest.param("!!!.???", id="not base64"),
        pytest.param("abc.de", id="bad padding"),
        pytest.param("é.ü", id="non-ascii"),
        pytest.param("A" * 2500 + "." + "B" * 2499, id="5000 characters"),
        pytest.param("null.null", id="json-looking"),
    ],
)
def test_garbage_token_is_refused(org: OrgContext, garbage: str) -> None:
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, garbage)


def test_non_string_token_is_refused(org: OrgContext) -> None:
    with pytest.raises(InvalidPageToken):
        make_tokens().read(org, FINGERPRINT, None)  # type: ignore[arg-type]


def test_query_fingerprint_is_stable() -> None:
    assert query_fingerprint("GET /things", {"status": "active", "type": "Battery"}) == query_fingerprint(
        "GET /things", {"status": "active", "type": "Battery"}
    )


def test_query_fingerprint_ignores_filter_order() -> None:
    assert query_fingerprint("GET /things", {"status": "active", "type": "Battery"}) == query_fingerprint(
        "GET /things", {"type": "Battery", "status": "active"}
    )


@pytest.mark.parametrize(
    ("route", "filters"),
    [
        ("GET /things", {"status": "deleted", "type": "Battery"}),
        ("GET /things", {"status": "active"}),
        ("GET /things", {"status": "active", "type": "Battery", "name": "x"}),
        ("GET /places", {"status": "active", "type": "Battery"}),
    ],
)
def test_query_fingerprint_differs_for_another_query(route: str, filters: dict[str, str]) -> None:
    assert query_fingerprint(route, filters) != query_fingerprint(
        "GET /things", {"status": "active", "type": "Battery"}
    )


def test_query_fingerprint_is_32_hex_characters() -> None:
    fingerprint = query_fingerprint("GET /things", {})
    assert len(fingerprint) == 32
    assert int(fingerprint, 16) >= 0
