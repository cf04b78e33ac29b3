"""API key credentials: the key format, its checksum, and the keyed hash stored in its place.

A key reads ``spx_<type>_<keyId>_<secret><checksum>``: ``type`` is ``ad`` (admin) or ``ex``
(external), ``keyId`` a GUID, ``secret`` 43 base62 characters (256 bits from ``secrets``), and
``checksum`` six base62 characters of the CRC-32 of everything before it, so secret scanners
can recognise a Spectra key and a typo is refused without a store read. Only
HMAC-SHA-256(pepper, key) is stored; the pepper lives in Secrets Manager, never in the table.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

from spectra.identifiers import new_guid, require_guid

KEY_PREFIX = "spx"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SECRET_LENGTH = 43  # 43 * log2(62) = 256.03 bits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32, room for any CRC-32

_KEY_PATTERN = re.compile(
    r"^spx_(?P<type>ad|ex)_(?P<key_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_"
    rf"(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$",
)


class KeyType(StrEnum):
    ADMIN = "admin"
    EXTERNAL = "external"

    @property
    def code(self) -> str:
        """The two-letter code used inside the key string."""
        return "ad" if self is KeyType.ADMIN else "ex"

    @classmethod
    def from_code(cls, code: str) -> KeyType:
        return cls.ADMIN if code == "ad" else cls.EXTERNAL


class MalformedKey(ValueError):
    """A string that is not a well-formed Spectra key (wrong shape or bad checksum)."""


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


@dataclass(frozen=True)
class ApiKeyCredential:
    """A full API key. ``repr`` hides the secret so it cannot end up in a log by accident."""

    key_type: KeyType
    key_id: str
    secret: str

    @classmethod
    def generate(cls, key_type: KeyType, key_id: str | None = None) -> ApiKeyCredential:
        """A new key with a fresh 256-bit secret."""
        secret = "".join(secrets.choice(BASE62) for _ in range(SECRET_LENGTH))
        return cls(key_type=key_type, key_id=require_guid(key_id) if key_id else new_guid(), secret=secret)

    @classmethod
    def parse(cls, raw: str) -> ApiKeyCredential:
        """Parse a presented key; raises ``MalformedKey`` on shape or checksum mismatch."""
        match = _KEY_PATTERN.fullmatch(raw.strip()) if isinstance(raw, str) else None
        if match is None:
            raise MalformedKey("not a Spectra API key")
        credential = cls(
            key_type=KeyType.from_code(match["type"]),
            key_id=match["key_id"],
            secret=match["secret"],
        )
        if not hmac.compare_digest(_checksum(credential._body), match["checksum"]):
            raise MalformedKey("API key checksum does not match")
        return credential

    @property
    def _body(self) -> str:
        return f"{KEY_PREFIX}_{self.key_type.code}_{self.key_id}_{self.secret}"

    def reveal(self) -> str:
        """The full key string, to show the caller exactly once."""
        return self._body + _checksum(self._body)

    def __repr__(self) -> str:
        return f"ApiKeyCredential(key_type={self.key_type.value!r}, key_id={self.key_id!r}, secret=<hidden>)"

    __str__ = __repr__


def hash_credential(pepper: bytes, credential: ApiKeyCredential) -> str:
    """The keyed hash stored instead of the key (HMAC-SHA-256 with the platform pepper)."""
    return hmac.new(pepper, credential.reveal().encode("ascii"), hashlib.sha256).hexdigest()


def credential_matches(pepper: bytes, credential: ApiKeyCredential, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_credential(pepper, credential), stored_hash)
