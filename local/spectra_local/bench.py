"""``make bench``: performance figures, printed, never asserted.

- ``GET /v2/organization`` through the local runtime over HTTP (1,000 requests): median, p95;
- the same call made directly on the function's handler in-process: median, p95;
- the ratio of the medians: the local runtime's overhead;
- authorizer invocations and credential-store reads per 1,000 requests on a warm container;
- telemetry: requests and capacity of an ingest and of a binned 30-day query, and the import
  time of each telemetry function (``bench_telemetry``);
- the rate limiter: DynamoDB requests per API request and latency, on and off (``bench_ratelimits``).

The demo org is moved to the enterprise plan first: the figures take thousands of requests.
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

from spectra_local.bench_ratelimits import limiter_figures
from spectra_local.bench_telemetry import telemetry_figures
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
        runtime.stack.provision({"action": "set_plan", "orgId": seed["orgs"][0]["orgId"], "plan": "enterprise"})
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
        telemetry = telemetry_figures(runtime, key)
        limiter = limiter_figures(runtime)

        runtime.stop()
        server.join(timeout=30)
    print(f"GET /v2/organization, {REQUESTS} requests each (warm):")
    runtime_median = _report("through the local runtime (HTTP)", through_runtime)
    direct_median = _report("handler called in-process", direct)
    print(f"  local runtime overhead (median ratio)   {runtime_median / direct_median:5.2f}x")
    print(f"  authorizer invocations per {REQUESTS}        {authorizer_calls} (result cached for the template's TTL)")
    print(f"  credential-store reads per {REQUESTS}       {reads}")
    telemetry.print()
    limiter.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
