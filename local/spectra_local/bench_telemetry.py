"""Telemetry figures for ``make bench``: what ingest and a binned query cost in DynamoDB terms,
and how long each telemetry function takes to import (its cold start) next to a bare baseline.

Moto does not report real consumed capacity, so capacity is worked out from the items' sizes
with DynamoDB's own rules: a write costs 1 WCU per started KB of the item; a Query costs 0.5 RCU
(eventually consistent) per started 4 KB of the items a response returns.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spectra.tenancy.context import OrgContext
from spectra_local.runtime import LocalRuntime

INGEST_FRAMES = 1_000
INGEST_METRICS = 10
QUERY_DAYS = 30
FRAMES_PER_REQUEST = 1_000
IMPORT_RUNS = 5
TELEMETRY_FUNCTIONS = ("telemetry_ingest", "telemetry_query", "retention")
BASELINE_IMPORT = "import boto3, pydantic, aws_lambda_powertools"


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value, by DynamoDB's sizing rules."""
    [(kind, content)] = value.items()
    if kind == "S":
        return len(str(content).encode("utf-8"))
    if kind == "N":
        digits = len(str(content).lstrip("-").replace(".", "").strip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + attribute_size(v) + 1 for k, v in content.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in content)
    return len(json.dumps(content))


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


@dataclass
class DynamoCalls:
    """Requests a client made, and the capacity they would consume on DynamoDB."""

    requests: dict[str, int] = field(default_factory=dict)
    write_units: int = 0
    single_write_units: int = 0
    """PutItem/UpdateItem capacity (the latest-values item), apart from the batched frames."""
    read_units: float = 0.0
    largest_item: int = 0

    def count(self, operation: str) -> None:
        self.requests[operation] = self.requests.get(operation, 0) + 1


@contextmanager
def measured(client: Any) -> Iterator[DynamoCalls]:
    """Count ``client``'s DynamoDB requests and work out their capacity from item sizes."""
    calls = DynamoCalls()

    def writes(params: Mapping[str, Any], **_: Any) -> None:
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                if "PutRequest" in request:
                    size = item_size(request["PutRequest"]["Item"])
                    calls.largest_item = max(calls.largest_item, size)
                    calls.write_units += math.ceil(size / 1024)
                else:
                    calls.write_units += 1

    def single_write(params: Mapping[str, Any], **_: Any) -> None:
        calls.single_write_units += math.ceil(item_size(params.get("Item", {})) / 1024) if "Item" in params else 1

    def after(parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        calls.count(model.name)
        if model.name == "Query":
            returned = sum(item_size(item) for item in parsed.get("Items", []))
            calls.read_units += max(1, math.ceil(returned / 4096)) * 0.5

    events = client.meta.events
    events.register("before-parameter-build.dynamodb.BatchWriteItem", writes)
    events.register("before-parameter-build.dynamodb.PutItem", single_write)
    events.register("after-call.dynamodb", after)
    try:
        yield calls
    finally:
        events.unregister("before-parameter-build.dynamodb.PutItem", single_write)
        events.unregister("before-parameter-build.dynamodb.BatchWriteItem", writes)
        events.unregister("after-call.dynamodb", after)


@dataclass(frozen=True)
class TelemetryFigures:
    ingest: DynamoCalls
    query: DynamoCalls
    query_pages: int
    query_bins: int
    query_frames: int
    imports: dict[str, float]

    def print(self) -> None:
        floor = -(-INGEST_FRAMES // 25)
        batch_calls = self.ingest.requests.get("BatchWriteItem", 0)
        other = {k: v for k, v in self.ingest.requests.items() if k != "BatchWriteItem"}
        print(f"Telemetry ingest, {INGEST_FRAMES} frames of {INGEST_METRICS} metrics in one request:")
        print(f"  BatchWriteItem calls                     {batch_calls} (floor: ceil({INGEST_FRAMES}/25) = {floor})")
        print(f"  write capacity for the frames            {self.ingest.write_units} WCU (floor: 1 per frame <= 1 KB)")
        print(f"  largest item                             {self.ingest.largest_item} bytes")
        print(
            f"  other requests (latest values)           {_listing(other)}, "
            f"{self.ingest.single_write_units} WCU + a strongly consistent read"
        )
        print(
            f"Binned query, {QUERY_DAYS} days hourly over 1-minute data of one thing "
            f"({self.query_frames} frames, {self.query_bins} bins in {self.query_pages} pages of 100):"
        )
        print(f"  Query requests                           {self.query.requests.get('Query', 0)}")
        print(f"  read capacity                            {self.query.read_units:.1f} RCU (eventually consistent)")
        print(f"Cold-start import time (median of {IMPORT_RUNS} fresh interpreters):")
        baseline = self.imports["baseline"]
        print(f"  {BASELINE_IMPORT:<44} {baseline:7.1f} ms")
        for function in TELEMETRY_FUNCTIONS:
            spent = self.imports[function]
            print(
                f"  functions/{function}/app.py{'':<{27 - len(function)}} {spent:7.1f} ms  (+{spent - baseline:.1f} ms)"
            )


def _listing(requests: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(requests.items())) or "none"


class _Client:
    """A tiny HTTP client for the runtime (what a customer's script would do)."""

    def __init__(self, port: int, key: str) -> None:
        self._port = port
        self._key = key

    def send(self, method: str, path: str, body: Any = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
        headers = {"X-Api-Key": self._key, "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        document = json.loads(response.read())
        connection.close()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {document}")
        return document


def telemetry_figures(runtime: LocalRuntime, key: str) -> TelemetryFigures:
    from spectra.deployment import telemetry_tables

    api = _Client(runtime.port, key)
    org_id = api.send("GET", "/v2/organization")["orgId"]
    metric = {"dataType": "Double", "defaultAggregation": "Avg"}
    metric_ids = [
        api.send("POST", "/v2/definitions/metrics", {"name": f"bench{i}", **metric})["metricId"]
        for i in range(INGEST_METRICS)
    ]
    type_id = api.send("POST", "/v2/definitions/thing-types", {"displayName": "Bench", "metricIds": metric_ids})
    site = api.send("POST", "/v2/sites", {"siteName": "Bench", "address": "-", "latitude": 0, "longitude": 0})
    thing_body = {"thingName": "bench", "thingTypeId": type_id["thingTypeId"]}
    ingest_thing = api.send("POST", f"/v2/sites/{site['siteId']}/things", thing_body)["thingId"]
    query_thing = api.send("POST", f"/v2/sites/{site['siteId']}/things", {**thing_body, "thingName": "b2"})["thingId"]
    client = telemetry_tables().of(OrgContext.for_operator(org_id)).client

    now = int(time.time() * 1000)
    with measured(client) as ingest:
        api.send("POST", f"/v2/things/{ingest_thing}/data", {"frames": _frames(now - INGEST_FRAMES * 1000, 1000)})

    minute = 60_000
    start = now - now % 3_600_000 - QUERY_DAYS * 86_400_000
    total = QUERY_DAYS * 1440
    for first in range(0, total, FRAMES_PER_REQUEST):
        frames = _frames(start + first * minute, minute, count=min(FRAMES_PER_REQUEST, total - first))
        api.send("POST", f"/v2/things/{query_thing}/data", {"frames": frames})
    path = (
        f"/v2/things/{query_thing}/events?startTime={_iso(start)}&endTime={_iso(start + QUERY_DAYS * 86_400_000)}"
        "&binUnit=h&binValue=1&limit=100"
    )
    pages = bins = 0
    token = None
    with measured(client) as query:
        while True:
            page = api.send("GET", path + (f"&continuationToken={token}" if token else ""))
            pages += 1
            bins += len(page["items"])
            token = page["continuationToken"]
            if not token:
                break
    return TelemetryFigures(
        ingest=ingest,
        query=query,
        query_pages=pages,
        query_bins=bins,
        query_frames=total,
        imports=import_times(runtime),
    )


def _frames(start: int, step: int, count: int = INGEST_FRAMES) -> list[dict[str, Any]]:
    return [
        {"timestamp": start + i * step, "metrics": {f"bench{m}": 20.0 + m + i / 1000 for m in range(INGEST_METRICS)}}
        for i in range(count)
    ]


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat().replace("+00:00", "Z")


def import_times(runtime: LocalRuntime) -> dict[str, float]:
    """Median import time of each telemetry function's module in a fresh interpreter."""
    assert runtime.stack is not None
    root = Path(__file__).resolve().parents[2]
    times = {"baseline": _median_import(BASELINE_IMPORT, dict(os.environ))}
    for function in TELEMETRY_FUNCTIONS:
        environment = {**os.environ, **runtime.stack.environment(function), "POWERTOOLS_TRACE_DISABLED": "true"}
        environment["PYTHONPATH"] = os.pathsep.join([str(root / "layers/spectra"), str(root / "functions" / function)])
        times[function] = _median_import("import app", environment)
    return times


def _median_import(statement: str, environment: Mapping[str, str]) -> float:
    program = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    samples = []
    for _ in range(IMPORT_RUNS):
        done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed program
            [sys.executable, "-c", program], env=dict(environment), capture_output=True, text=True, check=True
        )
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)
