"""``make bench``: what the exact rate limiter costs a request.

The same ``GET /v2/organization`` event is run on the ``organization`` handler in-process, in
alternating rounds with the limiter on and off (the resolver given no limiter), on an org of its
own; printed are the DynamoDB requests per API request (to the bucket table, and in all) and the
median and p95 latency of each, side by side.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from spectra.ratelimits.store import BUCKET_CLIENT_CONFIG
from spectra.tenancy.context import OrgContext
from spectra_local.runtime import LocalRuntime
from spectra_local.stack import LocalStack

ROUNDS = 10
CALLS_PER_ROUND = 50


@dataclass
class TableCalls:
    by_table: dict[str, int] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.by_table.values())


@contextmanager
def counted(client: Any) -> Iterator[TableCalls]:
    """Count the DynamoDB requests ``client`` makes, per table."""
    calls = TableCalls()

    def count(params: Mapping[str, Any], **_: Any) -> None:
        table = str(params.get("TableName", "?"))
        calls.by_table[table] = calls.by_table.get(table, 0) + 1

    client.meta.events.register("provide-client-params.dynamodb.*", count)
    try:
        yield calls
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.*", count)


@dataclass(frozen=True)
class LimiterFigures:
    on: list[float]
    off: list[float]
    calls: int
    bucket_calls_on: int
    all_calls_on: int
    all_calls_off: int

    def print(self) -> None:
        def line(label: str, samples: list[float], dynamo: float) -> None:
            ordered = sorted(samples)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(
                f"  {label:<24} median {statistics.median(samples):7.3f} ms   p95 {p95:7.3f} ms   "
                f"DynamoDB requests/request {dynamo:4.2f}"
            )

        print(f"Rate limiter, GET /v2/organization on the handler, {self.calls} calls each, alternating:")
        line("limiter on", self.on, self.all_calls_on / self.calls)
        line("limiter off", self.off, self.all_calls_off / self.calls)
        print(f"  bucket-table requests per request       {self.bucket_calls_on / self.calls:4.2f} (UpdateItem)")
        added = statistics.median(self.on) - statistics.median(self.off)
        print(f"  added latency (median on - median off)  {added:6.3f} ms")


def captured_event(stack: LocalStack, key: str) -> dict[str, Any]:
    """The proxy event the gateway hands the ``organization`` function for this key."""
    organization = stack.function("organization")
    captured: dict[str, Any] = {}
    original = organization.invoke

    def capture(event: Any) -> Any:
        captured["event"] = event
        return original(event)

    organization.invoke = capture  # type: ignore[method-assign]
    try:
        stack.request("GET", "/v2/organization", key=key)
    finally:
        organization.invoke = original  # type: ignore[method-assign]
    return dict(captured["event"])


def limiter_figures(runtime: LocalRuntime) -> LimiterFigures:
    """Run the figures on a new enterprise org (its own buckets, room for every call)."""
    from spectra import deployment
    from spectra.deployment import org_sessions

    assert runtime.stack is not None
    created = runtime.stack.create_org("bench limiter", plan="enterprise")
    event = captured_event(runtime.stack, created["adminKey"])
    organization = runtime.stack.function("organization")
    resolver = organization.load().app
    limiter = deployment.rate_limiter
    bucket_table = organization.environment["RATE_LIMIT_TABLE"]
    context = OrgContext.for_operator(created["orgId"])
    # The records client, and the buckets' own (shorter deadlines): count both.
    clients = [
        org_sessions().client(context, "dynamodb"),
        org_sessions().client(context, "dynamodb", config=BUCKET_CLIENT_CONFIG),
    ]
    organization.invoke(event)  # warm: the org's credentials and its bucket exist

    on: list[float] = []
    off: list[float] = []
    counts = {"on": TableCalls(), "off": TableCalls()}
    for _ in range(ROUNDS):
        for mode, samples in (("on", on), ("off", off)):
            resolver.limit_with(limiter if mode == "on" else (lambda: None))
            with counted(clients[0]) as records, counted(clients[1]) as buckets:
                for _ in range(CALLS_PER_ROUND):
                    started = time.perf_counter()
                    result = organization.invoke(event)
                    samples.append((time.perf_counter() - started) * 1000)
                    if result["statusCode"] != 200:
                        raise RuntimeError(f"unexpected status {result['statusCode']}")
            for calls in (records, buckets):
                for table, count in calls.by_table.items():
                    counts[mode].by_table[table] = counts[mode].by_table.get(table, 0) + count
    resolver.limit_with(limiter)
    return LimiterFigures(
        on=on,
        off=off,
        calls=ROUNDS * CALLS_PER_ROUND,
        bucket_calls_on=counts["on"].by_table.get(bucket_table, 0),
        all_calls_on=counts["on"].total(),
        all_calls_off=counts["off"].total(),
    )
