"""The organization a request acts for, taken from the authorizer context and nowhere else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spectra.auth.credentials import KeyType
from spectra.auth.scopes import Action, ResourceFilter, Scope, parse_path, scopes_allow
from spectra.errors import ScopeDenied, Unauthorized
from spectra.identifiers import is_guid
from spectra.observability import logger
from spectra.ratelimits.plans import DEFAULT_PLAN, LimitOverrides, parse_overrides


@dataclass(frozen=True)
class OrgContext:
    """Who is calling: the org, the key that acts for it, and what that key may do."""

    org_id: str
    key_id: str
    key_type: KeyType
    scopes: tuple[Scope, ...]
    plan: str = DEFAULT_PLAN
    limit_overrides: LimitOverrides = field(default_factory=dict)
    """The org's own rate limits for some tiers, replacing its plan's (operator-set)."""
    request_id: str = ""
    source_ip: str = ""
    allowed_ip_cidrs: tuple[str, ...] = ()
    expires_at: str | None = None
    extras: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_guid(self.org_id):
            raise Unauthorized("The request carries no valid organization.")

    @classmethod
    def from_authorizer(
        cls,
        authorizer: Mapping[str, Any] | None,
        *,
        request_id: str = "",
        source_ip: str = "",
    ) -> OrgContext:
        """Build the context from API Gateway's ``requestContext.authorizer`` (fail closed)."""
        if not authorizer:
            raise Unauthorized("The request was not authorized.")
        try:
            raw_scopes = json.loads(str(authorizer["scopes"]))
            scopes = tuple(Scope.parse(item["action"], item["resourceFilter"]) for item in raw_scopes)
            return cls(
                org_id=str(authorizer["orgId"]),
                key_id=str(authorizer["keyId"]),
                key_type=KeyType(str(authorizer["keyType"])),
                scopes=scopes,
                plan=str(authorizer.get("plan") or DEFAULT_PLAN),
                limit_overrides=_lenient_overrides(authorizer.get("limitOverrides")),
                request_id=request_id,
                source_ip=source_ip,
                allowed_ip_cidrs=tuple(str(c) for c in json.loads(str(authorizer.get("allowedIpCidrs") or "[]"))),
                expires_at=str(authorizer.get("expiresAt") or "") or None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise Unauthorized("The request was not authorized.") from error

    @classmethod
    def for_operator(cls, org_id: str, *, actor: str = "operator") -> OrgContext:
        """A context for platform tooling acting on one org (provisioning, the operator CLI)."""
        return cls(
            org_id=org_id,
            key_id=actor,
            key_type=KeyType.ADMIN,
            scopes=(Scope(Action.ALL, ResourceFilter(())),),
        )

    def can(self, action: Action, *paths: str) -> bool:
        """Whether this key's scopes allow ``action`` on the resource at any of ``paths``."""
        return scopes_allow(self.scopes, action, [parse_path(path) for path in paths])

    def require(self, action: Action, *paths: str) -> None:
        """Raise ``ScopeDenied`` unless this key may do ``action`` on the resource."""
        if not self.can(action, *paths):
            raise ScopeDenied(f"This API key's scopes do not allow '{action.value}' on this resource.")

    @property
    def actor(self) -> str:
        """The id recorded as ``createdBy``/``updatedBy``: the acting key."""
        return self.key_id


def _lenient_overrides(raw: Any) -> LimitOverrides:
    """The org's rate-limit overrides; a malformed value means none (the plan's limits apply),
    since a limiter setting must never turn into refusing the org's every request."""
    try:
        return parse_overrides(str(raw or ""))
    except (KeyError, TypeError, ValueError):
        logger.warning("Ignoring malformed limit overrides in the authorizer context")
        return {}
