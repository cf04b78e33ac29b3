"""Telemetry reads: raw and binned events, recent events, summaries and place timeseries.

Most tests only read, so they share one deployment and one org whose telemetry is written once
(``world``). Tests that change things get their own in the same deployment: a new thing in a
scratch org (ingest order, deletes), or an org whose retention was cut (``shortened``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from moto import mock_aws

from spectra.telemetry import query as telemetry_query
from spectra.telemetry import table as telemetry_table
from spectra.telemetry.table import LATEST_VALUES_TIMESTAMP
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from spectra_local.template import Template
from tests.integration.definition_factories import TOKEN_MANGLERS, make_metric, make_thing_type
from tests.integration.factories import Org, assert_problem, create_key, make_org, scope
from tests.integration.place_factories import make_fleet, make_site, make_thing, ok
from tests.integration.telemetry_support import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Device,
    call,
    frames,
    make_device,
    now_ms,
    stored,
    stored_items,
)

MALFORMED_ID = "not-a-thing-id"
UNKNOWN_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"

# API.md "Shapes that clients rely on".
THING_READ_FIELDS = {"thingId", "metrics", "items", "continuationToken", "hasMore"}
PLACE_READ_FIELDS = {"placeId", "thingCount", "metrics", "items", "continuationToken", "hasMore"}
SERIES_METRIC_FIELDS = {"metricId", "name", "dataType", "aggregation"}
ITEM_FIELDS = {"timestamp", "metrics"}
SUMMARY_FIELDS = {"thingId", "metrics"}
SUMMARY_METRIC_FIELDS = {"metricId", "name", "value", "timestamp"}

# The Battery type: one metric per roll-up (name, dataType, defaultAggregation).
BATTERY_METRICS = [
    ("Voltage", "Double", "Avg"),
    ("Count", "Int", "Sum"),
    ("Readings", "Int", "Count"),
    ("Mode", "String", "Last"),
    ("Online", "Bool", "First"),
    ("Energy", "Double", "Sum"),
]
EXTRA_METRICS = 15  # Battery's 6 plus these make the 21 of the Wide type: one over the place limit


# -- helpers ------------------------------------------------------------------------------------


def iso(millis: int) -> str:
    """An epoch-ms time as the ISO-8601 UTC text the read routes take."""
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def span(start: int, end: int, **extra: Any) -> dict[str, str]:
    """The query of a windowed read: ``startTime``/``endTime`` plus any other parameters."""
    return {"startTime": iso(start), "endTime": iso(end), **{name: str(value) for name, value in extra.items()}}


def get(stack: LocalStack, key: str, path: str, query: Mapping[str, str] | None = None) -> GatewayResponse:
    return stack.request("GET", path, key=key, query=dict(query or {}))


def read(stack: LocalStack, key: str, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
    return ok(get(stack, key, path, query))


def every_page(stack: LocalStack, key: str, path: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every page of a read, following continuation tokens."""
    pages = [read(stack, key, path, query)]
    while pages[-1]["hasMore"]:
        assert pages[-1]["continuationToken"]
        pages.append(read(stack, key, path, {**query, "continuationToken": pages[-1]["continuationToken"]}))
    assert pages[-1]["continuationToken"] is None
    return pages


def timestamps(body: Mapping[str, Any]) -> list[int]:
    return [item["timestamp"] for item in body["items"]]


def values_of(body: Mapping[str, Any], name: str) -> list[Any]:
    """One metric's value in each item (items without it are skipped)."""
    return [item["metrics"][name] for item in body["items"] if name in item["metrics"]]


def events_path(thing_id: str) -> str:
    return f"/v2/things/{thing_id}/events"


def recent_path(thing_id: str) -> str:
    return f"/v2/things/{thing_id}/recent-events"


def summary_path(thing_id: str) -> str:
    return f"/v2/things/{thing_id}/summary"


def timeseries_path(place_type: str, place_id: str) -> str:
    return f"/v2/{'sites' if place_type == 'Site' else 'fleets'}/{place_id}/timeseries"


def ingest(stack: LocalStack, org: Org, thing_id: str, *rows: tuple[int, dict[str, Any]]) -> None:
    response = call(stack, org.admin_key, "POST", f"/v2/things/{thing_id}/data", frames(*rows))
    assert response.status == 200, response.body


# -- the shared world ---------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """One org with telemetry written once, read by most tests of this module.

    Site HQ holds batteries b1, b2 and meter m1; fleet Vans holds batteries f1, f2; site Lab
    holds battery r1 (recent frames only); site Wide holds w1, whose type has 21 metrics.
    Everything older sits in the UTC day that began three days ago (``day0``).
    """

    org: Org
    metrics: dict[str, str]  # name -> metric id
    day0: int
    now: int
    site: str
    fleet: str
    lab: str
    wide_site: str
    b1: str
    b2: str
    m1: str
    r1: str
    b1_frames: list[tuple[int, dict[str, Any]]]

    @property
    def key(self) -> str:
        return self.org.admin_key


@pytest.fixture(scope="module")
def deployment(template: Template) -> Iterator[LocalStack]:
    with mock_aws():
        created = LocalStack.create(template)
        yield created
        created.close()


def _b1_frames(at: int) -> list[tuple[int, dict[str, Any]]]:
    """b1's frames from ``at`` (a UTC midnight): one value per metric, some metrics missing."""
    return [
        # hour 0
        (at, {"Voltage": 1, "Count": 1, "Readings": 10, "Mode": "a", "Online": True, "Energy": 1}),
        (at + 15 * MINUTE_MS, {"Voltage": 2, "Count": 2, "Mode": "b", "Online": False, "Energy": 2}),
        (at + 30 * MINUTE_MS, {"Voltage": 3, "Count": 3, "Readings": 30, "Mode": "c", "Online": False}),
        (at + 45 * MINUTE_MS, {"Voltage": 6, "Count": 4, "Readings": 40, "Mode": "d", "Online": False}),
        # hour 1
        (at + HOUR_MS, {"Voltage": 4, "Count": 5, "Readings": 50, "Mode": "e", "Online": False}),
        (at + HOUR_MS + 30 * MINUTE_MS, {"Voltage": 5, "Count": 6, "Readings": 60, "Mode": "f", "Online": True}),
        # nothing in hour 2; hour 3
        (at + 3 * HOUR_MS + 10_000, {"Voltage": 7, "Count": 7, "Readings": 70, "Mode": "g", "Online": True}),
        # the next day
        (at + DAY_MS + 2 * HOUR_MS, {"Voltage": 8, "Count": 8, "Readings": 80, "Mode": "h", "Online": False}),
    ]


@pytest.fixture(scope="module")
def world(deployment: LocalStack) -> World:
    stack = deployment
    org = make_org(stack, "Acme Telemetry")
    key = org.admin_key
    metrics = {
        name: make_metric(stack, key, name, data_type=data_type, aggregation=aggregation)["metricId"]
        for name, data_type, aggregation in BATTERY_METRICS
    }
    extras = [
        make_metric(stack, key, f"Extra {n:02}", data_type="Int", aggregation="Sum") for n in range(EXTRA_METRICS)
    ]
    battery = make_thing_type(stack, key, list(metrics.values()), display_name="Battery")["thingTypeId"]
    meter = make_thing_type(stack, key, [metrics["Voltage"], metrics["Count"]], display_name="Meter")["thingTypeId"]
    wide_ids = [*metrics.values(), *(m["metricId"] for m in extras)]
    wide = make_thing_type(stack, key, wide_ids, display_name="Wide")["thingTypeId"]

    site = make_site(stack, key, siteName="HQ")["siteId"]
    lab = make_site(stack, key, siteName="Lab")["siteId"]
    wide_site = make_site(stack, key, siteName="Wide")["siteId"]
    fleet = make_fleet(stack, key)["fleetId"]

    def thing(place_type: str, place_id: str, type_id: str, name: str) -> str:
        return str(make_thing(stack, key, place_type, place_id, type_id, thingName=name)["thingId"])

    b1, b2, m1 = (
        thing("Site", site, battery, "b1"),
        thing("Site", site, battery, "b2"),
        thing("Site", site, meter, "m1"),
    )
    f1, f2 = thing("Fleet", fleet, battery, "f1"), thing("Fleet", fleet, battery, "f2")
    r1 = thing("Site", lab, battery, "r1")
    w1 = thing("Site", wide_site, wide, "w1")

    now = now_ms()
    day0 = (now // DAY_MS - 3) * DAY_MS
    b1_frames = _b1_frames(day0)
    ingest(stack, org, b1, *b1_frames)
    ingest(stack, org, b2, (day0 + 5 * MINUTE_MS, {"Voltage": 9, "Count": 100, "Readings": 1, "Mode": "z"}))
    ingest(stack, org, m1, (day0 + 10 * MINUTE_MS, {"Voltage": 20, "Count": 1000}))
    ingest(stack, org, f1, (day0, {"Voltage": 1, "Count": 1, "Readings": 5}))
    ingest(stack, org, f2, (day0, {"Voltage": 2, "Count": 2, "Readings": 6}), (day0 + HOUR_MS, {"Count": 4}))
    ingest(stack, org, w1, (day0, {"Count": 1}))
    recent = [(now - i * MINUTE_MS, {"Count": i}) for i in range(1, 16)]
    ingest(stack, org, r1, *recent, (now - 2 * DAY_MS, {"Count": 100}), (now - 20 * DAY_MS, {"Count": 200}))
    return World(org, metrics, day0, now, site, fleet, lab, wide_site, b1, b2, m1, r1, b1_frames)


@pytest.fixture(scope="module")
def outsider(deployment: LocalStack) -> Org:
    return make_org(deployment, "Globex Sensors")


@pytest.fixture(scope="module")
def outsider_device(deployment: LocalStack, outsider: Org) -> Device:
    return make_device(deployment, outsider)


@pytest.fixture(scope="module")
def scratch(deployment: LocalStack) -> tuple[Org, Device]:
    """An org for tests that change things: each gets a thing (and site) of its own there."""
    org = make_org(deployment, "Scratch Org")
    return org, make_device(deployment, org)


@pytest.fixture
def device(deployment: LocalStack, scratch: tuple[Org, Device]) -> tuple[Org, Device]:
    """A new thing (Voltage Double/Avg, Count Int/Sum) alone in a new site of the scratch org."""
    org, first = scratch
    site = make_site(deployment, org.admin_key, siteName="Scratch site")["siteId"]
    thing = make_thing(deployment, org.admin_key, "Site", site, first.type_id, thingName="scratch")["thingId"]
    return org, Device(thing, first.voltage, first.count, site, first.type_id)


class KeyRing:
    """Keys of the world's org by scope, each made once and shared by the tests that need it."""

    def __init__(self, stack: LocalStack, caller: str) -> None:
        self._stack = stack
        self._caller = caller
        self._made: dict[tuple[str, str], str] = {}

    def __call__(self, action: str, resource_filter: str = "") -> str:
        wanted = (action, resource_filter)
        if wanted not in self._made:
            key_type = "admin" if action == "admin" else "external"
            scopes = [scope(action, resource_filter)]
            self._made[wanted] = create_key(self._stack, self._caller, type=key_type, scopes=scopes).secret
        return self._made[wanted]


@pytest.fixture(scope="module")
def keys(deployment: LocalStack, world: World) -> KeyRing:
    return KeyRing(deployment, world.key)


# -- raw events ---------------------------------------------------------------------------------


def test_raw_events_are_ascending_with_start_inclusive_and_end_exclusive(deployment: LocalStack, world: World) -> None:
    first, third = world.b1_frames[1][0], world.b1_frames[3][0]

    body = read(deployment, world.key, events_path(world.b1), span(first, third))

    assert timestamps(body) == [first, world.b1_frames[2][0]]
    assert values_of(body, "Voltage") == [2.0, 3.0]


def test_raw_events_return_all_frames_of_the_window_oldest_first(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, events_path(world.b1), span(world.day0, world.day0 + DAY_MS))

    assert timestamps(body) == [ts for ts, _ in world.b1_frames[:7]]
    assert values_of(body, "Mode") == list("abcdefg")


@pytest.mark.parametrize(("length", "status"), [(DAY_MS, 200), (DAY_MS + 1, 400)], ids=["24 h", "24 h + 1 ms"])
def test_a_raw_window_is_at_most_24_hours(deployment: LocalStack, world: World, length: int, status: int) -> None:
    response = get(deployment, world.key, events_path(world.b1), span(world.day0, world.day0 + length))

    assert response.status == status, response.body
    if status == 400:
        assert [e["field"] for e in assert_problem(response, 400, "validation_failed")["errors"]] == ["endTime"]


@pytest.mark.parametrize(
    ("start", "end", "extra", "field"),
    [
        (0, 0, {}, "endTime"),
        (HOUR_MS, 0, {}, "endTime"),
        (0, HOUR_MS, {"binUnit": "h"}, "binValue"),
        (0, HOUR_MS, {"binValue": "1"}, "binValue"),
        (0, HOUR_MS, {"binUnit": "m", "binValue": "1441"}, "binValue"),
        (0, HOUR_MS, {"binUnit": "h", "binValue": "745"}, "binValue"),
        (0, HOUR_MS, {"binUnit": "d", "binValue": "367"}, "binValue"),
        (0, HOUR_MS, {"binUnit": "h", "binValue": "0"}, "binValue"),
        (0, HOUR_MS, {"binUnit": "w", "binValue": "1"}, "binUnit"),
    ],
    ids=[
        "end equals start",
        "end before start",
        "binUnit without binValue",
        "binValue without binUnit",
        "over 1440 minutes",
        "over 744 hours",
        "over 366 days",
        "zero",
        "unknown unit",
    ],
)
def test_an_invalid_window_is_400_naming_the_field(
    deployment: LocalStack, world: World, start: int, end: int, extra: dict[str, str], field: str
) -> None:
    query = span(world.day0 + start, world.day0 + end, **extra)

    problem = assert_problem(get(deployment, world.key, events_path(world.b1), query), 400, "validation_failed")

    assert field in [e["field"] for e in problem["errors"]]


@pytest.mark.parametrize("missing", ["startTime", "endTime"])
def test_a_window_needs_both_ends(deployment: LocalStack, world: World, missing: str) -> None:
    query = span(world.day0, world.day0 + HOUR_MS)
    del query[missing]

    problem = assert_problem(get(deployment, world.key, events_path(world.b1), query), 400, "validation_failed")

    assert [e["field"] for e in problem["errors"]] == [missing]


@pytest.mark.parametrize(("unit", "value"), [("m", 1440), ("h", 744), ("d", 366)])
def test_the_largest_bin_of_each_unit_is_accepted(deployment: LocalStack, world: World, unit: str, value: int) -> None:
    query = span(world.day0, world.day0 + DAY_MS, binUnit=unit, binValue=value)

    assert get(deployment, world.key, events_path(world.b1), query).status == 200


def test_raw_pages_return_every_frame_exactly_once(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + DAY_MS, limit=2)

    pages = every_page(deployment, world.key, events_path(world.b1), query)

    assert [len(page["items"]) for page in pages] == [2, 2, 2, 1]
    assert [ts for page in pages for ts in timestamps(page)] == [ts for ts, _ in world.b1_frames[:7]]


def test_page_limit_is_an_alias_of_limit(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + DAY_MS, pageLimit=3)

    body = read(deployment, world.key, events_path(world.b1), query)

    assert (len(body["items"]), body["hasMore"]) == (3, True)


@pytest.mark.parametrize("limit", ["0", "101"])
def test_an_events_limit_outside_1_to_100_is_400(deployment: LocalStack, world: World, limit: str) -> None:
    query = span(world.day0, world.day0 + HOUR_MS, limit=limit)

    problem = assert_problem(get(deployment, world.key, events_path(world.b1), query), 400, "validation_failed")

    assert [e["field"] for e in problem["errors"]] == ["limit"]


@pytest.mark.parametrize(
    "start",
    [
        lambda at: datetime.fromtimestamp(at / 1000, timezone(timedelta(hours=2))).isoformat(),
        lambda at: datetime.fromtimestamp(at / 1000, UTC).replace(tzinfo=None).isoformat(),
    ],
    ids=["with an offset", "without an offset (UTC)"],
)
def test_query_times_name_the_instant_they_say(
    deployment: LocalStack, world: World, start: Callable[[int], str]
) -> None:
    query = {"startTime": start(world.b1_frames[1][0]), "endTime": iso(world.b1_frames[3][0])}

    body = read(deployment, world.key, events_path(world.b1), query)

    assert timestamps(body) == [world.b1_frames[1][0], world.b1_frames[2][0]]


def test_selected_fields_by_id_limit_the_metrics(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + HOUR_MS, selectedFields=world.metrics["Count"])

    body = read(deployment, world.key, events_path(world.b1), query)

    assert [m["name"] for m in body["metrics"]] == ["Count"]
    assert [item["metrics"] for item in body["items"]] == [{"Count": 1}, {"Count": 2}, {"Count": 3}, {"Count": 4}]


def test_selected_fields_by_name_are_case_insensitive_and_keep_their_order(
    deployment: LocalStack, world: World
) -> None:
    query = span(world.day0, world.day0 + HOUR_MS, selectedFields="mODE,voltage")

    body = read(deployment, world.key, events_path(world.b1), query)

    assert [(m["metricId"], m["name"]) for m in body["metrics"]] == [
        (world.metrics["Mode"], "Mode"),
        (world.metrics["Voltage"], "Voltage"),
    ]
    assert body["items"][0]["metrics"] == {"Mode": "a", "Voltage": 1.0}


def test_raw_frames_without_a_selected_metric_are_left_out(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + HOUR_MS, selectedFields="Readings")

    body = read(deployment, world.key, events_path(world.b1), query)

    assert timestamps(body) == [world.b1_frames[i][0] for i in (0, 2, 3)]  # frame 1 has no Readings


def test_unknown_selected_fields_are_400_listing_each(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + HOUR_MS, selectedFields=f"Voltage,humidity,{UNKNOWN_ID},Count")

    problem = assert_problem(get(deployment, world.key, events_path(world.b1), query), 400, "validation_failed")

    assert [e["field"] for e in problem["errors"]] == ["selectedFields[1]", "selectedFields[2]"]


def test_double_values_come_back_as_floats(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, events_path(world.b1), span(world.day0, world.day0 + HOUR_MS))

    voltages = values_of(body, "Voltage")
    assert voltages == [1.0, 2.0, 3.0, 6.0]  # ingested as 1, 2, 3, 6
    assert all(type(v) is float for v in voltages)
    assert all(type(c) is int for c in values_of(body, "Count"))


# -- binned events ------------------------------------------------------------------------------


def test_hour_bins_roll_up_each_metric_by_its_default_aggregation(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + DAY_MS, binUnit="h", binValue=1)

    body = read(deployment, world.key, events_path(world.b1), query)

    assert body["items"] == [
        {
            "timestamp": world.day0,
            "metrics": {
                "Voltage": 3.0,  # Avg of 1, 2, 3, 6
                "Count": 10,  # Sum
                "Readings": 3,  # Count of values (one frame has none)
                "Mode": "d",  # Last
                "Online": True,  # First
                "Energy": 3.0,  # Sum of 1 and 2
            },
        },
        {
            "timestamp": world.day0 + HOUR_MS,
            "metrics": {"Voltage": 4.5, "Count": 11, "Readings": 2, "Mode": "f", "Online": False},
        },
        {
            "timestamp": world.day0 + 3 * HOUR_MS,
            "metrics": {"Voltage": 7.0, "Count": 7, "Readings": 1, "Mode": "g", "Online": True},
        },
    ]


def test_binned_sums_of_doubles_are_floats(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + HOUR_MS, binUnit="h", binValue=1, selectedFields="Energy")

    [item] = read(deployment, world.key, events_path(world.b1), query)["items"]

    assert type(item["metrics"]["Energy"]) is float


def test_empty_bins_are_omitted(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + DAY_MS, binUnit="h", binValue=1)

    body = read(deployment, world.key, events_path(world.b1), query)

    assert world.day0 + 2 * HOUR_MS not in timestamps(body)
    assert len(body["items"]) == 3


@pytest.mark.parametrize(
    ("unit", "value", "size"),
    [("m", 15, 15 * MINUTE_MS), ("m", 7, 7 * MINUTE_MS), ("h", 5, 5 * HOUR_MS), ("d", 2, 2 * DAY_MS)],
    ids=["15m", "7m", "5h", "2d"],
)
def test_bins_start_at_multiples_of_their_size_since_the_epoch(
    deployment: LocalStack, world: World, unit: str, value: int, size: int
) -> None:
    query = span(world.day0 + 1, world.day0 + 2 * DAY_MS, binUnit=unit, binValue=value, selectedFields="Count")

    body = read(deployment, world.key, events_path(world.b1), query)

    expected: dict[int, int] = {}
    for ts, metrics in world.b1_frames[1:]:
        expected[ts - ts % size] = expected.get(ts - ts % size, 0) + metrics["Count"]
    assert {item["timestamp"]: item["metrics"]["Count"] for item in body["items"]} == expected
    assert all(ts % size == 0 for ts in timestamps(body))


def test_a_bin_starts_on_the_utc_grid_not_at_start_time(deployment: LocalStack, world: World) -> None:
    query = span(world.day0 + 10 * MINUTE_MS, world.day0 + HOUR_MS, binUnit="h", binValue=1, selectedFields="Count")

    body = read(deployment, world.key, events_path(world.b1), query)

    assert body["items"] == [{"timestamp": world.day0, "metrics": {"Count": 9}}]  # 2 + 3 + 4: from startTime on


def test_day_bins_start_at_utc_midnight(deployment: LocalStack, world: World) -> None:
    query = span(world.day0 + 30 * MINUTE_MS, world.day0 + 2 * DAY_MS, binUnit="d", binValue=1, selectedFields="Count")

    body = read(deployment, world.key, events_path(world.b1), query)

    assert body["items"] == [
        {"timestamp": world.day0, "metrics": {"Count": 3 + 4 + 5 + 6 + 7}},
        {"timestamp": world.day0 + DAY_MS, "metrics": {"Count": 8}},
    ]


@pytest.mark.parametrize(("length", "status"), [(366 * DAY_MS, 200), (366 * DAY_MS + 1, 400)], ids=["366 d", "+1 ms"])
@pytest.mark.parametrize("place", [False, True], ids=["thing", "site"])
def test_a_binned_window_is_at_most_366_days(
    deployment: LocalStack, world: World, length: int, status: int, place: bool
) -> None:
    path = timeseries_path("Site", world.site) if place else events_path(world.b1)
    query = span(world.now - length, world.now, binUnit="d", binValue=1)

    response = get(deployment, world.key, path, query)

    assert response.status == status, response.body
    if status == 400:
        assert [e["field"] for e in assert_problem(response, 400, "validation_failed")["errors"]] == ["endTime"]


def test_bins_page_with_continuation_tokens(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + 2 * DAY_MS, binUnit="h", binValue=1)
    whole = read(deployment, world.key, events_path(world.b1), query)

    pages = every_page(deployment, world.key, events_path(world.b1), {**query, "limit": "1"})

    assert [len(page["items"]) for page in pages] == [1, 1, 1, 1]
    assert [item for page in pages for item in page["items"]] == whole["items"]
    assert (whole["hasMore"], whole["continuationToken"]) == (False, None)


@dataclass(frozen=True)
class Issued:
    """A continuation token and the query that got it."""

    query: dict[str, str]
    token: str


@pytest.fixture(scope="module")
def issued(deployment: LocalStack, world: World) -> Issued:
    query = span(world.day0, world.day0 + DAY_MS, binUnit="h", binValue=1, limit=1)
    token = read(deployment, world.key, events_path(world.b1), query)["continuationToken"]
    assert isinstance(token, str)
    return Issued(query, token)


def test_a_token_continues_its_own_query(deployment: LocalStack, world: World, issued: Issued) -> None:
    body = read(deployment, world.key, events_path(world.b1), {**issued.query, "continuationToken": issued.token})

    assert timestamps(body) == [world.day0 + HOUR_MS]


Change = Callable[[World], dict[str, str | None]]
"""Query parameters to change (``None``: leave out) for replaying ``issued``'s token."""


@pytest.mark.parametrize(
    "change",
    [
        lambda w: {"endTime": iso(w.day0 + DAY_MS - MINUTE_MS)},
        lambda _w: {"binValue": "2"},
        lambda _w: {"selectedFields": "Count"},
        lambda _w: {"binUnit": None, "binValue": None},
    ],
    ids=["another window", "another bin size", "other metrics", "raw instead of binned"],
)
def test_a_token_replayed_on_another_query_is_400(
    deployment: LocalStack, world: World, issued: Issued, change: Change
) -> None:
    query = {**issued.query, "continuationToken": issued.token}
    for name, value in change(world).items():
        if value is None:
            del query[name]
        else:
            query[name] = value

    assert_problem(get(deployment, world.key, events_path(world.b1), query), 400, "invalid_continuation_token")


def test_a_token_replayed_on_another_thing_is_400(deployment: LocalStack, world: World, issued: Issued) -> None:
    query = {**issued.query, "continuationToken": issued.token}

    assert_problem(get(deployment, world.key, events_path(world.b2), query), 400, "invalid_continuation_token")


def test_a_token_replayed_by_another_org_is_400(
    deployment: LocalStack, issued: Issued, outsider: Org, outsider_device: Device
) -> None:
    query = {**issued.query, "continuationToken": issued.token}
    response = get(deployment, outsider.admin_key, events_path(outsider_device.thing_id), query)

    assert_problem(response, 400, "invalid_continuation_token")


@pytest.mark.parametrize("mangle", TOKEN_MANGLERS.values(), ids=TOKEN_MANGLERS.keys())
def test_a_tampered_token_is_400(
    deployment: LocalStack, world: World, issued: Issued, mangle: Callable[[str], str]
) -> None:
    query = {**issued.query, "continuationToken": mangle(issued.token)}

    assert_problem(get(deployment, world.key, events_path(world.b1), query), 400, "invalid_continuation_token")


# -- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortened:
    """An org whose frames were written under the default 365 days, then retention cut to 5."""

    org: Org
    device: Device
    old: int  # now - 10 days: Voltage 1 and Count 1 (Count's only value)
    middle: int  # now - 3 days: Voltage 2
    recent: int  # now - 1 hour: Voltage 3


@pytest.fixture(scope="module")
def shortened(deployment: LocalStack) -> Shortened:
    org = make_org(deployment, "Short Memory")
    device = make_device(deployment, org)
    now = now_ms()
    old, middle, recent = now - 10 * DAY_MS, now - 3 * DAY_MS, now - HOUR_MS
    ingest(deployment, org, device.thing_id, (old, {"Voltage": 1, "Count": 1}), (middle, {"Voltage": 2}))
    ingest(deployment, org, device.thing_id, (recent, {"Voltage": 3}))
    settings = call(deployment, org.admin_key, "PATCH", "/v2/organization/settings", {"telemetryRetentionDays": 5})
    assert settings.status == 200, settings.body
    return Shortened(org, device, old, middle, recent)


def test_frames_outside_a_shortened_retention_are_still_stored(deployment: LocalStack, shortened: Shortened) -> None:
    # The reads below hide them because of the window, not because anything was deleted yet.
    assert [item["timestamp"] for item in stored(deployment, shortened.org)] == [
        shortened.old,
        shortened.middle,
        shortened.recent,
    ]


def test_raw_events_hide_frames_outside_the_current_retention(deployment: LocalStack, shortened: Shortened) -> None:
    query = span(shortened.old - HOUR_MS, shortened.old + HOUR_MS)

    body = read(deployment, shortened.org.admin_key, events_path(shortened.device.thing_id), query)

    assert body["items"] == []


def test_binned_events_hide_frames_outside_the_current_retention(deployment: LocalStack, shortened: Shortened) -> None:
    query = span(shortened.old - DAY_MS, now_ms(), binUnit="h", binValue=1)

    body = read(deployment, shortened.org.admin_key, events_path(shortened.device.thing_id), query)

    assert values_of(body, "Voltage") == [2.0, 3.0]
    assert values_of(body, "Count") == []


def test_recent_events_hide_frames_outside_the_current_retention(deployment: LocalStack, shortened: Shortened) -> None:
    path = recent_path(shortened.device.thing_id)

    latest = read(deployment, shortened.org.admin_key, path, {"lookbackInDays": "30"})
    around_old = read(deployment, shortened.org.admin_key, path, {"cutoffTime": iso(shortened.old + HOUR_MS)})

    assert timestamps(latest) == [shortened.recent, shortened.middle]
    assert around_old["items"] == []


def test_summary_shows_null_for_a_value_outside_the_current_retention(
    deployment: LocalStack, shortened: Shortened
) -> None:
    body = read(deployment, shortened.org.admin_key, summary_path(shortened.device.thing_id))

    latest = {m["name"]: (m["value"], m["timestamp"]) for m in body["metrics"]}
    assert latest == {"Voltage": (3.0, shortened.recent), "Count": (None, None)}


def test_place_timeseries_hide_frames_outside_the_current_retention(
    deployment: LocalStack, shortened: Shortened
) -> None:
    query = span(shortened.old - DAY_MS, now_ms(), binUnit="h", binValue=1)

    body = read(deployment, shortened.org.admin_key, timeseries_path("Site", shortened.device.site_id), query)

    assert values_of(body, "Voltage") == [2.0, 3.0]
    assert values_of(body, "Count") == []


# -- recent events ------------------------------------------------------------------------------


def r1_times(world: World, *minutes: int) -> list[int]:
    return [world.now - minute * MINUTE_MS for minute in minutes]


def test_recent_events_are_newest_first_ten_by_default(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, recent_path(world.r1))

    assert timestamps(body) == r1_times(world, *range(1, 11))
    assert body["hasMore"] is True


@pytest.mark.parametrize(("limit", "status"), [(0, 400), (1, 200), (100, 200), (101, 400)])
def test_recent_events_limit_is_1_to_100(deployment: LocalStack, world: World, limit: int, status: int) -> None:
    response = get(deployment, world.key, recent_path(world.r1), {"limit": str(limit)})

    assert response.status == status, response.body
    if status == 200:
        assert len(response.json()["items"]) == min(limit, 15)


@pytest.mark.parametrize(
    ("lookback", "oldest"),
    [(None, 15 * MINUTE_MS), ("1", 15 * MINUTE_MS), ("3", 2 * DAY_MS), ("30", 20 * DAY_MS)],
    ids=["default", "1 day", "3 days", "30 days"],
)
def test_recent_events_look_back_1_day_unless_told(
    deployment: LocalStack, world: World, lookback: str | None, oldest: int
) -> None:
    query = {"limit": "100", **({"lookbackInDays": lookback} if lookback else {})}

    body = read(deployment, world.key, recent_path(world.r1), query)

    assert timestamps(body)[-1] == world.now - oldest


@pytest.mark.parametrize("lookback", ["0", "31"])
def test_recent_events_lookback_outside_1_to_30_is_400(deployment: LocalStack, world: World, lookback: str) -> None:
    response = get(deployment, world.key, recent_path(world.r1), {"lookbackInDays": lookback})

    assert [e["field"] for e in assert_problem(response, 400, "validation_failed")["errors"]] == ["lookbackInDays"]


def test_recent_events_include_a_frame_at_the_cutoff_time(deployment: LocalStack, world: World) -> None:
    [at] = r1_times(world, 5)

    body = read(deployment, world.key, recent_path(world.r1), {"cutoffTime": iso(at), "limit": "3"})

    assert timestamps(body) == r1_times(world, 5, 6, 7)


def test_recent_events_look_back_from_the_cutoff_time(deployment: LocalStack, world: World) -> None:
    query = {"cutoffTime": iso(world.now - 19 * DAY_MS), "lookbackInDays": "2"}

    body = read(deployment, world.key, recent_path(world.r1), query)

    assert body["items"] == [{"timestamp": world.now - 20 * DAY_MS, "metrics": {"Count": 200}}]


def test_recent_event_pages_return_every_frame_exactly_once(deployment: LocalStack, world: World) -> None:
    pages = every_page(deployment, world.key, recent_path(world.r1), {"limit": "4"})

    assert [len(page["items"]) for page in pages] == [4, 4, 4, 3]
    assert [ts for page in pages for ts in timestamps(page)] == r1_times(world, *range(1, 16))


def test_recent_events_take_page_limit_as_an_alias_of_limit(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, recent_path(world.r1), {"pageLimit": "3"})

    assert timestamps(body) == r1_times(world, 1, 2, 3)


def test_a_recent_events_token_replayed_with_another_lookback_is_400(deployment: LocalStack, world: World) -> None:
    token = read(deployment, world.key, recent_path(world.r1), {"limit": "4"})["continuationToken"]
    query = {"limit": "4", "lookbackInDays": "3", "continuationToken": token}

    assert_problem(get(deployment, world.key, recent_path(world.r1), query), 400, "invalid_continuation_token")


# -- summary ------------------------------------------------------------------------------------


def latest_of(body: Mapping[str, Any]) -> dict[str, tuple[Any, int | None]]:
    return {m["name"]: (m["value"], m["timestamp"]) for m in body["metrics"]}


def test_summary_shows_the_latest_value_and_time_of_each_metric(deployment: LocalStack, world: World) -> None:
    last, energy = world.b1_frames[-1][0], world.b1_frames[1][0]

    body = read(deployment, world.key, summary_path(world.b1))

    assert latest_of(body) == {
        "Count": (8, last),
        "Energy": (2.0, energy),  # not reported since
        "Mode": ("h", last),
        "Online": (False, last),
        "Readings": (80, last),
        "Voltage": (8.0, last),
    }
    assert type(latest_of(body)["Voltage"][0]) is float


def test_summary_shows_null_for_a_metric_never_reported(deployment: LocalStack, device: tuple[Org, Device]) -> None:
    org, thing = device
    at = now_ms() - MINUTE_MS
    ingest(deployment, org, thing.thing_id, (at, {"Voltage": 3.5}))

    body = read(deployment, org.admin_key, summary_path(thing.thing_id))

    assert latest_of(body) == {"Voltage": (3.5, at), "Count": (None, None)}


def test_an_older_frame_ingested_later_does_not_replace_the_latest_value(
    deployment: LocalStack, device: tuple[Org, Device]
) -> None:
    org, thing = device
    newer = now_ms() - MINUTE_MS
    ingest(deployment, org, thing.thing_id, (newer, {"Voltage": 2}))
    ingest(deployment, org, thing.thing_id, (newer - HOUR_MS, {"Voltage": 1, "Count": 4}))

    body = read(deployment, org.admin_key, summary_path(thing.thing_id))

    assert latest_of(body) == {"Voltage": (2.0, newer), "Count": (4, newer - HOUR_MS)}


def test_the_same_timestamp_again_overwrites_the_latest_value(
    deployment: LocalStack, device: tuple[Org, Device]
) -> None:
    org, thing = device
    at = now_ms() - MINUTE_MS
    ingest(deployment, org, thing.thing_id, (at, {"Voltage": 2}))
    ingest(deployment, org, thing.thing_id, (at, {"Voltage": 5}))

    body = read(deployment, org.admin_key, summary_path(thing.thing_id))

    assert latest_of(body)["Voltage"] == (5.0, at)


def test_the_summary_agrees_with_the_frames_after_an_overwrite_drops_a_metric(
    deployment: LocalStack, device: tuple[Org, Device]
) -> None:
    org, thing = device
    at = now_ms() - MINUTE_MS
    ingest(deployment, org, thing.thing_id, (at, {"Voltage": 2, "Count": 1}))
    ingest(deployment, org, thing.thing_id, (at, {"Count": 7}))  # last write wins: the frame is now Count only
    assert [item["values"] for item in stored(deployment, org) if item["thingId"] == thing.thing_id] == [
        {thing.count: 7}
    ]

    body = read(deployment, org.admin_key, summary_path(thing.thing_id))

    assert latest_of(body) == {"Voltage": (None, None), "Count": (7, at)}


# -- places -------------------------------------------------------------------------------------


def hour_bins(world: World, **extra: Any) -> dict[str, str]:
    return span(world.day0, world.day0 + DAY_MS, binUnit="h", binValue=1, **extra)


def test_site_timeseries_rolls_up_every_thing_in_the_site(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, timeseries_path("Site", world.site), hour_bins(world))

    assert (body["placeId"], body["placeType"], body["thingCount"]) == (world.site, "Site", 3)
    first = body["items"][0]
    assert first["timestamp"] == world.day0
    assert first["metrics"] == {
        "Voltage": pytest.approx((1 + 2 + 3 + 6 + 9 + 20) / 6),  # Avg over every value, not of each thing's
        "Count": 10 + 100 + 1000,  # Sum across things
        "Readings": 3 + 1,  # Count of every value
        "Mode": "d",  # Last: b1's 00:45 is later than b2's 00:05
        "Online": True,  # First: b1's 00:00
        "Energy": 3.0,
    }
    assert timestamps(body) == [world.day0, world.day0 + HOUR_MS, world.day0 + 3 * HOUR_MS]


def test_fleet_timeseries_rolls_up_every_thing_in_the_fleet(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, timeseries_path("Fleet", world.fleet), hour_bins(world))

    assert (body["placeId"], body["placeType"], body["thingCount"]) == (world.fleet, "Fleet", 2)
    assert body["items"] == [
        {"timestamp": world.day0, "metrics": {"Voltage": 1.5, "Count": 3, "Readings": 2}},
        {"timestamp": world.day0 + HOUR_MS, "metrics": {"Count": 4}},
    ]


def test_place_timeseries_pages_bins_with_continuation_tokens(deployment: LocalStack, world: World) -> None:
    path = timeseries_path("Site", world.site)
    whole = read(deployment, world.key, path, hour_bins(world))

    pages = every_page(deployment, world.key, path, hour_bins(world, limit=1))

    assert [item for page in pages for item in page["items"]] == whole["items"]
    assert len(pages) == 3


@pytest.mark.parametrize(
    ("resource_filter", "things", "voltage", "count"),
    [
        ("PLACE/Site/{site}/THING/Battery/#", 2, (1 + 2 + 3 + 6 + 9) / 5, 10 + 100),
        ("THING/Battery/#", 2, (1 + 2 + 3 + 6 + 9) / 5, 10 + 100),
        ("THING/Meter/#", 1, 20.0, 1000),
        ("PLACE/Site/{site}", 3, (1 + 2 + 3 + 6 + 9 + 20) / 6, 1110),
    ],
    ids=["batteries in the site", "batteries anywhere", "meters anywhere", "the whole site"],
)
def test_place_timeseries_include_only_things_the_key_may_read(
    deployment: LocalStack, world: World, keys: KeyRing, resource_filter: str, things: int, voltage: float, count: int
) -> None:
    key = keys("read", resource_filter.format(site=world.site))

    body = read(deployment, key, timeseries_path("Site", world.site), hour_bins(world))

    assert body["thingCount"] == things
    assert body["items"][0]["metrics"]["Voltage"] == pytest.approx(voltage)
    assert body["items"][0]["metrics"]["Count"] == count


def test_place_timeseries_cover_only_the_readable_things_metrics(
    deployment: LocalStack, world: World, keys: KeyRing
) -> None:
    key = keys("read", "THING/Meter/#")

    body = read(deployment, key, timeseries_path("Site", world.site), hour_bins(world))

    assert [m["name"] for m in body["metrics"]] == ["Count", "Voltage"]


@pytest.mark.parametrize(
    "resource_filter",
    ["PLACE/Site/{lab}", "PLACE/Fleet/#", "DEFINITION/Metric/#"],
    ids=["another site", "fleets only", "no things"],
)
def test_place_timeseries_need_read_on_things_of_the_place(
    deployment: LocalStack, world: World, keys: KeyRing, resource_filter: str
) -> None:
    key = keys("read", resource_filter.format(lab=world.lab))

    response = get(deployment, key, timeseries_path("Site", world.site), hour_bins(world))

    assert_problem(response, 403, "forbidden_scope")


def test_place_timeseries_cover_at_most_20_metrics(deployment: LocalStack, world: World) -> None:
    response = get(deployment, world.key, timeseries_path("Site", world.wide_site), hour_bins(world))

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["selectedFields"]


def test_twenty_selected_metrics_of_a_wider_place_are_accepted(deployment: LocalStack, world: World) -> None:
    names = [name for name, _, _ in BATTERY_METRICS] + [f"Extra {n:02}" for n in range(14)]
    query = hour_bins(world, selectedFields=",".join(names))

    body = read(deployment, world.key, timeseries_path("Site", world.wide_site), query)

    assert len(body["metrics"]) == 20
    assert body["items"] == [{"timestamp": world.day0, "metrics": {"Count": 1}}]


def test_place_timeseries_need_bins(deployment: LocalStack, world: World) -> None:
    query = span(world.day0, world.day0 + HOUR_MS)

    response = get(deployment, world.key, timeseries_path("Site", world.site), query)

    assert [e["field"] for e in assert_problem(response, 400, "validation_failed")["errors"]] == ["binUnit"]


@pytest.mark.parametrize("place_type", ["Site", "Fleet"])
def test_a_place_of_another_org_is_404(deployment: LocalStack, world: World, outsider: Org, place_type: str) -> None:
    place = world.site if place_type == "Site" else world.fleet

    problem = assert_problem(
        get(deployment, outsider.admin_key, timeseries_path(place_type, place), hour_bins(world)), 404, "not_found"
    )

    assert world.org.org_id not in str(problem)


@pytest.mark.parametrize("place_id", [MALFORMED_ID, UNKNOWN_ID], ids=["malformed", "unknown"])
@pytest.mark.parametrize("place_type", ["Site", "Fleet"])
def test_a_place_that_does_not_exist_is_404(
    deployment: LocalStack, world: World, place_type: str, place_id: str
) -> None:
    response = get(deployment, world.key, timeseries_path(place_type, place_id), hour_bins(world))

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("place_type", ["Site", "Fleet"])
def test_a_place_of_the_other_kind_is_404(deployment: LocalStack, world: World, place_type: str) -> None:
    other_kind = world.fleet if place_type == "Site" else world.site

    response = get(deployment, world.key, timeseries_path(place_type, other_kind), hour_bins(world))

    assert_problem(response, 404, "not_found")


def test_a_deleted_things_data_leaves_its_place_timeseries(deployment: LocalStack, device: tuple[Org, Device]) -> None:
    org, thing = device
    at = now_ms() - HOUR_MS
    ingest(deployment, org, thing.thing_id, (at, {"Count": 1}))
    assert call(deployment, org.admin_key, "DELETE", f"/v2/things/{thing.thing_id}").status == 204

    query = span(at - DAY_MS, now_ms(), binUnit="d", binValue=1)
    body = read(deployment, org.admin_key, timeseries_path("Site", thing.site_id), query)

    assert (body["thingCount"], body["items"]) == (0, [])


# -- one thing: who may read it -----------------------------------------------------------------

THING_READS = ["events", "recent-events", "summary"]


def thing_read(stack: LocalStack, key: str, route: str, thing_id: str) -> GatewayResponse:
    query = span(now_ms() - HOUR_MS, now_ms()) if route == "events" else {}
    return get(stack, key, f"/v2/things/{thing_id}/{route}", query)


@pytest.mark.parametrize("route", THING_READS)
def test_a_thing_of_another_org_is_404(deployment: LocalStack, world: World, outsider: Org, route: str) -> None:
    problem = assert_problem(thing_read(deployment, outsider.admin_key, route, world.b1), 404, "not_found")

    assert world.org.org_id not in str(problem)


@pytest.mark.parametrize("route", THING_READS)
def test_a_deleted_thing_is_404(deployment: LocalStack, device: tuple[Org, Device], route: str) -> None:
    org, thing = device
    ingest(deployment, org, thing.thing_id, (now_ms() - MINUTE_MS, {"Count": 1}))
    assert call(deployment, org.admin_key, "DELETE", f"/v2/things/{thing.thing_id}").status == 204

    assert_problem(thing_read(deployment, org.admin_key, route, thing.thing_id), 404, "not_found")


@pytest.mark.parametrize("thing_id", [MALFORMED_ID, UNKNOWN_ID], ids=["malformed", "unknown"])
@pytest.mark.parametrize("route", THING_READS)
def test_a_thing_that_does_not_exist_is_404(deployment: LocalStack, world: World, route: str, thing_id: str) -> None:
    assert_problem(thing_read(deployment, world.key, route, thing_id), 404, "not_found")


@pytest.mark.parametrize(
    ("action", "resource_filter"),
    [("admin", ""), ("read", "THING/Meter/#"), ("read", "PLACE/Site/{lab}")],
    ids=["admin only", "another thing type", "another site"],
)
@pytest.mark.parametrize("route", THING_READS)
def test_a_key_that_may_not_read_the_thing_gets_403(
    deployment: LocalStack, world: World, keys: KeyRing, route: str, action: str, resource_filter: str
) -> None:
    key = keys(action, resource_filter.format(lab=world.lab))

    assert_problem(thing_read(deployment, key, route, world.b1), 403, "forbidden_scope")


@pytest.mark.parametrize("resource_filter", ["THING/Battery/#", "PLACE/Site/{site}/THING/Battery/{b1}"])
@pytest.mark.parametrize("route", THING_READS)
def test_a_key_scoped_to_the_thing_may_read_it(
    deployment: LocalStack, world: World, keys: KeyRing, route: str, resource_filter: str
) -> None:
    key = keys("read", resource_filter.format(site=world.site, b1=world.b1))

    assert thing_read(deployment, key, route, world.b1).status == 200


@pytest.mark.parametrize("route", [*THING_READS, "timeseries"])
def test_unknown_selected_fields_are_400_on_every_read(deployment: LocalStack, world: World, route: str) -> None:
    fields = {"selectedFields": "Voltage,nope,zilch"}
    if route == "timeseries":
        response = get(deployment, world.key, timeseries_path("Site", world.site), hour_bins(world, **fields))
    else:
        query = {**(span(world.day0, world.day0 + HOUR_MS) if route == "events" else {}), **fields}
        response = get(deployment, world.key, f"/v2/things/{world.b1}/{route}", query)

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["selectedFields[1]", "selectedFields[2]"]


# -- shapes -------------------------------------------------------------------------------------


def assert_series_shape(body: Mapping[str, Any], fields: set[str], aggregations: Mapping[str, str | None]) -> None:
    assert body.keys() >= fields, body.keys()
    assert isinstance(body["hasMore"], bool)
    assert body["continuationToken"] is None or isinstance(body["continuationToken"], str)
    for metric in body["metrics"]:
        assert metric.keys() >= SERIES_METRIC_FIELDS, metric
    assert {m["name"]: m["aggregation"] for m in body["metrics"]} == aggregations
    assert body["items"], "a shape needs an item to look at"
    for item in body["items"]:
        assert item.keys() == ITEM_FIELDS
        assert isinstance(item["timestamp"], int)
        assert isinstance(item["metrics"], dict)


BINNED_AGGREGATIONS: dict[str, str | None] = {name: aggregation for name, _, aggregation in BATTERY_METRICS}
RAW_AGGREGATIONS: dict[str, str | None] = {name: None for name, _, _ in BATTERY_METRICS}


def test_raw_events_have_the_contract_shape(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, events_path(world.b1), span(world.day0, world.day0 + HOUR_MS, limit=1))

    assert_series_shape(body, THING_READ_FIELDS, RAW_AGGREGATIONS)
    assert body["thingId"] == world.b1
    assert (body["hasMore"], isinstance(body["continuationToken"], str)) == (True, True)


def test_binned_events_have_the_contract_shape(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, events_path(world.b1), hour_bins(world))

    assert_series_shape(body, THING_READ_FIELDS, BINNED_AGGREGATIONS)
    assert {m["name"]: (m["metricId"], m["dataType"]) for m in body["metrics"]} == {
        name: (world.metrics[name], data_type) for name, data_type, _ in BATTERY_METRICS
    }


def test_recent_events_have_the_contract_shape(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, recent_path(world.r1))

    assert_series_shape(body, THING_READ_FIELDS, RAW_AGGREGATIONS)
    assert body["thingId"] == world.r1


@pytest.mark.parametrize("place_type", ["Site", "Fleet"])
def test_place_timeseries_have_the_contract_shape(deployment: LocalStack, world: World, place_type: str) -> None:
    place = world.site if place_type == "Site" else world.fleet

    body = read(deployment, world.key, timeseries_path(place_type, place), hour_bins(world))

    assert_series_shape(body, PLACE_READ_FIELDS, BINNED_AGGREGATIONS)
    assert (body["placeId"], isinstance(body["thingCount"], int)) == (place, True)


def test_summary_has_the_contract_shape(deployment: LocalStack, world: World) -> None:
    body = read(deployment, world.key, summary_path(world.b1))

    assert body.keys() >= SUMMARY_FIELDS
    assert body["thingId"] == world.b1
    assert sorted(m["metricId"] for m in body["metrics"]) == sorted(world.metrics.values())
    for metric in body["metrics"]:
        assert metric.keys() >= SUMMARY_METRIC_FIELDS, metric
        assert isinstance(metric["timestamp"], int)


# -- bounded reads ------------------------------------------------------------------------------


def read_at_most(monkeypatch: pytest.MonkeyPatch, frames: int) -> None:
    """Each request reads at most ``frames`` frames (50,000 in production)."""
    monkeypatch.setattr(telemetry_query, "MAX_FRAMES_READ", frames)


SPARSE_VOLTAGE = (6, 7, 8, 13)
"""Which of ``minute_frames``' 14 frames hold Voltage (the others hold only Count)."""


def minute_frames(stack: LocalStack, org: Org, thing_id: str) -> list[int]:
    """14 frames a minute apart from half an hour ago, Voltage only in ``SPARSE_VOLTAGE``; their
    times."""
    first = now_ms() - 30 * MINUTE_MS
    times = [first + n * MINUTE_MS for n in range(14)]
    ingest(
        stack,
        org,
        thing_id,
        *((ts, {"Count": n, **({"Voltage": n} if n in SPARSE_VOLTAGE else {})}) for n, ts in enumerate(times)),
    )
    return times


def test_a_raw_page_ends_at_the_read_budget_and_its_token_resumes_where_reading_stopped(
    deployment: LocalStack, device: tuple[Org, Device], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, thing = device
    times = minute_frames(deployment, org, thing.thing_id)
    read_at_most(monkeypatch, 5)

    query = span(times[0], times[-1] + 1, selectedFields="Voltage", limit=2)
    pages = every_page(deployment, org.admin_key, events_path(thing.thing_id), query)

    # The first five frames hold no Voltage: an empty page that still says there is more.
    assert (pages[0]["items"], pages[0]["hasMore"]) == ([], True)
    assert [len(page["items"]) for page in pages] == [0, 2, 1, 1]
    assert [ts for page in pages for ts in timestamps(page)] == [times[n] for n in SPARSE_VOLTAGE]


def test_a_recent_events_page_ends_at_the_read_budget_and_its_token_resumes_where_reading_stopped(
    deployment: LocalStack, device: tuple[Org, Device], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, thing = device
    times = minute_frames(deployment, org, thing.thing_id)
    read_at_most(monkeypatch, 5)

    query = {"selectedFields": "Voltage", "limit": "2"}
    pages = every_page(deployment, org.admin_key, recent_path(thing.thing_id), query)

    assert [len(page["items"]) for page in pages] == [1, 2, 1, 0]  # the first ends after 13, 12, 11, 10, 9
    assert [ts for page in pages for ts in timestamps(page)] == [times[n] for n in reversed(SPARSE_VOLTAGE)]


HOURLY_DENSITY = (3, 4, 1, 5, 2)
"""Frames in each of five consecutive hours (``hourly_frames``)."""


def hourly_frames(stack: LocalStack, org: Org, thing_id: str, density: Sequence[int] = HOURLY_DENSITY) -> int:
    """``density[h]`` frames (Voltage and Count) a minute apart in hour ``h`` of a recent run of
    hours; the first hour's start."""
    first_hour = (now_ms() // HOUR_MS - 8) * HOUR_MS
    rows = [
        (first_hour + hour * HOUR_MS + n * MINUTE_MS, {"Voltage": n, "Count": 1})
        for hour, frames_in_hour in enumerate(density)
        for n in range(frames_in_hour)
    ]
    ingest(stack, org, thing_id, *rows)
    return first_hour


def test_binned_pages_end_at_the_last_complete_bin_and_together_give_every_bin(
    deployment: LocalStack, device: tuple[Org, Device], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, thing = device
    first_hour = hourly_frames(deployment, org, thing.thing_id)
    query = span(first_hour, first_hour + len(HOURLY_DENSITY) * HOUR_MS, binUnit="h", binValue=1)
    unbounded = read(deployment, org.admin_key, events_path(thing.thing_id), query)
    read_at_most(monkeypatch, 5)

    pages = every_page(deployment, org.admin_key, events_path(thing.thing_id), query)

    hours = [[first_hour + h * HOUR_MS for h in page] for page in ([0], [1, 2], [3], [4])]
    assert [timestamps(page) for page in pages] == hours  # a bin cut by the budget waits for the next page
    assert [item for page in pages for item in page["items"]] == unbounded["items"]
    assert len(unbounded["items"]) == len(HOURLY_DENSITY)


@pytest.mark.parametrize("place", [False, True], ids=["thing", "site"])
def test_a_bin_holding_more_frames_than_a_request_may_read_is_400(
    deployment: LocalStack, device: tuple[Org, Device], monkeypatch: pytest.MonkeyPatch, place: bool
) -> None:
    org, thing = device
    first_hour = hourly_frames(deployment, org, thing.thing_id, density=[6])
    read_at_most(monkeypatch, 5)

    path = timeseries_path("Site", thing.site_id) if place else events_path(thing.thing_id)
    response = get(deployment, org.admin_key, path, span(first_hour, first_hour + HOUR_MS, binUnit="h", binValue=1))

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["binValue"]


def test_a_dense_bin_is_400_even_when_its_first_frames_lack_the_selected_metric(
    deployment: LocalStack, device: tuple[Org, Device], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, thing = device
    hour = (now_ms() // HOUR_MS - 8) * HOUR_MS
    rows = [(hour + n * MINUTE_MS, {"Count": n}) for n in range(6)]
    ingest(deployment, org, thing.thing_id, *rows, (hour + 10 * MINUTE_MS, {"Voltage": 1}))
    read_at_most(monkeypatch, 5)

    query = span(hour, hour + HOUR_MS, binUnit="h", binValue=1, selectedFields="Voltage")
    response = get(deployment, org.admin_key, events_path(thing.thing_id), query)

    problem = assert_problem(response, 400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["binValue"]


@pytest.mark.parametrize(
    ("resource_filter", "status"),
    [("PLACE/Site/{site}", 400), ("PLACE/Site/{site}/THING/Battery/#", 200)],
    ids=["3 readable things", "2 readable things"],
)
def test_place_timeseries_cover_at_most_max_place_things_readable_things(
    deployment: LocalStack,
    world: World,
    keys: KeyRing,
    monkeypatch: pytest.MonkeyPatch,
    resource_filter: str,
    status: int,
) -> None:
    monkeypatch.setattr(telemetry_query, "MAX_PLACE_THINGS", 2)
    key = keys("read", resource_filter.format(site=world.site))

    response = get(deployment, key, timeseries_path("Site", world.site), hour_bins(world))

    assert response.status == status, response.body
    if status == 400:
        assert [e["field"] for e in assert_problem(response, 400, "validation_failed")["errors"]] == ["placeId"]
    else:
        assert response.json()["thingCount"] == 2


@pytest.mark.parametrize(
    ("resource_filter", "status"),
    [("PLACE/Site/{lab}/THING/Battery/{r1}", 403), ("PLACE/Site/{site}/THING/Battery/{b1}", 200)],
    ids=["a thing in another site", "a thing in the site"],
)
def test_a_key_scoped_to_one_thing_reads_only_the_timeseries_of_that_things_site(
    deployment: LocalStack, world: World, keys: KeyRing, resource_filter: str, status: int
) -> None:
    key = keys("read", resource_filter.format(site=world.site, lab=world.lab, b1=world.b1, r1=world.r1))

    response = get(deployment, key, timeseries_path("Site", world.site), hour_bins(world))

    if status == 403:
        assert_problem(response, 403, "forbidden_scope")
    else:
        assert ok(response)["thingCount"] == 1


def test_the_fallback_after_an_overwrite_does_not_bring_back_a_value_outside_the_window(
    deployment: LocalStack,
) -> None:
    org = make_org(deployment, "Short Fallback")
    thing = make_device(deployment, org)
    at = now_ms() - MINUTE_MS
    ingest(deployment, org, thing.thing_id, (at - 10 * DAY_MS, {"Voltage": 1}))
    settings = call(deployment, org.admin_key, "PATCH", "/v2/organization/settings", {"telemetryRetentionDays": 5})
    assert settings.status == 200, settings.body
    ingest(deployment, org, thing.thing_id, (at, {"Voltage": 2, "Count": 1}))

    ingest(deployment, org, thing.thing_id, (at, {"Count": 7}))  # the overwrite drops Voltage

    [latest] = [i for i in stored_items(deployment, org) if i["timestamp"] == LATEST_VALUES_TIMESTAMP]
    assert set(latest["latest"]) == {thing.count}  # the 10-day-old Voltage is still stored, not resurrected
    assert at - 10 * DAY_MS in [f["timestamp"] for f in stored(deployment, org)]
    assert latest_of(read(deployment, org.admin_key, summary_path(thing.thing_id)))["Voltage"] == (None, None)


@pytest.mark.parametrize(("frames_between", "found"), [(2, True), (3, False)], ids=["within", "beyond"])
def test_the_fallback_after_an_overwrite_reads_a_bounded_number_of_frames(
    deployment: LocalStack,
    device: tuple[Org, Device],
    monkeypatch: pytest.MonkeyPatch,
    frames_between: int,
    found: bool,
) -> None:
    monkeypatch.setattr(telemetry_table, "FALLBACK_SEARCH_FRAMES", 3)
    org, thing = device
    at = now_ms() - MINUTE_MS
    earlier = at - 10 * MINUTE_MS
    between = [(earlier + (n + 1) * MINUTE_MS, {"Count": n}) for n in range(frames_between)]
    ingest(deployment, org, thing.thing_id, (earlier, {"Voltage": 1}), *between, (at, {"Voltage": 2, "Count": 1}))

    ingest(deployment, org, thing.thing_id, (at, {"Count": 7}))  # the overwrite drops Voltage

    body = read(deployment, org.admin_key, summary_path(thing.thing_id))
    assert latest_of(body)["Voltage"] == ((1.0, earlier) if found else (None, None))
