"""Every route, generated from the functions' own route registries: declared, deployed, guarded.

The cross-tenant and scope matrices are parametrized over the registry (``tests/security/routes.py``),
so a new route fails here until it has a sample request there.
"""

from __future__ import annotations

from typing import Any

import pytest

from spectra.auth.credentials import ApiKeyCredential
from spectra.auth.scopes import Action, grants
from spectra.http.audit import resource_type_of
from spectra_local.stack import LocalStack
from tests.integration.factories import Org, assert_problem, create_key, scope
from tests.security.routes import (
    REGISTRY,
    ROUTE_IDS,
    ROUTES_WITH_ACTIONS,
    ROUTES_WITH_IDS,
    TEMPLATE,
    BodyIds,
    RegisteredRoute,
    call,
    make_metric,
    make_thing_type,
    owned_resources,
    read_back,
    sample,
)

WRITES_WITH_IDS = [route for route in ROUTES_WITH_IDS if route.method != "GET"]


# -- the registry itself ----------------------------------------------------------------------


def test_registry_is_not_empty() -> None:
    assert {route.function for route in REGISTRY} >= {"api_keys", "organization", "definitions"}


@pytest.mark.parametrize("route", REGISTRY, ids=ROUTE_IDS)
def test_every_route_declares_its_access(route: RegisteredRoute) -> None:
    assert route.access is not None, f"{route.name} has no @access(...) declaration"


def test_every_template_api_event_has_exactly_one_resolver_route() -> None:
    deployed = [(spec.name, e.method, e.path) for spec in TEMPLATE.functions().values() for e in spec.api_events]
    served = [(route.function, route.method, route.path) for route in REGISTRY]

    assert sorted(deployed) == sorted(served)
    assert len(set(served)) == len(served)


def test_only_api_functions_have_api_events() -> None:
    served_by = {route.function for route in REGISTRY}
    with_events = {spec.name for spec in TEMPLATE.functions().values() if spec.api_events}

    assert with_events == served_by


@pytest.mark.parametrize("route", REGISTRY, ids=ROUTE_IDS)
def test_every_route_has_a_sample_request(route: RegisteredRoute) -> None:
    sample(route)


# -- positive control: the samples are real requests ------------------------------------------


@pytest.mark.parametrize("route", REGISTRY, ids=ROUTE_IDS)
def test_sample_request_succeeds_for_the_owner(stack: LocalStack, org: Org, route: RegisteredRoute) -> None:
    ids = owned_resources(stack, org, route)
    prepare = sample(route).prepare
    if prepare is not None:
        prepare(stack, org, ids)

    body_ids = BodyIds(make_metric(stack, org), str(make_thing_type(stack, org)["thingTypeId"]))
    before = newest_sequence(stack, org)
    response = call(stack, route, org.admin_key, ids, body_ids)

    assert response.status == sample(route).status, response.body
    # The "audited" column: a route that changes something leaves exactly one event; others none.
    recorded = events_after(stack, org, before)
    if audited_action(route) is None:
        assert recorded == []
    else:
        assert [(e["action"], e["outcome"], e["actorKeyId"]) for e in recorded] == [
            (audited_action(route), "success", org.admin_key_id)
        ]


# -- the audited column -----------------------------------------------------------------------

# Routes that take a write or POST but change no configuration: recorded only when refused.
NOT_AUDITED_ON_SUCCESS = {
    "POST /v2/things/{thingId}/data": "telemetry ingest is the data plane (volume), like CloudTrail data events",
    "POST /v2/thing/{thingId}/data": "telemetry ingest alias",
    "POST /v2/things/{thingId}/data/columnar": "telemetry ingest, columnar",
    "POST /v2/things/{thingId}/data/template/{templateId}": "telemetry ingest through a template",
    "POST /v2/templates/{templateId}/test": "a dry run: reads a template, stores nothing",
}


def audited_action(route: RegisteredRoute) -> str | None:
    assert route.access is not None
    return route.access.audit


@pytest.mark.parametrize("route", REGISTRY, ids=ROUTE_IDS)
def test_every_changing_route_is_audited(route: RegisteredRoute) -> None:
    if route.method == "GET":
        assert audited_action(route) is None, f"{route.name} reads; it is audited only when refused"
    elif route.name in NOT_AUDITED_ON_SUCCESS:
        assert audited_action(route) is None
    else:
        assert audited_action(route) is not None, f"{route.name} changes something: declare its audit action"


def test_the_not_audited_list_names_real_routes() -> None:
    assert set(NOT_AUDITED_ON_SUCCESS) <= {route.name for route in REGISTRY}


def newest_sequence(stack: LocalStack, org: Org) -> int:
    items = stack.request("GET", "/v2/audit-events", key=org.admin_key, query={"limit": 1}).json()["items"]
    return int(items[0]["sequence"]) if items else 0


def events_after(stack: LocalStack, org: Org, sequence: int) -> list[dict[str, Any]]:
    """The org's events after ``sequence``, oldest first."""
    listed = stack.request("GET", "/v2/audit-events", key=org.admin_key, query={"limit": 20}).json()["items"]
    return sorted((e for e in listed if int(e["sequence"]) > sequence), key=lambda e: int(e["sequence"]))


def refused_action(route: RegisteredRoute) -> str:
    """What the audit log calls a refused call of ``route``."""
    assert route.access is not None
    needed = route.access.action
    verb = "read" if route.method == "GET" or needed is None else needed.value
    return audited_action(route) or f"{resource_type_of(route.path)}.{verb}"


# -- another org's resources ------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=[r.name for r in ROUTES_WITH_IDS])
def test_other_orgs_key_gets_404_for_a_resource(
    stack: LocalStack, org: Org, other_org: Org, route: RegisteredRoute
) -> None:
    ids = owned_resources(stack, org, route)
    owners_newest = newest_sequence(stack, org)
    intruders_newest = newest_sequence(stack, other_org)

    response = call(stack, route, other_org.admin_key, ids)

    problem = assert_problem(response, 404, "not_found")
    assert org.org_id not in str(problem)
    # Recorded in the caller's log (the id it tried), never in the owner's.
    recorded = events_after(stack, other_org, intruders_newest)
    assert [(e["action"], e["outcome"], e["actorKeyId"]) for e in recorded] == [
        (refused_action(route), "not_found", other_org.admin_key_id)
    ]
    assert newest_sequence(stack, org) == owners_newest


@pytest.mark.parametrize("route", WRITES_WITH_IDS, ids=[r.name for r in WRITES_WITH_IDS])
def test_other_orgs_attempt_leaves_the_resource_unchanged(
    stack: LocalStack, org: Org, other_org: Org, route: RegisteredRoute
) -> None:
    ids = owned_resources(stack, org, route)
    before = read_back(stack, org, ids)

    call(stack, route, other_org.admin_key, ids)

    assert read_back(stack, org, ids) == before


# -- scopes -----------------------------------------------------------------------------------

# Keys that hold everything except one action; the first whose scopes lack a route's action is
# used for that route.
LACKING_KEYS: list[tuple[str, list[dict[str, str]]]] = [
    ("external", [scope("write")]),  # read and write everywhere, never admin
    ("admin", [scope("admin")]),  # admin only, no data access
]


def lacking_key(stack: LocalStack, org: Org, action: Action) -> str:
    for key_type, scopes in LACKING_KEYS:
        if not any(grants(Action(s["action"]), action) for s in scopes):
            return create_key(stack, org.admin_key, name="lacking", type=key_type, scopes=scopes).secret
    raise AssertionError(f"no key in LACKING_KEYS lacks {action.value!r}: add one")


@pytest.mark.parametrize("route", ROUTES_WITH_ACTIONS, ids=[r.name for r in ROUTES_WITH_ACTIONS])
def test_key_lacking_the_routes_action_gets_403(stack: LocalStack, org: Org, route: RegisteredRoute) -> None:
    assert route.access is not None
    assert route.access.action is not None
    key = lacking_key(stack, org, route.access.action)
    ids = owned_resources(stack, org, route)
    before = newest_sequence(stack, org)

    response = call(stack, route, key, ids)

    assert_problem(response, 403, "forbidden_scope")
    recorded = events_after(stack, org, before)
    assert [(e["action"], e["outcome"], e["actorKeyId"]) for e in recorded] == [
        (refused_action(route), "denied", ApiKeyCredential.parse(key).key_id)
    ]
