"""The route registry as the security tests see it: every route of every API function, with a
sample request and a way to make the resources its path names.

Parametrizing over ``REGISTRY`` is what makes a new route fail the security matrices until it
has a row in ``SAMPLE_REQUESTS`` (and a ``PATH_RESOURCES`` factory for any new path parameter).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from spectra.http import RouteAccess, SpectraResolver, route_access
from spectra_local.stack import LocalStack
from spectra_local.template import Template
from tests.integration.factories import Org, create_key, key_body, key_path, scope
from tests.integration.integration_factories import (
    MAPPINGS_PATH,
    integration_path,
    make_integration,
    make_mapping,
    mapping_body,
    secret_text,
    webhook_body,
)

UNKNOWN_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"
UNKNOWN_METRIC_ID = "mdef_" + "0" * 32


@dataclass(frozen=True)
class RegisteredRoute:
    """One route as a function's resolver serves it, with its path in the template's form."""

    function: str
    method: str
    path: str
    access: RouteAccess | None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


def load_registry(template: Template) -> list[RegisteredRoute]:
    """Import every function (as Lambda would) and read the routes its resolver registered."""
    routes: list[RegisteredRoute] = []
    with mock_aws():
        stack = LocalStack.create(template)
        for spec in template.functions().values():
            app = getattr(stack.function(spec.name).load(), "app", None)
            if not isinstance(app, SpectraResolver):
                continue
            for route in app.registered_routes():
                path = re.sub(r"<(\w+)>", r"{\1}", route.path)
                routes.append(RegisteredRoute(spec.name, route.method.upper(), path, route_access(route.func)))
    return sorted(routes, key=lambda r: (r.path, r.method))


TEMPLATE = Template()
REGISTRY = load_registry(TEMPLATE)


@dataclass(frozen=True)
class BodyIds:
    """Ids a request body may need (a metric of the org); unknown ids where no org is involved."""

    metric_id: str = UNKNOWN_METRIC_ID
    thing_type_id: str = "tdefi_" + "0" * 32


Body = Callable[[BodyIds], Any]


@dataclass(frozen=True)
class Sample:
    """A request that succeeds for the owner of the resources in the path.

    ``prepare`` runs first in the owner's positive control only (e.g. delete before restore).
    """

    body: Body = lambda _ids: None
    status: int = 200
    prepare: Callable[[LocalStack, Org, dict[str, str]], None] | None = None
    query: Mapping[str, str] | None = None
    body_from_ids: Callable[[Mapping[str, str]], Any] | None = None
    """Builds the body from the ids instead, for a body naming resources ``prepare`` made (it
    adds their ids); without them (other callers, refused keys) it names unknown ids."""


def _metric_body(_ids: BodyIds) -> dict[str, Any]:
    return {"name": f"Temperature {uuid.uuid4().hex[:8]}", "dataType": "Double", "defaultAggregation": "Avg"}


def _template_body(ids: BodyIds) -> dict[str, Any]:
    return {
        "name": "Meter export",
        "spec": {
            "recordsPointer": "/readings",
            "timestamp": {"pointer": "/ts", "format": "epochSeconds"},
            "mappings": [{"pointer": "/kwh", "metricId": ids.metric_id}],
        },
    }


def _now_ms() -> int:
    return int(time.time() * 1000)


def _frames_body(_ids: BodyIds) -> dict[str, Any]:
    return {"frames": [{"timestamp": _now_ms(), "metrics": {"kwh": 1.5}}]}


def _columns_body(_ids: BodyIds) -> dict[str, Any]:
    return {"columns": ["timestamp", "kwh"], "rows": [[_now_ms(), 1.5]]}


def _site_body(_ids: BodyIds) -> dict[str, Any]:
    return {"siteName": "Plant", "address": "1 Harbour Rd", "latitude": 51.5, "longitude": -0.1}


def _level_body(_ids: BodyIds) -> dict[str, Any]:
    return {"levelType": "Building", "levelName": "Main building"}


def _fleet_body(_ids: BodyIds) -> dict[str, Any]:
    return {"fleetName": "Vans"}


def _thing_body(ids: BodyIds) -> dict[str, Any]:
    return {"thingName": "meter 1", "thingTypeId": ids.thing_type_id}


# A window for the telemetry reads: raw for one thing, binned for a place (which needs bins).
_READ_WINDOW = {"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-01T06:00:00Z"}
_BINNED_WINDOW = {**_READ_WINDOW, "binUnit": "h", "binValue": "1"}


def _integration_and_thing(stack: LocalStack, org: Org, ids: dict[str, str]) -> None:
    ids["integrationId"] = str(make_integration(stack, org.admin_key)["integrationId"])
    ids["thingId"] = make_thing(stack, org)


def _mapping_body(ids: Mapping[str, str]) -> dict[str, Any]:
    return mapping_body(ids.get("integrationId", UNKNOWN_ID), ids.get("thingId", UNKNOWN_ID))


def _deleted_first(path: str) -> Callable[[LocalStack, Org, dict[str, str]], None]:
    def delete(stack: LocalStack, org: Org, ids: dict[str, str]) -> None:
        response = stack.request("DELETE", path.format(**ids), key=org.admin_key)
        assert response.status == 204, response.body

    return delete


# One valid request per route, keyed by (method, template path). A route missing here fails
# every matrix test below with a message saying what to add.
SAMPLE_REQUESTS: dict[tuple[str, str], Sample] = {
    ("GET", "/v2/organization"): Sample(),
    ("GET", "/v2/organization/settings"): Sample(),
    ("GET", "/v2/organization/limits"): Sample(),
    ("GET", "/v2/audit-events"): Sample(),
    ("GET", "/v2/audit-events/verify"): Sample(),
    ("PATCH", "/v2/organization/settings"): Sample(lambda _ids: {"telemetryRetentionDays": 90}),
    ("POST", "/v2/api-keys"): Sample(lambda _ids: key_body("matrix key", scopes=[scope("read")]), 201),
    ("GET", "/v2/api-keys"): Sample(),
    ("GET", "/v2/api-keys/{keyId}"): Sample(),
    ("PATCH", "/v2/api-keys/{keyId}"): Sample(lambda _ids: {"name": "renamed by the matrix"}),
    ("POST", "/v2/api-keys/{keyId}/revoke"): Sample(),
    ("POST", "/v2/api-keys/{keyId}/rotate"): Sample(lambda _ids: {"graceSeconds": 0}),
    ("POST", "/v2/definitions/metrics"): Sample(_metric_body, 201),
    ("GET", "/v2/definitions/metrics"): Sample(),
    ("GET", "/v2/definitions/metrics/schema"): Sample(),
    ("GET", "/v2/definitions/metrics/{metricId}"): Sample(),
    ("PUT", "/v2/definitions/metrics/{metricId}"): Sample(lambda _ids: {"displayName": "Air temperature"}),
    ("DELETE", "/v2/definitions/metrics/{metricId}"): Sample(status=204),
    ("POST", "/v2/definitions/metrics/{metricId}/restore"): Sample(
        prepare=_deleted_first("/v2/definitions/metrics/{metricId}")
    ),
    ("POST", "/v2/definitions/thing-types"): Sample(lambda _ids: {"displayName": "Gateway"}, 201),
    ("GET", "/v2/definitions/thing-types"): Sample(),
    ("GET", "/v2/definitions/thing-types/{thingTypeId}"): Sample(),
    ("DELETE", "/v2/definitions/thing-types/{thingTypeId}"): Sample(status=204),
    ("POST", "/v2/definitions/thing-types/{thingTypeId}/restore"): Sample(
        prepare=_deleted_first("/v2/definitions/thing-types/{thingTypeId}")
    ),
    ("POST", "/v2/definitions/thing-types/{thingTypeId}/versions"): Sample(
        lambda ids: {"metricIds": [ids.metric_id]}, 201
    ),
    ("GET", "/v2/definitions/thing-types/versions/{thingTypeDefId}"): Sample(),
    ("PUT", "/v2/definitions/thing-types/versions/{thingTypeDefId}"): Sample(lambda _ids: {"description": "v1"}),
    ("POST", "/v2/templates"): Sample(_template_body, 201),
    ("GET", "/v2/templates"): Sample(),
    ("GET", "/v2/templates/{templateId}"): Sample(),
    ("PUT", "/v2/templates/{templateId}"): Sample(_template_body),
    ("DELETE", "/v2/templates/{templateId}"): Sample(status=204),
    ("POST", "/v2/templates/{templateId}/restore"): Sample(prepare=_deleted_first("/v2/templates/{templateId}")),
    ("POST", "/v2/templates/{templateId}/test"): Sample(
        lambda _ids: {"payload": {"readings": [{"ts": 1_700_000_000, "kwh": 1.5}]}}
    ),
    ("POST", "/v2/sites"): Sample(_site_body, 201),
    ("GET", "/v2/sites"): Sample(),
    ("GET", "/v2/sites/{siteId}"): Sample(),
    ("PATCH", "/v2/sites/{siteId}"): Sample(lambda _ids: {"siteName": "Plant 2"}),
    ("DELETE", "/v2/sites/{siteId}"): Sample(status=204),
    ("POST", "/v2/sites/{siteId}/levels"): Sample(_level_body, 201),
    ("GET", "/v2/sites/{siteId}/levels"): Sample(),
    ("GET", "/v2/sites/{siteId}/levels/{levelId}"): Sample(),
    ("PATCH", "/v2/sites/{siteId}/levels/{levelId}"): Sample(lambda _ids: {"levelName": "Annex"}),
    ("DELETE", "/v2/sites/{siteId}/levels/{levelId}"): Sample(status=204),
    ("POST", "/v2/fleets"): Sample(_fleet_body, 201),
    ("GET", "/v2/fleets"): Sample(),
    ("GET", "/v2/fleets/{fleetId}"): Sample(),
    ("PATCH", "/v2/fleets/{fleetId}"): Sample(lambda _ids: {"fleetName": "Trucks"}),
    ("DELETE", "/v2/fleets/{fleetId}"): Sample(status=204),
    ("POST", "/v2/sites/{siteId}/things"): Sample(_thing_body, 201),
    ("POST", "/v2/fleets/{fleetId}/things"): Sample(_thing_body, 201),
    ("GET", "/v2/things"): Sample(),
    ("GET", "/v2/sites/{siteId}/things"): Sample(),
    ("GET", "/v2/fleets/{fleetId}/things"): Sample(),
    ("GET", "/v2/things/{thingId}"): Sample(),
    ("PATCH", "/v2/things/{thingId}"): Sample(lambda _ids: {"thingName": "meter 2"}),
    ("DELETE", "/v2/things/{thingId}"): Sample(status=204),
    # The matrix's things have a type without metrics: the owner reaches the route and gets a
    # 400 naming the unknown metric; anyone else gets the 401/403/404 the matrix expects.
    ("POST", "/v2/things/{thingId}/data"): Sample(_frames_body, 400),
    ("POST", "/v2/thing/{thingId}/data"): Sample(_frames_body, 400),
    ("POST", "/v2/things/{thingId}/data/columnar"): Sample(_columns_body, 400),
    ("POST", "/v2/things/{thingId}/data/template/{templateId}"): Sample(lambda _ids: {"readings": []}),
    ("GET", "/v2/things/{thingId}/events"): Sample(query=_READ_WINDOW),
    ("GET", "/v2/things/{thingId}/recent-events"): Sample(),
    ("GET", "/v2/things/{thingId}/summary"): Sample(),
    ("GET", "/v2/sites/{siteId}/timeseries"): Sample(query=_BINNED_WINDOW),
    ("GET", "/v2/fleets/{fleetId}/timeseries"): Sample(query=_BINNED_WINDOW),
    ("GET", "/v2/integrations/mapping"): Sample(),
    ("POST", "/v2/integrations"): Sample(lambda _ids: webhook_body(), 201),
    ("GET", "/v2/integrations"): Sample(),
    ("GET", "/v2/integrations/{integrationId}"): Sample(),
    ("PATCH", "/v2/integrations/{integrationId}"): Sample(lambda _ids: {"integrationName": "Renamed webhook"}),
    ("PUT", "/v2/integrations/{integrationId}/secret-properties"): Sample(
        lambda _ids: {"secretProperties": {"signingSecret": secret_text("matrix")}}
    ),
    ("DELETE", "/v2/integrations/{integrationId}"): Sample(status=204),
    ("POST", "/v2/integrations/resource-mappings"): Sample(
        status=201, prepare=_integration_and_thing, body_from_ids=_mapping_body
    ),
    ("GET", "/v2/integrations/resource-mappings"): Sample(),
    ("GET", "/v2/integrations/resource-mappings/{mappingId}"): Sample(),
    ("DELETE", "/v2/integrations/resource-mappings/{mappingId}"): Sample(status=204),
}


@dataclass(frozen=True)
class PathResource:
    """How to make an org's resource for a path parameter, and where its owner reads it back."""

    make: Callable[[LocalStack, Org, dict[str, str]], str]
    """Makes the resource; sees the ids made for earlier path parameters (a level needs its site)."""
    read_path: Callable[[str, dict[str, str]], str]
    """Where the owner reads it back (given its id and the other path ids)."""


def created_id(stack: LocalStack, org: Org, path: str, body: Any, field: str) -> str:
    response = stack.request("POST", path, key=org.admin_key, json_body=body)
    assert response.status == 201, response.body
    return str(response.json()[field])


def make_metric(stack: LocalStack, org: Org) -> str:
    return created_id(stack, org, "/v2/definitions/metrics", _metric_body(BodyIds()), "metricId")


def make_thing_type(stack: LocalStack, org: Org) -> dict[str, Any]:
    response = stack.request(
        "POST", "/v2/definitions/thing-types", key=org.admin_key, json_body={"displayName": "Meter"}
    )
    assert response.status == 201, response.body
    return dict(response.json())


PATH_RESOURCES: dict[str, PathResource] = {
    "keyId": PathResource(
        make=lambda stack, org, _ids: create_key(stack, org.admin_key, name="matrix target").key_id,
        read_path=lambda i, _ids: key_path(i),
    ),
    "metricId": PathResource(
        make=lambda stack, org, _ids: make_metric(stack, org), read_path=lambda i, _ids: f"/v2/definitions/metrics/{i}"
    ),
    "thingTypeId": PathResource(
        make=lambda stack, org, _ids: str(make_thing_type(stack, org)["thingTypeId"]),
        read_path=lambda i, _ids: f"/v2/definitions/thing-types/{i}",
    ),
    "thingTypeDefId": PathResource(
        make=lambda stack, org, _ids: str(make_thing_type(stack, org)["latestThingTypeDefId"]),
        read_path=lambda i, _ids: f"/v2/definitions/thing-types/versions/{i}",
    ),
    "templateId": PathResource(
        make=lambda stack, org, _ids: created_id(
            stack, org, "/v2/templates", _template_body(BodyIds(make_metric(stack, org))), "templateId"
        ),
        read_path=lambda i, _ids: f"/v2/templates/{i}",
    ),
    "siteId": PathResource(
        make=lambda stack, org, _ids: make_site(stack, org), read_path=lambda i, _ids: f"/v2/sites/{i}"
    ),
    "levelId": PathResource(
        make=lambda stack, org, ids: make_level(stack, org, ids["siteId"]),
        read_path=lambda i, ids: f"/v2/sites/{ids['siteId']}/levels/{i}",
    ),
    "fleetId": PathResource(
        make=lambda stack, org, _ids: make_fleet(stack, org), read_path=lambda i, _ids: f"/v2/fleets/{i}"
    ),
    "thingId": PathResource(
        make=lambda stack, org, _ids: make_thing(stack, org), read_path=lambda i, _ids: f"/v2/things/{i}"
    ),
    "integrationId": PathResource(
        make=lambda stack, org, _ids: str(make_integration(stack, org.admin_key)["integrationId"]),
        read_path=lambda i, _ids: integration_path(i),
    ),
    # No route reads one mapping: the owner reads the org's mappings back instead.
    "mappingId": PathResource(
        make=lambda stack, org, _ids: make_resource_mapping(stack, org), read_path=lambda _i, _ids: MAPPINGS_PATH
    ),
}


def make_site(stack: LocalStack, org: Org) -> str:
    return created_id(stack, org, "/v2/sites", _site_body(BodyIds()), "siteId")


def make_level(stack: LocalStack, org: Org, site_id: str) -> str:
    return created_id(stack, org, f"/v2/sites/{site_id}/levels", _level_body(BodyIds()), "levelId")


def make_fleet(stack: LocalStack, org: Org) -> str:
    return created_id(stack, org, "/v2/fleets", _fleet_body(BodyIds()), "fleetId")


def make_thing(stack: LocalStack, org: Org) -> str:
    thing_type_id = str(make_thing_type(stack, org)["thingTypeId"])
    site_id = make_site(stack, org)
    return created_id(
        stack, org, f"/v2/sites/{site_id}/things", {"thingName": "t", "thingTypeId": thing_type_id}, "thingId"
    )


def make_resource_mapping(stack: LocalStack, org: Org) -> str:
    integration_id = str(make_integration(stack, org.admin_key)["integrationId"])
    return str(make_mapping(stack, org.admin_key, integration_id, make_thing(stack, org))["mappingId"])


# Well-formed ids that name nothing, for each kind of path parameter.
UNKNOWN_IDS = {
    "metricId": UNKNOWN_METRIC_ID,
    "thingTypeId": "tdefi_" + "0" * 32,
    "thingTypeDefId": "tdef_" + "0" * 32,
}


def sample(route: RegisteredRoute) -> Sample:
    found = SAMPLE_REQUESTS.get((route.method, route.path))
    if found is None:
        pytest.fail(
            f"{route.name} has no sample request: add ({route.method!r}, {route.path!r}) to SAMPLE_REQUESTS "
            "in tests/security/routes.py so the security matrix covers it"
        )
    return found


def resource_path(route: RegisteredRoute, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], route.path)


def owned_resources(stack: LocalStack, org: Org, route: RegisteredRoute) -> dict[str, str]:
    """Ids of real resources of ``org`` for every path parameter of the route."""
    ids: dict[str, str] = {}
    for parameter in route.parameters:
        ids[parameter] = path_resource(parameter).make(stack, org, ids)
    return ids


def path_resource(parameter: str) -> PathResource:
    found = PATH_RESOURCES.get(parameter)
    if found is None:
        pytest.fail(f"no factory for path parameter {{{parameter}}}: add one to PATH_RESOURCES")
    return found


def read_back(stack: LocalStack, org: Org, ids: dict[str, str]) -> list[Any]:
    """What the owner sees of every resource named in the path."""
    return [stack.request("GET", path_resource(p).read_path(i, ids), key=org.admin_key).json() for p, i in ids.items()]


def call(
    stack: LocalStack, route: RegisteredRoute, key: str | None, ids: dict[str, str], body_ids: BodyIds | None = None
) -> Any:
    chosen = sample(route)
    body = chosen.body_from_ids(ids) if chosen.body_from_ids else chosen.body(body_ids or BodyIds())
    return stack.request(route.method, resource_path(route, ids), key=key, json_body=body, query=chosen.query)


def unknown_ids(route: RegisteredRoute) -> dict[str, str]:
    return {parameter: UNKNOWN_IDS.get(parameter, UNKNOWN_ID) for parameter in route.parameters}


ROUTE_IDS = [route.name for route in REGISTRY]
ROUTES_WITH_IDS = [route for route in REGISTRY if route.parameters]
ROUTES_WITH_ACTIONS = [route for route in REGISTRY if route.access is not None and route.access.action is not None]
