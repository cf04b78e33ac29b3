"""The retention job: each org's telemetry kept exactly as long as its current window.

Old telemetry is made the only way a client can: ingested while the org keeps the default 365
days, with timestamps days in the past, and then the window is shortened through the settings
route. The job runs as EventBridge runs it (the ``retention`` function with a scheduled event),
or directly with a budget or clock of the test's choosing where time is the subject.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from spectra.deployment import org_sessions
from spectra.models.common import from_iso
from spectra.telemetry.retention import Budget, RetentionFailed, RetentionJob
from spectra.telemetry.table import LATEST_VALUES_TIMESTAMP
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra_local.schedules import scheduled_event
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import raw_record
from tests.integration.factories import Org, counting_calls, records_table
from tests.integration.place_factories import make_thing
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
    telemetry_client,
    unprocessed_items,
)

SETTINGS = "/v2/organization/settings"
DAY_SECONDS = 86_400
THINGS_PER_CHECKPOINT = 25  # the job checkpoints after each page of this many things
UNKNOWN_THING = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"


@pytest.fixture
def device(stack: LocalStack, org: Org) -> Device:
    return make_device(stack, org)


# -- helpers ------------------------------------------------------------------------------------


def run_retention(stack: LocalStack) -> dict[str, Any]:
    """One invocation of the retention function, as its EventBridge schedule makes it."""
    report: dict[str, Any] = stack.function("retention").invoke(scheduled_event("ContinuePass", region=stack.region))
    return report


def retention_job(stack: LocalStack) -> RetentionJob:
    """The job the retention function's container built (to run it with a chosen budget)."""
    job = stack.function("retention").load().job
    assert isinstance(job, RetentionJob)
    return job


def set_retention(stack: LocalStack, org: Org, days: int) -> dict[str, Any]:
    response = call(stack, org.admin_key, "PATCH", SETTINGS, {"telemetryRetentionDays": days})
    assert response.status == 200, response.body
    change: dict[str, Any] = response.json()
    return change


def ingest(stack: LocalStack, org: Org, thing_id: str, *timestamps: int) -> None:
    """One frame (a ``Count`` value) at each of ``timestamps``."""
    body = frames(*((ts, {"Count": index}) for index, ts in enumerate(timestamps)))
    response = call(stack, org.admin_key, "POST", f"/v2/things/{thing_id}/data", body)
    assert response.status == 200, response.body


def frame_times(stack: LocalStack, org: Org, thing_id: str | None = None) -> list[int]:
    """The timestamps of the stored frames (of one thing, or all), oldest first."""
    return [f["timestamp"] for f in stored(stack, org) if thing_id is None or f["thingId"] == thing_id]


def expiries(stack: LocalStack, org: Org) -> dict[int, int]:
    """Each stored frame's ``expiresAt``, by timestamp."""
    return {f["timestamp"]: f["expiresAt"] for f in stored(stack, org)}


def items_of(stack: LocalStack, org: Org, thing_id: str) -> list[dict[str, Any]]:
    """Every stored item of a thing: frames and its latest-values item."""
    return [item for item in stored_items(stack, org) if item["thingId"] == thing_id]


def latest_values_item(stack: LocalStack, org: Org, thing_id: str) -> dict[str, Any]:
    [item] = [i for i in items_of(stack, org, thing_id) if i["timestamp"] == LATEST_VALUES_TIMESTAMP]
    return item


def iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events(stack: LocalStack, org: Org, thing_id: str, start: int, end: int, **extra: Any) -> list[int]:
    """The item timestamps ``GET /things/{id}/events`` returns for ``[start, end)``."""
    query = {"startTime": iso(start), "endTime": iso(end), **{name: str(value) for name, value in extra.items()}}
    response = stack.request("GET", f"/v2/things/{thing_id}/events", key=org.admin_key, query=query)
    assert response.status == 200, response.body
    return [item["timestamp"] for item in response.json()["items"]]


def operator(org: Org) -> OrgContext:
    return OrgContext.for_operator(org.org_id)


def profile(stack: LocalStack, org: Org) -> dict[str, Any]:
    record = raw_record(stack, keys.org_profile_key(operator(org)))
    assert record is not None
    return record


def checkpoint(stack: LocalStack, org: Org) -> dict[str, Any] | None:
    return raw_record(stack, keys.retention_checkpoint_key(operator(org)))


def telemetry_queries(stack: LocalStack, org: Org) -> Any:
    """Record the Query calls the job makes on the org's telemetry table."""
    return counting_calls(telemetry_client(stack, "retention", org), "Query")


def queried_things(queries: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(query["ExpressionAttributeValues"][":thing"]["S"]) for query in queries)


def thing_events_queue(stack: LocalStack) -> str:
    return stack.environment("retention")["THING_EVENTS_QUEUE_URL"]


def send_thing_event(stack: LocalStack, body: str) -> None:
    boto3.client("sqs").send_message(QueueUrl=thing_events_queue(stack), MessageBody=body)


def thing_deleted(org_id: str, thing_id: str) -> str:
    return json.dumps({"type": "ThingDeleted", "orgId": org_id, "thingId": thing_id})


def messages_left(stack: LocalStack) -> int:
    """Messages still on the thing-events queue, waiting or received but not deleted."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=thing_events_queue(stack),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def outbox(stack: LocalStack, org: Org) -> list[dict[str, Any]]:
    response = boto3.client("dynamodb").query(
        TableName=records_table(stack),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.outbox_partition(operator(org))}},
    )
    return list(response["Items"])


def refuse_sends(monkeypatch: pytest.MonkeyPatch, stack: LocalStack, times: int) -> None:
    """The first ``times`` ThingDeleted sends fail (SQS unavailable); later ones go through."""
    sqs = stack.function("things").load().things._events._sqs
    send = sqs.send_message
    refused: list[dict[str, Any]] = []

    def flaky_send(**kwargs: Any) -> Any:
        if len(refused) < times:
            refused.append(kwargs)
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
        return send(**kwargs)

    monkeypatch.setattr(sqs, "send_message", flaky_send)


@contextmanager
def failing_call(client: Any, operation: str, *, on_call: int = 1) -> Iterator[list[str]]:
    """The ``on_call``-th ``operation`` call of ``client`` fails, as during a DynamoDB outage."""
    seen: list[str] = []

    def fail(**_: Any) -> None:
        seen.append(operation)
        if len(seen) == on_call:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "simulated"}}, operation)

    event = f"before-call.dynamodb.{operation}"
    client.meta.events.register(event, fail)
    try:
        yield seen
    finally:
        client.meta.events.unregister(event, fail)


@contextmanager
def api_calls_refusing_scans() -> Iterator[list[tuple[str, str]]]:
    """Record every AWS call any client makes in the block; a Scan fails the test at once."""
    original = BaseClient.__dict__["_make_api_call"]
    made: list[tuple[str, str]] = []

    def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        made.append((client.meta.service_model.service_name, operation_name))
        if operation_name == "Scan":
            raise AssertionError(f"Scan called with {api_params}")
        return original(client, operation_name, api_params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", make_api_call)
        yield made


def spent_after_first_checkpoint(monkeypatch: pytest.MonkeyPatch, job: RetentionJob) -> Budget:
    """A budget whose time runs out as soon as the job has checkpointed one page of things."""
    saves: list[dict[str, Any]] = []
    save = job._checkpoints.save

    def counting_save(org: OrgContext, owner: str, checkpoint: Any, *, lease_until: int) -> bool:
        saves.append(dict(checkpoint))
        return save(org, owner, checkpoint, lease_until=lease_until)

    monkeypatch.setattr(job._checkpoints, "save", counting_save)
    return Budget(lambda: 0 if saves else 600_000, reserve_ms=0)


@dataclass(frozen=True)
class EmittedMetric:
    name: str
    unit: str
    value: float
    org_id: str


def emitted_org_metrics(output: str) -> list[EmittedMetric]:
    """The per-org metrics in the Embedded Metric Format lines a run printed."""
    found: list[EmittedMetric] = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if not any("orgId" in dimensions for dimensions in directive["Dimensions"]):
                continue
            for metric in directive["Metrics"]:
                [value] = record[metric["Name"]]
                found.append(EmittedMetric(metric["Name"], metric["Unit"], float(value), str(record["orgId"])))
    return found


# -- shortening ---------------------------------------------------------------------------------


def test_shortening_hides_older_telemetry_from_reads_at_once(stack: LocalStack, org: Org, device: Device) -> None:
    now = now_ms()
    old, recent = now - 40 * DAY_MS, now - 10 * DAY_MS
    ingest(stack, org, device.thing_id, old, recent)
    assert events(stack, org, device.thing_id, old - HOUR_MS, old + HOUR_MS) == [old]

    set_retention(stack, org, 30)

    assert events(stack, org, device.thing_id, old - HOUR_MS, old + HOUR_MS) == []
    binned = events(stack, org, device.thing_id, now - 60 * DAY_MS, now, binUnit="d", binValue=1)
    assert binned == [recent - recent % DAY_MS]
    assert old in frame_times(stack, org)  # still stored: reads alone keep it out of sight


def test_one_run_purges_what_fell_outside_a_shortened_window(stack: LocalStack, org: Org, device: Device) -> None:
    now = now_ms()
    ingest(stack, org, device.thing_id, now - 40 * DAY_MS, now - 31 * DAY_MS, now - 29 * DAY_MS, now - MINUTE_MS)
    inside = [f for f in stored(stack, org) if f["timestamp"] >= now - 29 * DAY_MS]
    latest = latest_values_item(stack, org, device.thing_id)
    set_retention(stack, org, 30)

    report = run_retention(stack)

    assert (report["itemsPurged"], report["complete"]) == (2, True)
    assert stored(stack, org) == inside  # the frames inside the window, untouched
    assert latest_values_item(stack, org, device.thing_id) == latest


def test_latest_values_older_than_the_window_are_dropped_too(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = now_ms()
    old_voltage = frames((now - 40 * DAY_MS, {"Voltage": 3.1}))
    assert call(stack, org.admin_key, "POST", f"/v2/things/{device.thing_id}/data", old_voltage).status == 200
    ingest(stack, org, device.thing_id, now - MINUTE_MS)  # Count, inside any window
    set_retention(stack, org, 30)

    run_retention(stack)

    latest = latest_values_item(stack, org, device.thing_id)["latest"]
    assert set(latest) == {device.count}  # Voltage's newest value was older than the window

    set_retention(stack, org, 1)
    assert frame_times(stack, org) == [now - MINUTE_MS]
    job = retention_job(stack)
    monkeypatch.setattr(job, "_clock", lambda: datetime.fromtimestamp((now + 2 * DAY_MS) / 1000, UTC))
    job.run(Budget.unlimited())
    assert items_of(stack, org, device.thing_id) == []  # no value left: the item goes too


def test_shortening_never_moves_an_expiry_earlier(stack: LocalStack, org: Org, device: Device) -> None:
    ts = now_ms() - 10 * DAY_MS
    ingest(stack, org, device.thing_id, ts - 30 * DAY_MS, ts)
    set_retention(stack, org, 30)

    report = run_retention(stack)

    assert report["itemsPurged"] == 1
    assert expiries(stack, org) == {ts: ts // 1000 + 365 * DAY_SECONDS}


def test_each_org_is_kept_to_its_own_window(stack: LocalStack, org: Org, other_org: Org, device: Device) -> None:
    other = make_device(stack, other_org)
    now = now_ms()
    times = [now - 40 * DAY_MS, now - 20 * DAY_MS, now - MINUTE_MS]
    ingest(stack, org, device.thing_id, *times)
    ingest(stack, other_org, other.thing_id, *times)
    set_retention(stack, org, 30)
    set_retention(stack, other_org, 10)

    report = run_retention(stack)

    assert (report["orgsCompleted"], report["itemsPurged"]) == (2, 3)
    assert frame_times(stack, org) == times[1:]
    assert frame_times(stack, other_org) == times[2:]


# -- lengthening --------------------------------------------------------------------------------


def test_lengthening_restamps_every_frame_inside_the_new_window(stack: LocalStack, org: Org, device: Device) -> None:
    set_retention(stack, org, 30)
    now = now_ms()
    times = [now - 20 * DAY_MS, now - DAY_MS, now + 5 * MINUTE_MS]  # ingest takes frames up to 10 minutes ahead
    ingest(stack, org, device.thing_id, *times)
    assert expiries(stack, org) == {ts: ts // 1000 + 30 * DAY_SECONDS for ts in times}
    set_retention(stack, org, 60)

    report = run_retention(stack)

    assert report["itemsRestamped"] == 3
    assert expiries(stack, org) == {ts: ts // 1000 + 60 * DAY_SECONDS for ts in times}  # and nothing lost


def test_a_complete_pass_clears_the_restamp_mark(stack: LocalStack, org: Org, device: Device) -> None:
    set_retention(stack, org, 30)
    ingest(stack, org, device.thing_id, now_ms() - DAY_MS)
    set_retention(stack, org, 60)
    assert "telemetryRestampSince" in profile(stack, org)

    run_retention(stack)

    assert "telemetryRestampSince" not in profile(stack, org)


def test_lengthening_back_before_a_run_keeps_what_is_inside_the_window_again(
    stack: LocalStack, org: Org, device: Device
) -> None:
    ts = now_ms() - 45 * DAY_MS
    ingest(stack, org, device.thing_id, ts)
    set_retention(stack, org, 30)
    set_retention(stack, org, 60)

    report = run_retention(stack)

    assert report["itemsPurged"] == 0
    assert expiries(stack, org) == {ts: ts // 1000 + 365 * DAY_SECONDS}  # kept, expiry not moved earlier
    assert events(stack, org, device.thing_id, ts, ts + 1) == [ts]


def test_lengthening_again_before_the_pass_restamps_to_the_newest_window(
    stack: LocalStack, org: Org, device: Device
) -> None:
    set_retention(stack, org, 30)
    ts = now_ms() - DAY_MS
    ingest(stack, org, device.thing_id, ts)
    first = set_retention(stack, org, 60)
    set_retention(stack, org, 90)
    assert from_iso(profile(stack, org)["telemetryRestampSince"]) == from_iso(first["effectiveFrom"])

    run_retention(stack)

    assert expiries(stack, org) == {ts: ts // 1000 + 90 * DAY_SECONDS}
    assert "telemetryRestampSince" not in profile(stack, org)


def test_a_restamp_pass_that_fails_keeps_the_mark_for_the_next_run(stack: LocalStack, org: Org, device: Device) -> None:
    set_retention(stack, org, 30)
    times = [now_ms() - 2 * DAY_MS, now_ms() - DAY_MS]
    ingest(stack, org, device.thing_id, *times)
    set_retention(stack, org, 60)

    with failing_call(telemetry_client(stack, "retention", org), "UpdateItem"), pytest.raises(RetentionFailed):
        run_retention(stack)
    assert "telemetryRestampSince" in profile(stack, org)
    run_retention(stack)

    assert expiries(stack, org) == {ts: ts // 1000 + 60 * DAY_SECONDS for ts in times}
    assert "telemetryRestampSince" not in profile(stack, org)


def test_lengthening_while_a_pass_runs_keeps_the_mark_until_a_pass_restamps_to_it(
    stack: LocalStack, org: Org, device: Device
) -> None:
    set_retention(stack, org, 30)
    ts = now_ms() - DAY_MS
    ingest(stack, org, device.thing_id, ts)
    set_retention(stack, org, 60)
    changed: list[dict[str, Any]] = []

    def lengthen_meanwhile(**_: Any) -> None:
        if not changed:
            changed.append(set_retention(stack, org, 90))

    client = telemetry_client(stack, "retention", org)
    client.meta.events.register("before-call.dynamodb.UpdateItem", lengthen_meanwhile)
    try:
        run_retention(stack)
    finally:
        client.meta.events.unregister("before-call.dynamodb.UpdateItem", lengthen_meanwhile)
    assert changed
    assert "telemetryRestampSince" in profile(stack, org)  # that pass re-stamped to 60 days, not 90
    run_retention(stack)

    assert expiries(stack, org) == {ts: ts // 1000 + 90 * DAY_SECONDS}
    assert "telemetryRestampSince" not in profile(stack, org)


# -- what the settings change says --------------------------------------------------------------


def test_shortening_states_the_cutoff_and_the_purge_and_marks_nothing(stack: LocalStack, org: Org) -> None:
    change = set_retention(stack, org, 30)

    cutoff = from_iso(change["purgeCutoff"])
    assert from_iso(change["effectiveFrom"]) - cutoff == timedelta(days=30)
    assert change["purgeCutoff"] in change["message"]
    assert "no longer returned" in change["message"]
    assert "purged by the next retention run" in change["message"]
    assert "telemetryRestampSince" not in profile(stack, org)


def test_lengthening_says_data_is_kept_and_marks_it_for_restamping_in_the_same_write(
    stack: LocalStack, org: Org
) -> None:
    set_retention(stack, org, 30)
    stack.function("organization").load()
    records = org_sessions().client(operator(org), "dynamodb")

    with counting_calls(records, "UpdateItem") as updates:
        change = set_retention(stack, org, 60)

    assert change["purgeCutoff"] is None
    assert change["previousTelemetryRetentionDays"] == 30
    assert "kept for 60 days" in change["message"]
    assert from_iso(profile(stack, org)["telemetryRestampSince"]) == from_iso(change["effectiveFrom"])
    [write] = [u for u in updates if "telemetryRetentionDays" in u["UpdateExpression"]]
    assert "telemetryRestampSince" in write["UpdateExpression"]


# -- deleted things -----------------------------------------------------------------------------


def test_a_deleted_things_telemetry_is_purged_by_the_next_run(stack: LocalStack, org: Org, device: Device) -> None:
    kept = make_thing(stack, org.admin_key, "Site", device.site_id, device.type_id, thingName="kept")["thingId"]
    now = now_ms()
    ingest(stack, org, device.thing_id, now - 3 * DAY_MS, now - MINUTE_MS)
    ingest(stack, org, kept, now - 3 * DAY_MS, now - MINUTE_MS)
    kept_items = items_of(stack, org, kept)
    assert stack.request("DELETE", f"/v2/things/{device.thing_id}", key=org.admin_key).status == 204

    report = run_retention(stack)

    assert (report["deletedThingsPurged"], report["deletedThingItemsPurged"]) == (1, 3)  # 2 frames, latest values
    assert items_of(stack, org, device.thing_id) == []
    assert items_of(stack, org, kept) == kept_items
    assert messages_left(stack) == 0


def test_a_thing_deleted_event_left_in_the_outbox_is_sent_again_and_then_purged(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(stack, org, device.thing_id, now_ms() - MINUTE_MS)
    refuse_sends(monkeypatch, stack, times=1)
    assert stack.request("DELETE", f"/v2/things/{device.thing_id}", key=org.admin_key).status == 204
    assert (len(outbox(stack, org)), messages_left(stack)) == (1, 0)

    resent = run_retention(stack)

    assert resent["outboxResent"] == 1
    assert (outbox(stack, org), messages_left(stack)) == ([], 1)
    purged = run_retention(stack)
    assert purged["deletedThingsPurged"] == 1
    assert items_of(stack, org, device.thing_id) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(["ThingDeleted"]),
        json.dumps({"type": "ThingCreated", "orgId": "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84", "thingId": "x"}),
        json.dumps({"type": "ThingDeleted", "orgId": "ORG#x", "thingId": UNKNOWN_THING}),
        json.dumps({"type": "ThingDeleted", "orgId": "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84"}),
    ],
    ids=["not-json", "not-an-object", "other-type", "malformed-org", "no-thing"],
)
def test_an_unreadable_thing_event_stays_on_the_queue_for_the_dead_letter_queue(
    stack: LocalStack, org: Org, body: str
) -> None:
    send_thing_event(stack, body)
    send_thing_event(stack, thing_deleted(org.org_id, UNKNOWN_THING))  # readable: consumed beside it

    report = run_retention(stack)

    assert report["deletedThingsPurged"] == 1
    assert messages_left(stack) == 1  # the unreadable one, not deleted: retried, then dead-lettered


def test_an_event_for_a_thing_that_still_exists_purges_nothing(stack: LocalStack, org: Org, device: Device) -> None:
    ingest(stack, org, device.thing_id, now_ms() - MINUTE_MS)
    before = stored_items(stack, org)
    send_thing_event(stack, thing_deleted(org.org_id, device.thing_id))

    report = run_retention(stack)

    assert report["deletedThingItemsPurged"] == 0
    assert stored_items(stack, org) == before
    assert messages_left(stack) == 0


def test_an_event_pairing_an_org_with_another_orgs_thing_purges_nothing(
    stack: LocalStack, org: Org, other_org: Org, device: Device
) -> None:
    theirs = make_device(stack, other_org)
    ingest(stack, other_org, theirs.thing_id, now_ms() - MINUTE_MS)
    before = stored_items(stack, other_org)
    send_thing_event(stack, thing_deleted(org.org_id, theirs.thing_id))

    report = run_retention(stack)

    assert report["deletedThingItemsPurged"] == 0
    assert stored_items(stack, other_org) == before
    assert messages_left(stack) == 0


@contextmanager
def received_thing_events(stack: LocalStack) -> Iterator[list[dict[str, Any]]]:
    """Every message the retention job receives from the thing-events queue in the block."""
    sqs = stack.function("retention").load().sqs
    received: list[dict[str, Any]] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        received.extend(parsed.get("Messages", []))

    sqs.meta.events.register("after-call.sqs.ReceiveMessage", record)
    try:
        yield received
    finally:
        sqs.meta.events.unregister("after-call.sqs.ReceiveMessage", record)


def hidden_period_over(stack: LocalStack, messages: list[dict[str, Any]]) -> None:
    """What 15 minutes do to messages received and kept: they are visible again."""
    for message in messages:
        boto3.client("sqs").change_message_visibility(
            QueueUrl=thing_events_queue(stack), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def spent_after_a_batch(batches: list[dict[str, Any]]) -> Budget:
    """A budget whose time runs out once ``batches`` (recorded writes) holds one."""
    return Budget(lambda: 0 if batches else 600_000, reserve_ms=0)


def test_thing_events_stay_hidden_for_as_long_as_a_run_may_take(stack: LocalStack, org: Org) -> None:
    send_thing_event(stack, thing_deleted(org.org_id, UNKNOWN_THING))

    with counting_calls(stack.function("retention").load().sqs, "ReceiveMessage") as receives:
        run_retention(stack)

    timeout = int(stack.function("retention").spec.properties["Timeout"])
    assert receives
    assert {receive["VisibilityTimeout"] for receive in receives} == {timeout}


def test_a_deleted_things_purge_that_fails_keeps_its_message_and_fails_no_orgs_pass(
    stack: LocalStack, org: Org, other_org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = make_device(stack, other_org)
    now = now_ms()
    ingest(stack, org, device.thing_id, *(now - HOUR_MS + n * 1000 for n in range(30)))
    ingest(stack, other_org, theirs.thing_id, now - 40 * DAY_MS, now - MINUTE_MS)
    set_retention(stack, other_org, 30)
    assert stack.request("DELETE", f"/v2/things/{device.thing_id}", key=org.admin_key).status == 204
    monkeypatch.setattr(retention_job(stack)._tables, "_sleep", lambda _seconds: None)

    with (
        received_thing_events(stack) as received,
        unprocessed_items(telemetry_client(stack, "retention", org), hold_back=1, forever=True),
    ):
        failed = run_retention(stack)

    assert (failed["deletedThingsPurged"], failed["complete"], failed["orgsCompleted"]) == (0, True, 2)
    assert frame_times(stack, other_org) == [now - MINUTE_MS]
    assert messages_left(stack) == 1  # received, not deleted
    hidden_period_over(stack, received)
    purged = run_retention(stack)
    assert purged["deletedThingsPurged"] == 1
    assert items_of(stack, org, device.thing_id) == []
    assert messages_left(stack) == 0


def test_a_deleted_things_purge_out_of_time_keeps_its_message_and_the_next_run_finishes_it(
    stack: LocalStack, org: Org, device: Device
) -> None:
    now = now_ms()
    ingest(stack, org, device.thing_id, *(now - HOUR_MS + n * 1000 for n in range(60)))
    items = len(items_of(stack, org, device.thing_id))  # 60 frames and the latest values
    assert stack.request("DELETE", f"/v2/things/{device.thing_id}", key=org.admin_key).status == 204
    job = retention_job(stack)

    with (
        received_thing_events(stack) as received,
        counting_calls(telemetry_client(stack, "retention", org), "BatchWriteItem") as batches,
    ):
        first = job.run(spent_after_a_batch(batches))

    assert first.deleted_things_purged == 0
    assert len(items_of(stack, org, device.thing_id)) == items - 25  # what was deleted stays deleted
    assert messages_left(stack) == 1
    hidden_period_over(stack, received)
    second = run_retention(stack)
    assert (second["deletedThingsPurged"], second["deletedThingItemsPurged"]) == (1, items - 25)
    assert items_of(stack, org, device.thing_id) == []
    assert messages_left(stack) == 0


# -- interrupted runs ---------------------------------------------------------------------------


def test_a_run_out_of_time_checkpoints_and_the_next_run_continues_without_redoing(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    more = [
        make_thing(stack, org.admin_key, "Site", device.site_id, device.type_id, thingName=f"t{n}")["thingId"]
        for n in range(THINGS_PER_CHECKPOINT + 4)
    ]
    things = [device.thing_id, *more]
    now = now_ms()
    for thing_id in things:
        ingest(stack, org, thing_id, now - 40 * DAY_MS, now - MINUTE_MS)
    set_retention(stack, org, 30)
    job = retention_job(stack)

    with telemetry_queries(stack, org) as queries:
        first = job.run(spent_after_first_checkpoint(monkeypatch, job))
        saved = checkpoint(stack, org)
        monkeypatch.undo()
        second = run_retention(stack)

    assert (first.complete, first.orgs_pending, first.items_purged) == (False, 1, THINGS_PER_CHECKPOINT)
    assert saved is not None
    assert (saved["done"], saved["purged"], saved["leaseUntil"]) == (False, THINGS_PER_CHECKPOINT, 0)
    assert saved["resumeAfter"]
    assert (second["complete"], second["itemsPurged"]) == (True, len(things) - THINGS_PER_CHECKPOINT)
    assert queried_things(queries) == Counter(dict.fromkeys(things, 1))  # every thing read once, none again
    assert frame_times(stack, org) == [now - MINUTE_MS] * len(things)


def test_a_run_that_fails_midway_raises_and_the_next_run_finishes(stack: LocalStack, org: Org, device: Device) -> None:
    now = now_ms()
    old = [now - 40 * DAY_MS + n * 1000 for n in range(60)]
    recent = [now - MINUTE_MS + n * 1000 for n in range(3)]
    ingest(stack, org, device.thing_id, *old, *recent)
    latest = latest_values_item(stack, org, device.thing_id)
    set_retention(stack, org, 30)

    with (
        failing_call(telemetry_client(stack, "retention", org), "BatchWriteItem", on_call=2),
        pytest.raises(RetentionFailed),
    ):
        run_retention(stack)
    interrupted = checkpoint(stack, org)
    assert interrupted is not None
    assert (interrupted["done"], interrupted["leaseUntil"]) == (False, 0)  # the next container may take over
    assert len(frame_times(stack, org)) == len(old) - 25 + len(recent)  # one batch of 25 went
    report = run_retention(stack)

    assert (report["complete"], report["itemsPurged"]) == (True, len(old) - 25)
    assert frame_times(stack, org) == recent  # nothing lost, nothing left behind
    assert latest_values_item(stack, org, device.thing_id) == latest


def test_what_a_failing_run_purged_counts_in_the_pass_total(stack: LocalStack, org: Org, device: Device) -> None:
    now = now_ms()
    old = [now - 40 * DAY_MS + n * 1000 for n in range(60)]
    ingest(stack, org, device.thing_id, *old)
    set_retention(stack, org, 30)
    with (
        failing_call(telemetry_client(stack, "retention", org), "BatchWriteItem", on_call=2),
        pytest.raises(RetentionFailed),
    ):
        run_retention(stack)

    run_retention(stack)

    finished = checkpoint(stack, org)
    assert finished is not None
    assert (finished["done"], finished["purged"]) == (True, len(old))


def test_an_org_whose_pass_another_run_holds_is_left_to_that_run(stack: LocalStack, org: Org, device: Device) -> None:
    ingest(stack, org, device.thing_id, now_ms() - 40 * DAY_MS)
    set_retention(stack, org, 30)
    claimed = retention_job(stack)._checkpoints.claim(operator(org), "another-run", int(time.time()), 900)
    assert claimed is not None

    with telemetry_queries(stack, org) as queries:
        report = run_retention(stack)

    assert (report["complete"], report["orgsPending"], report["itemsPurged"]) == (False, 1, 0)
    assert queries == []


def another_container(job: RetentionJob) -> RetentionJob:
    """The same job in another container: its own lease owner."""
    other = copy.copy(job)
    other._owner = "another-container"
    return other


def test_a_run_out_of_time_between_batches_of_one_things_deletes_leaves_the_org_to_the_next_run(
    stack: LocalStack, org: Org, device: Device
) -> None:
    now = now_ms()
    old = [now - 40 * DAY_MS + n * 1000 for n in range(60)]
    recent = [now - MINUTE_MS + n * 1000 for n in range(3)]
    ingest(stack, org, device.thing_id, *old, *recent)
    latest = latest_values_item(stack, org, device.thing_id)
    set_retention(stack, org, 30)
    job = retention_job(stack)

    with counting_calls(telemetry_client(stack, "retention", org), "BatchWriteItem") as batches:
        first = job.run(spent_after_a_batch(batches))

    assert (first.complete, first.orgs_pending, first.items_purged) == (False, 1, 25)
    interrupted = checkpoint(stack, org)
    assert interrupted is not None
    assert (interrupted["done"], interrupted["leaseUntil"]) == (False, 0)
    assert frame_times(stack, org) == old[25:] + recent
    second = another_container(job).run(Budget.unlimited())  # the lease is free at once
    assert (second.complete, second.orgs_completed, second.items_purged) == (True, 1, len(old) - 25)
    assert frame_times(stack, org) == recent
    assert latest_values_item(stack, org, device.thing_id) == latest


def test_a_run_out_of_time_while_restamping_leaves_the_rest_and_the_mark_to_the_next_run(
    stack: LocalStack, org: Org, device: Device
) -> None:
    set_retention(stack, org, 30)
    now = now_ms()
    times = [now - DAY_MS + n * 1000 for n in range(60)]
    ingest(stack, org, device.thing_id, *times)
    set_retention(stack, org, 60)
    job = retention_job(stack)

    with counting_calls(telemetry_client(stack, "retention", org), "UpdateItem") as restamps:
        first = job.run(spent_after_a_batch(restamps))

    assert (first.complete, first.orgs_pending, first.items_restamped) == (False, 1, 25)
    assert "telemetryRestampSince" in profile(stack, org)
    second = another_container(job).run(Budget.unlimited())
    assert (second.complete, second.items_restamped) == (True, len(times) - 25)
    assert expiries(stack, org) == {ts: ts // 1000 + 60 * DAY_SECONDS for ts in times}
    assert "telemetryRestampSince" not in profile(stack, org)


# -- once a day ---------------------------------------------------------------------------------


def test_a_second_run_the_same_day_does_nothing(stack: LocalStack, org: Org, device: Device) -> None:
    ingest(stack, org, device.thing_id, now_ms() - 40 * DAY_MS, now_ms() - MINUTE_MS)
    set_retention(stack, org, 30)
    run_retention(stack)

    with telemetry_queries(stack, org) as queries:
        report = run_retention(stack)

    assert (report["itemsPurged"], report["orgsCompleted"], report["complete"]) == (0, 0, True)
    assert queries == []


def test_a_second_run_the_same_day_after_a_lengthening_does_nothing(
    stack: LocalStack, org: Org, device: Device
) -> None:
    set_retention(stack, org, 30)
    ingest(stack, org, device.thing_id, now_ms() - DAY_MS)
    set_retention(stack, org, 60)
    run_retention(stack)

    with telemetry_queries(stack, org) as queries:
        report = run_retention(stack)

    assert report["orgsCompleted"] == 0
    assert queries == []


def test_a_new_day_starts_a_new_pass(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = now_ms()
    leaving = now - 30 * DAY_MS + 12 * HOUR_MS  # inside the window today, outside it tomorrow
    ingest(stack, org, device.thing_id, leaving, now - MINUTE_MS)
    set_retention(stack, org, 30)
    today = run_retention(stack)
    assert today["itemsPurged"] == 0
    job = retention_job(stack)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    monkeypatch.setattr(job, "_clock", lambda: tomorrow)

    report = job.run(Budget.unlimited())

    assert report.pass_date > today["passDate"]
    assert (report.orgs_completed, report.items_purged) == (1, 1)
    assert frame_times(stack, org) == [now - MINUTE_MS]


def test_a_retention_change_later_the_same_day_starts_a_new_pass(stack: LocalStack, org: Org, device: Device) -> None:
    now = now_ms()
    ingest(stack, org, device.thing_id, now - 20 * DAY_MS, now - MINUTE_MS)
    assert run_retention(stack)["itemsPurged"] == 0
    set_retention(stack, org, 10)

    report = run_retention(stack)

    assert (report["orgsCompleted"], report["itemsPurged"]) == (1, 1)
    assert frame_times(stack, org) == [now - MINUTE_MS]


# -- organizations ------------------------------------------------------------------------------


def test_a_deleted_org_is_skipped(stack: LocalStack, org: Org, other_org: Org, device: Device) -> None:
    theirs = make_device(stack, other_org)
    ingest(stack, other_org, theirs.thing_id, now_ms() - MINUTE_MS)
    stack.provision({"action": "delete_org", "orgId": other_org.org_id, "confirm": other_org.org_id})

    report = run_retention(stack)

    assert (report["complete"], report["orgsChecked"], report["orgsCompleted"]) == (True, 1, 1)
    assert checkpoint(stack, other_org) is None
    assert checkpoint(stack, org) is not None


def _refuse_assuming_deleted_roles(sts: Any) -> None:
    """What STS does and moto does not: AssumeRole of a role that no longer exists is denied."""
    iam = boto3.client("iam")

    def refuse(params: dict[str, Any], **_: Any) -> None:
        name = str(params["RoleArn"]).rsplit("/", 1)[1]
        try:
            iam.get_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            message = f"not authorized to perform: sts:AssumeRole on resource: {params['RoleArn']}"
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "AssumeRole") from None

    sts.meta.events.register("provide-client-params.sts.AssumeRole", refuse)


def test_a_thing_deleted_event_for_a_deleted_org_is_consumed(stack: LocalStack, org: Org, device: Device) -> None:
    ingest(stack, org, device.thing_id, now_ms() - MINUTE_MS)
    assert stack.request("DELETE", f"/v2/things/{device.thing_id}", key=org.admin_key).status == 204
    stack.provision({"action": "delete_org", "orgId": org.org_id, "confirm": org.org_id})
    sessions = retention_job(stack)._tables._sessions
    sessions.clear()  # a container that never assumed the org's role
    sessions._sts = boto3.client("sts")
    _refuse_assuming_deleted_roles(sessions._sts)

    run_retention(stack)

    assert messages_left(stack) == 0


# -- DynamoDB under load and under test ---------------------------------------------------------


def test_items_kept_back_while_purging_are_retried_until_none_is_left(
    stack: LocalStack, org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = now_ms()
    old = [now - 40 * DAY_MS + n * 1000 for n in range(60)]
    ingest(stack, org, device.thing_id, *old, now - MINUTE_MS)
    set_retention(stack, org, 30)
    monkeypatch.setattr(retention_job(stack)._tables, "_sleep", lambda _seconds: None)

    with unprocessed_items(telemetry_client(stack, "retention", org), hold_back=5) as dynamodb:
        report = run_retention(stack)

    assert report["itemsPurged"] == len(old)
    assert frame_times(stack, org) == [now - MINUTE_MS]
    assert dynamodb.kept_back > 0


def test_items_kept_back_past_the_retry_budget_fail_only_that_org(
    stack: LocalStack, org: Org, other_org: Org, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = make_device(stack, other_org)
    now = now_ms()
    ingest(stack, org, device.thing_id, now - 40 * DAY_MS, now - MINUTE_MS)
    ingest(stack, other_org, theirs.thing_id, now - 40 * DAY_MS, now - MINUTE_MS)
    set_retention(stack, org, 30)
    set_retention(stack, other_org, 30)
    first, second = sorted([org, other_org], key=lambda o: o.org_id)  # the registry's order
    monkeypatch.setattr(retention_job(stack)._tables, "_sleep", lambda _seconds: None)

    with (
        unprocessed_items(telemetry_client(stack, "retention", first), hold_back=1, forever=True),
        pytest.raises(RetentionFailed),
    ):
        run_retention(stack)

    assert frame_times(stack, second) == [now - MINUTE_MS]
    held = checkpoint(stack, first)
    assert held is not None
    assert held["leaseUntil"] == 0


def test_the_job_reads_with_query_and_never_scans(stack: LocalStack, org: Org, device: Device) -> None:
    gone = make_thing(stack, org.admin_key, "Site", device.site_id, device.type_id, thingName="gone")["thingId"]
    now = now_ms()
    ingest(stack, org, device.thing_id, now - 40 * DAY_MS, now - 20 * DAY_MS, now - MINUTE_MS)
    ingest(stack, org, gone, now - MINUTE_MS)
    assert stack.request("DELETE", f"/v2/things/{gone}", key=org.admin_key).status == 204
    set_retention(stack, org, 30)

    with api_calls_refusing_scans() as made:
        shortened = run_retention(stack)
        set_retention(stack, org, 60)
        lengthened = run_retention(stack)

    assert (shortened["itemsPurged"], shortened["deletedThingsPurged"], lengthened["itemsRestamped"]) == (1, 1, 0)
    dynamodb = {operation for service, operation in made if service == "dynamodb"}
    assert "Query" in dynamodb
    assert "Scan" not in dynamodb


# -- metrics ------------------------------------------------------------------------------------


def test_each_org_gets_its_own_purge_restamp_and_duration_metrics(
    stack: LocalStack, org: Org, other_org: Org, device: Device, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = make_device(stack, other_org)
    now = now_ms()
    ingest(stack, org, device.thing_id, now - 40 * DAY_MS, now - 35 * DAY_MS, now - MINUTE_MS)
    set_retention(stack, org, 30)
    set_retention(stack, other_org, 30)
    ingest(stack, other_org, theirs.thing_id, now - DAY_MS)
    set_retention(stack, other_org, 60)
    capsys.readouterr()

    run_retention(stack)

    metrics = emitted_org_metrics(capsys.readouterr().out)
    counts = {(m.org_id, m.name): m.value for m in metrics if m.unit == "Count"}
    assert counts == {
        (org.org_id, "RetentionItemsPurged"): 2,
        (org.org_id, "RetentionItemsRestamped"): 0,
        (other_org.org_id, "RetentionItemsPurged"): 0,
        (other_org.org_id, "RetentionItemsRestamped"): 1,
    }
    durations = [m for m in metrics if m.name == "RetentionDuration"]
    assert sorted(m.org_id for m in durations) == sorted([org.org_id, other_org.org_id])
    assert all(m.unit == "Milliseconds" and m.value > 0 for m in durations)
