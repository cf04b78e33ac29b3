"""Telemetry ingest: frames, columns and templates into the org's own table, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from spectra_local.stack import LocalStack
from tests.integration.factories import Org, assert_problem, create_key, scope
from tests.integration.telemetry_support import (
    DAY_MS,
    Device,
    call,
    frames,
    make_device,
    now_ms,
    stored,
    stored_items,
    telemetry_client,
    unprocessed_items,
)


@pytest.fixture
def device(stack: LocalStack, org: Org) -> Device:
    return make_device(stack, org)


def test_frames_are_stored_by_metric_id_with_coerced_values(stack: LocalStack, org: Org, device: Device) -> None:
    ts = now_ms()
    response = call(
        stack,
        org.admin_key,
        "POST",
        f"/v2/things/{device.thing_id}/data",
        frames((ts, {"voltage": "3.7", "COUNT": 2}), (ts - 1000, {"Voltage": 3})),
    )

    assert response.status == 200
    assert response.json()["framesIngested"] == 2
    items = stored(stack, org)
    assert [i["values"] for i in items] == [{device.voltage: 3.0}, {device.voltage: 3.7, device.count: 2}]
    assert items[1]["expiresAt"] == ts // 1000 + 365 * 86_400


def test_the_alias_path_ingests_too(stack: LocalStack, org: Org, device: Device) -> None:
    response = call(stack, org.admin_key, "POST", f"/v2/thing/{device.thing_id}/data", frames((now_ms(), {"Count": 1})))
    assert response.status == 200
    assert len(stored(stack, org)) == 1


def test_every_problem_is_listed_and_nothing_is_written(stack: LocalStack, org: Org, device: Device) -> None:
    ts = now_ms()
    body = frames(
        (ts, {"Voltage": 1.0}),
        (ts - 400 * DAY_MS, {"Voltage": 1.0}),
        (ts + 11 * 60_000, {"Count": 1.5, "humidity": 3}),
    )
    problem = assert_problem(call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", body), 400)

    assert sorted(e["field"] for e in problem["errors"]) == [
        "frames[1].timestamp",
        "frames[2].metrics.Count",
        "frames[2].metrics.humidity",
        "frames[2].timestamp",
    ]
    assert stored(stack, org) == []


@pytest.mark.parametrize(
    "body",
    [
        {"frames": []},
        {"frames": [{"timestamp": 1, "metrics": {}}]},
        {"frames": [{"timestamp": "x", "metrics": {"a": 1}}]},
        {"frames": [{"timestamp": 1, "metrics": {"a": 1}}] * 1001},
        {"rows": []},
    ],
    ids=["no frames", "no metrics", "timestamp not an integer", "over 1000 frames", "wrong shape"],
)
def test_malformed_bodies_are_400(stack: LocalStack, org: Org, device: Device, body: Any) -> None:
    assert_problem(call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", body), 400)


def test_same_timestamp_last_write_wins(stack: LocalStack, org: Org, device: Device) -> None:
    ts = now_ms()
    path = f"/v2/things/{device.thing_id}/data"
    call(stack, org.admin_key, "POST", path, frames((ts, {"Voltage": 1}), (ts, {"Count": 7})))
    assert [i["values"] for i in stored(stack, org)] == [{device.count: 7}]
    call(stack, org.admin_key, "POST", path, frames((ts, {"Voltage": 2})))
    assert [i["values"] for i in stored(stack, org)] == [{device.voltage: 2.0}]


def test_the_orgs_retention_bounds_timestamps_and_expiry(stack: LocalStack, org: Org, device: Device) -> None:
    call(stack, org.admin_key, "PATCH", "/v2/organization/settings", {"telemetryRetentionDays": 7})
    ts = now_ms()
    path = f"/v2/things/{device.thing_id}/data"

    assert_problem(call(stack, org.admin_key, "POST", path, frames((ts - 8 * DAY_MS, {"Count": 1}))), 400)
    assert call(stack, org.admin_key, "POST", path, frames((ts - 6 * DAY_MS, {"Count": 1}))).status == 200
    assert stored(stack, org)[0]["expiresAt"] == (ts - 6 * DAY_MS) // 1000 + 7 * 86_400


def test_columns_become_frames_and_null_cells_are_no_value(stack: LocalStack, org: Org, device: Device) -> None:
    ts = now_ms()
    body = {"columns": ["Timestamp", "Voltage", "count"], "rows": [[ts, 1.5, None], [ts - 1, None, 4]]}
    response = call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data/columnar", body)

    assert response.status == 200
    assert [i["values"] for i in stored(stack, org)] == [{device.count: 4}, {device.voltage: 1.5}]


def test_columnar_shape_problems_are_listed(stack: LocalStack, org: Org, device: Device) -> None:
    path = f"/v2/things/{device.thing_id}/data/columnar"
    no_timestamp = {"columns": ["Voltage", "Count"], "rows": [[1, 2]]}
    bad_rows = {"columns": ["timestamp", "Voltage"], "rows": [[now_ms()], ["x", 1.0], [now_ms(), None]]}

    assert [
        e["field"] for e in assert_problem(call(stack, org.admin_key, "POST", path, no_timestamp), 400)["errors"]
    ] == ["columns"]
    fields = [e["field"] for e in assert_problem(call(stack, org.admin_key, "POST", path, bad_rows), 400)["errors"]]
    assert fields == ["rows[0]", "rows[1].timestamp", "rows[2]"]


def test_template_ingest_writes_and_reports(stack: LocalStack, org: Org, device: Device) -> None:
    spec = {
        "recordsPointer": "/r",
        "timestamp": {"pointer": "/t", "format": "epochMillis"},
        "mappings": [{"pointer": "/v", "metricId": device.voltage}],
    }
    template = call(stack, org.admin_key, "POST", "/v2/templates", {"name": "t", "spec": spec}).json()["templateId"]
    path = f"/v2/things/{device.thing_id}/data/template/{template}"
    payload = {"r": [{"t": now_ms(), "v": "2.5"}, {"t": now_ms() - 5, "v": "x"}]}

    preview = call(stack, org.admin_key, "POST", path, payload, query={"previewOnly": "true"})
    assert preview.status == 200
    assert (preview.json()["previewOnly"], preview.json()["readingsWritten"]) == (True, 1)
    assert stored(stack, org) == []

    written = call(stack, org.admin_key, "POST", path, payload).json()
    assert (written["readingsWritten"], len(written["fieldsInvalid"])) == (1, 1)
    assert [i["values"] for i in stored(stack, org)] == [{device.voltage: 2.5}]


def test_other_orgs_and_deleted_things_are_404(stack: LocalStack, org: Org, other_org: Org, device: Device) -> None:
    body = frames((now_ms(), {"Count": 1}))
    assert_problem(call(stack, other_org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", body), 404)
    call(stack, org.admin_key, "DELETE", f"/v2/things/{device.thing_id}")
    assert_problem(call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", body), 404)


def test_ingest_needs_write_on_the_thing(stack: LocalStack, org: Org, device: Device) -> None:
    body = frames((now_ms(), {"Count": 1}))
    reader = create_key(stack, org.admin_key, scopes=[scope("read")]).secret
    batteries = create_key(stack, org.admin_key, scopes=[scope("write", "THING/Battery/#")]).secret
    meters = create_key(stack, org.admin_key, scopes=[scope("write", "THING/Meter/#")]).secret
    path = f"/v2/things/{device.thing_id}/data"

    assert_problem(call(stack, reader, "POST", path, body), 403, "forbidden_scope")
    assert_problem(call(stack, meters, "POST", path, body), 403, "forbidden_scope")
    assert call(stack, batteries, "POST", path, body).status == 200


def test_idempotent_retry_writes_nothing_twice(stack: LocalStack, org: Org, device: Device) -> None:
    body, path = frames((now_ms(), {"Count": 1})), f"/v2/things/{device.thing_id}/data"
    first = call(stack, org.admin_key, "POST", path, body, headers={"Idempotency-Key": "batch-1"})
    again = call(stack, org.admin_key, "POST", path, body, headers={"Idempotency-Key": "batch-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert len(stored(stack, org)) == 1


def test_unprocessed_items_are_retried_until_all_are_written(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = stack.function("telemetry_ingest").load().ingest._tables
    monkeypatch.setattr(tables, "_sleep", lambda _seconds: None)
    start = now_ms() - 100_000
    body = frames(*((start + i, {"Count": i}) for i in range(60)))

    with unprocessed_items(telemetry_client(stack, "telemetry_ingest", org), hold_back=5) as dynamodb:
        response = call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", body)

    assert response.status == 200
    assert [i["values"][device.count] for i in stored(stack, org)] == list(range(60))  # nothing lost or doubled
    assert dynamodb.kept_back > 0
    assert dynamodb.calls > 3  # 3 batches of 25, each needing more than one call


def test_items_kept_back_past_the_retry_budget_fail_the_request(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = stack.function("telemetry_ingest").load().ingest._tables
    monkeypatch.setattr(tables, "_sleep", lambda _seconds: None)
    body = frames(*((now_ms() - 1000 + i, {"Count": i}) for i in range(3)))

    with unprocessed_items(telemetry_client(stack, "telemetry_ingest", org), hold_back=1, forever=True):
        response = call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", body)

    assert_problem(response, 503, "service_unavailable")


def test_a_thing_deleted_while_its_frames_are_written_keeps_none_of_them(
    stack: LocalStack, org: Org, device: Device
) -> None:
    """The purge of a deleted thing may run before a slow ingest finishes writing: the ingest
    notices the thing is gone, takes back what it wrote and answers 404."""
    import boto3

    from spectra.tenancy import keys
    from spectra.tenancy.context import OrgContext
    from tests.integration.factories import records_table

    records = boto3.client("dynamodb", region_name="us-east-1")
    thing_key = keys.thing_key(OrgContext.for_operator(org.org_id), device.thing_id)

    def delete_the_thing(**_: Any) -> None:
        records.delete_item(
            TableName=records_table(stack), Key={name: {"S": value} for name, value in thing_key.items()}
        )

    client = telemetry_client(stack, "telemetry_ingest", org)
    client.meta.events.register("after-call.dynamodb.BatchWriteItem", delete_the_thing)
    try:
        response = call(
            stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", frames((now_ms(), {"Count": 1}))
        )
    finally:
        client.meta.events.unregister("after-call.dynamodb.BatchWriteItem", delete_the_thing)

    assert_problem(response, 404, "not_found")
    assert [i for i in stored_items(stack, org) if i["thingId"] == device.thing_id] == []
