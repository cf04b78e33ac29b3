"""``/v2/sites`` and ``/v2/sites/{siteId}/levels``: every route, as a client calls it through API Gateway."""

from __future__ import annotations

from typing import Any

import pytest

from spectra_local.stack import LocalStack
from tests.integration.definition_factories import error_fields, is_iso, make_metric
from tests.integration.factories import Org, assert_problem, scope
from tests.integration.place_factories import (
    DEFAULT_LEVEL_TYPES,
    RECORD_STAMPS,
    SITES_PATH,
    UNKNOWN_ID,
    conflict_blocked_by,
    delete,
    ids,
    key_with,
    level_body,
    level_path,
    levels_path,
    make_level,
    make_site,
    make_thing,
    make_type,
    names,
    patch,
    read,
    site_body,
    site_path,
    thing_path,
)

# Areas nest in areas without limit: the only level types under which a real cycle can be attempted.
NESTING_LEVEL_TYPES = [
    {"levelType": "Campus", "canBeRoot": True},
    {"levelType": "Area", "canBeRoot": True, "allowedParentTypes": ["Campus", "Area"]},
]

INVALID_SITES: list[tuple[dict[str, Any], str]] = [
    ({"latitude": 91}, "latitude"),
    ({"latitude": -90.5}, "latitude"),
    ({"longitude": 180.01}, "longitude"),
    ({"longitude": -181}, "longitude"),
    ({"latitude": "north"}, "latitude"),
    ({"siteName": ""}, "siteName"),
    ({"siteName": "x" * 201}, "siteName"),
    ({"address": ""}, "address"),
    ({"address": "x" * 501}, "address"),
    ({"attributes": {"nested": {"not": "scalar"}}}, "attributes.nested"),
    ({"attributes": {"": "empty name"}}, "attributes"),
    ({"preferredDisplayMetrics": ["temperature"]}, "preferredDisplayMetrics[0]"),
    ({"levelTypes": [{"levelType": "Wing"}]}, "body"),
    ({"siteId": UNKNOWN_ID}, "siteId"),
    ({"owner": "someone"}, "owner"),
]
INVALID_SITE_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"siteName": None}, "siteName"),
    ({"address": None}, "address"),
    ({"attributes": None}, "attributes"),
    ({"latitude": None, "longitude": None}, "latitude"),
    ({"latitude": 91, "longitude": 0}, "latitude"),
    ({"latitude": 10}, "body"),
    ({"levelName": "x"}, "levelName"),
]
# (levelType, type of its parent or None for the root, allowed) under the default level types
PLACEMENTS: list[tuple[str, str | None, bool]] = [
    ("Building", None, True),
    ("Building", "Building", False),
    ("Floor", "Building", True),
    ("Floor", None, False),
    ("Floor", "Floor", False),
    ("Room", "Floor", True),
    ("Room", "Building", False),
    ("Room", None, False),
    ("Zone", None, True),
    ("Zone", "Building", True),
    ("Zone", "Floor", True),
    ("Zone", "Room", False),
]
INVALID_LEVELS: list[tuple[dict[str, Any], str]] = [
    ({"levelName": ""}, "levelName"),
    ({"levelName": "x" * 201}, "levelName"),
    ({"levelType": "Not a type!"}, "levelType"),
    ({"levelType": "Basement"}, "levelType"),  # not one of the site's level types
    ({"levelType": "Floor", "parentLevelId": UNKNOWN_ID}, "parentLevelId"),
    ({"levelType": "Floor", "parentLevelId": "not-a-guid"}, "parentLevelId"),
    ({"latitude": 12.5}, "body"),
    ({"latitude": 91, "longitude": 0}, "latitude"),
    ({"description": "x" * 2001}, "description"),
    ({"attributes": {"tags": ["a"]}}, "attributes.tags"),
    ({"floorArea": 100}, "floorArea"),
]
INVALID_LEVEL_TYPES: list[list[dict[str, Any]]] = [
    [{"levelType": "Wing", "canBeRoot": True}, {"levelType": "Wing", "canBeRoot": True}],  # named twice
    [{"levelType": "Wing", "canBeRoot": True, "allowedParentTypes": ["Campus"]}],  # unknown parent type
    [{"levelType": "Wing"}, {"levelType": "Bay", "allowedParentTypes": ["Wing"]}],  # nothing at the root
    [{"levelType": "1st", "canBeRoot": True}],  # not a name
    [{"levelType": "Wing", "canBeRoot": True, "colour": "red"}],  # unknown field
]
INVALID_LEVEL_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({"levelName": None}, "levelName"),
    ({"latitude": 1}, "latitude"),
    ({"latitude": 1, "longitude": None}, "latitude"),
    ({"latitude": 1, "longitude": 200}, "longitude"),
    ({"siteId": UNKNOWN_ID}, "siteId"),
]


def post_site(stack: LocalStack, caller: str, body: Any) -> Any:
    return stack.request("POST", SITES_PATH, key=caller, json_body=body)


def post_level(stack: LocalStack, caller: str, site_id: str, body: Any) -> Any:
    return stack.request("POST", levels_path(site_id), key=caller, json_body=body)


def site_ids(stack: LocalStack, caller: str, **query: Any) -> list[str]:
    return ids(stack, caller, SITES_PATH, "siteId", **query)


def tree_shape(nodes: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """A level tree as ``(levelName, children)`` pairs, to compare shapes at a glance."""
    return [(node["levelName"], tree_shape(node["children"])) for node in nodes]


def tree(stack: LocalStack, caller: str, site_id: str) -> list[tuple[str, list[Any]]]:
    page = read(stack, caller, levels_path(site_id))
    assert page["hasMore"] is False
    assert page["continuationToken"] is None
    return tree_shape(page["items"])


def counts(stack: LocalStack, caller: str, path: str, *fields: str) -> tuple[int, ...]:
    record = read(stack, caller, path)
    return tuple(record[field] for field in fields)


@pytest.fixture
def site(stack: LocalStack, org: Org) -> dict[str, Any]:
    return make_site(stack, org.admin_key)


@pytest.fixture
def building(stack: LocalStack, org: Org, site: dict[str, Any]) -> dict[str, Any]:
    return make_level(stack, org.admin_key, site["siteId"], "Building", name="Main building")


@pytest.fixture
def floor(stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any]) -> dict[str, Any]:
    return make_level(stack, org.admin_key, site["siteId"], "Floor", building["levelId"], name="Ground floor")


# -- sites: create ----------------------------------------------------------------------------


def test_create_site_returns_201_with_location_and_the_site(stack: LocalStack, org: Org) -> None:
    body = site_body(attributes={"region": "south-west", "floors": 3, "leased": False})

    response = post_site(stack, org.admin_key, body)

    assert response.status == 201
    site = response.json()
    assert response.headers["Location"] == site_path(site["siteId"])
    assert {k: site[k] for k in body} == body
    assert (site["levelCount"], site["thingCount"], site["preferredDisplayMetrics"]) == (0, 0, [])
    assert site["levelTypes"] == DEFAULT_LEVEL_TYPES


def test_create_site_records_the_key_and_the_time(stack: LocalStack, org: Org) -> None:
    site = make_site(stack, org.admin_key)

    assert (site["createdBy"], site["updatedBy"]) == (org.admin_key_id, org.admin_key_id)
    assert is_iso(site["createdAt"])
    assert site["createdAt"] == site["updatedAt"]


def test_site_accepts_preferred_display_metrics_of_the_org(stack: LocalStack, org: Org) -> None:
    metric_id = make_metric(stack, org.admin_key)["metricId"]

    site = make_site(stack, org.admin_key, preferredDisplayMetrics=[metric_id])

    assert read(stack, org.admin_key, site_path(site["siteId"]))["preferredDisplayMetrics"] == [metric_id]


def test_preferred_display_metric_of_another_org_is_400(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_metric(stack, other_org.admin_key)["metricId"]

    response = post_site(stack, org.admin_key, site_body(preferredDisplayMetrics=[foreign]))

    assert error_fields(response)[0].startswith("preferredDisplayMetrics")
    assert site_ids(stack, org.admin_key) == []


def test_invalid_site_is_400_naming_the_field(stack: LocalStack, org: Org) -> None:
    for change, field in INVALID_SITES:
        fields = error_fields(post_site(stack, org.admin_key, site_body(**change)))
        assert names(fields, field), (change, fields)
    assert site_ids(stack, org.admin_key) == []


def test_site_without_a_required_field_is_400(stack: LocalStack, org: Org) -> None:
    for missing in ("siteName", "address", "latitude", "longitude"):
        body = {k: v for k, v in site_body().items() if k != missing}
        assert error_fields(post_site(stack, org.admin_key, body)) == [missing]


def test_invalid_site_lists_every_problem_and_writes_nothing(stack: LocalStack, org: Org) -> None:
    body = site_body(latitude=91, longitude=-181, siteName="", colour="blue")

    fields = error_fields(post_site(stack, org.admin_key, body))

    assert sorted(fields) == ["colour", "latitude", "longitude", "siteName"]
    assert site_ids(stack, org.admin_key) == []


# -- sites: read, list, update, delete --------------------------------------------------------


def test_get_site_returns_what_create_returned(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    assert read(stack, org.admin_key, site_path(site["siteId"])) == site


def test_list_sites_pages_through_every_site_once(stack: LocalStack, org: Org) -> None:
    created = [make_site(stack, org.admin_key, siteName=f"Site {n}")["siteId"] for n in range(5)]

    for size in ("limit", "pageLimit"):
        first = stack.request("GET", SITES_PATH, key=org.admin_key, query={size: 2}).json()
        assert (len(first["items"]), first["hasMore"]) == (2, True)
        assert site_ids(stack, org.admin_key, **{size: 2}) == sorted(created)


def test_list_sites_shows_only_the_callers_org(stack: LocalStack, org: Org, other_org: Org) -> None:
    mine = make_site(stack, org.admin_key)["siteId"]
    make_site(stack, other_org.admin_key)

    assert site_ids(stack, org.admin_key) == [mine]


def test_list_sites_shows_only_sites_the_key_may_read(stack: LocalStack, org: Org) -> None:
    visible, _hidden = (make_site(stack, org.admin_key)["siteId"] for _ in range(2))
    key = key_with(stack, org, scope("read", f"PLACE/Site/{visible}"))

    assert site_ids(stack, key.secret) == [visible]


def test_patch_site_changes_only_the_fields_sent(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    response = patch(stack, org.admin_key, site_path(site["siteId"]), {"siteName": "Harbour plant 2"})

    assert response.status == 200
    updated = response.json()
    assert updated["siteName"] == "Harbour plant 2"
    unchanged = {k: v for k, v in site.items() if k not in {"siteName", "updatedAt"}}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert read(stack, org.admin_key, site_path(site["siteId"])) == updated


def test_patch_site_records_the_updating_key(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    editor = key_with(stack, org, scope("write", "PLACE/Site/#"), name="editor")

    updated = patch(stack, editor.secret, site_path(site["siteId"]), {"address": "2 Quay St"}).json()

    assert (updated["createdBy"], updated["updatedBy"]) == (org.admin_key_id, editor.key_id)
    assert updated["createdAt"] == site["createdAt"]
    assert updated["updatedAt"] >= site["updatedAt"]


def test_invalid_site_patch_is_400_and_changes_nothing(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    for body, field in INVALID_SITE_PATCHES:
        assert error_fields(patch(stack, org.admin_key, site_path(site["siteId"]), body)) == [field], body
    assert read(stack, org.admin_key, site_path(site["siteId"])) == site


def test_delete_empty_site_is_204_and_it_is_gone(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    response = delete(stack, org.admin_key, site_path(site["siteId"]))

    assert response.status == 204
    assert_problem(stack.request("GET", site_path(site["siteId"]), key=org.admin_key), 404, "not_found")
    assert site_ids(stack, org.admin_key) == []


def test_delete_site_with_levels_is_409_naming_them(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    assert conflict_blocked_by(delete(stack, org.admin_key, site_path(site["siteId"]))) == {"levels": 2}
    assert site_ids(stack, org.admin_key) == [site["siteId"]]


def test_delete_site_with_things_is_409_naming_them(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    make_thing(stack, org.admin_key, "Site", site["siteId"], make_type(stack, org.admin_key)["thingTypeId"])

    assert conflict_blocked_by(delete(stack, org.admin_key, site_path(site["siteId"]))) == {"things": 1}


def test_site_can_be_deleted_once_its_levels_and_things_are_gone(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    thing = make_thing(
        stack,
        org.admin_key,
        "Site",
        site["siteId"],
        make_type(stack, org.admin_key)["thingTypeId"],
        levelId=floor["levelId"],
    )
    assert conflict_blocked_by(delete(stack, org.admin_key, site_path(site["siteId"]))) == {"things": 1, "levels": 2}

    for path in (thing_path(thing["thingId"]), level_path(site["siteId"], floor["levelId"])):
        assert delete(stack, org.admin_key, path).status == 204
    assert conflict_blocked_by(delete(stack, org.admin_key, site_path(site["siteId"]))) == {"levels": 1}
    assert delete(stack, org.admin_key, level_path(site["siteId"], building["levelId"])).status == 204

    assert delete(stack, org.admin_key, site_path(site["siteId"])).status == 204


def test_site_of_another_org_is_404_and_untouched(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_site(stack, other_org.admin_key)

    for method, body in (("GET", None), ("PATCH", {"siteName": "Mine now"}), ("DELETE", None)):
        response = stack.request(method, site_path(foreign["siteId"]), key=org.admin_key, json_body=body)
        assert_problem(response, 404, "not_found")
    assert read(stack, other_org.admin_key, site_path(foreign["siteId"])) == foreign


def test_unknown_or_malformed_site_id_is_404(stack: LocalStack, org: Org) -> None:
    for site_id in (UNKNOWN_ID, "not-a-guid", "tdefi_" + "0" * 32):
        assert_problem(stack.request("GET", site_path(site_id), key=org.admin_key), 404, "not_found")


def test_key_scoped_to_one_site_cannot_touch_another(stack: LocalStack, org: Org) -> None:
    mine, other = (make_site(stack, org.admin_key) for _ in range(2))
    key = key_with(stack, org, scope("write", f"PLACE/Site/{mine['siteId']}"))

    assert patch(stack, key.secret, site_path(mine["siteId"]), {"siteName": "Mine"}).status == 200
    assert_problem(patch(stack, key.secret, site_path(other["siteId"]), {"siteName": "Mine"}), 403, "forbidden_scope")
    assert_problem(post_site(stack, key.secret, site_body()), 403, "forbidden_scope")
    assert read(stack, org.admin_key, site_path(other["siteId"])) == other


# -- levels: create and read ------------------------------------------------------------------


def test_create_level_returns_201_with_location_and_the_level(
    stack: LocalStack, org: Org, site: dict[str, Any]
) -> None:
    body = level_body(
        "Building", "North block", description="Offices", attributes={"storeys": 4}, latitude=0, longitude=-0.5
    )

    response = post_level(stack, org.admin_key, site["siteId"], body)

    assert response.status == 201
    level = response.json()
    assert response.headers["Location"] == level_path(site["siteId"], level["levelId"])
    assert {k: level[k] for k in body} == body
    assert (level["siteId"], level["parentLevelId"], level["childCount"], level["thingCount"]) == (
        site["siteId"],
        None,
        0,
        0,
    )
    assert (level["createdBy"], level["updatedBy"]) == (org.admin_key_id, org.admin_key_id)
    assert all(level[stamp] for stamp in RECORD_STAMPS)


def test_get_level_returns_what_create_returned(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    assert read(stack, org.admin_key, level_path(site["siteId"], floor["levelId"])) == floor


def test_creating_levels_counts_them_on_the_site_and_the_parent(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    assert counts(stack, org.admin_key, site_path(site["siteId"]), "levelCount") == (2,)
    assert counts(stack, org.admin_key, level_path(site["siteId"], building["levelId"]), "childCount") == (1,)


def test_level_tree_nests_children_under_their_parents(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    s = site["siteId"]
    north = make_level(stack, org.admin_key, s, "Building", name="North")
    south = make_level(stack, org.admin_key, s, "Building", name="South")
    ground = make_level(stack, org.admin_key, s, "Floor", north["levelId"], name="Ground")
    make_level(stack, org.admin_key, s, "Floor", north["levelId"], name="First")
    make_level(stack, org.admin_key, s, "Room", ground["levelId"], name="G.01")
    make_level(stack, org.admin_key, s, "Zone", ground["levelId"], name="Loading bay")
    make_level(stack, org.admin_key, s, "Zone", south["levelId"], name="Yard")
    make_level(stack, org.admin_key, s, "Zone", name="Car park")

    assert tree(stack, org.admin_key, s) == [
        ("Car park", []),
        ("North", [("First", []), ("Ground", [("G.01", []), ("Loading bay", [])])]),
        ("South", [("Yard", [])]),
    ]


def test_level_tree_nodes_carry_the_full_level(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    [root] = read(stack, org.admin_key, levels_path(site["siteId"]))["items"]

    assert {k: v for k, v in root.items() if k != "children"} == read(
        stack, org.admin_key, level_path(site["siteId"], building["levelId"])
    )
    assert root["children"][0]["levelId"] == floor["levelId"]


# -- levels: placement rules ------------------------------------------------------------------


def test_default_level_types_decide_where_a_level_may_sit(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    s = site["siteId"]
    room = make_level(stack, org.admin_key, s, "Room", floor["levelId"])
    parents = {"Building": floor["parentLevelId"], "Floor": floor["levelId"], "Room": room["levelId"]}

    for level_type, parent_type, allowed in PLACEMENTS:
        body = level_body(level_type, "New", **({"parentLevelId": parents[parent_type]} if parent_type else {}))
        before = counts(stack, org.admin_key, site_path(s), "levelCount")
        response = post_level(stack, org.admin_key, s, body)
        if allowed:
            assert response.status == 201, (level_type, parent_type, response.body)
        else:
            assert error_fields(response) == ["parentLevelId"], (level_type, parent_type)
            assert counts(stack, org.admin_key, site_path(s), "levelCount") == before


def test_parent_level_of_another_site_is_400_and_nothing_is_written(
    stack: LocalStack, org: Org, site: dict[str, Any]
) -> None:
    elsewhere = make_site(stack, org.admin_key)
    foreign_building = make_level(stack, org.admin_key, elsewhere["siteId"])

    body = level_body("Floor", parentLevelId=foreign_building["levelId"])
    assert error_fields(post_level(stack, org.admin_key, site["siteId"], body)) == ["parentLevelId"]

    assert tree(stack, org.admin_key, site["siteId"]) == []
    assert counts(stack, org.admin_key, level_path(elsewhere["siteId"], foreign_building["levelId"]), "childCount") == (
        0,
    )


def test_invalid_level_is_400_naming_the_field(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    for change, field in INVALID_LEVELS:
        fields = error_fields(post_level(stack, org.admin_key, site["siteId"], level_body(**change)))
        assert names(fields, field), (change, fields)
    assert tree(stack, org.admin_key, site["siteId"]) == []


# -- levels: custom level types ---------------------------------------------------------------


def test_site_level_types_replace_the_defaults(stack: LocalStack, org: Org) -> None:
    rules = [
        {"levelType": "Wing", "canBeRoot": True, "allowedParentTypes": []},
        {"levelType": "Bay", "canBeRoot": False, "allowedParentTypes": ["Wing"]},
    ]
    site = make_site(stack, org.admin_key, levelTypes=rules)
    wing = make_level(stack, org.admin_key, site["siteId"], "Wing")

    assert site["levelTypes"] == rules
    assert make_level(stack, org.admin_key, site["siteId"], "Bay", wing["levelId"])["levelType"] == "Bay"
    assert error_fields(post_level(stack, org.admin_key, site["siteId"], level_body("Building"))) == ["levelType"]
    assert error_fields(post_level(stack, org.admin_key, site["siteId"], level_body("Bay"))) == ["parentLevelId"]


def test_invalid_level_types_are_400(stack: LocalStack, org: Org) -> None:
    for rules in INVALID_LEVEL_TYPES:
        assert error_fields(post_site(stack, org.admin_key, site_body(levelTypes=rules))), rules
    assert site_ids(stack, org.admin_key) == []


def test_patch_level_types_that_fit_existing_levels_is_200(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    rules = [*DEFAULT_LEVEL_TYPES, {"levelType": "Cupboard", "canBeRoot": False, "allowedParentTypes": ["Room"]}]

    updated = patch(stack, org.admin_key, site_path(site["siteId"]), {"levelTypes": rules})

    assert updated.status == 200
    assert updated.json()["levelTypes"] == rules


@pytest.mark.parametrize(
    "rules",
    [
        [{"levelType": "Building", "canBeRoot": True}, {"levelType": "Zone", "canBeRoot": True}],
        [
            {"levelType": "Building", "canBeRoot": True},
            {"levelType": "Floor", "canBeRoot": True, "allowedParentTypes": []},
        ],
    ],
    ids=["type-removed", "parent-no-longer-allowed"],
)
def test_patch_level_types_that_no_longer_fit_existing_levels_is_409(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any], rules: list[dict[str, Any]]
) -> None:
    response = patch(stack, org.admin_key, site_path(site["siteId"]), {"levelTypes": rules})

    assert conflict_blocked_by(response) == {"levels": 1}
    assert "Ground floor" in response.json()["detail"]
    assert read(stack, org.admin_key, site_path(site["siteId"]))["levelTypes"] == DEFAULT_LEVEL_TYPES


# -- levels: update and move ------------------------------------------------------------------


def test_patch_level_changes_only_the_fields_sent(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    path = level_path(site["siteId"], floor["levelId"])
    editor = key_with(stack, org, scope("write", f"PLACE/Site/{site['siteId']}"), name="editor")

    response = patch(stack, editor.secret, path, {"levelName": "Mezzanine", "description": "Half floor"})

    assert response.status == 200
    updated = response.json()
    assert (updated["levelName"], updated["description"], updated["updatedBy"]) == (
        "Mezzanine",
        "Half floor",
        editor.key_id,
    )
    same = {k: v for k, v in floor.items() if k not in {"levelName", "description", "updatedAt", "updatedBy"}}
    assert {k: updated[k] for k in same} == same
    assert read(stack, org.admin_key, path) == updated


def test_level_type_is_fixed(stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]) -> None:
    path = level_path(site["siteId"], floor["levelId"])

    assert error_fields(patch(stack, org.admin_key, path, {"levelType": "Zone"})) == ["levelType"]
    assert patch(stack, org.admin_key, path, {"levelType": "Floor"}).status == 200
    assert read(stack, org.admin_key, path)["levelType"] == "Floor"


def test_moving_a_level_reparents_it_and_moves_the_child_counts(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    s = site["siteId"]
    upper = make_level(stack, org.admin_key, s, "Floor", building["levelId"], name="Upper floor")
    room = make_level(stack, org.admin_key, s, "Room", floor["levelId"], name="Kitchen")

    moved = patch(stack, org.admin_key, level_path(s, room["levelId"]), {"parentLevelId": upper["levelId"]})

    assert moved.status == 200
    assert moved.json()["parentLevelId"] == upper["levelId"]
    assert tree(stack, org.admin_key, s) == [
        ("Main building", [("Ground floor", []), ("Upper floor", [("Kitchen", [])])])
    ]
    assert counts(stack, org.admin_key, level_path(s, floor["levelId"]), "childCount") == (0,)
    assert counts(stack, org.admin_key, level_path(s, upper["levelId"]), "childCount") == (1,)


def test_moving_a_level_takes_its_subtree_along(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    s = site["siteId"]
    north, south = (make_level(stack, org.admin_key, s, "Building", name=n) for n in ("North", "South"))
    ground = make_level(stack, org.admin_key, s, "Floor", north["levelId"], name="Ground")
    make_level(stack, org.admin_key, s, "Room", ground["levelId"], name="G.01")

    assert (
        patch(stack, org.admin_key, level_path(s, ground["levelId"]), {"parentLevelId": south["levelId"]}).status == 200
    )

    assert tree(stack, org.admin_key, s) == [("North", []), ("South", [("Ground", [("G.01", [])])])]


def test_moving_a_level_under_a_parent_type_not_allowed_is_400(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    room = make_level(stack, org.admin_key, site["siteId"], "Room", floor["levelId"])
    path = level_path(site["siteId"], room["levelId"])

    assert error_fields(patch(stack, org.admin_key, path, {"parentLevelId": building["levelId"]})) == ["parentLevelId"]
    assert read(stack, org.admin_key, path)["parentLevelId"] == floor["levelId"]


@pytest.mark.parametrize(("level_type", "allowed"), [("Zone", True), ("Floor", False)])
def test_moving_a_level_to_the_root_only_when_its_type_may_be_root(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], level_type: str, allowed: bool
) -> None:
    level = make_level(stack, org.admin_key, site["siteId"], level_type, building["levelId"])
    path = level_path(site["siteId"], level["levelId"])

    response = patch(stack, org.admin_key, path, {"parentLevelId": None})

    building_path = level_path(site["siteId"], building["levelId"])
    if allowed:
        assert response.status == 200
        assert response.json()["parentLevelId"] is None
        assert counts(stack, org.admin_key, building_path, "childCount") == (0,)
    else:
        assert error_fields(response) == ["parentLevelId"]
        assert read(stack, org.admin_key, path)["parentLevelId"] == building["levelId"]
        assert counts(stack, org.admin_key, building_path, "childCount") == (1,)


def test_moving_a_level_under_itself_or_a_descendant_is_400(stack: LocalStack, org: Org) -> None:
    site = make_site(stack, org.admin_key, levelTypes=NESTING_LEVEL_TYPES)
    s = site["siteId"]
    top = make_level(stack, org.admin_key, s, "Area", name="Top")
    child = make_level(stack, org.admin_key, s, "Area", top["levelId"], name="Child")
    grandchild = make_level(stack, org.admin_key, s, "Area", child["levelId"], name="Grandchild")

    for parent in (top, child, grandchild):
        response = patch(stack, org.admin_key, level_path(s, top["levelId"]), {"parentLevelId": parent["levelId"]})
        assert error_fields(response) == ["parentLevelId"], parent["levelName"]
    assert tree(stack, org.admin_key, s) == [("Top", [("Child", [("Grandchild", [])])])]


def test_moving_a_level_under_a_level_of_another_site_is_400(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    elsewhere = make_site(stack, org.admin_key)
    foreign = make_level(stack, org.admin_key, elsewhere["siteId"])

    response = patch(
        stack, org.admin_key, level_path(site["siteId"], floor["levelId"]), {"parentLevelId": foreign["levelId"]}
    )

    assert error_fields(response) == ["parentLevelId"]
    assert counts(stack, org.admin_key, level_path(elsewhere["siteId"], foreign["levelId"]), "childCount") == (0,)


def test_invalid_level_patch_is_400_and_changes_nothing(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    path = level_path(site["siteId"], floor["levelId"])

    for body, field in INVALID_LEVEL_PATCHES:
        assert error_fields(patch(stack, org.admin_key, path, body)) == [field], body
    assert read(stack, org.admin_key, path) == floor


# -- levels: delete ---------------------------------------------------------------------------


def test_delete_leaf_level_is_204_and_updates_the_counts(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    assert delete(stack, org.admin_key, level_path(site["siteId"], floor["levelId"])).status == 204

    assert_problem(stack.request("GET", level_path(site["siteId"], floor["levelId"]), key=org.admin_key), 404)
    assert tree(stack, org.admin_key, site["siteId"]) == [("Main building", [])]
    assert counts(stack, org.admin_key, site_path(site["siteId"]), "levelCount") == (1,)
    assert counts(stack, org.admin_key, level_path(site["siteId"], building["levelId"]), "childCount") == (0,)


def test_delete_level_with_children_is_409_until_they_are_gone(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any], floor: dict[str, Any]
) -> None:
    path = level_path(site["siteId"], building["levelId"])

    assert conflict_blocked_by(delete(stack, org.admin_key, path)) == {"childLevels": 1}
    assert counts(stack, org.admin_key, site_path(site["siteId"]), "levelCount") == (2,)

    assert delete(stack, org.admin_key, level_path(site["siteId"], floor["levelId"])).status == 204
    assert delete(stack, org.admin_key, path).status == 204
    assert counts(stack, org.admin_key, site_path(site["siteId"]), "levelCount") == (0,)


def test_delete_level_with_things_is_409_until_they_are_gone(
    stack: LocalStack, org: Org, site: dict[str, Any], floor: dict[str, Any]
) -> None:
    thing_type = make_type(stack, org.admin_key)["thingTypeId"]
    thing = make_thing(stack, org.admin_key, "Site", site["siteId"], thing_type, levelId=floor["levelId"])
    path = level_path(site["siteId"], floor["levelId"])

    assert conflict_blocked_by(delete(stack, org.admin_key, path)) == {"things": 1}

    assert patch(stack, org.admin_key, thing_path(thing["thingId"]), {"levelId": None}).status == 200
    assert delete(stack, org.admin_key, path).status == 204


def test_level_of_another_orgs_site_is_404(stack: LocalStack, org: Org, other_org: Org) -> None:
    foreign = make_site(stack, other_org.admin_key)
    level = make_level(stack, other_org.admin_key, foreign["siteId"])
    path = level_path(foreign["siteId"], level["levelId"])

    for method, body in (("GET", None), ("PATCH", {"levelName": "Mine"}), ("DELETE", None)):
        assert_problem(stack.request(method, path, key=org.admin_key, json_body=body), 404, "not_found")
    assert_problem(post_level(stack, org.admin_key, foreign["siteId"], level_body()), 404, "not_found")
    assert read(stack, other_org.admin_key, path) == level


def test_level_under_the_wrong_site_path_is_404(
    stack: LocalStack, org: Org, site: dict[str, Any], building: dict[str, Any]
) -> None:
    elsewhere = make_site(stack, org.admin_key)

    response = stack.request("GET", level_path(elsewhere["siteId"], building["levelId"]), key=org.admin_key)

    assert_problem(response, 404, "not_found")


def test_site_scope_reaches_its_levels_only(stack: LocalStack, org: Org, site: dict[str, Any]) -> None:
    other = make_site(stack, org.admin_key)
    key = key_with(stack, org, scope("write", f"PLACE/Site/{site['siteId']}"))

    assert post_level(stack, key.secret, site["siteId"], level_body()).status == 201
    assert_problem(post_level(stack, key.secret, other["siteId"], level_body()), 403, "forbidden_scope")
    assert_problem(stack.request("GET", levels_path(other["siteId"]), key=key.secret), 403, "forbidden_scope")
    assert tree(stack, org.admin_key, other["siteId"]) == []
