"""The audit hash chain: a sealed chain verifies, and every kind of tampering is named."""

from __future__ import annotations

from typing import Any

import pytest

from spectra.audit.chain import GENESIS_HASH, AuditRecord, event_hash, seal, verify, verify_kept

ORG = "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84"
EXPIRES_AT = 1_830_000_000
"""When the first event of ``chain()`` expires (each later one a second later)."""


def chain(length: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for index in range(length):
        record = AuditRecord(
            action="update",
            resource_type="Site",
            resource_id=f"site-{index}",
            outcome="success",
            actor_key_id="key-1",
            request_id=f"request-{index}",
            source_ip="203.0.113.10",
            changes=("siteName", "address"),
        )
        events.append(
            seal(
                record,
                org_id=ORG,
                event_id=f"event-{index + 1}",
                time=f"2026-11-27T05:00:{index:02d}Z",
                expires_at=EXPIRES_AT + index,
                previous=events[-1] if events else None,
            )
        )
    return events


def test_a_sealed_chain_links_each_event_to_the_one_before() -> None:
    events = chain(3)

    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert events[0]["previousHash"] == GENESIS_HASH
    assert events[1]["previousHash"] == events[0]["hash"]
    assert events[2]["previousHash"] == events[1]["hash"]
    assert events[0]["changes"] == ["address", "siteName"]


def test_an_untouched_chain_verifies() -> None:
    assert verify(chain(5)).valid
    assert verify(chain(5)).checked == 5
    assert verify([]).valid


def test_an_edited_event_is_named() -> None:
    events = chain(5)
    events[2] = {**events[2], "outcome": "denied"}

    result = verify(events)

    assert (result.valid, result.first_broken_event_id, result.checked) == (False, "event-3", 3)


def test_an_edited_event_with_its_hash_recomputed_breaks_the_next_link() -> None:
    events = chain(5)
    edited = {**events[2], "actorKeyId": "someone-else"}
    events[2] = {**edited, "hash": event_hash(edited)}

    assert verify(events).first_broken_event_id == "event-4"


def test_a_deleted_event_leaves_a_gap_at_the_next_one() -> None:
    events = chain(5)
    del events[1]

    assert verify(events).first_broken_event_id == "event-3"


@pytest.mark.parametrize(("first", "second"), [(1, 2), (0, 4)])
def test_reordered_events_are_caught(first: int, second: int) -> None:
    events = chain(5)
    events[first], events[second] = events[second], events[first]

    assert not verify(events).valid


def test_a_stretch_of_the_chain_verifies_from_the_event_before_it() -> None:
    events = chain(6)

    assert verify(events[3:], previous=events[2]).valid
    assert verify(events[3:], previous=events[1]).first_broken_event_id == "event-4"
    assert verify(events[3:]).first_broken_event_id == "event-4"  # it does not start the chain


def test_the_hash_covers_every_field_but_itself() -> None:
    event = chain(1)[0]

    for field in ("eventId", "orgId", "time", "action", "resourceType", "resourceId", "requestId", "sourceIp"):
        assert event_hash({**event, field: "changed"}) != event["hash"], field
    assert event_hash({**event, "changes": ["password"]}) != event["hash"]
    assert event_hash({**event, "expiresAt": EXPIRES_AT + 86_400}) != event["hash"]
    assert event_hash({**event, "previousExpiresAt": EXPIRES_AT}) != event["hash"]
    assert event_hash({**event, "hash": "anything"}) == event["hash"]


def test_a_chain_whose_oldest_events_expired_starts_at_its_oldest_kept_event() -> None:
    events = chain(6)
    after_event_3_expired = EXPIRES_AT + 2

    assert verify_kept(events[3:], now=after_event_3_expired).valid
    assert verify_kept(events[3:], now=after_event_3_expired).checked == 3


def test_events_removed_before_they_expired_are_caught_at_the_oldest_kept_event() -> None:
    events = chain(6)
    before_event_3_expired = EXPIRES_AT + 1

    result = verify_kept(events[3:], now=before_event_3_expired)

    assert (result.valid, result.first_broken_event_id) == (False, events[3]["eventId"])


def test_the_oldest_kept_event_carries_when_the_one_before_it_expires() -> None:
    events = chain(2)

    assert "previousExpiresAt" not in events[0]
    assert events[1]["previousExpiresAt"] == events[0]["expiresAt"] == EXPIRES_AT


def test_a_kept_chain_still_catches_a_gap_after_its_oldest_event() -> None:
    events = chain(6)
    kept = [events[2], events[3], events[5]]

    assert verify_kept(kept, now=EXPIRES_AT + 10).first_broken_event_id == events[5]["eventId"]


def test_an_empty_kept_chain_is_valid() -> None:
    assert verify_kept([], now=EXPIRES_AT).valid
