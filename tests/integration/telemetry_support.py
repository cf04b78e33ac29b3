"""Shared pieces of the telemetry tests: a device with metrics, frames, the org's table as stored,
and DynamoDB keeping items back (``UnprocessedItems``), which moto never does by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from spectra.repositories.dynamo import from_item
from spectra.tenancy.context import OrgContext
from spectra_local.stack import LocalStack
from tests.integration.factories import Org

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Device:
    thing_id: str
    voltage: str  # metric ids
    count: str
    site_id: str = ""
    type_id: str = ""


def now_ms() -> int:
    return int(time.time() * 1000)


def call(stack: LocalStack, key: str, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    return stack.request(method, path, key=key, json_body=body, **kwargs)


def make_device(stack: LocalStack, org: Org, *, thing_name: str = "b1") -> Device:
    """Metrics Voltage (Double, Avg) and Count (Int, Sum), a Battery type, a site and a thing."""
    key = org.admin_key
    voltage = call(
        stack,
        key,
        "POST",
        "/v2/definitions/metrics",
        {"name": "Voltage", "dataType": "Double", "defaultAggregation": "Avg"},
    ).json()["metricId"]
    count = call(
        stack, key, "POST", "/v2/definitions/metrics", {"name": "Count", "dataType": "Int", "defaultAggregation": "Sum"}
    ).json()["metricId"]
    type_id = call(
        stack, key, "POST", "/v2/definitions/thing-types", {"displayName": "Battery", "metricIds": [voltage, count]}
    ).json()["thingTypeId"]
    site = call(
        stack, key, "POST", "/v2/sites", {"siteName": "HQ", "address": "1 Main St", "latitude": 0, "longitude": 0}
    ).json()["siteId"]
    thing = call(stack, key, "POST", f"/v2/sites/{site}/things", {"thingName": thing_name, "thingTypeId": type_id})
    return Device(thing.json()["thingId"], voltage, count, site, type_id)


def frames(*frames: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    return {"frames": [{"timestamp": ts, "metrics": metrics} for ts, metrics in frames]}


def telemetry_table(stack: LocalStack, org: Org) -> str:
    return stack.environment("telemetry_ingest")["TELEMETRY_TABLE_PREFIX"] + org.org_id


def stored_items(stack: LocalStack, org: Org) -> list[dict[str, Any]]:
    """Every item in the org's table (a test may Scan; the product never does)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    pages = client.get_paginator("scan").paginate(TableName=telemetry_table(stack, org))
    items = [from_item(item) for page in pages for item in page["Items"]]
    return sorted(items, key=lambda item: (item["thingId"], item["timestamp"]))


def stored(stack: LocalStack, org: Org) -> list[dict[str, Any]]:
    """The stored frames (not the latest-values items), oldest first."""
    return sorted(
        (item for item in stored_items(stack, org) if item["timestamp"] >= 0), key=lambda item: item["timestamp"]
    )


def telemetry_client(stack: LocalStack, function: str, org: Org) -> Any:
    """The boto3 client a telemetry function uses for ``org`` (the org's own role)."""
    from spectra.deployment import telemetry_tables

    stack.function(function).load()
    return telemetry_tables().of(OrgContext.for_operator(org.org_id)).client


@dataclass
class HeldBack:
    """What the simulated DynamoDB did: calls seen, and items it kept back."""

    calls: int = 0
    kept_back: int = 0
    sizes: list[int] = field(default_factory=list)


@contextmanager
def unprocessed_items(
    client: Any, *, hold_back: int, times: int | None = None, forever: bool = False
) -> Iterator[HeldBack]:
    """Make ``client``'s BatchWriteItem calls leave ``hold_back`` items unprocessed, as DynamoDB
    does under load: a ``before-parameter-build`` hook takes them out of the request, and an
    ``after-call`` hook hands them back as ``UnprocessedItems``. ``times`` limits how many calls
    are affected (``None``: every call carrying more than ``hold_back`` items). ``forever``: every
    call reports items unprocessed, even one too small to hold any back (those are written and
    still reported, so the writer never sees the end of its batch)."""
    seen = HeldBack()
    pending: list[tuple[str, list[Any]]] = []

    def take_out(params: dict[str, Any], **_: Any) -> None:
        seen.calls += 1
        [(table, requests)] = params["RequestItems"].items()
        seen.sizes.append(len(requests))
        affected = times is None or seen.calls <= times
        held = hold_back if affected and len(requests) > hold_back else 0
        if forever and not held:
            pending.append((table, list(requests)))
            seen.kept_back += len(requests)
            return
        pending.append((table, requests[:held]))
        params["RequestItems"][table] = requests[held:]
        seen.kept_back += held

    def hand_back(parsed: dict[str, Any], **_: Any) -> None:
        table, kept = pending.pop(0)
        if kept:
            parsed["UnprocessedItems"] = {table: kept}

    events = client.meta.events
    events.register("before-parameter-build.dynamodb.BatchWriteItem", take_out)
    events.register("after-call.dynamodb.BatchWriteItem", hand_back)
    try:
        yield seen
    finally:
        events.unregister("before-parameter-build.dynamodb.BatchWriteItem", take_out)
        events.unregister("after-call.dynamodb.BatchWriteItem", hand_back)
