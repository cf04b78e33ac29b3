"""Identifiers: how ids look, how they are made, and how a malformed one is refused.

Ids are validated before they reach a key builder, so nothing a caller types can change the
shape of a DynamoDB key (no delimiter injection, no prefix tricks).
"""

from __future__ import annotations

import re
import uuid

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PREFIXED = re.compile(r"^(mdef|tdefi|tdef)_[0-9a-f]{32}$")


class MalformedId(ValueError):
    """An id that does not have the shape its kind requires."""


def new_guid() -> str:
    """A new random (version 4) GUID in canonical lower-case form."""
    return str(uuid.uuid4())


def new_prefixed_id(prefix: str) -> str:
    """A new id such as ``mdef_…`` for definitions, which carry their kind in the id."""
    if prefix not in {"mdef", "tdefi", "tdef"}:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{uuid.uuid4().hex}"


def is_guid(value: object) -> bool:
    """Whether ``value`` is a canonical lower-case GUID."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def require_guid(value: str, kind: str = "id") -> str:
    """Return ``value`` (normalised to lower case) or raise ``MalformedId``."""
    normalised = value.lower() if isinstance(value, str) else value
    if not is_guid(normalised):
        raise MalformedId(f"{kind} must be a GUID")
    return normalised


def require_prefixed(value: str, prefix: str) -> str:
    """Return ``value`` if it is a well-formed ``{prefix}_…`` id, else raise ``MalformedId``."""
    match = _PREFIXED.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(1) != prefix:
        raise MalformedId(f"id must look like {prefix}_<32 hex digits>")
    return value
