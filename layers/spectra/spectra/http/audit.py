"""Which requests the audit log records, and what it records of them.

- A route that changes something declares its audit action (``@access(..., audit="site.create")``)
  and every call of it is recorded with its outcome: ``success``, ``denied`` (403),
  ``not_found`` (404: the id may be another org's, which the org's own store cannot tell apart
  from no resource at all, so every such 404 is recorded), ``rejected`` (any other 4xx) or
  ``error`` (5xx).
- Any other route is recorded only when it is refused: 403 (the key's scopes), or 404 on a
  path that names an id, as ``<type>.read`` (a GET) or ``<type>.<the action it needs>``.
- 429s are not recorded: the refused request spent nothing, and recording a flood would turn
  the rate limit into a way of writing to the audit table.

What changed is summarised by the request body's field names (and the names inside an object
field, e.g. ``secretProperties.password``), never by values, which may be secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from spectra.audit.chain import AuditRecord
from spectra.http.access import RouteAccess
from spectra.tenancy.context import OrgContext

MAX_CHANGED_FIELDS = 100
MAX_FIELD_NAME_LENGTH = 100
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PATH_PARAMETER = re.compile(r"<(\w+)>|\{(\w+)\}")
# Path segments whose resource type is not their singular form.
_COLLECTION_TYPES = {
    "versions": "thingTypeVersion",
    "settings": "settings",
    "limits": "limits",
    "verify": "auditEvent",
    "mapping": "integration",
}


def outcome_of(status: int) -> str:
    """The audit outcome of a response status."""
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status < 500:
        return "rejected"
    return "error"


def request_record(
    org: OrgContext,
    *,
    declared: RouteAccess,
    method: str,
    route_path: str,
    path_arguments: Mapping[str, str],
    status: int,
    location: str | None,
    body: str | None,
) -> AuditRecord | None:
    """The audit record of one request, or ``None`` when this request is not audited."""
    if status == 429:
        return None
    refused = status == 403 or (status == 404 and bool(path_arguments))
    if declared.audit is None and not refused:
        return None
    action = declared.audit or f"{resource_type_of(route_path)}.{_refused_verb(declared, method)}"
    resource_type = action.split(".", 1)[0]
    resource_id = _created_id(location) if status == 201 else None
    if resource_id is None and path_arguments:
        resource_id = str(list(path_arguments.values())[-1])
    changes = changed_fields(body) if method.upper() in CHANGING_METHODS and declared.audit else ()
    return AuditRecord(
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome_of(status),
        actor_key_id=org.key_id,
        request_id=org.request_id,
        source_ip=org.source_ip,
        changes=changes,
    )


def resource_type_of(route_path: str) -> str:
    """The kind of resource a path is about: its last collection before an id, in camelCase
    (``/v2/sites/<siteId>/levels/<levelId>`` → ``level``, ``/v2/api-keys`` → ``apiKey``)."""
    segments = [segment for segment in route_path.strip("/").split("/") if segment]
    named = [i for i, segment in enumerate(segments) if _PATH_PARAMETER.fullmatch(segment)]
    collection = segments[named[-1] - 1] if named else segments[-1]
    if collection in _COLLECTION_TYPES:
        return _COLLECTION_TYPES[collection]
    words = collection.split("-")
    name = words[0] + "".join(word.capitalize() for word in words[1:])
    return name[:-1] if name.endswith("s") else name


def changed_fields(body: str | None) -> tuple[str, ...]:
    """The field names a JSON object body sets (one level into object fields); never values."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        return ()
    if not isinstance(document, dict):
        return ()
    names: list[str] = []
    for name, value in document.items():
        names.append(str(name))
        if isinstance(value, dict):
            names.extend(f"{name}.{inner}" for inner in value)
    return tuple(sorted({name[:MAX_FIELD_NAME_LENGTH] for name in names}))[:MAX_CHANGED_FIELDS]


def _refused_verb(declared: RouteAccess, method: str) -> str:
    """What a refused call of a route without an audit action tried: a read for a GET, else the
    action its key needed (``thing.write`` for a refused ingest)."""
    if method.upper() == "GET" or declared.action is None:
        return "read"
    return declared.action.value


def _created_id(location: str | None) -> str | None:
    return location.rstrip("/").rsplit("/", 1)[-1] or None if location else None
