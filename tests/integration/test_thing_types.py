"""``/v2/definitions/thing-types``: types, their versions, soft delete, as a client calls them."""

from __future__ import annotations

import json
from typing import Any

from spectra.tenancy import keys
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import (
    RECORD_STAMPS,
    THING_TYPES_PATH,
    TOKEN_MANGLERS,
    UNKNOWN_METRIC_ID,
    UNKNOWN_THING_TYPE_ID,
    UNKNOWN_VERSION_ID,
    created,
    delete,
    error_fields,
    get,
    is_iso,
    key_with,
    list_all,
    list_page,
    make_metric,
    make_metrics,
    make_thing_type,
    make_version,
    metric_path,
    operator,
    property_definition,
    raw_record,
    restore,
    thing_type_body,
    thing_type_path,
    version_path,
)
from tests.integration.factories import Org, assert_problem, scope

INDEX_FIELDS = {
    "thingTypeId",
    "displayName",
    "latestThingTypeDefId",
    "latestVersionNumber",
    "versions",
    "isDeleted",
    *RECORD_STAMPS,
}
VERSION_FIELDS = {
    "thingTypeDefId",
    "thingTypeId",
    "version",
    "displayName",
    "metricIds",
    "deletedMetricIds",
    "propertyDefinitions",
    *RECORD_STAMPS,
}
SERIAL = property_definition("serial", "String", required=True, constraints={"maxLength": 32})
RATING = property_definition("rating", "Double", unit="kW", required=False, constraints={"min": 0, "max": 500})


def post_type(stack: LocalStack, caller: str, body: Any) -> Any:
    return stack.request("POST", THING_TYPES_PATH, key=caller, json_body=body)


def post_version(stack: LocalStack, caller: str, thing_type_id: str, body: Any) -> Any:
    return stack.request("POST", thing_type_path(thing_type_id, "versions"), key=caller, json_body=body)


def put_version(stack: LocalStack, caller: str, def_id: str, body: Any) -> Any:
    return stack.request("PUT", version_path(def_id), key=caller, json_body=body)


def listed_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return list_all(stack, caller, THING_TYPES_PATH, "thingTypeId", **query)


def version_of(stack: LocalStack, caller: str, def_id: str, **query: Any) -> dict[str, Any]:
    response = get(stack, caller, version_path(def_id), **query)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def index_of(stack: LocalStack, caller: str, thing_type_id: str) -> dict[str, Any]:
    response = get(stack, caller, thing_type_path(thing_type_id))
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


# -- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_the_index_of_version_1(stack: LocalStack, org: Org) -> None:
    metric_ids = make_metrics(stack, org.admin_key, 2)

    response = post_type(stack, org.admin_key, thing_type_body("Meter", metric_ids, [SERIAL], tags=["power"]))

    assert response.status == 201
    index = response.json()
    assert response.headers["Location"] == thing_type_path(index["thingTypeId"])
    assert index.keys() >= INDEX_FIELDS
    assert index["thingTypeId"].startswith("tdefi_")
    assert index["latestThingTypeDefId"].startswith("tdef_")
    assert (index["displayName"], index["latestVersionNumber"], index["tags"]) == ("Meter", 1, ["power"])
    assert index["versions"] == [{"version": 1, "thingTypeDefId": index["latestThingTypeDefId"]}]
    assert (index["isDeleted"], index["createdBy"], index["updatedBy"]) == (False, org.admin_key_id, org.admin_key_id)
    assert [e["event"] for e in index["history"]] == ["created"]
    assert index_of(stack, org.admin_key, index["thingTypeId"]) == index


def test_version_1_holds_what_was_created(stack: LocalStack, org: Org) -> None:
    metric_ids = make_metrics(stack, org.admin_key, 2)
    body = thing_type_body(
        "Meter",
        metric_ids,
        [SERIAL, RATING],
        description="Three-phase",
        tags=["power"],
        modelMetadata={"vendor": "Acme"},
    )
    index = created(post_type(stack, org.admin_key, body))

    version = version_of(stack, org.admin_key, index["latestThingTypeDefId"])

    assert version.keys() >= VERSION_FIELDS
    assert {k: version[k] for k in body} == body
    assert (version["thingTypeId"], version["version"], version["deletedMetricIds"]) == (index["thingTypeId"], 1, [])
    assert version["metricDefinitions"] is None
    assert (version["createdBy"], is_iso(version["createdAt"])) == (org.admin_key_id, True)


# One row per rule: the change to a valid body, and the fields errors[] must name.
INVALID_FIELDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "empty displayName": ({"displayName": ""}, ["displayName"]),
    "long displayName": ({"displayName": "x" * 101}, ["displayName"]),
    "displayName with a slash": ({"displayName": "Meter/2"}, ["displayName"]),
    "displayName starting with a space-like mark": ({"displayName": "-Meter"}, ["displayName"]),
    "null displayName": ({"displayName": None}, ["displayName"]),
    "long description": ({"description": "x" * 2001}, ["description"]),
    "metricIds not a list": ({"metricIds": UNKNOWN_METRIC_ID}, ["metricIds"]),
    "malformed metric id": ({"metricIds": ["temperature"]}, ["metricIds[0]"]),
    "thing type id as metric id": ({"metricIds": [UNKNOWN_THING_TYPE_ID]}, ["metricIds[0]"]),
    "repeated metric id": ({"metricIds": [UNKNOWN_METRIC_ID, UNKNOWN_METRIC_ID]}, ["metricIds"]),
    "too many metric ids": ({"metricIds": [f"mdef_{n:032x}" for n in range(201)]}, ["metricIds"]),
    "bad property name": ({"propertyDefinitions": [property_definition("1st")]}, ["propertyDefinitions[0].name"]),
    "bad property type": (
        {"propertyDefinitions": [property_definition(value_type="Float")]},
        ["propertyDefinitions[0].valueType"],
    ),
    "min above max": (
        {"propertyDefinitions": [property_definition(value_type="Int", constraints={"min": 5, "max": 1})]},
        ["propertyDefinitions[0].constraints"],
    ),
    "unknown property field": (
        {"propertyDefinitions": [property_definition(colour="red")]},
        ["propertyDefinitions[0].colour"],
    ),
    "modelMetadata not an object": ({"modelMetadata": "v2"}, ["modelMetadata"]),
    "tags not a list": ({"tags": "meter"}, ["tags"]),
    "unknown field": ({"version": 7}, ["version"]),
}


def test_each_invalid_field_is_400_naming_it(stack: LocalStack, org: Org) -> None:
    named = {
        case: error_fields(post_type(stack, org.admin_key, {**thing_type_body(), **change}))
        for case, (change, _) in INVALID_FIELDS.items()
    }

    assert named == {case: fields for case, (_, fields) in INVALID_FIELDS.items()}


def test_invalid_body_lists_every_problem(stack: LocalStack, org: Org) -> None:
    body = {"displayName": "", "metricIds": ["bad", UNKNOWN_METRIC_ID], "tags": "x", "colour": "red"}

    assert sorted(error_fields(post_type(stack, org.admin_key, body))) == [
        "colour",
        "displayName",
        "metricIds[0]",
        "tags",
    ]


def test_duplicate_property_names_are_400_case_insensitively(stack: LocalStack, org: Org) -> None:
    body = thing_type_body(property_definitions=[SERIAL, property_definition("Serial", "Int")])

    assert error_fields(post_type(stack, org.admin_key, body)) == ["propertyDefinitions[1].name"]


def test_unknown_metric_ids_are_400_listing_each(stack: LocalStack, org: Org) -> None:
    (known,) = make_metrics(stack, org.admin_key, 1)
    body = thing_type_body(metric_ids=[UNKNOWN_METRIC_ID, known, "mdef_" + "1" * 32])

    assert error_fields(post_type(stack, org.admin_key, body)) == ["metricIds[0]", "metricIds[2]"]


def test_another_orgs_metric_is_400_as_an_unknown_metric(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_metric(stack, other_org.admin_key)["metricId"]

    response = post_type(stack, org.admin_key, thing_type_body(metric_ids=[foreign]))

    assert error_fields(response) == ["metricIds[0]"]
    assert other_org.org_id not in response.body.decode("utf-8")


def test_refused_creates_leave_the_list_unchanged(stack: LocalStack, org: Org, other_org: Org) -> None:
    existing = make_thing_type(stack, org.admin_key)["thingTypeId"]
    deleted_metric = make_metric(stack, org.admin_key)["metricId"]
    delete(stack, org.admin_key, metric_path(deleted_metric))
    refused = [
        thing_type_body(metric_ids=[UNKNOWN_METRIC_ID]),
        thing_type_body(metric_ids=[make_metric(stack, other_org.admin_key)["metricId"]]),
        thing_type_body(metric_ids=[deleted_metric]),
        thing_type_body(property_definitions=[SERIAL, SERIAL]),
        {**thing_type_body(), "colour": "red"},
    ]

    statuses = [post_type(stack, org.admin_key, body).status for body in refused]

    assert statuses == [400] * len(refused)
    assert listed_ids(stack, org.admin_key, status="all") == [existing]


def test_property_and_metric_problems_are_listed_together(stack: LocalStack, org: Org) -> None:
    body = thing_type_body(metric_ids=[UNKNOWN_METRIC_ID], property_definitions=[SERIAL, SERIAL])

    assert sorted(error_fields(post_type(stack, org.admin_key, body))) == [
        "metricIds[0]",
        "propertyDefinitions[1].name",
    ]


# -- versions ---------------------------------------------------------------------------------


def test_new_version_is_a_full_snapshot_of_the_metrics(stack: LocalStack, org: Org) -> None:
    a, b, c = make_metrics(stack, org.admin_key, 3)
    index = make_thing_type(stack, org.admin_key, [a, b])

    response = post_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": [b, c]})

    assert response.status == 201
    version = response.json()
    assert response.headers["Location"] == version_path(version["thingTypeDefId"])
    assert (version["version"], version["metricIds"], version["deletedMetricIds"]) == (2, [b, c], [a])
    assert version_of(stack, org.admin_key, version["thingTypeDefId"]) == version


def test_new_version_moves_the_index_to_it(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)
    v2 = make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": []})
    v3 = make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": []})

    moved = index_of(stack, org.admin_key, index["thingTypeId"])

    assert (moved["latestThingTypeDefId"], moved["latestVersionNumber"]) == (v3["thingTypeDefId"], 3)
    assert moved["versions"] == [
        {"version": 1, "thingTypeDefId": index["latestThingTypeDefId"]},
        {"version": 2, "thingTypeDefId": v2["thingTypeDefId"]},
        {"version": 3, "thingTypeDefId": v3["thingTypeDefId"]},
    ]
    assert [e["event"] for e in moved["history"]] == ["created", "version 2 created", "version 3 created"]


def test_new_version_inherits_omitted_property_definitions_and_empty_clears_them(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key, property_definitions=[SERIAL, RATING])
    cases: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
        "omitted inherits": ({}, [SERIAL, RATING]),
        "given replaces": ({"propertyDefinitions": [RATING]}, [RATING]),
        "empty clears": ({"propertyDefinitions": []}, []),
        "omitted after clearing inherits nothing": ({}, []),
    }

    snapshots = {
        case: make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": [], **given})[
            "propertyDefinitions"
        ]
        for case, (given, _) in cases.items()
    }

    assert snapshots == {case: expected for case, (_, expected) in cases.items()}


def test_new_version_keeps_the_types_name(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key, display_name="Meter")

    inherited = make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": []})
    repeated = make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": [], "displayName": "Meter"})

    assert (inherited["displayName"], repeated["displayName"]) == ("Meter", "Meter")


def test_a_thing_types_name_cannot_change(stack: LocalStack, org: Org) -> None:
    """The name is the type's segment in scopes (THING/{name}/…): renaming would move things."""
    index = make_thing_type(stack, org.admin_key, display_name="Meter")
    version_path_ = thing_type_path(index["thingTypeId"], "versions")

    by_version = stack.request(
        "POST", version_path_, key=org.admin_key, json_body={"metricIds": [], "displayName": "X"}
    )
    by_put = put_version(stack, org.admin_key, index["latestThingTypeDefId"], {"displayName": "X"})

    assert error_fields(by_version) == ["displayName"]
    assert error_fields(by_put) == ["displayName"]
    assert index_of(stack, org.admin_key, index["thingTypeId"])["displayName"] == "Meter"


def test_earlier_versions_are_unchanged_by_a_new_one(stack: LocalStack, org: Org) -> None:
    a, b = make_metrics(stack, org.admin_key, 2)
    index = make_thing_type(stack, org.admin_key, [a], [SERIAL])
    v1 = version_of(stack, org.admin_key, index["latestThingTypeDefId"])

    make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": [b], "propertyDefinitions": []})

    assert version_of(stack, org.admin_key, index["latestThingTypeDefId"]) == v1


def test_new_version_validates_its_body(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)
    bodies: dict[str, tuple[dict[str, Any], list[str]]] = {
        "metricIds missing": ({"displayName": "v2"}, ["metricIds"]),
        "malformed metric id": ({"metricIds": ["x"]}, ["metricIds[0]"]),
        "duplicate properties": (
            {"metricIds": [], "propertyDefinitions": [SERIAL, SERIAL]},
            ["propertyDefinitions[1].name"],
        ),
        "unknown field": ({"metricIds": [], "version": 9}, ["version"]),
    }

    named = {
        case: error_fields(post_version(stack, org.admin_key, index["thingTypeId"], body))
        for case, (body, _) in bodies.items()
    }

    assert named == {case: fields for case, (_, fields) in bodies.items()}


def test_new_version_refuses_unknown_foreign_and_deleted_metrics(stack: LocalStack, org: Org, other_org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)
    foreign = make_metric(stack, other_org.admin_key)["metricId"]
    deleted = make_metric(stack, org.admin_key)["metricId"]
    delete(stack, org.admin_key, metric_path(deleted))

    response = post_version(
        stack, org.admin_key, index["thingTypeId"], {"metricIds": [UNKNOWN_METRIC_ID, foreign, deleted]}
    )

    assert error_fields(response) == ["metricIds[0]", "metricIds[1]", "metricIds[2]"]
    assert index_of(stack, org.admin_key, index["thingTypeId"]) == index


def test_no_version_of_a_deleted_unknown_or_foreign_type(stack: LocalStack, org: Org, other_org: Org) -> None:
    deleted = make_thing_type(stack, org.admin_key)["thingTypeId"]
    delete(stack, org.admin_key, thing_type_path(deleted))
    foreign = make_thing_type(stack, other_org.admin_key)["thingTypeId"]

    for thing_type_id in (deleted, UNKNOWN_THING_TYPE_ID, "tdefi_nope", foreign):
        response = post_version(stack, org.admin_key, thing_type_id, {"metricIds": []})
        assert_problem(response, 404, "not_found")

    assert index_of(stack, other_org.admin_key, foreign)["latestVersionNumber"] == 1


# -- get a version ----------------------------------------------------------------------------


def test_include_metric_definitions_embeds_the_metrics_in_order(stack: LocalStack, org: Org) -> None:
    a, b = make_metric(stack, org.admin_key, "Voltage"), make_metric(stack, org.admin_key, "Current")
    index = make_thing_type(stack, org.admin_key, [b["metricId"], a["metricId"]])

    version = version_of(stack, org.admin_key, index["latestThingTypeDefId"], includeMetricDefinitions="true")
    plain = version_of(stack, org.admin_key, index["latestThingTypeDefId"], includeMetricDefinitions="false")

    assert version["metricDefinitions"] == [b, a]
    assert plain == {**version, "metricDefinitions": None}
    invalid = get(stack, org.admin_key, version_path(index["latestThingTypeDefId"]), includeMetricDefinitions="maybe")
    assert error_fields(invalid) == ["includeMetricDefinitions"]


def test_include_metric_definitions_embeds_a_deleted_metric_flagged(stack: LocalStack, org: Org) -> None:
    kept, gone = make_metrics(stack, org.admin_key, 2)
    index = make_thing_type(stack, org.admin_key, [kept, gone])
    delete(stack, org.admin_key, metric_path(gone))

    version = version_of(stack, org.admin_key, index["latestThingTypeDefId"], includeMetricDefinitions="true")

    embedded = {m["metricId"]: m for m in version["metricDefinitions"]}
    assert list(embedded) == [kept, gone]
    assert (embedded[kept]["isDeleted"], embedded[gone]["isDeleted"]) == (False, True)
    assert embedded[gone]["deletedBy"] == org.admin_key_id
    assert version["metricIds"] == [kept, gone]


def test_unknown_malformed_and_foreign_versions_are_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_thing_type(stack, other_org.admin_key)

    for def_id in (UNKNOWN_VERSION_ID, "tdef_nope", foreign["thingTypeId"], foreign["latestThingTypeDefId"]):
        assert_problem(get(stack, org.admin_key, version_path(def_id)), 404, "not_found")


# -- put a version ----------------------------------------------------------------------------


def test_put_version_changes_its_metadata(stack: LocalStack, org: Org) -> None:
    metric_ids = make_metrics(stack, org.admin_key, 1)
    index = make_thing_type(stack, org.admin_key, metric_ids, [SERIAL], description="old", tags=["a"])
    change = {"description": "new", "tags": ["b"], "modelMetadata": {"rev": 2}}

    response = put_version(stack, org.admin_key, index["latestThingTypeDefId"], change)

    assert response.status == 200
    updated = response.json()
    assert {k: updated[k] for k in change} == change
    assert (updated["metricIds"], updated["propertyDefinitions"], updated["version"]) == (metric_ids, [SERIAL], 1)
    assert version_of(stack, org.admin_key, index["latestThingTypeDefId"]) == updated


def test_put_version_may_repeat_its_metrics_and_properties_unchanged(stack: LocalStack, org: Org) -> None:
    metric_ids = make_metrics(stack, org.admin_key, 2)
    index = make_thing_type(stack, org.admin_key, metric_ids, [SERIAL])

    response = put_version(
        stack,
        org.admin_key,
        index["latestThingTypeDefId"],
        {"displayName": index["displayName"], "metricIds": metric_ids, "propertyDefinitions": [SERIAL]},
    )

    assert response.status == 200


def test_put_version_cannot_change_its_metric_set_or_properties(stack: LocalStack, org: Org) -> None:
    a, b = make_metrics(stack, org.admin_key, 2)
    index = make_thing_type(stack, org.admin_key, [a, b], [SERIAL])
    def_id = index["latestThingTypeDefId"]
    before = version_of(stack, org.admin_key, def_id)
    changes: dict[str, tuple[dict[str, Any], list[str]]] = {
        "metric removed": ({"metricIds": [a]}, ["metricIds"]),
        "metrics reordered": ({"metricIds": [b, a]}, ["metricIds"]),
        "metrics cleared": ({"metricIds": []}, ["metricIds"]),
        "properties changed": ({"propertyDefinitions": [RATING]}, ["propertyDefinitions"]),
        "both": ({"metricIds": [b], "propertyDefinitions": []}, ["metricIds", "propertyDefinitions"]),
        "unknown field": ({"version": 2}, ["version"]),
    }

    named = {case: error_fields(put_version(stack, org.admin_key, def_id, body)) for case, (body, _) in changes.items()}

    assert named == {case: fields for case, (_, fields) in changes.items()}
    assert version_of(stack, org.admin_key, def_id) == before


# -- delete and restore -----------------------------------------------------------------------


def test_delete_is_204_and_the_type_and_its_versions_are_gone(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)

    response = stack.request("DELETE", thing_type_path(index["thingTypeId"]), key=org.admin_key)

    assert response.status == 204
    assert_problem(get(stack, org.admin_key, thing_type_path(index["thingTypeId"])), 404, "not_found")
    assert_problem(get(stack, org.admin_key, version_path(index["latestThingTypeDefId"])), 404, "not_found")
    assert_problem(put_version(stack, org.admin_key, index["latestThingTypeDefId"], {"description": "x"}), 404)
    assert listed_ids(stack, org.admin_key) == []


def test_delete_keeps_the_index_and_its_versions_in_the_table(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)

    delete(stack, org.admin_key, thing_type_path(index["thingTypeId"]))

    stored = raw_record(stack, keys.thing_type_key(operator(org), index["thingTypeId"]))
    assert stored is not None
    assert (stored["isDeleted"], stored["deletedBy"], is_iso(stored["deletedAt"])) == (True, org.admin_key_id, True)
    assert raw_record(stack, keys.thing_type_version_key(operator(org), index["latestThingTypeDefId"])) is not None


def test_list_status_filter_picks_active_deleted_or_all(stack: LocalStack, org: Org) -> None:
    kept, deleted = (make_thing_type(stack, org.admin_key)["thingTypeId"] for _ in range(2))
    delete(stack, org.admin_key, thing_type_path(deleted))

    listed = {
        status: sorted(listed_ids(stack, org.admin_key, status=status)) for status in ("active", "deleted", "all")
    }

    assert listed == {"active": [kept], "deleted": [deleted], "all": sorted([kept, deleted])}


def test_restore_brings_the_type_back_and_history_records_both(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)
    delete(stack, org.admin_key, thing_type_path(index["thingTypeId"]))
    (deleted,) = list_page(stack, org.admin_key, THING_TYPES_PATH, status="deleted")["items"]

    response = restore(stack, org.admin_key, thing_type_path(index["thingTypeId"]))

    assert (deleted["deletedBy"], is_iso(deleted["deletedAt"])) == (org.admin_key_id, True)
    assert response.status == 200
    restored = response.json()
    assert (restored["isDeleted"], restored["deletedAt"], restored["deletedBy"]) == (False, None, None)
    assert [(e["event"], e["by"]) for e in restored["history"]] == [
        ("created", org.admin_key_id),
        ("deleted", org.admin_key_id),
        ("restored", org.admin_key_id),
    ]
    assert version_of(stack, org.admin_key, index["latestThingTypeDefId"])["version"] == 1
    assert make_version(stack, org.admin_key, index["thingTypeId"], {"metricIds": []})["version"] == 2


def test_restore_of_an_active_type_returns_it_unchanged(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)

    response = restore(stack, org.admin_key, thing_type_path(index["thingTypeId"]))

    assert (response.status, response.json()) == (200, index)


def test_delete_or_restore_of_unknown_or_foreign_types_is_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_thing_type(stack, other_org.admin_key)
    ids = (UNKNOWN_THING_TYPE_ID, "tdefi_nope", foreign["thingTypeId"])

    for thing_type_id in ids:
        assert_problem(stack.request("DELETE", thing_type_path(thing_type_id), key=org.admin_key), 404, "not_found")
        assert_problem(restore(stack, org.admin_key, thing_type_path(thing_type_id)), 404, "not_found")
        assert_problem(get(stack, org.admin_key, thing_type_path(thing_type_id)), 404, "not_found")

    assert index_of(stack, other_org.admin_key, foreign["thingTypeId"]) == foreign


# -- list -------------------------------------------------------------------------------------


def test_list_pages_through_every_type_once(stack: LocalStack, org: Org) -> None:
    created = [make_thing_type(stack, org.admin_key)["thingTypeId"] for _ in range(3)]

    first = list_page(stack, org.admin_key, THING_TYPES_PATH, pageLimit=2)

    assert (len(first["items"]), first["hasMore"]) == (2, True)
    assert sorted(listed_ids(stack, org.admin_key, limit=2)) == sorted(created)
    assert listed_ids(stack, org.admin_key, pageLimit=2) == listed_ids(stack, org.admin_key, limit=2)


def test_bad_tokens_and_filters_are_400(stack: LocalStack, org: Org, other_org: Org) -> None:
    for caller in (org.admin_key, other_org.admin_key):
        for _ in range(2):
            make_thing_type(stack, caller)
    token = list_page(stack, org.admin_key, THING_TYPES_PATH, limit=1)["continuationToken"]
    foreign = list_page(stack, other_org.admin_key, THING_TYPES_PATH, limit=1)["continuationToken"]

    for bad in [*(mangle(token) for mangle in TOKEN_MANGLERS.values()), foreign]:
        response = get(stack, org.admin_key, THING_TYPES_PATH, limit=1, continuationToken=bad)
        assert_problem(response, 400, "invalid_continuation_token")
    response = get(stack, org.admin_key, THING_TYPES_PATH, limit=1, status="all", continuationToken=token)
    assert_problem(response, 400, "invalid_continuation_token")
    assert error_fields(get(stack, org.admin_key, THING_TYPES_PATH, status="gone")) == ["status"]


# -- scopes -----------------------------------------------------------------------------------


def test_key_with_write_on_one_type_creates_versions_of_that_type_only(stack: LocalStack, org: Org) -> None:
    mine, theirs = (make_thing_type(stack, org.admin_key)["thingTypeId"] for _ in range(2))
    writer = key_with(stack, org, scope("write", f"DEFINITION/ThingType/{mine}"))

    assert post_version(stack, writer.secret, mine, {"metricIds": []}).status == 201
    assert_problem(post_version(stack, writer.secret, theirs, {"metricIds": []}), 403, "forbidden_scope")
    assert index_of(stack, org.admin_key, theirs)["latestVersionNumber"] == 1


def test_key_with_write_on_one_type_cannot_create_thing_types(stack: LocalStack, org: Org) -> None:
    mine = make_thing_type(stack, org.admin_key)["thingTypeId"]
    writer = key_with(stack, org, scope("write", f"DEFINITION/ThingType/{mine}"))

    response = post_type(stack, writer.secret, thing_type_body("Sneaky"))

    assert_problem(response, 403, "forbidden_scope")
    assert listed_ids(stack, org.admin_key) == [mine]


def test_version_is_reachable_through_its_own_id_or_its_type(stack: LocalStack, org: Org) -> None:
    own, other = make_thing_type(stack, org.admin_key), make_thing_type(stack, org.admin_key)
    grants = {
        ("read", f"DEFINITION/ThingTypeVersion/{own['latestThingTypeDefId']}"): (200, 403),
        ("write", f"DEFINITION/ThingTypeVersion/{own['latestThingTypeDefId']}"): (200, 200),
        ("read", f"DEFINITION/ThingType/{own['thingTypeId']}"): (200, 403),
        ("write", f"DEFINITION/ThingType/{own['thingTypeId']}"): (200, 200),
        ("write", f"DEFINITION/ThingTypeVersion/{other['latestThingTypeDefId']}"): (403, 403),
        ("write", f"DEFINITION/ThingType/{other['thingTypeId']}"): (403, 403),
    }

    reached = {}
    for action, resource_filter in grants:
        caller = key_with(stack, org, scope(action, resource_filter)).secret
        reached[(action, resource_filter)] = (
            get(stack, caller, version_path(own["latestThingTypeDefId"])).status,
            put_version(stack, caller, own["latestThingTypeDefId"], {"description": "scoped"}).status,
        )

    assert reached == grants


def test_key_with_read_on_one_type_lists_only_that_type(stack: LocalStack, org: Org) -> None:
    mine, *_ = (make_thing_type(stack, org.admin_key)["thingTypeId"] for _ in range(3))
    reader = key_with(stack, org, scope("read", f"DEFINITION/ThingType/{mine}"))

    assert listed_ids(stack, reader.secret) == [mine]
    assert index_of(stack, reader.secret, mine)["thingTypeId"] == mine


def test_listing_without_a_thing_type_scope_is_403(stack: LocalStack, org: Org) -> None:
    make_thing_type(stack, org.admin_key)
    callers = [
        key_with(stack, org, scope("read", "THING/#/#")),
        key_with(stack, org, scope("read", "DEFINITION/Metric")),
    ]

    for caller in callers:
        assert_problem(get(stack, caller.secret, THING_TYPES_PATH), 403, "forbidden_scope")


def test_read_key_cannot_write(stack: LocalStack, org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)
    reader = key_with(stack, org, scope("read", "DEFINITION"))
    writes = [
        ("POST", THING_TYPES_PATH, thing_type_body()),
        ("POST", thing_type_path(index["thingTypeId"], "versions"), {"metricIds": []}),
        ("PUT", version_path(index["latestThingTypeDefId"]), {"description": "x"}),
        ("DELETE", thing_type_path(index["thingTypeId"]), None),
        ("POST", thing_type_path(index["thingTypeId"], "restore"), None),
    ]

    for method, path, body in writes:
        assert_problem(stack.request(method, path, key=reader.secret, json_body=body), 403, "forbidden_scope")

    assert listed_ids(stack, org.admin_key, status="all") == [index["thingTypeId"]]
    assert index_of(stack, org.admin_key, index["thingTypeId"]) == index


def test_writes_by_another_org_leave_the_type_unchanged(stack: LocalStack, org: Org, other_org: Org) -> None:
    index = make_thing_type(stack, org.admin_key)
    v1 = version_of(stack, org.admin_key, index["latestThingTypeDefId"])

    response = put_version(stack, other_org.admin_key, index["latestThingTypeDefId"], {"description": "mine"})

    assert_problem(response, 404, "not_found")
    assert version_of(stack, org.admin_key, index["latestThingTypeDefId"]) == v1
    assert json.dumps(response.json()).count(org.org_id) == 0
