"""The README's walk-through over HTTP, as a new user follows it: a metric definition, a thing
type, a site, a thing, frames in, a binned query and a summary out; then a shorter retention,
which hides older data at once, and a retention run (``spectra schedule run retention --local``)
that removes it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import RunningRuntime

pytestmark = pytest.mark.e2e

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat().replace("+00:00", "Z")


def created(runtime: RunningRuntime, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = runtime.request("POST", path, key=key, json_body=body)
    assert response.status == 201, response.body
    document: dict[str, Any] = response.json()
    return document


def test_from_metric_definition_to_binned_query_and_retention(runtime: RunningRuntime) -> None:
    org = runtime.spectra("org", "create", "--name", "Quickstart Co", "--local")
    key = str(org["adminKey"])
    metric = created(
        runtime,
        key,
        "/v2/definitions/metrics",
        {"name": "Voltage", "dataType": "Double", "defaultAggregation": "Avg", "unitLabel": "V"},
    )
    thing_type = created(
        runtime, key, "/v2/definitions/thing-types", {"displayName": "Battery", "metricIds": [metric["metricId"]]}
    )
    site = created(
        runtime, key, "/v2/sites", {"siteName": "HQ", "address": "1 Main St", "latitude": 51.5, "longitude": -0.1}
    )
    thing = created(
        runtime,
        key,
        f"/v2/sites/{site['siteId']}/things",
        {"thingName": "battery-1", "thingTypeId": thing_type["thingTypeId"]},
    )
    thing_id = thing["thingId"]

    now = int(time.time() * 1000)
    this_hour = now - now % HOUR_MS
    old = this_hour - 3 * DAY_MS  # an hour three days ago, still inside the default 365 days
    frames = [
        {"timestamp": old, "metrics": {"voltage": 3.5}},
        {"timestamp": old + 60_000, "metrics": {"voltage": 3.7}},
        {"timestamp": this_hour, "metrics": {"voltage": 3.6}},
        {"timestamp": this_hour + 60_000, "metrics": {"voltage": 3.8}},
    ]
    ingested = runtime.request("POST", f"/v2/things/{thing_id}/data", key=key, json_body={"frames": frames})
    assert ingested.status == 200, ingested.body
    assert ingested.json()["framesIngested"] == 4

    window = {"startTime": iso(old), "endTime": iso(this_hour + HOUR_MS), "binUnit": "h", "binValue": 1}
    binned = runtime.request("GET", f"/v2/things/{thing_id}/events", key=key, query=window)
    assert binned.status == 200, binned.body
    document = binned.json()
    assert document["metrics"] == [
        {"metricId": metric["metricId"], "name": "Voltage", "dataType": "Double", "aggregation": "Avg"}
    ]
    assert document["items"] == [
        {"timestamp": old, "metrics": {"Voltage": pytest.approx(3.6)}},
        {"timestamp": this_hour, "metrics": {"Voltage": pytest.approx(3.7)}},
    ]
    assert document["hasMore"] is False

    summary = runtime.request("GET", f"/v2/things/{thing_id}/summary", key=key).json()
    assert summary["metrics"][0]["value"] == pytest.approx(3.8)
    assert summary["metrics"][0]["timestamp"] == this_hour + 60_000

    shortened = runtime.request("PATCH", "/v2/organization/settings", key=key, json_body={"telemetryRetentionDays": 1})
    assert shortened.status == 200, shortened.body
    assert "purged by the next retention run" in shortened.json()["message"]
    after = runtime.request("GET", f"/v2/things/{thing_id}/events", key=key, query=window).json()
    assert [item["timestamp"] for item in after["items"]] == [this_hour]  # hidden at once

    run = runtime.spectra("schedule", "run", "retention", "--local")
    assert run["result"]["itemsPurged"] >= 2
    assert run["result"]["complete"] is True
    again = runtime.spectra("schedule", "run", "retention", "--local")
    assert again["result"]["itemsPurged"] == 0  # the day's pass is done; nothing twice
