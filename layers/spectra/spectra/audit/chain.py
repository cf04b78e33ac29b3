"""The hash chain that makes an org's audit log tamper-evident.

Every event carries its position (``sequence``, from 1), the SHA-256 of the event before it
(``previousHash``; 64 zeros for the first) and its own SHA-256 (``hash``) over every other field
in a canonical JSON form. So an edited event no longer matches its hash, an edited event whose
hash was recomputed no longer matches the next event's ``previousHash``, a deleted event leaves a
gap in the sequence, and events moved around break the links: ``verify`` names the first event
where any of that shows.

Events expire (``expiresAt``, DynamoDB's TTL), so a kept chain may legitimately start after
event 1. Each event therefore also carries, hashed, when the event before it expires
(``previousExpiresAt``): a chain that starts with an event whose predecessor has not expired yet
has lost events to something other than retention, and ``verify_kept`` says so.
"""

from __future__ import annotations

import hashlib
import itertools
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
    "expiresAt",
    "previousHash",
    "previousExpiresAt",
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
    canonical["expiresAt"] = _expiry_of(event)
    canonical["previousExpiresAt"] = _expiry_of({"expiresAt": event.get("previousExpiresAt")})
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(
    record: AuditRecord,
    *,
    org_id: str,
    event_id: str,
    time: str,
    expires_at: int,
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
        "expiresAt": int(expires_at),
        "previousHash": str(previous["hash"]) if previous else GENESIS_HASH,
    }
    if (previous_expiry := _expiry_of(previous)) is not None:
        event["previousExpiresAt"] = previous_expiry  # the first event has none
    event["hash"] = event_hash(event)
    return event


def _expiry_of(event: Mapping[str, Any] | None) -> int | None:
    expires_at = event.get("expiresAt") if event else None
    return int(expires_at) if expires_at is not None else None


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


def verify_kept(
    events: Iterable[Mapping[str, Any]], *, now: int, previous: Mapping[str, Any] | None = None
) -> Verification:
    """Recompute the kept chain ``events`` (ascending ``sequence``), which follow ``previous``
    when it is known. Without it, the first event starts the chain if it is event 1, or if the
    event before it had expired by ``now`` (epoch seconds), so that TTL may have removed it;
    otherwise events were removed before their time and the first event is named."""
    iterator = iter(events)
    first = next(iterator, None)
    if first is None:
        return Verification(valid=True, checked=0)
    sequence = int(first.get("sequence") or 0)
    if previous is None and sequence > 1:
        expired_before = first.get("previousExpiresAt")
        if expired_before is None or int(expired_before) > now:
            return Verification(valid=False, checked=1, first_broken_event_id=str(first.get("eventId")))
        previous = {"sequence": sequence - 1, "hash": first.get("previousHash")}
    return verify(itertools.chain([first], iterator), previous=previous)
