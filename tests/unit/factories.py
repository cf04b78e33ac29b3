"""Factories for unit tests: ids, org contexts and authorizer contexts, built one way everywhere."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from spectra.auth.credentials import KeyType
from spectra.auth.scopes import Action, ResourceFilter, Scope
from spectra.tenancy.context import OrgContext


def guid() -> str:
    """A fresh canonical (lower-case) GUID."""
    return str(uuid.uuid4())


def hex32() -> str:
    """32 lower-case hex digits, the body of a prefixed definition id."""
    return uuid.uuid4().hex


def full_access() -> tuple[Scope, ...]:
    """The scopes of an unrestricted key: every action on the whole org."""
    return (Scope(Action.ALL, ResourceFilter(())),)


def make_org_context(
    *,
    org_id: str | None = None,
    key_id: str | None = None,
    key_type: KeyType = KeyType.ADMIN,
    scopes: Iterable[Scope] | None = None,
) -> OrgContext:
    """An org context as the authorizer would build it; defaults to a fresh org and full access."""
    return OrgContext(
        org_id=org_id or guid(),
        key_id=key_id or guid(),
        key_type=key_type,
        scopes=tuple(full_access() if scopes is None else scopes),
    )


def make_authorizer_context(**overrides: Any) -> dict[str, Any]:
    """The ``requestContext.authorizer`` map the Lambda authorizer returns (string values only)."""
    context: dict[str, Any] = {
        "orgId": guid(),
        "keyId": guid(),
        "keyType": KeyType.EXTERNAL.value,
        "scopes": json.dumps([{"action": "read", "resourceFilter": "THING/Battery/#"}]),
        "plan": "standard",
    }
    context.update(overrides)
    return context


def scopes_json(scopes: Iterable[Mapping[str, str]]) -> str:
    """Scopes serialised the way the authorizer passes them on."""
    return json.dumps(list(scopes))
