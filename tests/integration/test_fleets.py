"""``/v2/fleets``: every route, as a client calls it through API Gateway."""

from __future__ import annotations

from typing import Any

import pytest

from spectra_local.stack import LocalStack
from tests.integration.definition_factories import error_fields, is_iso
from tests.integration.factories import Org, assert_problem, scope
from tests.integration.place_factories import (
    FLEETS_PATH,
    UNKNOWN_ID,
    conflict_blocked_by,
    delete,
    fleet_body,
    fleet_path,
    ids,
    key_with,
    make_fleet,
    make_site,
    make_thing,
    make_type,
    names,
    patch,
    read,
    thing_path,
)

INVALID_FLEETS: list[tuple[dict[str, Any], str]] = [
    ({"fleetName": ""}, "fleetName"),
    ({"fleetName": "x" * 201}, "fleetName"),
    ({"latitude": 91, "longitude": 0}, "latitude"),
    ({"latitude": 0, "longitude": -180.5}, "longitude"),
    ({"latitude": 10}, "body"),
    ({"longitude": 10}, "body"),
    ({"description": "x" * 2001}, "description"),
    ({"attributes": {"driver": {"name": "Sam"}}}, "attributes.driver"),
    ({"attributes": ["a", "b"]}, "attributes"),
    ({"fleetId": UNKNOWN_ID}, "fleetId"),
    ({"vehicles": 12}, "vehicles"),
]
INVALID_FLEET_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"fleetName": None}, "fleetName"),
    ({"fleetName": ""}, "fleetName"),
    ({"latitude": 10}, "body"),
    ({"latitude": 10, "longitude": None}, "body"),
    ({"latitude": 95, "longitude": 10}, "latitude"),
    ({"thingCount": 3}, "thingCount"),
]


def post_fleet(stack: LocalStack, caller: str, body: Any) -> Any:
    return stack.request("POST", FLEETS_PATH, key=caller, json_body=body)


def fleet_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return ids(stack, caller, FLEETS_PATH, "fleetId", **query)


@pytest.fixture
def fleet(stack: LocalStack, org: Org) -> dict[str, Any]:
    return make_fleet(stack, org.admin_key, latitude=51.5, longitude=-0.12, attributes={"depot": "North"})


# -- create -----------------------------------------------------------------------------------


def test_create_fleet_returns_201_with_location_and_the_fleet(stack: LocalStack, org: Org) -> None:
    body = fleet_body(description="Last-mile vans", latitude=51.5, longitude=-0.12)

    response = post_fleet(stack, org.admin_key, body)

    assert response.status == 201
    fleet = response.json()
    assert response.headers["Location"] == fleet_path(fleet["fleetId"])
    assert {k: fleet[k] for k in body} == body
    assert (fleet["thingCount"], fleet["attributes"]) == (0, {})


def test_create_fleet_records_the_key_and_the_time(stack: LocalStack, org: Org) -> None:
    fleet = make_fleet(stack, org.admin_key)

    assert (fleet["createdBy"], fleet["updatedBy"]) == (org.admin_key_id, org.admin_key_id)
    assert is_iso(fleet["createdAt"])
    assert fleet["createdAt"] == fleet["updatedAt"]


def test_fleet_without_coordinates_has_none(stack: LocalStack, org: Org) -> None:
    fleet = make_fleet(stack, org.admin_key)

    assert (fleet["latitude"], fleet["longitude"]) == (None, None)


def test_fleet_attributes_are_name_value_pairs_of_scalars(stack: LocalStack, org: Org) -> None:
    attributes = {"depot": "North", "vans": 12, "fuelLitres": 60.5, "electric": True, "leaseEnds": None}

    fleet = make_fleet(stack, org.admin_key, attributes=attributes)

    assert read(stack, org.admin_key, fleet_path(fleet["fleetId"]))["attributes"] == attributes


def test_invalid_fleet_is_400_naming_the_field(stack: LocalStack, org: Org) -> None:
    for change, field in INVALID_FLEETS:
        fields = error_fields(post_fleet(stack, org.admin_key, fleet_body(**change)))
        assert names(fields, field), (change, fields)
    assert fleet_ids(stack, org.admin_key) == []


def test_invalid_fleet_lists_every_problem(stack: LocalStack, org: Org) -> None:
    body = fleet_body(fleetName="", latitude=91, longitude=181, colour="white")

    fields = error_fields(post_fleet(stack, org.admin_key, body))

    assert sorted(fields) == ["colour", "fleetName", "latitude", "longitude"]
    assert fleet_ids(stack, org.admin_key) == []


# -- read and list ----------------------------------------------------------------------------


def test_get_fleet_returns_what_create_returned(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    assert read(stack, org.admin_key, fleet_path(fleet["fleetId"])) == fleet


def test_list_fleets_pages_through_every_fleet_once(stack: LocalStack, org: Org) -> None:
    created = [make_fleet(stack, org.admin_key, fleetName=f"Fleet {n}")["fleetId"] for n in range(5)]

    for size in ("limit", "pageLimit"):
        first = stack.request("GET", FLEETS_PATH, key=org.admin_key, query={size: 2}).json()
        assert (len(first["items"]), first["hasMore"], first["continuationToken"] is not None) == (2, True, True)
        assert fleet_ids(stack, org.admin_key, **{size: 2}) == sorted(created)


def test_list_fleets_shows_only_the_callers_org(stack: LocalStack, org: Org, other_org: Org) -> None:
    mine = make_fleet(stack, org.admin_key)["fleetId"]
    make_fleet(stack, other_org.admin_key)

    assert fleet_ids(stack, org.admin_key) == [mine]


def test_list_fleets_shows_only_fleets_the_key_may_read(stack: LocalStack, org: Org) -> None:
    visible, _hidden = (make_fleet(stack, org.admin_key)["fleetId"] for _ in range(2))
    key = key_with(stack, org, scope("read", f"PLACE/Fleet/{visible}"))

    assert fleet_ids(stack, key.secret) == [visible]


# -- update -----------------------------------------------------------------------------------


def test_patch_fleet_changes_only_the_fields_sent(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    editor = key_with(stack, org, scope("write", "PLACE/Fleet/#"), name="editor")

    response = patch(stack, editor.secret, fleet_path(fleet["fleetId"]), {"fleetName": "Trucks"})

    assert response.status == 200
    updated = response.json()
    assert (updated["fleetName"], updated["updatedBy"], updated["createdBy"]) == (
        "Trucks",
        editor.key_id,
        org.admin_key_id,
    )
    same = {k: v for k, v in fleet.items() if k not in {"fleetName", "updatedAt", "updatedBy"}}
    assert {k: updated[k] for k in same} == same
    assert updated["updatedAt"] >= fleet["updatedAt"]
    assert read(stack, org.admin_key, fleet_path(fleet["fleetId"])) == updated


def test_patch_fleet_replaces_the_attributes(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    updated = patch(stack, org.admin_key, fleet_path(fleet["fleetId"]), {"attributes": {"depot": "South", "vans": 3}})

    assert updated.json()["attributes"] == {"depot": "South", "vans": 3}


@pytest.mark.parametrize(
    ("coordinates", "expected"),
    [({"latitude": 0, "longitude": 0}, (0, 0)), ({"latitude": None, "longitude": None}, (None, None))],
    ids=["zero-is-a-coordinate", "null-clears-both"],
)
def test_patch_fleet_coordinates(
    stack: LocalStack,
    org: Org,
    fleet: dict[str, Any],
    coordinates: dict[str, Any],
    expected: tuple[Any, Any],
) -> None:
    response = patch(stack, org.admin_key, fleet_path(fleet["fleetId"]), coordinates)

    assert response.status == 200, response.body
    stored = read(stack, org.admin_key, fleet_path(fleet["fleetId"]))
    assert (stored["latitude"], stored["longitude"]) == expected


def test_invalid_fleet_patch_is_400_and_changes_nothing(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    for body, field in INVALID_FLEET_PATCHES:
        assert names(error_fields(patch(stack, org.admin_key, fleet_path(fleet["fleetId"]), body)), field), body
    assert read(stack, org.admin_key, fleet_path(fleet["fleetId"])) == fleet


# -- delete -----------------------------------------------------------------------------------


def test_delete_empty_fleet_is_204_and_it_is_gone(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    assert delete(stack, org.admin_key, fleet_path(fleet["fleetId"])).status == 204

    assert_problem(stack.request("GET", fleet_path(fleet["fleetId"]), key=org.admin_key), 404, "not_found")
    assert fleet_ids(stack, org.admin_key) == []


def test_delete_fleet_with_things_is_409_until_they_leave(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    thing_type = make_type(stack, org.admin_key)["thingTypeId"]
    staying, leaving = (make_thing(stack, org.admin_key, "Fleet", fleet["fleetId"], thing_type) for _ in range(2))
    site = make_site(stack, org.admin_key)

    assert conflict_blocked_by(delete(stack, org.admin_key, fleet_path(fleet["fleetId"]))) == {"things": 2}
    assert patch(stack, org.admin_key, thing_path(leaving["thingId"]), {"placeId": site["siteId"]}).status == 200
    assert conflict_blocked_by(delete(stack, org.admin_key, fleet_path(fleet["fleetId"]))) == {"things": 1}
    assert delete(stack, org.admin_key, thing_path(staying["thingId"])).status == 204

    assert delete(stack, org.admin_key, fleet_path(fleet["fleetId"])).status == 204


# -- tenancy and scopes -----------------------------------------------------------------------


def test_fleet_of_another_org_is_404_and_untouched(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_fleet(stack, other_org.admin_key)

    for method, body in (("GET", None), ("PATCH", {"fleetName": "Mine now"}), ("DELETE", None)):
        response = stack.request(method, fleet_path(foreign["fleetId"]), key=org.admin_key, json_body=body)
        assert_problem(response, 404, "not_found")
    assert read(stack, other_org.admin_key, fleet_path(foreign["fleetId"])) == foreign


def test_unknown_or_malformed_fleet_id_is_404(stack: LocalStack, org: Org) -> None:
    for fleet_id in (UNKNOWN_ID, "not-a-guid"):
        assert_problem(stack.request("GET", fleet_path(fleet_id), key=org.admin_key), 404, "not_found")


def test_key_scoped_to_one_fleet_cannot_touch_another(stack: LocalStack, org: Org) -> None:
    mine, other = (make_fleet(stack, org.admin_key) for _ in range(2))
    key = key_with(stack, org, scope("write", f"PLACE/Fleet/{mine['fleetId']}"))

    assert patch(stack, key.secret, fleet_path(mine["fleetId"]), {"fleetName": "Mine"}).status == 200
    assert_problem(
        patch(stack, key.secret, fleet_path(other["fleetId"]), {"fleetName": "Mine"}), 403, "forbidden_scope"
    )
    assert_problem(delete(stack, key.secret, fleet_path(other["fleetId"])), 403, "forbidden_scope")
    assert_problem(post_fleet(stack, key.secret, fleet_body()), 403, "forbidden_scope")
    assert read(stack, org.admin_key, fleet_path(other["fleetId"])) == other


def test_site_scope_does_not_reach_fleets(stack: LocalStack, org: Org, fleet: dict[str, Any]) -> None:
    key = key_with(stack, org, scope("write", "PLACE/Site/#"))

    assert_problem(stack.request("GET", fleet_path(fleet["fleetId"]), key=key.secret), 403, "forbidden_scope")
    assert_problem(post_fleet(stack, key.secret, fleet_body()), 403, "forbidden_scope")
