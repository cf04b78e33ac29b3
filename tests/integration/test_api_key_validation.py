"""``/v2/api-keys`` requests that must be refused before anything is written.

None of these requests changes anything, so the module shares one deployment and one org
(a fresh stack per test would only slow the suite down); behaviour that writes lives in
``test_api_keys.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from spectra_local.stack import LocalStack
from spectra_local.template import Template
from tests.integration.factories import (
    API_KEYS_PATH,
    Key,
    Org,
    assert_problem,
    create_key,
    key_body,
    key_path,
    list_keys,
    make_org,
    scope,
)


@pytest.fixture(scope="module")
def stack(template: Template) -> Iterator[LocalStack]:
    with mock_aws():
        created = LocalStack.create(template)
        yield created
        created.close()


@pytest.fixture(scope="module")
def org(stack: LocalStack) -> Org:
    return make_org(stack)


@pytest.fixture(scope="module")
def target(stack: LocalStack, org: Org) -> Key:
    """An ordinary key of the org for the requests that name one."""
    return create_key(stack, org.admin_key, name="target")


def post_key(stack: LocalStack, caller: str, body: Any, **headers: str) -> Any:
    return stack.request("POST", API_KEYS_PATH, key=caller, json_body=body, headers=headers)


def patch_key(stack: LocalStack, caller: str, key_id: str, body: Any) -> Any:
    return stack.request("PATCH", key_path(key_id), key=caller, json_body=body)


def test_limit_and_page_limit_must_agree(stack: LocalStack, org: Org) -> None:
    assert_problem(list_keys(stack, org.admin_key, limit=2, pageLimit=3), 400, "validation_failed")


@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_limit_outside_1_to_100_is_400(stack: LocalStack, org: Org, limit: object) -> None:
    assert_problem(list_keys(stack, org.admin_key, limit=limit), 400, "validation_failed")


def test_patch_unknown_field_is_400_naming_it(stack: LocalStack, org: Org, target: Key) -> None:
    problem = assert_problem(
        patch_key(stack, org.admin_key, target.key_id, {"colour": "blue"}), 400, "validation_failed"
    )

    assert {"field": "colour", "message": "Unknown field."} in problem["errors"]


def test_patch_past_expiry_is_400(stack: LocalStack, org: Org, target: Key) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    problem = assert_problem(
        patch_key(stack, org.admin_key, target.key_id, {"expiresAt": past}), 400, "validation_failed"
    )

    assert [e["field"] for e in problem["errors"]] == ["expiresAt"]


def test_patch_unknown_key_is_404(stack: LocalStack, org: Org) -> None:
    response = patch_key(stack, org.admin_key, "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11", {"name": "x"})

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("grace", [-1, 86_401, "soon"])
def test_grace_seconds_outside_0_to_86400_is_400(stack: LocalStack, org: Org, target: Key, grace: object) -> None:
    response = stack.request(
        "POST", key_path(target.key_id, "rotate"), key=org.admin_key, json_body={"graceSeconds": grace}
    )

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["graceSeconds"]


@pytest.mark.parametrize("action", ["admin", "*"])
def test_external_key_cannot_hold_an_admin_scope(stack: LocalStack, org: Org, action: str) -> None:
    response = post_key(stack, org.admin_key, key_body("sneaky", scopes=[scope(action)]))

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["scopes"]


def test_admin_key_needs_an_admin_scope(stack: LocalStack, org: Org) -> None:
    response = post_key(stack, org.admin_key, key_body("admin reader", type="admin", scopes=[scope("read")]))

    assert_problem(response, 400, "validation_failed")


@pytest.mark.parametrize(
    "resource_filter",
    ["BAD", "PLACE/Building/#", "THING/Battery/not-a-guid", "DEFINITION/Metric/xyz", "ORGANIZATION/extra", "THING//#"],
)
def test_invalid_resource_filter_is_400_naming_it(stack: LocalStack, org: Org, resource_filter: str) -> None:
    response = post_key(stack, org.admin_key, key_body(scopes=[scope("read", resource_filter)]))

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["scopes[0].resourceFilter"]


@pytest.mark.parametrize("cidr", ["10.0.0.1/8", "300.1.1.1", "nope", "2001:db8::/200"])
def test_invalid_cidr_is_400(stack: LocalStack, org: Org, cidr: str) -> None:
    response = post_key(stack, org.admin_key, key_body(allowed_ip_cidrs=[cidr]))

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["allowedIpCidrs"]


def test_past_expiry_on_create_is_400(stack: LocalStack, org: Org) -> None:
    response = post_key(stack, org.admin_key, key_body(expires_at=datetime.now(UTC) - timedelta(seconds=5)))

    assert_problem(response, 400, "validation_failed")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"scopes": [scope("read")]}, ["name"]),
        ({"name": "x"}, ["scopes"]),
        ({"name": "x", "scopes": []}, ["scopes"]),
        ({"name": "", "scopes": [scope("read")]}, ["name"]),
        ({"name": "x", "scopes": [{"action": "delete", "resourceFilter": ""}]}, ["scopes[0].action"]),
    ],
    ids=["no-name", "no-scopes", "empty-scopes", "empty-name", "unknown-action"],
)
def test_invalid_create_body_is_400_naming_every_field(
    stack: LocalStack, org: Org, body: dict[str, Any], fields: list[str]
) -> None:
    problem = assert_problem(post_key(stack, org.admin_key, body), 400, "validation_failed")

    assert [e["field"] for e in problem["errors"]] == fields


def test_missing_body_is_400(stack: LocalStack, org: Org) -> None:
    assert_problem(stack.request("POST", API_KEYS_PATH, key=org.admin_key), 400, "validation_failed")


def test_malformed_json_is_400(stack: LocalStack, org: Org) -> None:
    response = stack.request(
        "POST", API_KEYS_PATH, key=org.admin_key, body=b'{"name": ', headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 400, "malformed_body")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_non_json_content_type_is_415(stack: LocalStack, org: Org, content_type: str) -> None:
    body = json.dumps(key_body()).encode()

    response = stack.request(
        "POST", API_KEYS_PATH, key=org.admin_key, body=body, headers={"Content-Type": content_type}
    )

    assert_problem(response, 415, "unsupported_media_type")


def test_body_over_1_mib_is_413(stack: LocalStack, org: Org) -> None:
    body = json.dumps({**key_body(), "padding": "x" * (1024 * 1024)}).encode()

    response = stack.request(
        "POST", API_KEYS_PATH, key=org.admin_key, body=body, headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413, "payload_too_large")


def test_non_utf8_body_is_400(stack: LocalStack, org: Org) -> None:
    response = stack.request(
        "POST",
        API_KEYS_PATH,
        key=org.admin_key,
        body=b'{"name": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )

    assert_problem(response, 400, "malformed_body")


@pytest.mark.parametrize("header", ["has space", "x" * 256, "naïve"])
def test_invalid_idempotency_key_is_400(stack: LocalStack, org: Org, header: str) -> None:
    response = post_key(stack, org.admin_key, key_body(), **{"Idempotency-Key": header})

    assert_problem(response, 400, "validation_failed")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/nothing-here"), ("GET", "/v2/api-keys/a/b/c"), ("DELETE", "/v2/api-keys/x"), ("PUT", API_KEYS_PATH)],
    ids=["unknown-path", "too-deep", "wrong-method-item", "wrong-method-collection"],
)
def test_unrouted_request_is_404_problem(stack: LocalStack, org: Org, method: str, path: str) -> None:
    assert_problem(stack.request(method, path, key=org.admin_key), 404, "not_found")
