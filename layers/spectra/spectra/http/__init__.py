"""HTTP plumbing shared by every API function (see ``resolver`` for the order of checks)."""

from spectra.deployment import audit_trail, rate_limiter
from spectra.http.access import RouteAccess, access, route_access
from spectra.http.idempotency import idempotency_middleware
from spectra.http.resolver import CurrentAdmission, CurrentOrg, SpectraResolver, current_org
from spectra.http.responses import (
    ContinuationToken,
    Limit,
    PageLimit,
    created,
    documented_created,
    no_content,
)
from spectra.pagination import PageRequest


def create_resolver(*, max_body_bytes: int | None = None) -> SpectraResolver:
    """The resolver a Spectra API function declares its routes on."""
    resolver = SpectraResolver(max_body_bytes=max_body_bytes, rate_limiter=rate_limiter, audit_trail=audit_trail)
    resolver.use(middlewares=[idempotency_middleware])
    return resolver


__all__ = [
    "ContinuationToken",
    "CurrentAdmission",
    "CurrentOrg",
    "Limit",
    "PageLimit",
    "PageRequest",
    "RouteAccess",
    "SpectraResolver",
    "access",
    "create_resolver",
    "created",
    "current_org",
    "documented_created",
    "no_content",
    "route_access",
]
