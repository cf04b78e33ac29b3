"""A key's own limits (allowed networks, expiry) bound every key it creates or manages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spectra_local.stack import LocalStack
from tests.integration.factories import (
    API_KEYS_PATH,
    FULL_ACCESS,
    Org,
    assert_problem,
    create_key,
    key_body,
    key_path,
)

LOCAL = "127.0.0.0/8"


def restricted_admin(stack: LocalStack, org: Org, *, expires_in: timedelta | None = None) -> str:
    expires_at = datetime.now(UTC) + expires_in if expires_in else None
    return create_key(
        stack,
        org.admin_key,
        name="fenced admin",
        type="admin",
        scopes=FULL_ACCESS,
        allowed_ip_cidrs=[LOCAL],
        expires_at=expires_at,
    ).secret


@pytest.mark.parametrize(
    ("cidrs", "allowed"),
    [([], False), (["10.0.0.0/8"], False), (["127.0.0.0/8"], True), (["127.0.0.1/32"], True), (["::1/128"], False)],
    ids=["any address", "other network", "same network", "narrower", "ipv6"],
)
def test_new_key_networks_must_lie_within_the_creators(
    stack: LocalStack, org: Org, cidrs: list[str], allowed: bool
) -> None:
    caller = restricted_admin(stack, org)
    response = stack.request("POST", API_KEYS_PATH, key=caller, json_body=key_body(allowed_ip_cidrs=cidrs))
    if allowed:
        assert response.status == 201, response.body
    else:
        problem = assert_problem(response, 400, "validation_failed")
        assert [e["field"] for e in problem["errors"]] == ["allowedIpCidrs"]


def test_new_key_cannot_outlive_its_creator(stack: LocalStack, org: Org) -> None:
    caller = restricted_admin(stack, org, expires_in=timedelta(days=1))
    later = datetime.now(UTC) + timedelta(days=30)
    for body in (key_body(allowed_ip_cidrs=[LOCAL]), key_body(allowed_ip_cidrs=[LOCAL], expires_at=later)):
        problem = assert_problem(stack.request("POST", API_KEYS_PATH, key=caller, json_body=body), 400)
        assert [e["field"] for e in problem["errors"]] == ["expiresAt"]
    sooner = datetime.now(UTC) + timedelta(hours=1)
    ok = stack.request(
        "POST", API_KEYS_PATH, key=caller, json_body=key_body(allowed_ip_cidrs=[LOCAL], expires_at=sooner)
    )
    assert ok.status == 201, ok.body


def test_a_key_cannot_lift_its_own_limits(stack: LocalStack, org: Org) -> None:
    caller = restricted_admin(stack, org, expires_in=timedelta(days=1))
    own_id = caller.split("_")[2]
    response = stack.request("PATCH", key_path(own_id), key=caller, json_body={"allowedIpCidrs": [], "expiresAt": None})
    problem = assert_problem(response, 400, "validation_failed")
    assert sorted(e["field"] for e in problem["errors"]) == ["allowedIpCidrs", "expiresAt"]


def test_a_limited_key_cannot_manage_an_unlimited_key(stack: LocalStack, org: Org) -> None:
    caller = restricted_admin(stack, org)
    unlimited = create_key(stack, org.admin_key, name="open")
    for method, path in (
        ("POST", key_path(unlimited.key_id, "rotate")),
        ("POST", key_path(unlimited.key_id, "revoke")),
    ):
        assert_problem(stack.request(method, path, key=caller, json_body={}), 403, "forbidden_scope")
