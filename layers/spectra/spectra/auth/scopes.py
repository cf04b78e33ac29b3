"""Scopes: what a key may do (action) and where (resource filter).

A resource filter is a ``/``-separated path, outermost first, where ``#`` matches exactly one
segment and an empty filter (or ``*``) means everything in the organization::

    PLACE/{Site|Fleet}/{placeId}[/THING/{thingTypeName}/{thingId}]
    THING/{thingTypeName}/{thingId}
    DEFINITION/{Metric|ThingType|ThingTypeVersion|Template}/{id}
    INTEGRATION/{INGRESS|EGRESS}/{type}/{integrationId}
    ORGANIZATION

A filter covers a resource when it is a prefix of one of the resource's paths, segment by
segment. A resource may have several paths (a thing in a site is both ``PLACE/Site/s/THING/t/i``
and ``THING/t/i``), which is how ``THING/Battery/#`` reaches Battery things anywhere.

Actions: ``read``, ``write`` (which includes read: a writer must see what it writes), ``admin``
(keys, settings, audit; it does not include read or write on data), and ``*`` (all of them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from spectra.identifiers import is_guid

ANY_SEGMENT = "#"
UNKNOWN = None  # a path segment not known yet (e.g. the id of a resource being created)

PathSegment = str | None
ResourcePath = tuple[PathSegment, ...]


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    ALL = "*"


_GRANTS: dict[Action, frozenset[Action]] = {
    Action.READ: frozenset({Action.READ}),
    Action.WRITE: frozenset({Action.WRITE, Action.READ}),
    Action.ADMIN: frozenset({Action.ADMIN}),
    Action.ALL: frozenset({Action.READ, Action.WRITE, Action.ADMIN}),
}


def grants(held: Action, wanted: Action) -> bool:
    """Whether holding ``held`` allows ``wanted`` (``wanted`` may itself be ``*``)."""
    return _GRANTS[wanted] <= _GRANTS[held]


class InvalidResourceFilter(ValueError):
    """A resource filter that does not follow the grammar; the message says where."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")
_INTEGRATION_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_DEFINITION_IDS = {
    "Metric": re.compile(r"^mdef_[0-9a-f]{32}$"),
    "ThingType": re.compile(r"^tdefi_[0-9a-f]{32}$"),
    "ThingTypeVersion": re.compile(r"^tdef_[0-9a-f]{32}$"),
}


SegmentCheck = Callable[[str, Sequence[str]], bool]


def _guid(segment: str, _previous: Sequence[str]) -> bool:
    return is_guid(segment)


def _one_of(*values: str) -> SegmentCheck:
    allowed = frozenset(values)
    return lambda segment, _previous: segment in allowed


def _matches(pattern: re.Pattern[str]) -> SegmentCheck:
    return lambda segment, _previous: pattern.fullmatch(segment) is not None


def _definition_id(segment: str, previous: Sequence[str]) -> bool:
    kind = previous[-1]
    if kind == "Template":
        return is_guid(segment)
    if kind == ANY_SEGMENT:
        return is_guid(segment) or any(p.fullmatch(segment) for p in _DEFINITION_IDS.values())
    return _DEFINITION_IDS[kind].fullmatch(segment) is not None


# Each shape lists, per position, what a fixed (non-#) segment must look like.
_SHAPES: dict[str, list[tuple[str, SegmentCheck]]] = {
    "PLACE": [
        ("place type", _one_of("Site", "Fleet")),
        ("place id", _guid),
        ("THING", _one_of("THING")),
        ("thing type name", _matches(_NAME)),
        ("thing id", _guid),
    ],
    "THING": [("thing type name", _matches(_NAME)), ("thing id", _guid)],
    "DEFINITION": [
        ("definition kind", _one_of("Metric", "ThingType", "ThingTypeVersion", "Template")),
        ("definition id", _definition_id),
    ],
    "INTEGRATION": [
        ("direction", _one_of("INGRESS", "EGRESS")),
        ("integration type", _matches(_INTEGRATION_TYPE)),
        ("integration id", _guid),
    ],
    "ORGANIZATION": [],
}


@dataclass(frozen=True)
class ResourceFilter:
    """A parsed, validated resource filter; ``segments == ()`` means the whole organization."""

    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ResourceFilter:
        """Parse and validate a filter, including every fixed-value segment."""
        if not isinstance(text, str):
            raise InvalidResourceFilter("resource filter must be a string")
        stripped = text.strip()
        if stripped in {"", "*"}:
            return cls(())
        if len(stripped) > 512:
            raise InvalidResourceFilter("resource filter is longer than 512 characters")
        segments = tuple(stripped.split("/"))
        root, rest = segments[0], segments[1:]
        if root not in _SHAPES:
            raise InvalidResourceFilter(
                f"resource filter must start with one of {', '.join(sorted(_SHAPES))}",
            )
        shape = _SHAPES[root]
        if len(rest) > len(shape):
            raise InvalidResourceFilter(f"resource filter has too many segments for {root}")
        for position, segment in enumerate(rest):
            label, check = shape[position]
            if segment == "":
                raise InvalidResourceFilter("resource filter has an empty segment")
            if segment == ANY_SEGMENT:
                if label == "THING":
                    raise InvalidResourceFilter("segment 4 of a PLACE filter must be THING")
                continue
            if not check(segment, segments[: position + 1]):
                raise InvalidResourceFilter(f"{segment!r} is not a valid {label}")
        return cls(segments)

    def __str__(self) -> str:
        return "/".join(self.segments)

    def covers(self, path: ResourcePath) -> bool:
        """Whether this filter certainly covers the resource at ``path`` (no unknown segments)."""
        if len(self.segments) > len(path):
            return False
        return all(f == ANY_SEGMENT or (p is not None and f == p) for f, p in zip(self.segments, path, strict=False))

    def may_cover(self, path: ResourcePath) -> bool:
        """Whether this filter covers ``path`` for some value of its unknown segments."""
        if len(self.segments) > len(path):
            return False
        return all(f in (ANY_SEGMENT, p) or p is None for f, p in zip(self.segments, path, strict=False))

    def contains(self, other: ResourceFilter) -> bool:
        """Whether everything ``other`` can reach, this filter can reach too.

        Things in a place are also reachable as ``THING/{type}/{id}``, so a filter over things
        in a place is contained by a ``THING/…`` filter that covers the same things anywhere.
        """
        if self._prefix_of(other):
            return True
        if len(other.segments) > 3 and other.segments[0] == "PLACE" and other.segments[3] == "THING":
            return self._prefix_of(ResourceFilter(other.segments[3:]))
        return False

    def _prefix_of(self, other: ResourceFilter) -> bool:
        if len(self.segments) > len(other.segments):
            return False
        return all(mine in (ANY_SEGMENT, theirs) for mine, theirs in zip(self.segments, other.segments, strict=False))


@dataclass(frozen=True)
class Scope:
    """One grant: ``action`` on everything ``resource_filter`` covers."""

    action: Action
    resource_filter: ResourceFilter

    @classmethod
    def parse(cls, action: str, resource_filter: str) -> Scope:
        return cls(Action(action), ResourceFilter.parse(resource_filter))

    def allows(self, action: Action, paths: Iterable[ResourcePath]) -> bool:
        """Whether this scope certainly allows ``action`` on a resource with these paths."""
        return grants(self.action, action) and any(self.resource_filter.covers(p) for p in paths)

    def may_allow(self, action: Action, paths: Iterable[ResourcePath]) -> bool:
        """Whether this scope allows ``action`` on some resource matching these path patterns."""
        return grants(self.action, action) and any(self.resource_filter.may_cover(p) for p in paths)

    def contains(self, other: Scope) -> bool:
        """Whether this scope grants at least everything ``other`` grants (no escalation)."""
        return grants(self.action, other.action) and self.resource_filter.contains(other.resource_filter)

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action.value, "resourceFilter": str(self.resource_filter)}


def parse_path(text: str) -> ResourcePath:
    """A concrete or pattern resource path; ``*`` marks a segment not known yet."""
    return tuple(UNKNOWN if segment == "*" else segment for segment in text.split("/"))


def scopes_allow(scopes: Iterable[Scope], action: Action, paths: Iterable[ResourcePath]) -> bool:
    """Whether any scope certainly allows ``action`` on the resource."""
    candidates = tuple(paths)
    return any(scope.allows(action, candidates) for scope in scopes)


def scopes_may_allow(scopes: Iterable[Scope], action: Action, paths: Iterable[ResourcePath]) -> bool:
    """Whether any scope could allow ``action`` on a resource matching the path patterns."""
    candidates = tuple(paths)
    return any(scope.may_allow(action, candidates) for scope in scopes)


def scopes_contain(held: Iterable[Scope], requested: Iterable[Scope]) -> list[Scope]:
    """The requested scopes that no held scope contains (empty = no escalation)."""
    held_scopes = tuple(held)
    return [wanted for wanted in requested if not any(h.contains(wanted) for h in held_scopes)]
