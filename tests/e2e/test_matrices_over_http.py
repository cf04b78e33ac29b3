"""The cross-tenant and scope matrices again, over HTTP against the local runtime.

The routes, sample requests and resource factories are the security suite's (built from the
route registry), so a new route joins this matrix the moment it joins that one.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from spectra.auth.scopes import Action
from tests.e2e.conftest import RunningRuntime
from tests.integration.factories import Org, assert_problem
from tests.security.routes import (
    REGISTRY,
    ROUTE_IDS,
    ROUTES_WITH_ACTIONS,
    ROUTES_WITH_IDS,
    RegisteredRoute,
    call,
    owned_resources,
    unknown_ids,
)
from tests.security.test_route_registry import lacking_key

pytestmark = pytest.mark.e2e


def _org(runtime: RunningRuntime, name: str) -> Org:
    """An org on the enterprise plan: a matrix sends hundreds of requests within seconds."""
    created = runtime.spectra("org", "create", "--name", name, "--plan", "enterprise")
    return Org(
        org_id=created["orgId"], name=created["name"], admin_key=created["adminKey"], admin_key_id=created["adminKeyId"]
    )


@pytest.fixture(scope="module")
def owner(runtime: RunningRuntime) -> Org:
    return _org(runtime, "matrix owner")


@pytest.fixture(scope="module")
def intruder(runtime: RunningRuntime) -> Org:
    return _org(runtime, "matrix intruder")


def _client(runtime: RunningRuntime) -> Any:
    """The runtime speaks the same ``request(...)`` as the in-process stack the factories expect."""
    return cast(Any, runtime)


@pytest.mark.parametrize("route", REGISTRY, ids=ROUTE_IDS)
def test_no_key_is_401_over_http(runtime: RunningRuntime, route: RegisteredRoute) -> None:
    response = call(_client(runtime), route, None, unknown_ids(route))
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=[r.name for r in ROUTES_WITH_IDS])
def test_other_orgs_key_gets_404_over_http(
    runtime: RunningRuntime, owner: Org, intruder: Org, route: RegisteredRoute
) -> None:
    ids = owned_resources(_client(runtime), owner, route)
    problem = assert_problem(call(_client(runtime), route, intruder.admin_key, ids), 404, "not_found")
    assert owner.org_id not in str(problem)


@pytest.mark.parametrize("route", ROUTES_WITH_ACTIONS, ids=[r.name for r in ROUTES_WITH_ACTIONS])
def test_key_lacking_the_routes_action_gets_403_over_http(
    runtime: RunningRuntime, owner: Org, route: RegisteredRoute
) -> None:
    assert route.access is not None
    assert route.access.action is not None
    key = lacking_key(_client(runtime), owner, Action(route.access.action))
    response = call(_client(runtime), route, key, owned_resources(_client(runtime), owner, route))
    assert_problem(response, 403, "forbidden_scope")
