"""``GET /v2/organization``: the caller's org and the key it calls with (any valid key)."""

from __future__ import annotations

import pytest

from spectra_local.stack import LocalStack
from tests.integration.factories import (
    ORGANIZATION_PATH,
    Org,
    create_key,
    make_org,
    scope,
    stored_key_record,
    usage_identifier_value,
)

ORGANIZATION_FIELDS = {"orgId", "name", "plan", "status", "telemetryRetentionDays", "createdAt", "key"}
CALLING_KEY_FIELDS = {"keyId", "type", "name", "scopes"}


def test_admin_key_sees_its_organization(stack: LocalStack, org: Org) -> None:
    body = stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).json()

    assert body.keys() == ORGANIZATION_FIELDS
    assert (body["orgId"], body["name"], body["plan"], body["status"]) == (org.org_id, org.name, "standard", "Active")
    assert body["telemetryRetentionDays"] == 365


def test_admin_key_sees_itself_as_the_calling_key(stack: LocalStack, org: Org) -> None:
    key = stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).json()["key"]

    assert key == {"keyId": org.admin_key_id, "type": "admin", "name": "Initial admin key", "scopes": [scope("*")]}


@pytest.mark.parametrize(
    "scopes",
    [[scope("read", "THING/Battery/#")], [scope("write", "PLACE/Site/#")], [scope("read", "DEFINITION/Metric/#")]],
    ids=["read-battery-things", "write-sites", "read-metrics"],
)
def test_narrow_external_key_sees_its_organization(stack: LocalStack, org: Org, scopes: list[dict[str, str]]) -> None:
    key = create_key(stack, org.admin_key, name="narrow", scopes=scopes)

    response = stack.request("GET", ORGANIZATION_PATH, key=key.secret)

    assert response.status == 200
    assert response.json()["orgId"] == org.org_id
    assert response.json()["key"] == {"keyId": key.key_id, "type": "external", "name": "narrow", "scopes": scopes}


def test_calling_key_has_exactly_the_documented_fields(stack: LocalStack, org: Org) -> None:
    key = create_key(stack, org.admin_key)

    body = stack.request("GET", ORGANIZATION_PATH, key=key.secret).json()

    assert body["key"].keys() == CALLING_KEY_FIELDS


def test_organization_never_shows_usage_identifier_or_hash(stack: LocalStack) -> None:
    metered = make_org(stack, "Metered Org")
    stored = stored_key_record(stack, metered.org_id, metered.admin_key_id)

    text = stack.request("GET", ORGANIZATION_PATH, key=metered.admin_key).body.decode("utf-8")

    assert "usageIdentifierKey" not in text
    assert "secretHash" not in text
    assert usage_identifier_value(metered.org_id) not in text
    assert stored["secretHash"] not in text


def test_other_orgs_see_their_own_organization(stack: LocalStack, org: Org, other_org: Org) -> None:
    mine = stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).json()
    theirs = stack.request("GET", ORGANIZATION_PATH, key=other_org.admin_key).json()

    assert (mine["orgId"], theirs["orgId"]) == (org.org_id, other_org.org_id)
    assert other_org.org_id not in str(mine)
