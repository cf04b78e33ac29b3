"""The local emulation of API Gateway usage plans: the same refusals, in the same order, as the
edge gives a deployed org (403 without a valid key in a plan, 429 over its throttle or quota).

The emulator runs on an injected clock, so refills and the UTC day roll over without sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from mypy_boto3_apigateway import APIGatewayClient
from mypy_boto3_apigateway.type_defs import QuotaSettingsTypeDef, ThrottleSettingsTypeDef

from spectra.ratelimits.identifiers import identifier_name
from spectra_local.stack import LocalStack
from spectra_local.usage_plans import REFRESH_SECONDS, UsagePlanEmulator
from tests.integration.factories import ORGANIZATION_PATH, assert_problem, expire_authorizer_caches

LATE_EVENING_UTC = datetime(2030, 1, 1, 23, 0, tzinfo=UTC)
KEY_VALUES = ("EmulatedUsageKeyAlpha0123456789", "EmulatedUsageKeyBravo0123456789")


@dataclass
class FakeClocks:
    """The emulator's monotonic clock and wall clock, moved together by the test."""

    monotonic: float = 5_000.0
    wall: float = LATE_EVENING_UTC.timestamp()

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds


@pytest.fixture
def apigateway() -> Iterator[APIGatewayClient]:
    with mock_aws():
        yield boto3.client("apigateway", region_name="us-east-1")


@pytest.fixture
def clocks() -> FakeClocks:
    return FakeClocks()


@pytest.fixture
def emulator(apigateway: APIGatewayClient, clocks: FakeClocks) -> UsagePlanEmulator:
    return UsagePlanEmulator(lambda: apigateway, clock=lambda: clocks.monotonic, wall_clock=lambda: clocks.wall)


def usage_plan(
    apigateway: APIGatewayClient, *, rate: float = 1, burst: int = 3, daily_quota: int | None = 5, name: str = "tiny"
) -> str:
    throttle: ThrottleSettingsTypeDef = {"rateLimit": rate, "burstLimit": burst}
    if daily_quota is None:
        created = apigateway.create_usage_plan(name=name, throttle=throttle)
    else:
        quota: QuotaSettingsTypeDef = {"limit": daily_quota, "period": "DAY"}
        created = apigateway.create_usage_plan(name=name, throttle=throttle, quota=quota)
    return created["id"]


def api_key(apigateway: APIGatewayClient, value: str, *, plan_id: str | None, enabled: bool = True) -> str:
    key_id = apigateway.create_api_key(name=f"key-{value[-12:]}", value=value, enabled=enabled)["id"]
    if plan_id is not None:
        apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
    return key_id


def answers(emulator: UsagePlanEmulator, identifier: str, count: int) -> list[str | None]:
    """What the emulator says to ``count`` requests at the same instant."""
    return [emulator.refused(identifier) for _ in range(count)]


# -- who may pass -----------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", [None, ""])
def test_a_request_without_a_usage_identifier_is_an_invalid_api_key(
    emulator: UsagePlanEmulator, identifier: str | None
) -> None:
    assert emulator.refused(identifier) == "INVALID_API_KEY"


def test_a_value_that_is_no_api_key_is_an_invalid_api_key(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway))

    assert emulator.refused(KEY_VALUES[1]) == "INVALID_API_KEY"


def test_a_disabled_key_is_an_invalid_api_key(apigateway: APIGatewayClient, emulator: UsagePlanEmulator) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway), enabled=False)

    assert emulator.refused(KEY_VALUES[0]) == "INVALID_API_KEY"


def test_a_key_in_no_usage_plan_is_an_invalid_api_key(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator
) -> None:
    usage_plan(apigateway)
    api_key(apigateway, KEY_VALUES[0], plan_id=None)

    assert emulator.refused(KEY_VALUES[0]) == "INVALID_API_KEY"


def test_an_enabled_key_in_a_plan_passes(apigateway: APIGatewayClient, emulator: UsagePlanEmulator) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway))

    assert emulator.refused(KEY_VALUES[0]) is None


def test_a_key_disabled_later_is_refused_once_the_reading_is_refreshed(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    """What the worker does on suspension reaches the emulated edge within its refresh period."""
    key_id = api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway))
    assert emulator.refused(KEY_VALUES[0]) is None

    apigateway.update_api_key(apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])
    clocks.advance(REFRESH_SECONDS)

    assert emulator.refused(KEY_VALUES[0]) == "INVALID_API_KEY"


def test_a_key_added_after_the_last_reading_is_found_at_once(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator
) -> None:
    """A new org's identifier works as soon as the worker made it, without waiting a refresh."""
    plan_id = usage_plan(apigateway)
    api_key(apigateway, KEY_VALUES[0], plan_id=plan_id)
    assert emulator.refused(KEY_VALUES[0]) is None

    api_key(apigateway, KEY_VALUES[1], plan_id=plan_id)

    assert emulator.refused(KEY_VALUES[1]) is None


# -- throttle ---------------------------------------------------------------------------------


def test_a_burst_passes_and_the_next_request_is_throttled(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway, rate=1, burst=3, daily_quota=None))

    assert answers(emulator, KEY_VALUES[0], 4) == [None, None, None, "THROTTLED"]


def test_the_bucket_refills_at_the_plans_rate(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway, rate=1, burst=3, daily_quota=None))
    answers(emulator, KEY_VALUES[0], 3)

    clocks.advance(0.5)
    half_a_token = emulator.refused(KEY_VALUES[0])
    clocks.advance(0.5)
    one_token = answers(emulator, KEY_VALUES[0], 2)

    assert (half_a_token, one_token) == ("THROTTLED", [None, "THROTTLED"])


def test_a_long_pause_refills_no_more_than_the_burst(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway, rate=1, burst=3, daily_quota=None))
    answers(emulator, KEY_VALUES[0], 3)

    clocks.advance(3_600)

    assert answers(emulator, KEY_VALUES[0], 4) == [None, None, None, "THROTTLED"]


def test_two_keys_in_one_plan_have_their_own_buckets_and_quotas(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator
) -> None:
    plan_id = usage_plan(apigateway, rate=1, burst=3, daily_quota=5)
    api_key(apigateway, KEY_VALUES[0], plan_id=plan_id)
    api_key(apigateway, KEY_VALUES[1], plan_id=plan_id)

    first = answers(emulator, KEY_VALUES[0], 4)
    second = answers(emulator, KEY_VALUES[1], 4)

    assert first == second == [None, None, None, "THROTTLED"]


# -- quota ------------------------------------------------------------------------------------


def test_the_daily_quota_refuses_once_used_up_even_with_tokens_left(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway, rate=1, burst=3, daily_quota=5))
    served = []
    for _ in range(5):
        served.append(emulator.refused(KEY_VALUES[0]))
        clocks.advance(1)

    clocks.advance(60)  # a full bucket: only the quota can refuse now

    assert served == [None] * 5
    assert emulator.refused(KEY_VALUES[0]) == "QUOTA_EXCEEDED"


def test_throttled_requests_do_not_use_up_the_quota(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway, rate=1, burst=3, daily_quota=5))
    assert answers(emulator, KEY_VALUES[0], 10) == [None] * 3 + ["THROTTLED"] * 7

    clocks.advance(60)

    assert answers(emulator, KEY_VALUES[0], 3) == [None, None, "QUOTA_EXCEEDED"]


def test_the_quota_resets_at_the_start_of_the_next_utc_day(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    api_key(apigateway, KEY_VALUES[0], plan_id=usage_plan(apigateway, rate=1, burst=5, daily_quota=5))
    assert answers(emulator, KEY_VALUES[0], 5) == [None] * 5
    midnight = (LATE_EVENING_UTC + timedelta(days=1)).replace(hour=0).timestamp()

    clocks.advance(midnight - clocks.wall - 1)
    last_second_of_the_day = emulator.refused(KEY_VALUES[0])
    clocks.advance(1)
    first_second_of_the_next = emulator.refused(KEY_VALUES[0])

    assert (last_second_of_the_day, first_second_of_the_next) == ("QUOTA_EXCEEDED", None)


def test_each_key_has_its_own_daily_quota(
    apigateway: APIGatewayClient, emulator: UsagePlanEmulator, clocks: FakeClocks
) -> None:
    plan_id = usage_plan(apigateway, rate=1, burst=5, daily_quota=5)
    api_key(apigateway, KEY_VALUES[0], plan_id=plan_id)
    api_key(apigateway, KEY_VALUES[1], plan_id=plan_id)

    answers(emulator, KEY_VALUES[0], 5)
    clocks.advance(60)

    assert emulator.refused(KEY_VALUES[0]) == "QUOTA_EXCEEDED"
    assert emulator.refused(KEY_VALUES[1]) is None


# -- through the gateway ----------------------------------------------------------------------


def frozen_usage_plans(stack: LocalStack, clocks: FakeClocks) -> None:
    """Give the stack's gateway an emulator on the test's clocks (no refill while it runs)."""
    region = stack.region
    stack.gateway.usage_plans = UsagePlanEmulator(
        lambda: boto3.client("apigateway", region_name=region),
        clock=lambda: clocks.monotonic,
        wall_clock=lambda: clocks.wall,
    )


def move_org_key_to(stack: LocalStack, org_id: str, plan_id: str) -> None:
    """Operator surgery: the org's key into another usage plan."""
    client: APIGatewayClient = boto3.client("apigateway", region_name=stack.region)
    (key,) = [k for k in client.get_api_keys(limit=500)["items"] if k.get("name") == identifier_name(org_id)]
    for plan in client.get_usage_plans(keyId=key["id"])["items"]:
        client.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
    client.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")


def test_an_org_whose_identifier_is_still_pending_is_refused_with_403_then_served(stack: LocalStack) -> None:
    created = stack.function("provisioning").invoke({"command": {"action": "create_org", "name": "Early Bird"}})

    refused = stack.request("GET", ORGANIZATION_PATH, key=created["adminKey"])
    assert_problem(refused, 403, "forbidden")
    assert refused.headers["x-amzn-ErrorType"] == "INVALID_API_KEY"

    assert stack.deliver_queued() == 1
    # The authorizer's answer (without an identifier) was cached for its TTL, as API Gateway does.
    expire_authorizer_caches(stack)

    assert stack.request("GET", ORGANIZATION_PATH, key=created["adminKey"]).status == 200


@pytest.mark.parametrize(
    ("burst", "daily_quota", "response_type", "retry_after"),
    [(2, None, "THROTTLED", 1), (100, 2, "QUOTA_EXCEEDED", 3600)],
    ids=["throttled", "quota"],
)
def test_the_edge_refuses_over_the_plan_with_a_429_problem_on_the_edge_tier(
    stack: LocalStack, burst: int, daily_quota: int | None, response_type: str, retry_after: int
) -> None:
    """Two requests fit the plan; the third gets API Gateway's own 429 in the API's format."""
    clocks = FakeClocks()
    frozen_usage_plans(stack, clocks)
    org = stack.create_org("Flooding Fleet")
    client: APIGatewayClient = boto3.client("apigateway", region_name=stack.region)
    move_org_key_to(stack, org["orgId"], usage_plan(client, name="two-requests", burst=burst, daily_quota=daily_quota))

    served = [stack.request("GET", ORGANIZATION_PATH, key=org["adminKey"]).status for _ in range(2)]
    refused = stack.request("GET", ORGANIZATION_PATH, key=org["adminKey"])

    assert served == [200, 200]
    problem = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["x-amzn-ErrorType"] == response_type
    assert refused.headers["Retry-After"] == str(retry_after)
    assert (problem["tier"], problem["retryAfterSeconds"]) == ("edge", retry_after)
    assert problem["instance"].endswith(ORGANIZATION_PATH)


def test_an_org_at_its_edge_limit_does_not_hold_back_another_org(stack: LocalStack) -> None:
    clocks = FakeClocks()
    frozen_usage_plans(stack, clocks)
    flooding, quiet = stack.create_org("Flooding Fleet"), stack.create_org("Quiet Fleet")
    client: APIGatewayClient = boto3.client("apigateway", region_name=stack.region)
    shared = usage_plan(client, name="one-request", rate=1, burst=1, daily_quota=None)
    move_org_key_to(stack, flooding["orgId"], shared)
    move_org_key_to(stack, quiet["orgId"], shared)

    statuses = [stack.request("GET", ORGANIZATION_PATH, key=flooding["adminKey"]).status for _ in range(2)]

    assert statuses == [200, 429]
    assert stack.request("GET", ORGANIZATION_PATH, key=quiet["adminKey"]).status == 200
