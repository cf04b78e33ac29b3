"""Scopes: the resource-filter grammar, what a scope covers, action grants and escalation."""

from __future__ import annotations

import pytest

from spectra.auth.scopes import (
    Action,
    InvalidResourceFilter,
    ResourceFilter,
    ResourcePath,
    Scope,
    grants,
    parse_path,
    scopes_allow,
    scopes_contain,
    scopes_may_allow,
)

SITE = "0b7e1c1a-5d2f-4c7e-9a51-3f7d2b8c9e01"
OTHER_SITE = "6a1f0d2e-8b3c-4d5e-9f60-7a8b9c0d1e2f"
FLEET = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
THING = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
OTHER_THING = "2b3c4d5e-6f70-4182-9394-a5b6c7d8e9f0"
INTEGRATION = "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b"
TEMPLATE = "4d5e6f70-8192-43a4-b5c6-d7e8f90a1b2c"
HEX = "0123456789abcdef0123456789abcdef"
METRIC = f"mdef_{HEX}"
THING_TYPE = f"tdefi_{HEX}"
THING_TYPE_VERSION = f"tdef_{HEX}"

VALID_FILTERS: list[tuple[str, tuple[str, ...]]] = [
    ("", ()),
    ("*", ()),
    ("   ", ()),
    (" * ", ()),
    ("ORGANIZATION", ("ORGANIZATION",)),
    ("PLACE", ("PLACE",)),
    ("PLACE/Site", ("PLACE", "Site")),
    ("PLACE/Fleet", ("PLACE", "Fleet")),
    ("PLACE/#", ("PLACE", "#")),
    (f"PLACE/Site/{SITE}", ("PLACE", "Site", SITE)),
    (f"PLACE/Fleet/{FLEET}", ("PLACE", "Fleet", FLEET)),
    ("PLACE/Site/#", ("PLACE", "Site", "#")),
    ("PLACE/#/#", ("PLACE", "#", "#")),
    (f"PLACE/Site/{SITE}/THING", ("PLACE", "Site", SITE, "THING")),
    (f"PLACE/Site/{SITE}/THING/#", ("PLACE", "Site", SITE, "THING", "#")),
    (f"PLACE/Site/{SITE}/THING/#/#", ("PLACE", "Site", SITE, "THING", "#", "#")),
    (f"PLACE/Site/{SITE}/THING/Battery/#", ("PLACE", "Site", SITE, "THING", "Battery", "#")),
    (f"PLACE/Site/{SITE}/THING/Battery/{THING}", ("PLACE", "Site", SITE, "THING", "Battery", THING)),
    (f"PLACE/#/#/THING/Battery/{THING}", ("PLACE", "#", "#", "THING", "Battery", THING)),
    ("THING", ("THING",)),
    ("THING/#", ("THING", "#")),
    ("THING/Battery", ("THING", "Battery")),
    ("THING/Battery/#", ("THING", "Battery", "#")),
    ("THING/#/#", ("THING", "#", "#")),
    (f"THING/Battery/{THING}", ("THING", "Battery", THING)),
    (f"THING/#/{THING}", ("THING", "#", THING)),
    ("THING/Heat Pump v2.1/#", ("THING", "Heat Pump v2.1", "#")),
    ("DEFINITION", ("DEFINITION",)),
    ("DEFINITION/#", ("DEFINITION", "#")),
    ("DEFINITION/Metric/#", ("DEFINITION", "Metric", "#")),
    (f"DEFINITION/Metric/{METRIC}", ("DEFINITION", "Metric", METRIC)),
    (f"DEFINITION/ThingType/{THING_TYPE}", ("DEFINITION", "ThingType", THING_TYPE)),
    (f"DEFINITION/ThingTypeVersion/{THING_TYPE_VERSION}", ("DEFINITION", "ThingTypeVersion", THING_TYPE_VERSION)),
    (f"DEFINITION/Template/{TEMPLATE}", ("DEFINITION", "Template", TEMPLATE)),
    (f"DEFINITION/#/{METRIC}", ("DEFINITION", "#", METRIC)),
    (f"DEFINITION/#/{TEMPLATE}", ("DEFINITION", "#", TEMPLATE)),
    ("INTEGRATION", ("INTEGRATION",)),
    ("INTEGRATION/INGRESS", ("INTEGRATION", "INGRESS")),
    ("INTEGRATION/EGRESS/webhook", ("INTEGRATION", "EGRESS", "webhook")),
    ("INTEGRATION/#/#/#", ("INTEGRATION", "#", "#", "#")),
    (f"INTEGRATION/INGRESS/mqtt-bridge/{INTEGRATION}", ("INTEGRATION", "INGRESS", "mqtt-bridge", INTEGRATION)),
    (f"INTEGRATION/EGRESS/#/{INTEGRATION}", ("INTEGRATION", "EGRESS", "#", INTEGRATION)),
    ("  THING/Battery/#  ", ("THING", "Battery", "#")),
]

INVALID_FILTERS: list[str] = [
    "ORGANIZATION/#",
    f"ORGANIZATION/{SITE}",
    "SITE",
    "place/Site",
    "Thing/Battery/#",
    "EVERYTHING",
    "#",
    "#/Battery/#",
    "**",
    "/THING/Battery",
    "THING/Battery/",
    "THING//#",
    "PLACE/Site//THING",
    "PLACE/Building",
    "PLACE/site",
    "PLACE/Site/not-a-guid",
    f"PLACE/Site/{SITE.upper()}",
    f"PLACE/Site/{SITE[:-1]}",
    f"PLACE/Site/{SITE}x",
    f"PLACE/Site/{SITE}/#",
    f"PLACE/Site/{SITE}/#/Battery/#",
    f"PLACE/Site/{SITE}/DEVICE/Battery/#",
    f"PLACE/Site/{SITE}/THING/Battery/not-a-guid",
    f"PLACE/Site/{SITE}/THING/Battery/{THING}/extra",
    f"PLACE/Site/{SITE}/THING/*/#",
    f"THING/Battery/{THING}/extra",
    "THING/Battery/123",
    "THING/-Battery/#",
    "THING/Bat#tery/#",
    "THING/*/#",
    f"THING/{'B' * 101}/#",
    "DEFINITION/Metrics/#",
    f"DEFINITION/Metric/{THING_TYPE}",
    f"DEFINITION/Metric/{TEMPLATE}",
    f"DEFINITION/Metric/mdef_{HEX[:-1]}",
    f"DEFINITION/Metric/mdef_{HEX.upper()}",
    f"DEFINITION/ThingType/{THING_TYPE_VERSION}",
    f"DEFINITION/ThingTypeVersion/{THING_TYPE}",
    f"DEFINITION/ThingTypeVersion/{METRIC}",
    f"DEFINITION/Template/{SITE.upper()}",
    "DEFINITION/#/not-an-id",
    f"DEFINITION/Metric/{METRIC}/extra",
    "INTEGRATION/SIDEWAYS/webhook",
    "INTEGRATION/ingress/webhook",
    "INTEGRATION/INGRESS/web hook",
    "INTEGRATION/INGRESS/webhook/not-a-guid",
    f"INTEGRATION/INGRESS/webhook/{INTEGRATION}/extra",
    f"THING/Battery/{'#/' * 300}#",
]


@pytest.mark.parametrize(("text", "segments"), VALID_FILTERS, ids=repr)
def test_valid_filter_parses_to_its_segments(text: str, segments: tuple[str, ...]) -> None:
    assert ResourceFilter.parse(text).segments == segments


@pytest.mark.parametrize("text", INVALID_FILTERS, ids=repr)
def test_invalid_filter_is_refused(text: str) -> None:
    with pytest.raises(InvalidResourceFilter):
        ResourceFilter.parse(text)


@pytest.mark.parametrize("definition_id", [METRIC, THING_TYPE, THING_TYPE_VERSION])
def test_template_filter_refuses_prefixed_definition_id(definition_id: str) -> None:
    with pytest.raises(InvalidResourceFilter):
        ResourceFilter.parse(f"DEFINITION/Template/{definition_id}")


def test_non_string_filter_is_refused() -> None:
    with pytest.raises(InvalidResourceFilter):
        ResourceFilter.parse(None)  # type: ignore[arg-type]


def test_filter_longer_than_512_characters_is_refused() -> None:
    with pytest.raises(InvalidResourceFilter, match="512"):
        ResourceFilter.parse("THING/" + "B" * 507)


def test_hash_in_thing_position_of_place_filter_names_the_rule() -> None:
    with pytest.raises(InvalidResourceFilter, match="must be THING"):
        ResourceFilter.parse(f"PLACE/Site/{SITE}/#/#/#")


@pytest.mark.parametrize("text", [f"THING/Battery/{THING}", f"PLACE/Site/{SITE}/THING/#/#", "ORGANIZATION", ""])
def test_filter_prints_back_as_parsed(text: str) -> None:
    assert str(ResourceFilter.parse(text)) == text


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="delete"):
        Scope.parse("delete", "THING/Battery/#")


def test_scope_serialises_as_action_and_resource_filter() -> None:
    assert Scope.parse("write", "THING/Battery/#").as_dict() == {"action": "write", "resourceFilter": "THING/Battery/#"}


# --- coverage: which concrete resources a scope allows -----------------------------------------

BATTERY_IN_SITE: list[ResourcePath] = [
    parse_path(f"PLACE/Site/{SITE}/THING/Battery/{THING}"),
    parse_path(f"THING/Battery/{THING}"),
]
METER_IN_SITE: list[ResourcePath] = [
    parse_path(f"PLACE/Site/{SITE}/THING/Meter/{OTHER_THING}"),
    parse_path(f"THING/Meter/{OTHER_THING}"),
]
BATTERY_IN_OTHER_SITE: list[ResourcePath] = [
    parse_path(f"PLACE/Site/{OTHER_SITE}/THING/Battery/{OTHER_THING}"),
    parse_path(f"THING/Battery/{OTHER_THING}"),
]
UNPLACED_BATTERY: list[ResourcePath] = [parse_path(f"THING/Battery/{OTHER_THING}")]
THE_SITE: list[ResourcePath] = [parse_path(f"PLACE/Site/{SITE}")]
OTHER_SITE_ITSELF: list[ResourcePath] = [parse_path(f"PLACE/Site/{OTHER_SITE}")]
THE_ORGANIZATION: list[ResourcePath] = [parse_path("ORGANIZATION")]
A_METRIC: list[ResourcePath] = [parse_path(f"DEFINITION/Metric/{METRIC}")]
AN_INGRESS: list[ResourcePath] = [parse_path(f"INTEGRATION/INGRESS/webhook/{INTEGRATION}")]

COVERAGE: list[tuple[str, list[ResourcePath], bool]] = [
    ("", BATTERY_IN_SITE, True),
    ("*", THE_ORGANIZATION, True),
    ("", A_METRIC, True),
    ("ORGANIZATION", THE_ORGANIZATION, True),
    ("ORGANIZATION", BATTERY_IN_SITE, False),
    ("THING/Battery/#", BATTERY_IN_SITE, True),
    ("THING/Battery/#", BATTERY_IN_OTHER_SITE, True),
    ("THING/Battery/#", UNPLACED_BATTERY, True),
    ("THING/Battery/#", METER_IN_SITE, False),
    ("THING/Battery/#", THE_SITE, False),
    ("THING/Battery", BATTERY_IN_SITE, True),
    ("THING", METER_IN_SITE, True),
    (f"THING/Battery/{THING}", BATTERY_IN_SITE, True),
    (f"THING/Battery/{THING}", BATTERY_IN_OTHER_SITE, False),
    (f"THING/#/{THING}", BATTERY_IN_SITE, True),
    (f"PLACE/Site/{SITE}/THING/#/#", BATTERY_IN_SITE, True),
    (f"PLACE/Site/{SITE}/THING/#/#", METER_IN_SITE, True),
    (f"PLACE/Site/{SITE}/THING/#/#", BATTERY_IN_OTHER_SITE, False),
    (f"PLACE/Site/{SITE}/THING/#/#", UNPLACED_BATTERY, False),
    (f"PLACE/Site/{SITE}/THING/#/#", THE_SITE, False),
    (f"PLACE/Site/{SITE}/THING/Battery/#", METER_IN_SITE, False),
    (f"PLACE/Site/{SITE}", THE_SITE, True),
    (f"PLACE/Site/{SITE}", BATTERY_IN_SITE, True),
    (f"PLACE/Site/{SITE}", OTHER_SITE_ITSELF, False),
    ("PLACE/Site/#", OTHER_SITE_ITSELF, True),
    ("PLACE/Fleet/#", THE_SITE, False),
    ("PLACE/#/#", THE_SITE, True),
    ("DEFINITION/Metric/#", A_METRIC, True),
    ("DEFINITION/ThingType/#", A_METRIC, False),
    ("INTEGRATION/INGRESS", AN_INGRESS, True),
    ("INTEGRATION/EGRESS", AN_INGRESS, False),
    ("INTEGRATION/#/webhook/#", AN_INGRESS, True),
    ("INTEGRATION/#/mqtt/#", AN_INGRESS, False),
    ("THING/Battery/#", [], False),
]


@pytest.mark.parametrize(("resource_filter", "paths", "allowed"), COVERAGE)
def test_scope_allows_exactly_the_resources_its_filter_covers(
    resource_filter: str, paths: list[ResourcePath], allowed: bool
) -> None:
    assert Scope.parse("read", resource_filter).allows(Action.READ, paths) is allowed


def test_thing_reached_through_its_thing_path_when_site_path_does_not_match() -> None:
    # The site path does not start with THING; only the second path makes the match.
    scope = Scope.parse("read", "THING/Battery/#")
    assert not scope.allows(Action.READ, BATTERY_IN_SITE[:1])
    assert scope.allows(Action.READ, BATTERY_IN_SITE)


def test_unknown_segment_is_not_certainly_covered_by_a_fixed_segment() -> None:
    scope = Scope.parse("write", f"THING/Battery/{THING}")
    assert not scope.allows(Action.WRITE, [parse_path("THING/Battery/*")])


def test_unknown_segment_is_covered_by_a_hash() -> None:
    scope = Scope.parse("write", "THING/Battery/#")
    assert scope.allows(Action.WRITE, [parse_path("THING/Battery/*")])


MAY_COVER: list[tuple[str, str, bool]] = [
    ("THING/Battery/#", "THING/Battery/*", True),
    (f"THING/Battery/{THING}", "THING/Battery/*", True),
    ("THING/Battery/#", "THING/Meter/*", False),
    ("THING/Battery/#", "THING/*/*", True),
    (f"PLACE/Site/{SITE}/THING/#/#", "PLACE/Site/*/THING/Battery/*", True),
    (f"PLACE/Site/{SITE}/THING/#/#", f"PLACE/Site/{OTHER_SITE}/THING/*/*", False),
    (f"PLACE/Site/{SITE}/THING/#/#", "PLACE/Site/*", False),
    ("DEFINITION/Metric/#", "DEFINITION/*/*", True),
    ("ORGANIZATION", "THING/*/*", False),
]


@pytest.mark.parametrize(("resource_filter", "pattern", "may_allow"), MAY_COVER)
def test_may_allow_treats_star_as_any_value(resource_filter: str, pattern: str, may_allow: bool) -> None:
    scope = Scope.parse("read", resource_filter)
    assert scope.may_allow(Action.READ, [parse_path(pattern)]) is may_allow


def test_parse_path_marks_star_as_unknown() -> None:
    assert parse_path("THING/Battery/*") == ("THING", "Battery", None)


def test_scopes_allow_when_any_scope_allows() -> None:
    held = [Scope.parse("read", "ORGANIZATION"), Scope.parse("read", "THING/Battery/#")]
    assert scopes_allow(held, Action.READ, BATTERY_IN_SITE)


def test_scopes_allow_needs_action_and_resource_in_the_same_scope() -> None:
    held = [Scope.parse("write", "ORGANIZATION"), Scope.parse("read", "THING/Battery/#")]
    assert not scopes_allow(held, Action.WRITE, BATTERY_IN_SITE)


def test_no_scopes_allow_nothing() -> None:
    assert not scopes_allow([], Action.READ, BATTERY_IN_SITE)


def test_scopes_allow_accepts_paths_as_a_one_shot_iterator() -> None:
    held = [Scope.parse("read", "ORGANIZATION"), Scope.parse("read", "THING/Battery/#")]
    assert scopes_allow(held, Action.READ, iter(BATTERY_IN_SITE))


def test_scopes_may_allow_with_unknown_id() -> None:
    held = [Scope.parse("write", "THING/Battery/#")]
    assert scopes_may_allow(held, Action.WRITE, [parse_path("THING/Battery/*")])
    assert not scopes_may_allow(held, Action.WRITE, [parse_path("THING/Meter/*")])


# --- actions ---------------------------------------------------------------------------------

GRANTS: list[tuple[Action, Action, bool]] = [
    (Action.READ, Action.READ, True),
    (Action.READ, Action.WRITE, False),
    (Action.READ, Action.ADMIN, False),
    (Action.READ, Action.ALL, False),
    (Action.WRITE, Action.READ, True),
    (Action.WRITE, Action.WRITE, True),
    (Action.WRITE, Action.ADMIN, False),
    (Action.WRITE, Action.ALL, False),
    (Action.ADMIN, Action.READ, False),
    (Action.ADMIN, Action.WRITE, False),
    (Action.ADMIN, Action.ADMIN, True),
    (Action.ADMIN, Action.ALL, False),
    (Action.ALL, Action.READ, True),
    (Action.ALL, Action.WRITE, True),
    (Action.ALL, Action.ADMIN, True),
    (Action.ALL, Action.ALL, True),
]


@pytest.mark.parametrize(("held", "wanted", "granted"), GRANTS)
def test_action_grants(held: Action, wanted: Action, granted: bool) -> None:
    assert grants(held, wanted) is granted


@pytest.mark.parametrize(("held", "wanted", "granted"), GRANTS)
def test_scope_allows_only_granted_actions(held: Action, wanted: Action, granted: bool) -> None:
    scope = Scope(held, ResourceFilter.parse("THING/Battery/#"))
    assert scope.allows(wanted, BATTERY_IN_SITE) is granted


# --- containment: a key may only hand out what it holds --------------------------------------

CONTAINS: list[tuple[str, str, str, str, bool]] = [
    # held action, held filter, requested action, requested filter, contained
    ("read", "", "read", "THING/Battery/#", True),
    ("read", "THING/Battery/#", "read", "", False),
    ("read", "THING/Battery/#", "read", "THING/Battery/#", True),
    ("read", "THING/Battery/#", "read", f"THING/Battery/{THING}", True),
    ("read", f"THING/Battery/{THING}", "read", "THING/Battery/#", False),
    ("read", "THING/Battery/#", "read", "THING/Meter/#", False),
    ("read", "THING/Battery/#", "read", "THING/#/#", False),
    ("read", "THING/Battery/#", "read", "THING/Battery", False),
    ("read", "THING/#/#", "read", "THING/Battery/#", True),
    ("read", "THING", "read", "THING/Battery/#", True),
    ("read", f"PLACE/Site/{SITE}", "read", f"PLACE/Site/{SITE}/THING/Battery/#", True),
    ("read", f"PLACE/Site/{SITE}/THING/#/#", "read", f"PLACE/Site/{SITE}", False),
    ("read", f"PLACE/Site/{SITE}/THING/#/#", "read", f"PLACE/Site/{OTHER_SITE}/THING/#/#", False),
    ("read", f"PLACE/Site/{SITE}/THING/#/#", "read", "PLACE/Site/#/THING/#/#", False),
    ("read", "PLACE/#/#", "read", f"PLACE/Fleet/{FLEET}", True),
    ("read", "ORGANIZATION", "read", "THING/Battery/#", False),
    ("write", "THING/Battery/#", "read", "THING/Battery/#", True),
    ("read", "THING/Battery/#", "write", "THING/Battery/#", False),
    ("admin", "", "read", "THING/Battery/#", False),
    ("write", "", "admin", "ORGANIZATION", False),
    ("*", "", "admin", "", True),
    ("*", "THING/Battery/#", "*", "THING/Battery/#", True),
    ("write", "", "*", "THING/Battery/#", False),
]


@pytest.mark.parametrize(("held_action", "held_filter", "wanted_action", "wanted_filter", "contained"), CONTAINS)
def test_scope_contains_only_narrower_or_equal_grants(
    held_action: str, held_filter: str, wanted_action: str, wanted_filter: str, contained: bool
) -> None:
    held = Scope.parse(held_action, held_filter)
    wanted = Scope.parse(wanted_action, wanted_filter)
    assert held.contains(wanted) is contained


def test_scopes_contain_lists_only_the_escalating_requests() -> None:
    held = [Scope.parse("read", "THING/Battery/#"), Scope.parse("admin", "ORGANIZATION")]
    narrower = Scope.parse("read", f"THING/Battery/{THING}")
    wider = Scope.parse("read", "THING/#/#")
    widened_action = Scope.parse("write", "THING/Battery/#")
    assert scopes_contain(held, [narrower, wider, widened_action]) == [wider, widened_action]


def test_scopes_contain_nothing_requested_is_no_escalation() -> None:
    assert scopes_contain([Scope.parse("read", "ORGANIZATION")], []) == []


def test_no_held_scopes_contain_nothing() -> None:
    wanted = Scope.parse("read", "ORGANIZATION")
    assert scopes_contain([], [wanted]) == [wanted]


@pytest.mark.parametrize(
    ("held", "requested", "contained"),
    [
        ("THING/Battery/#", "PLACE/Site/{site}/THING/Battery/#", True),
        ("THING/#/#", "PLACE/Fleet/{site}/THING/Meter/{thing}", True),
        ("THING/Battery/#", "PLACE/Site/{site}/THING/Meter/#", False),
        ("THING/Battery/#", "PLACE/Site/{site}/THING/#/#", False),
        ("THING/Battery/#", "PLACE/Site/{site}", False),
    ],
)
def test_thing_filter_contains_the_same_things_inside_a_place(held: str, requested: str, contained: bool) -> None:
    ids = {"site": "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84", "thing": "0b7e2d4c-5a1f-4e3b-8c9d-2f6a1b3c4d5e"}
    held_filter = ResourceFilter.parse(held.format(**ids))
    assert held_filter.contains(ResourceFilter.parse(requested.format(**ids))) is contained
