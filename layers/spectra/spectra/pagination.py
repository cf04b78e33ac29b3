"""Continuation tokens: opaque, signed, bound to the org and the query, and expiring.

A token is ``base64url(payload) . base64url(HMAC-SHA-256(key, payload))`` where the payload holds
the org id, a fingerprint of the query (route and filters), an expiry and the position. A token
that was tampered with, issued to another org, issued for another query or is stale is refused
with 400, before any store read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from spectra.errors import InvalidPageToken, ValidationFailed
from spectra.tenancy.context import OrgContext

TOKEN_TTL_SECONDS = 3600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def query_fingerprint(route: str, filters: Mapping[str, Any]) -> str:
    """A stable digest of what is being listed, so a token cannot be replayed on another query."""
    canonical = json.dumps({"route": route, "filters": filters}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Issues and checks continuation tokens with a signing key from ``key_provider``."""

    def __init__(
        self,
        key_provider: Callable[[], bytes],
        *,
        ttl_seconds: int = TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key_provider = key_provider
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    def issue(self, org: OrgContext, fingerprint: str, position: Mapping[str, Any]) -> str:
        """A token that resumes the query ``fingerprint`` for ``org`` after ``position``."""
        payload = {
            "o": org.org_id,
            "q": fingerprint,
            "e": int(self._clock()) + self._ttl_seconds,
            "p": position,
        }
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return f"{_b64encode(body)}.{_b64encode(self._sign(body))}"

    def read(self, org: OrgContext, fingerprint: str, token: str) -> dict[str, Any]:
        """The position a token carries; raises ``InvalidPageToken`` unless it is genuine and current."""
        if not isinstance(token, str) or len(token) > 4096 or token.count(".") != 1:
            raise InvalidPageToken("The continuation token is malformed.")
        encoded_body, encoded_signature = token.split(".")
        try:
            body = _b64decode(encoded_body)
            signature = _b64decode(encoded_signature)
        except (binascii.Error, ValueError) as error:
            raise InvalidPageToken("The continuation token is malformed.") from error
        if not hmac.compare_digest(self._sign(body), signature):
            raise InvalidPageToken("The continuation token is not valid.")
        payload = json.loads(body)
        if payload.get("o") != org.org_id or payload.get("q") != fingerprint:
            raise InvalidPageToken("The continuation token belongs to another query.")
        if int(payload.get("e", 0)) < self._clock():
            raise InvalidPageToken("The continuation token has expired; start the list again.")
        position = payload.get("p")
        if not isinstance(position, dict):
            raise InvalidPageToken("The continuation token is malformed.")
        return position

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key_provider(), body, hashlib.sha256).digest()


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list the caller wants."""

    limit: int
    continuation_token: str | None

    @classmethod
    def of(
        cls,
        limit: int | None,
        page_limit: int | None,
        continuation_token: str | None,
        *,
        default: int = DEFAULT_PAGE_SIZE,
    ) -> PageRequest:
        """Combine ``limit`` and its alias ``pageLimit`` (they must agree if both are given)."""
        if limit is not None and page_limit is not None and limit != page_limit:
            raise ValidationFailed.single("limit", "limit and pageLimit disagree; send one of them")
        chosen = limit if limit is not None else page_limit
        return cls(limit=chosen or default, continuation_token=continuation_token)
