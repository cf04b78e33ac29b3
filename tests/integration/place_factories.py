"""Factories for the place and thing tests: sites, levels, fleets, things and thing types, built one way.

Everything goes through the local stack as a client would; the only direct AWS calls are reads
of raw records and queue messages (to prove a delete left nothing behind) and the
service-level race tests, which call the things function's own service below HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from spectra.services.things import ThingService
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import list_all, make_thing_type, property_definition
from tests.integration.factories import Key, Org, Scope, assert_problem, create_key

SITES_PATH = "/v2/sites"
FLEETS_PATH = "/v2/fleets"
THINGS_PATH = "/v2/things"
UNKNOWN_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"
RECORD_STAMPS = ("createdAt", "updatedAt", "createdBy", "updatedBy")
DEFAULT_LEVEL_TYPES = [
    {"levelType": "Building", "canBeRoot": True, "allowedParentTypes": []},
    {"levelType": "Floor", "canBeRoot": False, "allowedParentTypes": ["Building"]},
    {"levelType": "Room", "canBeRoot": False, "allowedParentTypes": ["Floor"]},
    {"levelType": "Zone", "canBeRoot": True, "allowedParentTypes": ["Building", "Floor"]},
]


# -- paths ------------------------------------------------------------------------------------


def site_path(site_id: str) -> str:
    return f"{SITES_PATH}/{site_id}"


def levels_path(site_id: str) -> str:
    return f"{SITES_PATH}/{site_id}/levels"


def level_path(site_id: str, level_id: str) -> str:
    return f"{levels_path(site_id)}/{level_id}"


def fleet_path(fleet_id: str) -> str:
    return f"{FLEETS_PATH}/{fleet_id}"


def thing_path(thing_id: str) -> str:
    return f"{THINGS_PATH}/{thing_id}"


def place_path(place_type: str, place_id: str) -> str:
    return site_path(place_id) if place_type == "Site" else fleet_path(place_id)


def place_things_path(place_type: str, place_id: str) -> str:
    return f"{place_path(place_type, place_id)}/things"


# -- bodies -----------------------------------------------------------------------------------


def site_body(**fields: Any) -> dict[str, Any]:
    """A ``POST /sites`` body (fields override or add)."""
    return {
        "siteName": "Harbour plant",
        "address": "1 Harbour Rd, Bristol",
        "latitude": 51.45,
        "longitude": -2.6,
        **fields,
    }


def level_body(level_type: str = "Building", name: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"levelType": level_type, "levelName": name or f"{level_type} 1", **fields}


def fleet_body(**fields: Any) -> dict[str, Any]:
    return {"fleetName": "Delivery vans", **fields}


def thing_body(thing_type_id: str, **fields: Any) -> dict[str, Any]:
    return {"thingName": "meter 1", "thingTypeId": thing_type_id, **fields}


# -- creating through the API -----------------------------------------------------------------


def created(response: GatewayResponse) -> dict[str, Any]:
    assert response.status == 201, response.body
    body: dict[str, Any] = response.json()
    return body


def ok(response: GatewayResponse) -> dict[str, Any]:
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def make_site(stack: LocalStack, caller: str, **fields: Any) -> dict[str, Any]:
    return created(stack.request("POST", SITES_PATH, key=caller, json_body=site_body(**fields)))


def make_level(
    stack: LocalStack,
    caller: str,
    site_id: str,
    level_type: str = "Building",
    parent: str | None = None,
    name: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = level_body(level_type, name, **({"parentLevelId": parent} if parent else {}), **fields)
    return created(stack.request("POST", levels_path(site_id), key=caller, json_body=body))


def make_fleet(stack: LocalStack, caller: str, **fields: Any) -> dict[str, Any]:
    return created(stack.request("POST", FLEETS_PATH, key=caller, json_body=fleet_body(**fields)))


def post_thing(stack: LocalStack, caller: str, place_type: str, place_id: str, body: Any) -> GatewayResponse:
    return stack.request("POST", place_things_path(place_type, place_id), key=caller, json_body=body)


def make_thing(
    stack: LocalStack, caller: str, place_type: str, place_id: str, thing_type_id: str, **fields: Any
) -> dict[str, Any]:
    """A new thing in a site or fleet (``place_type`` ``Site``/``Fleet``)."""
    return created(post_thing(stack, caller, place_type, place_id, thing_body(thing_type_id, **fields)))


def make_type(
    stack: LocalStack, caller: str, name: str = "Meter", properties: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A thing type (its index) named ``name``: the name scopes use."""
    return make_thing_type(stack, caller, property_definitions=properties, display_name=name)


METER_PROPERTIES = [
    property_definition("serial", "String", required=True),
    property_definition("ratedAmps", "Int", constraints={"min": 1, "max": 400}),
    property_definition("phase", "String", constraints={"enum": ["L1", "L2", "L3"]}),
]


def make_meter_type(stack: LocalStack, caller: str, name: str = "Meter") -> dict[str, Any]:
    """A type with a required ``serial``, an Int ``ratedAmps`` (1..400) and an enum ``phase``."""
    return make_type(stack, caller, name, METER_PROPERTIES)


def patch(stack: LocalStack, caller: str, path: str, body: Any) -> GatewayResponse:
    return stack.request("PATCH", path, key=caller, json_body=body)


def read(stack: LocalStack, caller: str, path: str) -> dict[str, Any]:
    return ok(stack.request("GET", path, key=caller))


def delete(stack: LocalStack, caller: str, path: str) -> GatewayResponse:
    return stack.request("DELETE", path, key=caller)


def key_with(stack: LocalStack, org: Org, *scopes: Scope, name: str = "scoped") -> Key:
    return create_key(stack, org.admin_key, name=name, type="external", scopes=list(scopes))


# -- lists ------------------------------------------------------------------------------------


def ids(stack: LocalStack, caller: str, path: str, id_field: str, **query: Any) -> list[str]:
    """Every id a list returns (following continuation tokens), sorted."""
    return sorted(list_all(stack, caller, path, id_field, **query))


def thing_ids(stack: LocalStack, caller: str, path: str = THINGS_PATH, **query: Any) -> list[str]:
    return ids(stack, caller, path, "thingId", **query)


# -- problems ---------------------------------------------------------------------------------


def names(fields: Sequence[str], field: str) -> bool:
    """Whether validation problem ``fields`` name ``field`` (or something inside it)."""
    return any(f == field or f.startswith((f"{field}.", f"{field}[")) for f in fields)


def conflict_blocked_by(response: GatewayResponse) -> dict[str, int]:
    problem = assert_problem(response, 409, "conflict")
    blocked: dict[str, int] = problem["blockedBy"]
    return blocked


# -- raw records, queues and the layer --------------------------------------------------------


def table_items(stack: LocalStack) -> list[dict[str, Any]]:
    """Every item of the records table, deserialized (tests may Scan; the product never does)."""
    deserializer = TypeDeserializer()
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=stack.environment("things")["RECORDS_TABLE"]):
        items.extend({k: deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"])
    return items


def queued_messages(stack: LocalStack) -> list[dict[str, Any]]:
    """Every message waiting on the thing-events queue (bodies decoded)."""
    sqs = boto3.client("sqs")
    url = stack.environment("things")["THING_EVENTS_QUEUE_URL"]
    bodies: list[dict[str, Any]] = []
    while True:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = received.get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in messages)
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def thing_service(stack: LocalStack) -> ThingService:
    """The things function's own service, wired as its container built it, to call below HTTP."""
    service = stack.function("things").load().things
    assert isinstance(service, ThingService)
    return service
