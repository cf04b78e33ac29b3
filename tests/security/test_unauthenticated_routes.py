"""Every route refuses a missing, malformed, unknown, revoked or expired key with 401.

These requests are refused by API Gateway and the authorizer before any route code runs, so the
whole matrix shares one deployment and one org (nothing is written by a refused request).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from spectra_local.stack import LocalStack
from spectra_local.template import Template
from tests.integration.factories import (
    Org,
    assert_problem,
    create_key,
    expire_authorizer_caches,
    expire_key,
    make_org,
    revoke,
    scope,
    unknown_key,
)
from tests.security.routes import REGISTRY, ROUTE_IDS, RegisteredRoute, call, unknown_ids

IDENTITIES = ["no-key", "malformed-key", "unknown-key", "revoked-key", "expired-key"]


@pytest.fixture(scope="module")
def deployment(template: Template) -> Iterator[LocalStack]:
    with mock_aws():
        created = LocalStack.create(template)
        yield created
        created.close()


def _refused_keys(stack: LocalStack, org: Org) -> dict[str, str | None]:
    revoked = create_key(stack, org.admin_key, name="revoked", type="admin", scopes=[scope("*")])
    assert revoke(stack, org.admin_key, revoked.key_id).status == 200
    expired = create_key(stack, org.admin_key, name="expired", type="admin", scopes=[scope("*")])
    expire_key(stack, org.org_id, expired.key_id)
    expire_authorizer_caches(stack)
    return {
        "no-key": None,
        "malformed-key": "spx_ad_not-a-key",
        "unknown-key": unknown_key(),
        "revoked-key": revoked.secret,
        "expired-key": expired.secret,
    }


@pytest.fixture(scope="module")
def refused_keys(deployment: LocalStack) -> dict[str, str | None]:
    return _refused_keys(deployment, make_org(deployment))


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("route", REGISTRY, ids=ROUTE_IDS)
def test_route_refuses_a_missing_or_invalid_key_with_401(
    deployment: LocalStack, refused_keys: dict[str, str | None], route: RegisteredRoute, identity: str
) -> None:
    response = call(deployment, route, refused_keys[identity], unknown_ids(route))

    assert_problem(response, 401, "unauthorized")
