"""Route access declarations: which action on which resource a route needs.

Every route of every function is decorated with ``@access(...)``. The resolver reads the
declaration before validation and before the route body runs; a route without one is refused
(fail closed), and the security tests enumerate the declarations to build the scope matrix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from spectra.auth.scopes import Action, ResourcePath, parse_path
from spectra.ratelimits.plans import Tier

ACCESS_ATTRIBUTE = "__spectra_access__"
AUDIT_ACTION = re.compile(r"[a-z][A-Za-z]*\.[a-z][A-Za-z]*")

RouteFunction = TypeVar("RouteFunction", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteAccess:
    """``action`` on the resource at any of ``resources`` (templates with ``{pathParam}``).

    ``action=None`` means any valid key of the org may call the route (e.g. ``GET
    /organization``). A ``*`` segment in a template is a value not known before the route runs
    (the id of a resource being created, the type of a thing in a body); the resolver checks
    that some scope *could* cover it, and the service checks the concrete resource again.
    """

    action: Action | None
    resources: tuple[str, ...]
    tier: Tier = Tier.STANDARD
    reveals: tuple[str, ...] = ()
    """Response fields shown once only (e.g. a new key's secret): never stored for a replay."""
    audit: str | None = None
    """The audit action (``"site.create"``) of a route that changes something: every call of it
    is recorded, whatever its outcome. Routes without one are recorded only when refused."""

    def paths(self, path_arguments: Mapping[str, str]) -> list[ResourcePath]:
        """The resource paths of this route, with its path parameters filled in."""
        return [parse_path(template.format_map(dict(path_arguments))) for template in self.resources]


def access(
    action: Action | None,
    *resources: str,
    tier: Tier = Tier.STANDARD,
    reveals: tuple[str, ...] = (),
    audit: str | None = None,
) -> Callable[[RouteFunction], RouteFunction]:
    """Declare what a route needs; place it directly under the ``@app.<method>(...)`` line."""
    if action is not None and not resources:
        raise ValueError("a route that needs an action must name the resource it acts on")
    if audit is not None and not AUDIT_ACTION.fullmatch(audit):
        raise ValueError(f"audit action {audit!r} is not 'resourceType.verb'")

    def declare(function: RouteFunction) -> RouteFunction:
        declared = RouteAccess(action=action, resources=resources, tier=tier, reveals=reveals, audit=audit)
        setattr(function, ACCESS_ATTRIBUTE, declared)
        return function

    return declare


def route_access(function: Callable[..., Any]) -> RouteAccess | None:
    """The access declared on a route function, if any."""
    declared = getattr(function, ACCESS_ATTRIBUTE, None)
    return declared if isinstance(declared, RouteAccess) else None
