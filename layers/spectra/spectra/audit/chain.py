"""The hash chain that makes an org's audit log tamper-evident.

Every event carries its position (``sequence``, from 1), the SHA-256 of the event before it
(``previousHash``; 64 zeros for the first) and its own SHA-256 (``hash``) over every other field
in a canonical JSON form. So an edited event no longer matches its hash, an edited event whose
hash was recomputed no longer matches the next event's ``previousHash``, a deleted event leaves a
gap in the sequence, and events moved around break the links: ``verify`` names the first event
where any of that shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "eventId",
    "orgId",
    "sequence",
    "time",
    "actorKeyId",
    "action",
    "resourceType",
    "resourceId",
    "outcome",
    "requestId",
    "sourceIp",
    "changes",
    "previousHash",
)


@dataclass(frozen=True)
class AuditRecord:
    """What happened, as the code that saw it knows it (the chain adds position and hashes)."""

    action: str
    resource_type: str
    resource_id: str | None
    outcome: str
    actor_key_id: str
    request_id: str = ""
    source_ip: str = ""
    changes: tuple[str, ...] = ()
    """Names of the fields that changed: never their values, which may be secrets."""


def event_hash(event: Mapping[str, Any]) -> str:
    """SHA-256 of the event's hashed fields in canonical JSON (sorted keys, no spaces)."""
    canonical = {name: event.get(name) for name in HASHED_FIELDS}
    canonical["changes"] = list(canonical["changes"] or [])
    canonical["sequence"] = int(canonical["sequence"] or 0)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(
    record: AuditRecord,
    *,
    org_id: str,
    event_id: str,
    time: str,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The event that follows ``previous`` (``None``: the first of the chain), hash included."""
    event: dict[str, Any] = {
        "eventId": event_id,
        "orgId": org_id,
        "sequence": int(previous["sequence"]) + 1 if previous else 1,
        "time": time,
        "actorKeyId": record.actor_key_id,
        "action": record.action,
        "resourceType": record.resource_type,
        "resourceId": record.resource_id,
        "outcome": record.outcome,
        "requestId": record.request_id,
        "sourceIp": record.source_ip,
        "changes": sorted(record.changes),
        "previousHash": str(previous["hash"]) if previous else GENESIS_HASH,
    }
    event["hash"] = event_hash(event)
    return event


@dataclass(frozen=True)
class Verification:
    """The outcome of recomputing a stretch of the chain."""

    valid: bool
    checked: int
    first_broken_event_id: str | None = None


def verify(events: Iterable[Mapping[str, Any]], *, previous: Mapping[str, Any] | None = None) -> Verification:
    """Recompute ``events`` (ascending ``sequence``), which follow ``previous`` (``None``: they
    start the chain); the first event that is edited, out of place or after a gap breaks it."""
    expected_sequence = int(previous["sequence"]) + 1 if previous else 1
    expected_previous = str(previous["hash"]) if previous else GENESIS_HASH
    checked = 0
    for event in events:
        checked += 1
        intact = (
            int(event.get("sequence") or 0) == expected_sequence
            and event.get("previousHash") == expected_previous
            and event.get("hash") == event_hash(event)
        )
        if not intact:
            return Verification(valid=False, checked=checked, first_broken_event_id=str(event.get("eventId")))
        expected_sequence += 1
        expected_previous = str(event["hash"])
    return Verification(valid=True, checked=checked)
