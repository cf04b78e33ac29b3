"""Which requests the audit log records and what it says of them (``spectra.http.audit``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spectra.audit.chain import AuditRecord
from spectra.auth.credentials import KeyType
from spectra.http.access import RouteAccess, access
from spectra.http.audit import changed_fields, outcome_of, request_record, resource_type_of
from spectra.tenancy.context import OrgContext

ORG = OrgContext(
    org_id="6f1c1d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f",
    key_id="key-1",
    key_type=KeyType.ADMIN,
    scopes=(),
    request_id="req-1",
    source_ip="203.0.113.7",
)
WRITE = RouteAccess(action=None, resources=(), audit="site.update")
READ = RouteAccess(action=None, resources=())


def record(declared: RouteAccess = WRITE, **overrides: Any) -> AuditRecord | None:
    arguments: dict[str, Any] = {
        "declared": declared,
        "method": "PATCH",
        "route_path": "/v2/sites/<siteId>",
        "path_arguments": {"siteId": "s-1"},
        "status": 200,
        "location": None,
        "body": json.dumps({"siteName": "B"}),
        **overrides,
    }
    return request_record(ORG, **arguments)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "success"),
        (201, "success"),
        (204, "success"),
        (401, "denied"),
        (403, "denied"),
        (404, "not_found"),
        (400, "rejected"),
        (409, "rejected"),
        (413, "rejected"),
        (500, "error"),
        (503, "error"),
    ],
)
def test_outcome_of_each_status(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome


@pytest.mark.parametrize(
    ("path", "resource_type"),
    [
        ("/v2/sites/<siteId>", "site"),
        ("/v2/sites/<siteId>/levels/<levelId>", "level"),
        ("/v2/sites/<siteId>/things", "site"),
        ("/v2/api-keys/<keyId>/rotate", "apiKey"),
        ("/v2/definitions/thing-types/versions/<thingTypeDefId>", "thingTypeVersion"),
        ("/v2/integrations/resource-mappings/<mappingId>", "resourceMapping"),
        ("/v2/things/<thingId>/data/template/<templateId>", "template"),
        ("/v2/organization/settings", "settings"),
        ("/v2/audit-events/verify", "auditEvent"),
        ("/v2/sites", "site"),
    ],
)
def test_resource_type_of_a_path(path: str, resource_type: str) -> None:
    assert resource_type_of(path) == resource_type


def test_a_change_records_actor_request_and_field_names() -> None:
    event = record()

    assert event is not None
    assert (event.action, event.resource_type, event.resource_id, event.outcome) == (
        "site.update",
        "site",
        "s-1",
        "success",
    )
    assert (event.actor_key_id, event.request_id, event.source_ip) == ("key-1", "req-1", "203.0.113.7")
    assert event.changes == ("siteName",)


def test_a_create_takes_its_id_from_the_location() -> None:
    event = record(method="POST", route_path="/v2/sites", path_arguments={}, status=201, location="/v2/sites/new-1")

    assert event is not None
    assert event.resource_id == "new-1"


def test_changes_name_fields_one_level_deep_never_values() -> None:
    body = json.dumps({"secretProperties": {"password": "hunter2", "token": "t0k3n"}, "name": "x"})

    names = changed_fields(body)

    assert names == ("name", "secretProperties", "secretProperties.password", "secretProperties.token")
    assert "hunter2" not in repr(names)


@pytest.mark.parametrize("body", [None, "", "not json", "[1, 2]", '"text"'])
def test_a_body_that_is_no_object_changes_no_named_fields(body: str | None) -> None:
    assert changed_fields(body) == ()


def test_a_429_is_never_recorded() -> None:
    assert record(status=429) is None


def test_a_successful_read_is_not_recorded() -> None:
    assert record(READ, method="GET", body=None) is None


@pytest.mark.parametrize(("status", "outcome"), [(403, "denied"), (404, "not_found")])
def test_a_refused_read_is_recorded_as_a_read(status: int, outcome: str) -> None:
    event = record(READ, method="GET", body=None, status=status)

    assert event is not None
    assert (event.action, event.outcome, event.changes) == ("site.read", outcome, ())


def test_a_404_on_a_path_without_an_id_is_not_a_refusal() -> None:
    assert record(READ, method="GET", route_path="/v2/sites", path_arguments={}, status=404) is None


def test_audit_actions_must_name_a_type_and_a_verb() -> None:
    with pytest.raises(ValueError, match=r"resourceType\.verb"):
        access(None, audit="create")
