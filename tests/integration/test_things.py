"""``/v2/things`` and the things of sites and fleets: every route, as a client calls it through API Gateway.

The race tests go below HTTP on purpose: the local gateway runs one request at a time (a
Lambda container does too), so two creates can only overlap in the service, as two
containers' would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

from spectra.errors import Conflict
from spectra.models.things import CreateThingRequest, Thing
from spectra.repositories.things import ThingRepository
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import (
    UNKNOWN_THING_TYPE_ID,
    UNKNOWN_VERSION_ID,
    error_fields,
    is_iso,
    make_version,
    operator,
    property_definition,
    thing_type_path,
)
from tests.integration.factories import Org, assert_problem, scope
from tests.integration.place_factories import (
    METER_PROPERTIES,
    THINGS_PATH,
    UNKNOWN_ID,
    delete,
    fleet_path,
    key_with,
    level_path,
    make_fleet,
    make_level,
    make_meter_type,
    make_site,
    make_thing,
    make_type,
    names,
    patch,
    place_things_path,
    post_thing,
    queued_messages,
    read,
    site_path,
    table_items,
    thing_body,
    thing_ids,
    thing_path,
    thing_service,
)

THING_FIELDS = {
    "thingId",
    "thingName",
    "placeType",
    "placeId",
    "levelId",
    "thingTypeId",
    "thingTypeDefId",
    "thingTypeName",
    "thingDescription",
    "address",
    "model",
    "manufacturer",
    "thingManufacturerId",
    "isSimulated",
    "latitude",
    "longitude",
    "attributes",
    "properties",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
}
SERIAL = {"serial": "SN-0001"}
INVALID_THINGS: list[tuple[dict[str, Any], str]] = [
    ({"thingName": ""}, "thingName"),
    ({"thingName": "x" * 257}, "thingName"),
    ({"thingTypeId": "meter"}, "thingTypeId"),
    ({"thingTypeDefId": "v1"}, "thingTypeDefId"),
    ({"latitude": 91, "longitude": 0}, "latitude"),
    ({"latitude": 0, "longitude": 181}, "longitude"),
    ({"latitude": 45}, "body"),
    ({"longitude": 45}, "body"),
    ({"thingDescription": "x" * 2001}, "thingDescription"),
    ({"model": "x" * 201}, "model"),
    ({"thingManufacturerId": ""}, "thingManufacturerId"),
    ({"isSimulated": "perhaps"}, "isSimulated"),
    ({"attributes": {"location": {"x": 1}}}, "attributes.location"),
    ({"properties": "serial=1"}, "properties"),
    ({"placeId": UNKNOWN_ID}, "placeId"),
    ({"firmware": "1.2"}, "firmware"),
]
# (properties sent, the property the problem names) against METER_PROPERTIES
INVALID_PROPERTIES: list[tuple[dict[str, Any], str]] = [
    ({"serial": "SN-1", "ratedAmps": "lots"}, "ratedAmps"),
    ({"serial": "SN-1", "ratedAmps": 12.5}, "ratedAmps"),
    ({"serial": "SN-1", "ratedAmps": True}, "ratedAmps"),
    ({"serial": "SN-1", "ratedAmps": 401}, "ratedAmps"),
    ({"serial": "SN-1", "phase": "L4"}, "phase"),
    ({"serial": {"text": "SN-1"}}, "serial"),
    ({"serial": None}, "serial"),
    ({"serial": "SN-1", "colour": "grey"}, "colour"),
    ({"ratedAmps": 32}, "serial"),
]
INVALID_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"thingName": None}, "thingName"),
    ({"thingName": ""}, "thingName"),
    ({"isSimulated": None}, "isSimulated"),
    ({"latitude": 10}, "body"),
    ({"latitude": None, "longitude": 10}, "body"),
    ({"latitude": -91, "longitude": 10}, "latitude"),
    ({"thingTypeDefId": None}, "thingTypeDefId"),
    ({"thingTypeId": UNKNOWN_THING_TYPE_ID}, "thingTypeId"),
    ({"placeId": None}, "placeId"),
    ({"placeId": "not-a-guid"}, "placeId"),
    ({"placeId": UNKNOWN_ID}, "placeId"),
    ({"levelId": UNKNOWN_ID}, "levelId"),
    ({"properties": {"ratedAmps": "many"}}, "properties.ratedAmps"),
    ({"propertiesToDelete": ["serial"]}, "properties.serial"),
    ({"createdBy": "me"}, "createdBy"),
]


@pytest.fixture
def site(stack: LocalStack, org: Org) -> dict[str, Any]:
    return make_site(stack, org.admin_key)


@pytest.fixture
def fleet(stack: LocalStack, org: Org) -> dict[str, Any]:
    return make_fleet(stack, org.admin_key)


@pytest.fixture
def meter_type(stack: LocalStack, org: Org) -> dict[str, Any]:
    """A type named Meter: required ``serial``, Int ``ratedAmps`` 1..400, ``phase`` L1|L2|L3."""
    return make_meter_type(stack, org.admin_key)


@pytest.fixture
def meter(stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]) -> dict[str, Any]:
    """A Meter in ``site``, with coordinates, attributes, properties and a manufacturer id."""
    return make_thing(
        stack,
        org.admin_key,
        "Site",
        site["siteId"],
        meter_type["thingTypeId"],
        thingDescription="Main incomer",
        address="Plant room",
        model="EM-3",
        manufacturer="Acme",
        thingManufacturerId="ACME-0001",
        latitude=51.45,
        longitude=-2.6,
        attributes={"panel": "A", "circuit": 4},
        properties={"serial": "SN-0001", "ratedAmps": 100, "phase": "L1"},
    )


@pytest.fixture
def atomic_moto_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB runs each transaction atomically; moto does not lock, so give it a lock."""
    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def atomic(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with lock:
            original(self, transact_items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", atomic)


def thing_count(stack: LocalStack, caller: str, path: str) -> int:
    """The ``thingCount`` a site, fleet or level reports."""
    return int(read(stack, caller, path)["thingCount"])


def get_thing(stack: LocalStack, caller: str, thing_id: str) -> dict[str, Any]:
    return read(stack, caller, thing_path(thing_id))


def post_meter(stack: LocalStack, caller: str, site_id: str, type_id: str, **fields: Any) -> Any:
    return post_thing(stack, caller, "Site", site_id, thing_body(type_id, **{"properties": SERIAL, **fields}))


def new_meter(stack: LocalStack, caller: str, place_type: str, place_id: str, type_id: str, **fields: Any) -> str:
    return str(make_thing(stack, caller, place_type, place_id, type_id, **{"properties": SERIAL, **fields})["thingId"])


# -- create -----------------------------------------------------------------------------------


def test_create_thing_in_a_site_returns_201_with_location_and_the_thing(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    body = thing_body(meter_type["thingTypeId"], model="EM-3", isSimulated=True, properties={"serial": "SN-1"})

    response = post_thing(stack, org.admin_key, "Site", site["siteId"], body)

    assert response.status == 201
    thing = response.json()
    assert response.headers["Location"] == thing_path(thing["thingId"])
    assert thing.keys() == THING_FIELDS
    assert {k: thing[k] for k in body} == body
    assert (thing["placeType"], thing["placeId"], thing["levelId"], thing["thingTypeName"]) == (
        "Site",
        site["siteId"],
        None,
        "Meter",
    )
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


def test_create_thing_in_a_fleet_returns_201(
    stack: LocalStack, org: Org, fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    body = thing_body(meter_type["thingTypeId"], properties=SERIAL)

    response = post_thing(stack, org.admin_key, "Fleet", fleet["fleetId"], body)

    assert response.status == 201
    assert (response.json()["placeType"], response.json()["placeId"]) == ("Fleet", fleet["fleetId"])
    assert thing_count(stack, org.admin_key, fleet_path(fleet["fleetId"])) == 1


def test_create_thing_records_the_key_and_the_time(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    writer = key_with(stack, org, scope("write", "THING/Meter/#"), name="installer")

    thing = post_meter(stack, writer.secret, site["siteId"], meter_type["thingTypeId"]).json()

    assert (thing["createdBy"], thing["updatedBy"]) == (writer.key_id, writer.key_id)
    assert is_iso(thing["createdAt"])
    assert thing["createdAt"] == thing["updatedAt"]


def test_thing_binds_to_the_latest_version_unless_one_is_named(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    first = meter_type["latestThingTypeDefId"]
    second = make_version(stack, org.admin_key, meter_type["thingTypeId"], {"metricIds": []})["thingTypeDefId"]

    latest = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"]).json()
    named = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], thingTypeDefId=first).json()

    assert (latest["thingTypeDefId"], named["thingTypeDefId"]) == (second, first)


def test_thing_at_a_level_counts_on_the_level_and_the_site(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    building = make_level(stack, org.admin_key, site["siteId"])

    thing = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], levelId=building["levelId"])

    assert thing.json()["levelId"] == building["levelId"]
    assert thing_count(stack, org.admin_key, level_path(site["siteId"], building["levelId"])) == 1
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


def test_valid_properties_are_stored_as_their_types(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    properties = {"serial": 1234, "ratedAmps": "32", "phase": "L3"}

    thing = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], properties=properties).json()

    assert get_thing(stack, org.admin_key, thing["thingId"])["properties"] == {
        "serial": "1234",
        "ratedAmps": 32,
        "phase": "L3",
    }


def test_invalid_thing_is_400_naming_the_field(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    for change, field in INVALID_THINGS:
        response = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], **change)
        assert names(error_fields(response), field), (change, response.body)
    assert thing_ids(stack, org.admin_key) == []


def test_properties_are_validated_against_the_version(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    for properties, name in INVALID_PROPERTIES:
        response = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], properties=properties)
        assert error_fields(response) == [f"properties.{name}"], (properties, response.body)
    assert thing_ids(stack, org.admin_key) == []


def test_invalid_thing_lists_every_problem_and_writes_nothing(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    body = thing_body(meter_type["thingTypeId"], thingName="", latitude=91, longitude=0, colour="grey")

    fields = error_fields(post_thing(stack, org.admin_key, "Site", site["siteId"], body))

    assert sorted(fields) == ["colour", "latitude", "thingName"]
    assert thing_ids(stack, org.admin_key) == []


def test_level_and_property_problems_are_listed_together(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    properties = {"ratedAmps": 0, "phase": "L9"}

    response = post_meter(
        stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], levelId=UNKNOWN_ID, properties=properties
    )

    assert sorted(error_fields(response)) == [
        "levelId",
        "properties.phase",
        "properties.ratedAmps",
        "properties.serial",
    ]
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 0


def test_level_and_thing_type_problems_are_listed_together(
    stack: LocalStack, org: Org, other_org: Org, site: dict[str, Any]
) -> None:
    foreign_type = make_type(stack, other_org.admin_key)["thingTypeId"]

    response = post_meter(stack, org.admin_key, site["siteId"], foreign_type, levelId=UNKNOWN_ID)

    assert sorted(error_fields(response)) == ["levelId", "thingTypeId"]


def test_level_of_another_site_or_org_is_400_and_nothing_is_written(
    stack: LocalStack, org: Org, other_org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    elsewhere = make_site(stack, org.admin_key)
    level = make_level(stack, org.admin_key, elsewhere["siteId"])
    foreign_site = make_site(stack, other_org.admin_key)
    foreign_level = make_level(stack, other_org.admin_key, foreign_site["siteId"])

    for level_id in (level["levelId"], foreign_level["levelId"]):
        response = post_meter(stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], levelId=level_id)
        assert error_fields(response) == ["levelId"]

    assert thing_ids(stack, org.admin_key) == []
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 0
    assert thing_count(stack, org.admin_key, level_path(elsewhere["siteId"], level["levelId"])) == 0
    assert thing_count(stack, other_org.admin_key, level_path(foreign_site["siteId"], foreign_level["levelId"])) == 0


def test_level_for_a_thing_in_a_fleet_is_400(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    level = make_level(stack, org.admin_key, site["siteId"])
    body = thing_body(meter_type["thingTypeId"], properties=SERIAL, levelId=level["levelId"])

    assert error_fields(post_thing(stack, org.admin_key, "Fleet", fleet["fleetId"], body)) == ["levelId"]
    assert thing_count(stack, org.admin_key, fleet_path(fleet["fleetId"])) == 0


def test_unusable_thing_type_is_400_and_nothing_is_written(
    stack: LocalStack, org: Org, other_org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    foreign = make_meter_type(stack, other_org.admin_key)
    deleted = make_meter_type(stack, org.admin_key, "Retired meter")
    assert delete(stack, org.admin_key, thing_type_path(deleted["thingTypeId"])).status == 204
    other_type = make_meter_type(stack, org.admin_key, "Other meter")
    cases = [
        ({"thingTypeId": UNKNOWN_THING_TYPE_ID}, "thingTypeId"),
        ({"thingTypeId": foreign["thingTypeId"]}, "thingTypeId"),
        ({"thingTypeId": deleted["thingTypeId"]}, "thingTypeId"),
        ({"thingTypeDefId": UNKNOWN_VERSION_ID}, "thingTypeDefId"),
        ({"thingTypeDefId": other_type["latestThingTypeDefId"]}, "thingTypeDefId"),
        ({"thingTypeDefId": foreign["latestThingTypeDefId"]}, "thingTypeDefId"),
    ]

    for change, field in cases:
        body = {**thing_body(meter_type["thingTypeId"], properties=SERIAL), **change}
        assert error_fields(post_thing(stack, org.admin_key, "Site", site["siteId"], body)) == [field], change

    assert thing_ids(stack, org.admin_key) == []
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 0


def test_place_that_is_not_the_orgs_is_404_and_nothing_is_written(
    stack: LocalStack, org: Org, other_org: Org, meter_type: dict[str, Any]
) -> None:
    foreign_site = make_site(stack, other_org.admin_key)
    foreign_fleet = make_fleet(stack, other_org.admin_key)
    body = thing_body(meter_type["thingTypeId"], properties=SERIAL)

    places = [
        ("Site", foreign_site["siteId"]),
        ("Fleet", foreign_fleet["fleetId"]),
        ("Site", UNKNOWN_ID),
        ("Site", "x"),
    ]

    for place_type, place_id in places:
        assert_problem(post_thing(stack, org.admin_key, place_type, place_id, body), 404, "not_found")

    assert thing_ids(stack, org.admin_key) == []
    assert thing_ids(stack, other_org.admin_key) == []
    assert thing_count(stack, other_org.admin_key, site_path(foreign_site["siteId"])) == 0
    assert thing_count(stack, other_org.admin_key, fleet_path(foreign_fleet["fleetId"])) == 0


# -- manufacturer ids -------------------------------------------------------------------------


def test_manufacturer_id_is_unique_within_the_type(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    response = post_meter(
        stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], thingManufacturerId="ACME-0001"
    )

    assert "ACME-0001" in assert_problem(response, 409, "conflict")["detail"]
    assert thing_ids(stack, org.admin_key) == [meter["thingId"]]
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


def test_same_manufacturer_id_in_another_type_is_allowed(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any]
) -> None:
    other_type = make_meter_type(stack, org.admin_key, "Sub-meter")["thingTypeId"]

    assert post_meter(stack, org.admin_key, site["siteId"], other_type, thingManufacturerId="ACME-0001").status == 201


def test_manufacturer_id_is_free_again_once_its_thing_is_deleted(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    assert delete(stack, org.admin_key, thing_path(meter["thingId"])).status == 204

    response = post_meter(
        stack, org.admin_key, site["siteId"], meter_type["thingTypeId"], thingManufacturerId="ACME-0001"
    )

    assert response.status == 201


def test_patch_to_a_taken_manufacturer_id_is_409_and_changes_nothing(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    other = new_meter(
        stack, org.admin_key, "Site", site["siteId"], meter_type["thingTypeId"], thingManufacturerId="X-2"
    )
    before = get_thing(stack, org.admin_key, other)

    assert_problem(
        patch(stack, org.admin_key, thing_path(other), {"thingManufacturerId": "ACME-0001"}), 409, "conflict"
    )

    assert get_thing(stack, org.admin_key, other) == before


def test_changing_a_manufacturer_id_frees_the_old_one(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    changed = patch(stack, org.admin_key, thing_path(meter["thingId"]), {"thingManufacturerId": "ACME-0002"})
    assert changed.status == 200
    assert changed.json()["thingManufacturerId"] == "ACME-0002"

    type_id = meter_type["thingTypeId"]
    assert post_meter(stack, org.admin_key, site["siteId"], type_id, thingManufacturerId="ACME-0001").status == 201
    taken = post_meter(stack, org.admin_key, site["siteId"], type_id, thingManufacturerId="ACME-0002")
    assert_problem(taken, 409, "conflict")


@pytest.mark.usefixtures("atomic_moto_transactions")
def test_concurrent_creates_with_one_manufacturer_id_let_exactly_one_win(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = thing_service(stack)
    context = operator(org)
    both_validated = threading.Barrier(2)
    write = ThingRepository.write

    def write_together(self: ThingRepository, org_context: Any, items: Sequence[Mapping[str, Any]], **kw: Any) -> None:
        both_validated.wait(timeout=10)  # both creates passed validation; now both write
        write(self, org_context, items, **kw)

    monkeypatch.setattr(ThingRepository, "write", write_together)

    def create(name: str) -> Thing | Conflict:
        request = CreateThingRequest(
            thingName=name, thingTypeId=meter_type["thingTypeId"], thingManufacturerId="ACME-RACE", properties=SERIAL
        )
        try:
            return service.create(context, "Site", site["siteId"], request)
        except Conflict as conflict:
            return conflict

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(create, ["meter a", "meter b"]))

    winners = [o for o in outcomes if isinstance(o, Thing)]
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert "ACME-RACE" in losers[0].detail  # the guard refused it, not some other condition
    assert thing_ids(stack, org.admin_key) == [winners[0].thingId]
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


def test_create_landing_between_validation_and_write_wins_and_the_other_is_409(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    write = ThingRepository.write
    rival: list[str] = []
    started = threading.Event()

    def rival_first(self: ThingRepository, org_context: Any, items: Sequence[Mapping[str, Any]], **kw: Any) -> None:
        if not started.is_set():  # a rival request passes validation and commits while this one is about to write
            started.set()
            type_id = meter_type["thingTypeId"]
            rival.append(new_meter(stack, org.admin_key, "Site", site["siteId"], type_id, thingManufacturerId="M-1"))
        write(self, org_context, items, **kw)

    monkeypatch.setattr(ThingRepository, "write", rival_first)
    request = CreateThingRequest(
        thingName="late", thingTypeId=meter_type["thingTypeId"], thingManufacturerId="M-1", properties=SERIAL
    )

    with pytest.raises(Conflict, match="M-1"):
        thing_service(stack).create(operator(org), "Site", site["siteId"], request)

    assert thing_ids(stack, org.admin_key) == rival
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


# -- read and list ----------------------------------------------------------------------------


def test_get_thing_returns_what_create_returned(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter


def test_list_things_filters_by_place_and_type(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    battery = make_type(stack, org.admin_key, "Battery")["thingTypeId"]
    meter_id = meter_type["thingTypeId"]
    site_meter = new_meter(stack, org.admin_key, "Site", site["siteId"], meter_id)
    site_battery = new_meter(stack, org.admin_key, "Site", site["siteId"], battery, properties={})
    fleet_meter = new_meter(stack, org.admin_key, "Fleet", fleet["fleetId"], meter_id)
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({}, [site_meter, site_battery, fleet_meter]),
        ({"placeId": site["siteId"]}, [site_meter, site_battery]),
        ({"placeId": fleet["fleetId"]}, [fleet_meter]),
        ({"thingTypeId": meter_id}, [site_meter, fleet_meter]),
        ({"thingTypeId": battery}, [site_battery]),
        ({"placeId": site["siteId"], "thingTypeId": meter_id}, [site_meter]),
        ({"placeId": fleet["fleetId"], "thingTypeId": battery}, []),
        ({"placeId": UNKNOWN_ID}, []),
    ]

    for query, expected in cases:
        assert thing_ids(stack, org.admin_key, **query) == sorted(expected), query


def test_place_lists_show_the_things_of_that_place(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    in_site = new_meter(stack, org.admin_key, "Site", site["siteId"], meter_type["thingTypeId"])
    in_fleet = new_meter(stack, org.admin_key, "Fleet", fleet["fleetId"], meter_type["thingTypeId"])

    assert thing_ids(stack, org.admin_key, place_things_path("Site", site["siteId"])) == [in_site]
    assert thing_ids(stack, org.admin_key, place_things_path("Fleet", fleet["fleetId"])) == [in_fleet]


def test_every_thing_list_pages_with_limit_and_page_limit(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    made = {
        place_id: sorted(new_meter(stack, org.admin_key, kind, place_id, meter_type["thingTypeId"]) for _ in range(3))
        for kind, place_id in (("Site", site["siteId"]), ("Fleet", fleet["fleetId"]))
    }
    lists = [
        (THINGS_PATH, {}, sorted(made[site["siteId"]] + made[fleet["fleetId"]])),
        (THINGS_PATH, {"placeId": site["siteId"]}, made[site["siteId"]]),
        (
            THINGS_PATH,
            {"thingTypeId": meter_type["thingTypeId"]},
            sorted(made[site["siteId"]] + made[fleet["fleetId"]]),
        ),
        (place_things_path("Site", site["siteId"]), {}, made[site["siteId"]]),
        (place_things_path("Fleet", fleet["fleetId"]), {}, made[fleet["fleetId"]]),
    ]

    for path, query, expected in lists:
        for size in ("limit", "pageLimit"):
            first = stack.request("GET", path, key=org.admin_key, query={**query, size: 2}).json()
            assert (len(first["items"]), first["hasMore"]) == (2, True), (path, query, size)
            assert thing_ids(stack, org.admin_key, path, **query, **{size: 2}) == expected, (path, query, size)


def test_continuation_token_is_bound_to_the_list_and_its_filters(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    for kind, place_id in (("Site", site["siteId"]), ("Fleet", fleet["fleetId"])):
        for _ in range(2):
            new_meter(stack, org.admin_key, kind, place_id, meter_type["thingTypeId"])
    query = {"placeId": site["siteId"], "limit": 1}
    token = stack.request("GET", THINGS_PATH, key=org.admin_key, query=query).json()["continuationToken"]
    misuses = [
        (THINGS_PATH, {**query, "placeId": fleet["fleetId"]}),
        (THINGS_PATH, {"limit": 1}),
        (place_things_path("Site", site["siteId"]), {"limit": 1}),
    ]

    assert (
        stack.request("GET", THINGS_PATH, key=org.admin_key, query={**query, "continuationToken": token}).status == 200
    )
    for path, misused in misuses:
        response = stack.request("GET", path, key=org.admin_key, query={**misused, "continuationToken": token})
        assert_problem(response, 400, "invalid_continuation_token")


def test_list_filters_that_are_not_ids_are_400(stack: LocalStack, org: Org) -> None:
    for query, field in (({"placeId": "site-1"}, "placeId"), ({"thingTypeId": "meter"}, "thingTypeId")):
        response = stack.request("GET", THINGS_PATH, key=org.admin_key, query=query)
        assert error_fields(response) == [field], query


def test_thing_lists_show_only_the_callers_org(
    stack: LocalStack, org: Org, other_org: Org, site: dict[str, Any], meter: dict[str, Any]
) -> None:
    foreign_site = make_site(stack, other_org.admin_key)
    foreign_type = make_type(stack, other_org.admin_key)["thingTypeId"]
    make_thing(stack, other_org.admin_key, "Site", foreign_site["siteId"], foreign_type)

    assert thing_ids(stack, org.admin_key) == [meter["thingId"]]
    assert thing_ids(stack, org.admin_key, placeId=foreign_site["siteId"]) == []
    assert thing_ids(stack, org.admin_key, thingTypeId=foreign_type) == []
    foreign_list = stack.request("GET", place_things_path("Site", foreign_site["siteId"]), key=org.admin_key)
    assert_problem(foreign_list, 404, "not_found")


def test_thing_of_another_org_is_404_and_untouched(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign_site = make_site(stack, other_org.admin_key)
    foreign = make_thing(
        stack, other_org.admin_key, "Site", foreign_site["siteId"], make_type(stack, other_org.admin_key)["thingTypeId"]
    )

    for method, body in (("GET", None), ("PATCH", {"thingName": "mine"}), ("DELETE", None)):
        response = stack.request(method, thing_path(foreign["thingId"]), key=org.admin_key, json_body=body)
        assert_problem(response, 404, "not_found")
    assert get_thing(stack, other_org.admin_key, foreign["thingId"]) == foreign


def test_unknown_or_malformed_thing_id_is_404(stack: LocalStack, org: Org) -> None:
    for thing_id in (UNKNOWN_ID, "not-a-guid"):
        assert_problem(stack.request("GET", thing_path(thing_id), key=org.admin_key), 404, "not_found")


# -- update: merge semantics ------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    editor = key_with(stack, org, scope("write", "THING/Meter/#"), name="editor")

    response = patch(stack, editor.secret, thing_path(meter["thingId"]), {"thingName": "incomer"})

    assert response.status == 200
    updated = response.json()
    assert (updated["thingName"], updated["updatedBy"], updated["createdBy"]) == (
        "incomer",
        editor.key_id,
        org.admin_key_id,
    )
    same = {k: v for k, v in meter.items() if k not in {"thingName", "updatedAt", "updatedBy"}}
    assert {k: updated[k] for k in same} == same
    assert updated["updatedAt"] >= meter["updatedAt"]
    assert get_thing(stack, org.admin_key, meter["thingId"]) == updated


def test_patch_merges_attributes_and_deletes_the_named_ones(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    body = {"attributes": {"circuit": 5, "breaker": "B32"}, "attributesToDelete": ["panel", "never-set"]}

    updated = patch(stack, org.admin_key, thing_path(meter["thingId"]), body).json()

    assert updated["attributes"] == {"circuit": 5, "breaker": "B32"}


def test_patch_merges_properties_and_deletes_the_named_ones(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    body = {"properties": {"ratedAmps": "63"}, "propertiesToDelete": ["phase"]}

    updated = patch(stack, org.admin_key, thing_path(meter["thingId"]), body).json()

    assert updated["properties"] == {"serial": "SN-0001", "ratedAmps": 63}


def test_explicit_null_attributes_clears_them(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    updated = patch(stack, org.admin_key, thing_path(meter["thingId"]), {"attributes": None})

    assert updated.status == 200
    assert get_thing(stack, org.admin_key, meter["thingId"])["attributes"] == {}


def test_explicit_null_clears_optional_fields(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    cleared = ("thingDescription", "address", "model", "manufacturer", "thingManufacturerId")

    updated = patch(stack, org.admin_key, thing_path(meter["thingId"]), dict.fromkeys(cleared)).json()

    assert {field: updated[field] for field in cleared} == dict.fromkeys(cleared)
    assert (updated["thingName"], updated["latitude"]) == (meter["thingName"], meter["latitude"])


def test_zero_coordinates_are_kept_as_zero(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    assert patch(stack, org.admin_key, thing_path(meter["thingId"]), {"latitude": 0, "longitude": 0}).status == 200

    stored = get_thing(stack, org.admin_key, meter["thingId"])
    assert (stored["latitude"], stored["longitude"]) == (0, 0)


def test_null_coordinates_clear_both(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    body = {"latitude": None, "longitude": None}

    assert patch(stack, org.admin_key, thing_path(meter["thingId"]), body).status == 200

    stored = get_thing(stack, org.admin_key, meter["thingId"])
    assert (stored["latitude"], stored["longitude"]) == (None, None)


def test_invalid_patch_is_400_and_changes_nothing(stack: LocalStack, org: Org, meter: dict[str, Any]) -> None:
    for body, field in INVALID_PATCHES:
        fields = error_fields(patch(stack, org.admin_key, thing_path(meter["thingId"]), body))
        assert names(fields, field), (body, fields)
    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter


# -- update: transfer -------------------------------------------------------------------------


def test_transfer_site_to_fleet_to_site_keeps_every_counter_right(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    building = make_level(stack, org.admin_key, site["siteId"])
    second_site = make_site(stack, org.admin_key, siteName="Depot")
    floor_of_second = make_level(stack, org.admin_key, second_site["siteId"], "Building", name="Depot building")
    thing = new_meter(
        stack, org.admin_key, "Site", site["siteId"], meter_type["thingTypeId"], levelId=building["levelId"]
    )
    paths = {
        "site": site_path(site["siteId"]),
        "level": level_path(site["siteId"], building["levelId"]),
        "fleet": fleet_path(fleet["fleetId"]),
        "second site": site_path(second_site["siteId"]),
        "second level": level_path(second_site["siteId"], floor_of_second["levelId"]),
    }

    def counters() -> dict[str, int]:
        return {name: thing_count(stack, org.admin_key, path) for name, path in paths.items()}

    to_fleet = patch(stack, org.admin_key, thing_path(thing), {"placeId": fleet["fleetId"]}).json()
    assert (to_fleet["placeType"], to_fleet["placeId"], to_fleet["levelId"]) == ("Fleet", fleet["fleetId"], None)
    assert counters() == {"site": 0, "level": 0, "fleet": 1, "second site": 0, "second level": 0}

    body = {"placeId": second_site["siteId"], "levelId": floor_of_second["levelId"]}
    to_site = patch(stack, org.admin_key, thing_path(thing), body).json()
    assert (to_site["placeType"], to_site["placeId"], to_site["levelId"]) == (
        "Site",
        second_site["siteId"],
        floor_of_second["levelId"],
    )
    assert counters() == {"site": 0, "level": 0, "fleet": 0, "second site": 1, "second level": 1}

    for emptied in (paths["level"], paths["site"], paths["fleet"]):
        assert delete(stack, org.admin_key, emptied).status == 204


def test_transfer_moves_the_thing_between_place_lists(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter: dict[str, Any]
) -> None:
    assert patch(stack, org.admin_key, thing_path(meter["thingId"]), {"placeId": fleet["fleetId"]}).status == 200

    assert thing_ids(stack, org.admin_key, place_things_path("Site", site["siteId"])) == []
    assert thing_ids(stack, org.admin_key, place_things_path("Fleet", fleet["fleetId"])) == [meter["thingId"]]
    assert thing_ids(stack, org.admin_key, placeId=site["siteId"]) == []
    assert thing_ids(stack, org.admin_key, placeId=fleet["fleetId"]) == [meter["thingId"]]


def test_moving_between_levels_of_one_site_moves_only_level_counters(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    first, second = (make_level(stack, org.admin_key, site["siteId"], name=n) for n in ("A", "B"))
    thing = new_meter(stack, org.admin_key, "Site", site["siteId"], meter_type["thingTypeId"], levelId=first["levelId"])

    moved = patch(stack, org.admin_key, thing_path(thing), {"levelId": second["levelId"]}).json()

    assert (moved["placeId"], moved["levelId"]) == (site["siteId"], second["levelId"])
    levels = [thing_count(stack, org.admin_key, level_path(site["siteId"], lv["levelId"])) for lv in (first, second)]
    assert levels == [0, 1]
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


def test_null_level_takes_the_thing_off_its_level_but_keeps_it_in_the_site(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    level = make_level(stack, org.admin_key, site["siteId"])
    thing = new_meter(stack, org.admin_key, "Site", site["siteId"], meter_type["thingTypeId"], levelId=level["levelId"])

    moved = patch(stack, org.admin_key, thing_path(thing), {"levelId": None}).json()

    assert (moved["placeId"], moved["levelId"]) == (site["siteId"], None)
    assert thing_count(stack, org.admin_key, level_path(site["siteId"], level["levelId"])) == 0
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1


def test_bad_transfer_targets_are_400_and_change_nothing(
    stack: LocalStack, org: Org, other_org: Org, site: dict[str, Any], fleet: dict[str, Any], meter: dict[str, Any]
) -> None:
    foreign_site = make_site(stack, other_org.admin_key)
    foreign_fleet = make_fleet(stack, other_org.admin_key)
    foreign_level = make_level(stack, other_org.admin_key, foreign_site["siteId"])
    elsewhere = make_site(stack, org.admin_key)
    level_elsewhere = make_level(stack, org.admin_key, elsewhere["siteId"])
    own_level = make_level(stack, org.admin_key, site["siteId"])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"placeId": foreign_site["siteId"]}, "placeId"),
        ({"placeId": foreign_fleet["fleetId"]}, "placeId"),
        ({"placeId": foreign_site["siteId"], "levelId": foreign_level["levelId"]}, "placeId"),
        ({"levelId": foreign_level["levelId"]}, "levelId"),
        ({"levelId": level_elsewhere["levelId"]}, "levelId"),
        ({"placeId": elsewhere["siteId"], "levelId": own_level["levelId"]}, "levelId"),
        ({"placeId": fleet["fleetId"], "levelId": own_level["levelId"]}, "levelId"),
    ]

    for body, field in cases:
        assert error_fields(patch(stack, org.admin_key, thing_path(meter["thingId"]), body)) == [field], body

    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1
    assert [
        thing_count(stack, org.admin_key, p) for p in (fleet_path(fleet["fleetId"]), site_path(elsewhere["siteId"]))
    ] == [0, 0]
    assert thing_count(stack, other_org.admin_key, site_path(foreign_site["siteId"])) == 0
    assert thing_count(stack, other_org.admin_key, fleet_path(foreign_fleet["fleetId"])) == 0


# -- update: rebind ---------------------------------------------------------------------------


def test_rebind_to_another_version_of_the_same_type(
    stack: LocalStack, org: Org, meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    v2 = make_version(stack, org.admin_key, meter_type["thingTypeId"], {"metricIds": []})["thingTypeDefId"]

    rebound = patch(stack, org.admin_key, thing_path(meter["thingId"]), {"thingTypeDefId": v2})

    assert rebound.status == 200
    assert (rebound.json()["thingTypeDefId"], rebound.json()["thingTypeName"]) == (v2, "Meter")
    assert rebound.json()["properties"] == meter["properties"]
    assert get_thing(stack, org.admin_key, meter["thingId"])["thingTypeDefId"] == v2
    assert thing_ids(stack, org.admin_key, thingTypeId=meter_type["thingTypeId"]) == [meter["thingId"]]
    back = patch(stack, org.admin_key, thing_path(meter["thingId"]), {"thingTypeDefId": meter["thingTypeDefId"]})
    assert back.json()["thingTypeDefId"] == meter["thingTypeDefId"]


def test_rebind_validates_properties_against_the_new_version(
    stack: LocalStack, org: Org, meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    properties = [*METER_PROPERTIES[:1], property_definition("firmware", "String", required=True)]
    v2 = make_version(
        stack, org.admin_key, meter_type["thingTypeId"], {"metricIds": [], "propertyDefinitions": properties}
    )["thingTypeDefId"]
    path = thing_path(meter["thingId"])

    fields = error_fields(patch(stack, org.admin_key, path, {"thingTypeDefId": v2}))
    assert sorted(fields) == ["properties.firmware", "properties.phase", "properties.ratedAmps"]
    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter

    body = {"thingTypeDefId": v2, "properties": {"firmware": "2.1"}, "propertiesToDelete": ["phase", "ratedAmps"]}
    rebound = patch(stack, org.admin_key, path, body).json()
    assert (rebound["thingTypeDefId"], rebound["properties"]) == (v2, {"serial": "SN-0001", "firmware": "2.1"})


def test_rebind_to_a_version_the_type_cannot_use_is_400(
    stack: LocalStack, org: Org, other_org: Org, meter: dict[str, Any]
) -> None:
    other_type = make_meter_type(stack, org.admin_key, "Sub-meter")
    foreign_type = make_meter_type(stack, other_org.admin_key)

    for version in (other_type["latestThingTypeDefId"], foreign_type["latestThingTypeDefId"], UNKNOWN_VERSION_ID):
        response = patch(stack, org.admin_key, thing_path(meter["thingId"]), {"thingTypeDefId": version})
        assert error_fields(response) == ["thingTypeDefId"], version

    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter


def test_rebind_of_a_thing_whose_type_was_deleted_is_400(
    stack: LocalStack, org: Org, meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    v2 = make_version(stack, org.admin_key, meter_type["thingTypeId"], {"metricIds": []})["thingTypeDefId"]
    assert delete(stack, org.admin_key, thing_type_path(meter_type["thingTypeId"])).status == 204

    response = patch(stack, org.admin_key, thing_path(meter["thingId"]), {"thingTypeDefId": v2})

    assert error_fields(response) == ["thingTypeId"]
    assert get_thing(stack, org.admin_key, meter["thingId"])["thingTypeDefId"] == meter["thingTypeDefId"]


def test_thing_of_a_deleted_type_can_still_be_read_and_changed(
    stack: LocalStack, org: Org, meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    assert delete(stack, org.admin_key, thing_type_path(meter_type["thingTypeId"])).status == 204

    assert get_thing(stack, org.admin_key, meter["thingId"])["thingTypeDefId"] == meter["thingTypeDefId"]
    body = {"thingName": "kept", "properties": {"ratedAmps": 80}}
    assert patch(stack, org.admin_key, thing_path(meter["thingId"]), body).status == 200


# -- delete -----------------------------------------------------------------------------------


def test_delete_thing_is_204_and_it_is_gone_from_every_read(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    assert delete(stack, org.admin_key, thing_path(meter["thingId"])).status == 204

    assert_problem(stack.request("GET", thing_path(meter["thingId"]), key=org.admin_key), 404, "not_found")
    assert thing_ids(stack, org.admin_key) == []
    assert thing_ids(stack, org.admin_key, placeId=site["siteId"]) == []
    assert thing_ids(stack, org.admin_key, thingTypeId=meter_type["thingTypeId"]) == []
    assert thing_ids(stack, org.admin_key, place_things_path("Site", site["siteId"])) == []
    for method, body in (("PATCH", {"thingName": "back"}), ("DELETE", None)):
        response = stack.request(method, thing_path(meter["thingId"]), key=org.admin_key, json_body=body)
        assert_problem(response, 404, "not_found")


def test_delete_leaves_no_trace_in_the_table_and_announces_it_once(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    level = make_level(stack, org.admin_key, site["siteId"])
    thing = new_meter(
        stack,
        org.admin_key,
        "Site",
        site["siteId"],
        meter_type["thingTypeId"],
        levelId=level["levelId"],
        thingManufacturerId="ACME-GONE",
    )

    def holding_the_thing() -> list[dict[str, Any]]:
        return [item for item in table_items(stack) if thing in json.dumps(item, default=str)]

    assert len(holding_the_thing()) == 2  # the thing (with its index attributes) and its manufacturer guard
    assert queued_messages(stack) == []

    assert delete(stack, org.admin_key, thing_path(thing)).status == 204

    assert holding_the_thing() == []
    assert not [item for item in table_items(stack) if "#MFR#" in item["pk"]]
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 0
    assert thing_count(stack, org.admin_key, level_path(site["siteId"], level["levelId"])) == 0
    assert queued_messages(stack) == [{"type": "ThingDeleted", "orgId": org.org_id, "thingId": thing}]


def test_failed_delete_announces_nothing(stack: LocalStack, org: Org, other_org: Org, meter: dict[str, Any]) -> None:
    reader = key_with(stack, org, scope("read"))

    assert_problem(delete(stack, reader.secret, thing_path(meter["thingId"])), 403, "forbidden_scope")
    assert_problem(delete(stack, other_org.admin_key, thing_path(meter["thingId"])), 404, "not_found")

    assert queued_messages(stack) == []
    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter


# -- scopes -----------------------------------------------------------------------------------


def test_site_thing_scope_creates_and_changes_things_in_that_site_only(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    other_site = make_site(stack, org.admin_key)
    key = key_with(stack, org, scope("write", f"PLACE/Site/{site['siteId']}/THING/#/#"))
    type_id = meter_type["thingTypeId"]

    created = post_meter(stack, key.secret, site["siteId"], type_id)
    assert created.status == 201, created.body
    assert patch(stack, key.secret, thing_path(created.json()["thingId"]), {"thingName": "renamed"}).status == 200

    assert_problem(post_meter(stack, key.secret, other_site["siteId"], type_id), 403, "forbidden_scope")
    assert thing_ids(stack, org.admin_key, placeId=other_site["siteId"]) == []
    assert thing_count(stack, org.admin_key, site_path(other_site["siteId"])) == 0


def test_site_thing_scope_cannot_change_things_of_another_site(
    stack: LocalStack, org: Org, site: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    other_site = make_site(stack, org.admin_key)
    outside = new_meter(stack, org.admin_key, "Site", other_site["siteId"], meter_type["thingTypeId"])
    key = key_with(stack, org, scope("write", f"PLACE/Site/{site['siteId']}/THING/#/#"))

    for method, body in (("GET", None), ("PATCH", {"thingName": "mine"}), ("DELETE", None)):
        response = stack.request(method, thing_path(outside), key=key.secret, json_body=body)
        assert_problem(response, 403, "forbidden_scope")
    assert get_thing(stack, org.admin_key, outside)["thingName"] == "meter 1"


def test_site_thing_scope_cannot_transfer_a_thing_to_another_site(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any]
) -> None:
    other_site = make_site(stack, org.admin_key)
    key = key_with(stack, org, scope("write", f"PLACE/Site/{site['siteId']}/THING/#/#"))

    response = patch(stack, key.secret, thing_path(meter["thingId"]), {"placeId": other_site["siteId"]})

    assert_problem(response, 403, "forbidden_scope")
    assert get_thing(stack, org.admin_key, meter["thingId"]) == meter
    assert thing_count(stack, org.admin_key, site_path(site["siteId"])) == 1
    assert thing_count(stack, org.admin_key, site_path(other_site["siteId"])) == 0


def test_type_scope_reaches_things_of_that_type_anywhere(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter_type: dict[str, Any]
) -> None:
    battery = make_type(stack, org.admin_key, "Battery")["thingTypeId"]
    key = key_with(stack, org, scope("write", "THING/Battery/#"))

    in_site = make_thing(stack, key.secret, "Site", site["siteId"], battery)
    in_fleet = make_thing(stack, key.secret, "Fleet", fleet["fleetId"], battery)
    assert patch(stack, key.secret, thing_path(in_fleet["thingId"]), {"placeId": site["siteId"]}).status == 200
    assert delete(stack, key.secret, thing_path(in_site["thingId"])).status == 204

    assert_problem(post_meter(stack, key.secret, site["siteId"], meter_type["thingTypeId"]), 403, "forbidden_scope")
    meter = new_meter(stack, org.admin_key, "Fleet", fleet["fleetId"], meter_type["thingTypeId"])
    assert_problem(patch(stack, key.secret, thing_path(meter), {"thingName": "x"}), 403, "forbidden_scope")
    assert thing_ids(stack, org.admin_key) == sorted([in_fleet["thingId"], meter])


def test_type_scope_lists_only_things_of_that_type(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter: dict[str, Any]
) -> None:
    battery = make_type(stack, org.admin_key, "Battery")["thingTypeId"]
    in_site = make_thing(stack, org.admin_key, "Site", site["siteId"], battery)["thingId"]
    in_fleet = make_thing(stack, org.admin_key, "Fleet", fleet["fleetId"], battery)["thingId"]
    key = key_with(stack, org, scope("read", "THING/Battery/#"))

    assert thing_ids(stack, key.secret) == sorted([in_site, in_fleet])
    assert thing_ids(stack, key.secret, placeId=site["siteId"]) == [in_site]
    assert thing_ids(stack, key.secret, place_things_path("Site", site["siteId"])) == [in_site]
    assert thing_ids(stack, key.secret, place_things_path("Fleet", fleet["fleetId"])) == [in_fleet]
    assert_problem(stack.request("GET", thing_path(meter["thingId"]), key=key.secret), 403, "forbidden_scope")


def test_site_scope_lists_only_that_sites_things(
    stack: LocalStack, org: Org, site: dict[str, Any], fleet: dict[str, Any], meter: dict[str, Any]
) -> None:
    other_site = make_site(stack, org.admin_key)
    outside = [
        new_meter(stack, org.admin_key, kind, place_id, meter["thingTypeId"])
        for kind, place_id in (("Site", other_site["siteId"]), ("Fleet", fleet["fleetId"]))
    ]
    key = key_with(stack, org, scope("read", f"PLACE/Site/{site['siteId']}"))

    assert thing_ids(stack, key.secret) == [meter["thingId"]]
    assert thing_ids(stack, key.secret, limit=1) == [meter["thingId"]]
    assert thing_ids(stack, key.secret, thingTypeId=meter["thingTypeId"]) == [meter["thingId"]]
    assert thing_ids(stack, key.secret, placeId=other_site["siteId"]) == []
    assert thing_ids(stack, key.secret, place_things_path("Site", site["siteId"])) == [meter["thingId"]]
    assert_problem(stack.request("GET", place_things_path("Site", other_site["siteId"]), key=key.secret), 403)
    assert_problem(stack.request("GET", thing_path(outside[0]), key=key.secret), 403, "forbidden_scope")


def test_read_scope_cannot_create_or_change_things(
    stack: LocalStack, org: Org, site: dict[str, Any], meter: dict[str, Any]
) -> None:
    reader = key_with(stack, org, scope("read"))

    assert_problem(post_meter(stack, reader.secret, site["siteId"], meter["thingTypeId"]), 403, "forbidden_scope")
    assert_problem(
        patch(stack, reader.secret, thing_path(meter["thingId"]), {"thingName": "x"}), 403, "forbidden_scope"
    )
    assert get_thing(stack, reader.secret, meter["thingId"]) == meter
