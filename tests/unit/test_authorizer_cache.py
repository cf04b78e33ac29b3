"""The authorizer's per-container cache: one store read per key per TTL, bounded re-reads."""

from __future__ import annotations

from typing import Any, cast

import pytest

from spectra.audit.chain import AuditRecord
from spectra.audit.trail import AuditTrail
from spectra.auth.authorizer import AUDITED_REFUSALS_PER_MINUTE, KeyAuthorizer
from spectra.auth.credentials import ApiKeyCredential, KeyType, hash_credential
from spectra.errors import Unauthorized
from spectra.tenancy.context import OrgContext

PEPPER = b"pepper"
ORG_ID = "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84"


class Store:
    def __init__(self, credential: ApiKeyCredential) -> None:
        self.reads = 0
        self.record: dict[str, Any] = {
            "orgId": ORG_ID,
            "keyId": credential.key_id,
            "type": "admin",
            "state": "Active",
            "scopes": [{"action": "*", "resourceFilter": ""}],
            "secretHash": hash_credential(PEPPER, credential),
        }

    def find(self, key_id: str) -> dict[str, Any]:
        self.reads += 1
        return dict(self.record)


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


def event(key: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/dev/GET/v2/organization",
        "headers": {"X-Api-Key": key},
        "requestContext": {"identity": {"sourceIp": "192.0.2.1"}},
    }


@pytest.fixture
def setup() -> tuple[KeyAuthorizer, Store, Clock, ApiKeyCredential]:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    store, clock = Store(credential), Clock()
    authorizer = KeyAuthorizer(find_credential=store.find, pepper=lambda: PEPPER, ttl_seconds=60, clock=clock)
    return authorizer, store, clock, credential


def test_warm_container_reads_a_key_once_per_ttl(setup: tuple[KeyAuthorizer, Store, Clock, ApiKeyCredential]) -> None:
    authorizer, store, clock, credential = setup
    for _ in range(5):
        authorizer.authorize(event(credential.reveal()))
    assert store.reads == 1
    clock.now += 61
    authorizer.authorize(event(credential.reveal()))
    assert store.reads == 2


def test_rotated_secret_is_accepted_at_once(setup: tuple[KeyAuthorizer, Store, Clock, ApiKeyCredential]) -> None:
    authorizer, store, _clock, credential = setup
    authorizer.authorize(event(credential.reveal()))
    rotated = ApiKeyCredential.generate(KeyType.ADMIN, credential.key_id)
    store.record["secretHash"] = hash_credential(PEPPER, rotated)
    assert authorizer.authorize(event(rotated.reveal()))["context"]["keyId"] == credential.key_id


def test_wrong_secrets_cause_at_most_one_reread_per_second(
    setup: tuple[KeyAuthorizer, Store, Clock, ApiKeyCredential],
) -> None:
    authorizer, store, clock, credential = setup
    authorizer.authorize(event(credential.reveal()))
    for _ in range(20):
        guess = ApiKeyCredential.generate(KeyType.ADMIN, credential.key_id)
        with pytest.raises(Unauthorized):
            authorizer.authorize(event(guess.reveal()))
    assert store.reads == 2
    clock.now += 1.5
    with pytest.raises(Unauthorized):
        authorizer.authorize(event(ApiKeyCredential.generate(KeyType.ADMIN, credential.key_id).reveal()))
    assert store.reads == 3


class Trail:
    """Collects what the authorizer would append to the org's audit log."""

    def __init__(self) -> None:
        self.records: list[tuple[str, AuditRecord]] = []

    def record(self, org: OrgContext, record: AuditRecord) -> dict[str, Any] | None:
        self.records.append((org.org_id, record))
        return None


def test_refusals_of_a_known_key_are_recorded_up_to_a_budget_per_minute() -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    store, clock, trail = Store(credential), Clock(), Trail()
    authorizer = KeyAuthorizer(
        find_credential=store.find,
        pepper=lambda: PEPPER,
        audit=cast(AuditTrail, trail),
        clock=clock,
    )
    forged = ApiKeyCredential.generate(KeyType.ADMIN, credential.key_id).reveal()

    for _ in range(AUDITED_REFUSALS_PER_MINUTE + 5):
        with pytest.raises(Unauthorized):
            authorizer.authorize(event(forged))
    recorded_this_minute = len(trail.records)
    clock.now += 60
    with pytest.raises(Unauthorized):
        authorizer.authorize(event(forged))

    assert recorded_this_minute == AUDITED_REFUSALS_PER_MINUTE
    assert len(trail.records) == AUDITED_REFUSALS_PER_MINUTE + 1
    org_id, record = trail.records[0]
    assert (org_id, record.action, record.outcome, record.actor_key_id) == (
        ORG_ID,
        "apiKey.authenticate",
        "denied",
        credential.key_id,
    )
