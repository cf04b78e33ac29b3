"""``make bench``: performance figures, printed, never asserted.

- ``GET /v2/organization`` through the local runtime over HTTP (1,000 requests): median, p95;
- the same call made directly on the function's handler in-process: median, p95;
- the ratio of the medians: the local runtime's overhead;
- authorizer invocations and credential-store reads per 1,000 requests on a warm container.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spectra_local.runtime import LocalRuntime, configure_logging

REQUESTS = 1_000


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _measure(call: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _report(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"  {label:<34} median {median:7.3f} ms   p95 {_percentile(samples, 0.95):7.3f} ms")
    return median


def main() -> int:
    configure_logging(request_log=False)
    with tempfile.TemporaryDirectory() as state, contextlib.redirect_stdout(io.StringIO()):
        runtime = LocalRuntime(port=0, state_dir=Path(state), schedules_enabled=False, request_log=False)
        seed = runtime.start()
        server = threading.Thread(target=runtime.serve, daemon=True)
        server.start()
        key = seed["orgs"][0]["adminKey"]
        assert runtime.stack is not None
        gateway = runtime.stack.gateway
        authorizer = runtime.stack.function("authorizer").load().authorizer
        store_reads = 0
        find = authorizer._find_credential

        def counting_find(key_id: str) -> Any:
            nonlocal store_reads
            store_reads += 1
            return find(key_id)

        authorizer._find_credential = counting_find

        def over_http() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
            connection.request("GET", "/v2/organization", headers={"X-Api-Key": key})
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                raise RuntimeError(f"unexpected status {response.status}")

        over_http()  # warm: cold start and the first authorizer call are not what we measure
        calls_before, reads_before = gateway.authorizer_calls, store_reads
        through_runtime = _measure(over_http, REQUESTS)
        authorizer_calls = gateway.authorizer_calls - calls_before
        reads = store_reads - reads_before

        captured: dict[str, Any] = {}
        organization = runtime.stack.function("organization")
        original_invoke = organization.invoke

        def capture(event: Any) -> Any:
            captured["event"] = event
            return original_invoke(event)

        organization.invoke = capture  # type: ignore[method-assign]
        over_http()
        organization.invoke = original_invoke  # type: ignore[method-assign]
        event = captured["event"]
        direct = _measure(lambda: organization.invoke(event), REQUESTS)
        ingest = _ingest_figures(runtime, key)

        runtime.stop()
        server.join(timeout=30)
    print(f"GET /v2/organization, {REQUESTS} requests each (warm):")
    runtime_median = _report("through the local runtime (HTTP)", through_runtime)
    direct_median = _report("handler called in-process", direct)
    print(f"  local runtime overhead (median ratio)   {runtime_median / direct_median:5.2f}x")
    print(f"  authorizer invocations per {REQUESTS}        {authorizer_calls} (result cached for the template's TTL)")
    print(f"  credential-store reads per {REQUESTS}       {reads}")
    frames, calls, largest = ingest
    print(f"Telemetry ingest, {frames} frames of {INGEST_METRICS} metrics in one request:")
    print(f"  BatchWriteItem calls                     {calls} (floor: ceil({frames}/25) = {-(-frames // 25)})")
    print(f"  largest item                             {largest} bytes (<= 1 KB: 1 WCU per frame)")
    return 0


INGEST_FRAMES = 1_000
INGEST_METRICS = 10


def _ingest_figures(runtime: LocalRuntime, key: str) -> tuple[int, int, int]:
    """Ingest 1,000 frames of 10 metrics through the HTTP API and count the write calls."""
    import json
    import time as clock

    from spectra.repositories.dynamo import to_item

    def post(path: str, body: Any) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=60)
        connection.request(
            "POST", path, body=json.dumps(body), headers={"X-Api-Key": key, "Content-Type": "application/json"}
        )
        response = connection.getresponse()
        document = json.loads(response.read())
        connection.close()
        if response.status >= 300:
            raise RuntimeError(f"{path}: {response.status} {document}")
        return document

    metric = {"dataType": "Double", "defaultAggregation": "Avg"}
    metric_ids = [
        post("/v2/definitions/metrics", {"name": f"m{i}", **metric})["metricId"] for i in range(INGEST_METRICS)
    ]
    type_id = post("/v2/definitions/thing-types", {"displayName": "Bench", "metricIds": metric_ids})["thingTypeId"]
    site = post("/v2/sites", {"siteName": "Bench", "address": "-", "latitude": 0, "longitude": 0})["siteId"]
    thing = post(f"/v2/sites/{site}/things", {"thingName": "bench", "thingTypeId": type_id})["thingId"]
    assert runtime.stack is not None
    writer = runtime.stack.function("telemetry_ingest").load().ingest._writer
    calls = 0
    largest = 0
    write = writer.write

    def counting(org: Any, items: Any) -> int:
        nonlocal calls, largest
        made = int(write(org, items))
        calls += made
        largest = max(len(json.dumps(to_item(item))) for item in items)
        return made

    writer.write = counting
    start = int(clock.time() * 1000) - INGEST_FRAMES * 1000
    frames = [
        {"timestamp": start + i * 1000, "metrics": {f"m{m}": 20.0 + m + i / 1000 for m in range(INGEST_METRICS)}}
        for i in range(INGEST_FRAMES)
    ]
    post(f"/v2/things/{thing}/data", {"frames": frames})
    return INGEST_FRAMES, calls, largest


if __name__ == "__main__":
    raise SystemExit(main())
