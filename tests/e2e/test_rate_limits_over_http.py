"""Rate limits over HTTP against the local runtime: exact counts, and one org's flood contained.

A bounded flood on loopback (a few threads, a few seconds) against one org: the requests
admitted must be the bucket's burst plus its sustained rate over the time the flood lasted,
within 5 %; meanwhile another org, calling at a modest pace, sees every request succeed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import RunningRuntime

pytestmark = pytest.mark.e2e

FLOOD_SECONDS = 4.0
FLOOD_THREADS = 4
MAX_FLOOD_REQUESTS = 2_000
RATE_PER_MINUTE = 600
BURST = 50
UNKNOWN_THING = "00000000-0000-4000-8000-000000000000"


@dataclass
class Flood:
    """What a flood of GET /v2/organization got back, and how long it lasted."""

    statuses: Counter[int] = field(default_factory=Counter)
    first_sent: float = float("inf")
    last_answered: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def seconds(self) -> float:
        return self.last_answered - self.first_sent


def flood(runtime: RunningRuntime, key: str, seconds: float) -> Flood:
    result = Flood()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with result.lock:
                if sum(result.statuses.values()) >= MAX_FLOOD_REQUESTS:
                    return
            sent = time.monotonic()
            status = runtime.request("GET", "/v2/organization", key=key).status
            answered = time.monotonic()
            with result.lock:
                result.statuses[status] += 1
                result.first_sent = min(result.first_sent, sent)
                result.last_answered = max(result.last_answered, answered)

    threads = [threading.Thread(target=worker) for _ in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def metered_org(runtime: RunningRuntime, name: str) -> str:
    """A new org whose standard tier is 600/min with a burst of 50 (so refill matters)."""
    created = runtime.spectra("org", "create", "--name", name, "--plan", "professional")
    runtime.spectra(
        "org",
        "set-limits",
        created["orgId"],
        "--tier",
        "standard",
        "--rate-per-minute",
        str(RATE_PER_MINUTE),
        "--burst",
        str(BURST),
    )
    key = str(created["adminKey"])
    # Warm the key's path (authorizer, usage plan lookup) on the other tier, so the flood's first
    # request is admitted as soon as it is sent and its clock starts with the bucket's.
    warm = runtime.request("GET", f"/v2/things/{UNKNOWN_THING}/summary", key=key)
    assert warm.status == 404, warm.body
    return key


def test_admitted_requests_are_burst_plus_rate_times_elapsed_within_5_percent(runtime: RunningRuntime) -> None:
    key = metered_org(runtime, "flooded alone")

    result = flood(runtime, key, FLOOD_SECONDS)

    expected = BURST + RATE_PER_MINUTE / 60 * result.seconds
    assert set(result.statuses) == {200, 429}, result.statuses
    assert result.statuses[429] > result.statuses[200]  # the flood really was over the limit
    assert abs(result.statuses[200] - expected) <= 0.05 * expected, (result.statuses, result.seconds)


def test_one_orgs_flood_leaves_another_org_at_full_success(runtime: RunningRuntime) -> None:
    flooder = metered_org(runtime, "flooder")
    bystander = runtime.spectra("org", "create", "--name", "bystander")["adminKey"]
    bystander_statuses: Counter[int] = Counter()
    stop = threading.Event()

    def bystander_calls() -> None:
        while not stop.wait(0.25):
            bystander_statuses[runtime.request("GET", "/v2/organization", key=bystander).status] += 1

    calm = threading.Thread(target=bystander_calls)
    calm.start()
    flooded = flood(runtime, flooder, FLOOD_SECONDS)
    stop.set()
    calm.join()

    assert flooded.statuses[429] > 0
    assert bystander_statuses[200] >= 5
    assert set(bystander_statuses) == {200}, bystander_statuses


def test_a_refused_request_says_which_limit_and_when_to_retry(runtime: RunningRuntime) -> None:
    key = metered_org(runtime, "refused")
    answers = (runtime.request("GET", "/v2/organization", key=key) for _ in range(3 * BURST))

    refused = next(answer for answer in answers if answer.status != 200)

    assert refused.status == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "rate_limited"
    assert problem["tier"] == "standard"
    assert problem["limit"] == {"ratePerMinute": RATE_PER_MINUTE, "burst": BURST}
    assert refused.headers["Retry-After"] == str(problem["retryAfterSeconds"])
    assert refused.headers["RateLimit-Remaining"] == "0"
