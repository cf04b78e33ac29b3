"""Per-org rate limits as a client meets them: one budget per org and tier, shared by its keys.

Tests that count tokens lower the org's limits with ``set_limits`` (1 request/min, a small burst)
before its first request, so no token comes back while the test runs and every count is exact;
tests about refills and days move the limiter's clock instead of sleeping. Limits reach keys
through the authorizer context, so the authorizer caches are expired after every change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from spectra.deployment import org_sessions
from spectra.ratelimits import limiter
from spectra.ratelimits.limiter import now_micros
from spectra.ratelimits.plans import Tier, TierLimit
from spectra.ratelimits.store import BUCKET_CLIENT_CONFIG, TokenBuckets
from spectra.repositories.dynamo import from_item
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions
from spectra_local.functions import function_environment
from spectra_local.gateway import GatewayResponse
from spectra_local.stack import LocalStack
from tests.integration.definition_factories import make_thing_type
from tests.integration.factories import (
    API_KEYS_PATH,
    ORGANIZATION_PATH,
    Org,
    assert_problem,
    create_key,
    emitted_metric_values,
    expire_authorizer_caches,
    key_body,
    key_path,
    scope,
)
from tests.integration.place_factories import SITES_PATH, make_site, make_thing

LIMITS_PATH = "/v2/organization/limits"
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
STANDARD = "standard"
DATA_READ = "data-read"
PROFESSIONAL_STANDARD_BURST = 1000
UNKNOWN_ID = "0b8c8a1e-5c1e-4c39-9d43-3f6f1d0c2a11"
REQUEST_CAP = 30
"""More requests than any test's lowered burst: a loop that reaches it never met a 429."""


def per_minute(rate_per_minute: int, burst: int) -> dict[str, int]:
    """One tier's limit as ``set_limits`` takes it."""
    return {"ratePerMinute": rate_per_minute, "burst": burst}


def set_limits(stack: LocalStack, org: Org, limits: Mapping[str, dict[str, int] | None]) -> dict[str, Any]:
    """Override some tiers (``None`` restores the plan's) and let keys see it at once."""
    result = stack.provision({"action": "set_limits", "orgId": org.org_id, "limits": dict(limits)})
    expire_authorizer_caches(stack)
    return result


def set_plan(stack: LocalStack, org: Org, plan: str) -> dict[str, Any]:
    result = stack.provision({"action": "set_plan", "orgId": org.org_id, "plan": plan})
    expire_authorizer_caches(stack)
    return result


def get(stack: LocalStack, key: str, path: str = ORGANIZATION_PATH) -> GatewayResponse:
    return stack.request("GET", path, key=key)


def remaining(response: GatewayResponse) -> int:
    return int(response.headers["RateLimit-Remaining"])


def rate_limit_headers(response: GatewayResponse) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("ratelimit-")}


def spend_until_refused(stack: LocalStack, key: str, path: str = ORGANIZATION_PATH) -> list[GatewayResponse]:
    """Requests until the first 429 (included): for buckets whose starting level a test cannot
    know exactly, e.g. after setup requests made under the plan's faster refill."""
    responses: list[GatewayResponse] = []
    for _ in range(REQUEST_CAP):
        responses.append(get(stack, key, path))
        if responses[-1].status == 429:
            return responses
    raise AssertionError(f"no 429 within {REQUEST_CAP} requests to {path}")


def summary_path(thing_id: str) -> str:
    return f"/v2/things/{thing_id}/summary"


def recent_events_path(thing_id: str) -> str:
    return f"/v2/things/{thing_id}/recent-events"


def make_bare_thing(stack: LocalStack, org: Org) -> str:
    """A thing (in a site, of a type without metrics) whose data-read routes answer 200."""
    thing_type = make_thing_type(stack, org.admin_key)["thingTypeId"]
    site = make_site(stack, org.admin_key)["siteId"]
    return str(make_thing(stack, org.admin_key, "Site", site, thing_type)["thingId"])


def utc_today() -> datetime:
    return datetime.now(UTC)


# -- the stored buckets ---------------------------------------------------------------------------


def rate_limit_table(stack: LocalStack) -> str:
    return stack.environment("organization")["RATE_LIMIT_TABLE"]


def bucket_key(org: Org, tier: str) -> dict[str, dict[str, str]]:
    """Written out rather than built with the layer's key builders: the layout is the contract."""
    return {"pk": {"S": f"ORG#{org.org_id}#RATELIMIT#"}, "sk": {"S": f"TIER#{tier}#"}}


def stored_bucket(stack: LocalStack, org: Org, tier: str) -> dict[str, Any] | None:
    response = boto3.client("dynamodb").get_item(
        TableName=rate_limit_table(stack), Key=bucket_key(org, tier), ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item) if item else None


def requests_today(bucket: Mapping[str, Any] | None) -> int:
    """The bucket's count of today's admitted requests (attribute ``requests{YYYYMMDD}``)."""
    return int((bucket or {}).get(f"requests{utc_today():%Y%m%d}", 0))


# -- the limiter's DynamoDB client ------------------------------------------------------------------


def limiter_client(stack: LocalStack, org: Org) -> Any:
    """The DynamoDB client the functions' rate limiter uses for ``org`` (the container's org
    session with the buckets' short deadlines; the same object every function of this process
    uses for that org's buckets)."""
    stack.function("organization").load()
    with function_environment(stack.environment("organization")):
        return org_sessions().client(OrgContext.for_operator(org.org_id), "dynamodb", config=BUCKET_CLIENT_CONFIG)


@contextmanager
def bucket_updates(stack: LocalStack, org: Org) -> Iterator[list[dict[str, Any]]]:
    """Every UpdateItem the limiter sends to the rate-limit table for ``org`` in the block."""
    client, table = limiter_client(stack, org), rate_limit_table(stack)
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == table:
            calls.append(params)

    event = "before-parameter-build.dynamodb.UpdateItem"
    client.meta.events.register(event, record)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, record)


@contextmanager
def failing_bucket_updates(stack: LocalStack, org: Org, error: Exception) -> Iterator[None]:
    """The bucket table unreachable for ``org``: its UpdateItem raises ``error`` (other tables work)."""
    client, table = limiter_client(stack, org), rate_limit_table(stack)

    def fail(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == table:
            raise error

    event = "before-parameter-build.dynamodb.UpdateItem"
    client.meta.events.register(event, fail)
    try:
        yield
    finally:
        client.meta.events.unregister(event, fail)


# -- one budget per org ---------------------------------------------------------------------------


def test_two_keys_of_one_org_spend_one_budget(stack: LocalStack, org: Org) -> None:
    """Limits are per org, not per key: a second key must not double the org's budget."""
    set_limits(stack, org, {STANDARD: per_minute(1, 5)})
    second = create_key(stack, org.admin_key, name="second").secret  # the org's first token

    callers = [second, org.admin_key, second, org.admin_key]
    levels = [remaining(response) for response in (get(stack, caller) for caller in callers)]

    assert levels == [3, 2, 1, 0]
    assert get(stack, second).status == 429
    assert get(stack, org.admin_key).status == 429


def test_limits_changed_after_a_key_was_made_apply_to_that_key(stack: LocalStack, org: Org) -> None:
    """The org's limits are copied onto every key record, including keys minted before the change."""
    older = create_key(stack, org.admin_key, name="older").secret

    set_limits(stack, org, {STANDARD: per_minute(1, 5)})
    response = get(stack, older)

    assert response.status == 200
    assert response.headers["RateLimit-Limit"] == "5"


def test_orgs_have_independent_budgets(stack: LocalStack, org: Org, other_org: Org) -> None:
    """One org using up its budget must not slow another org down."""
    set_limits(stack, org, {STANDARD: per_minute(1, 3)})
    assert [get(stack, org.admin_key).status for _ in range(3)] == [200, 200, 200]
    assert get(stack, org.admin_key).status == 429

    response = get(stack, other_org.admin_key)

    assert response.status == 200
    assert response.headers["RateLimit-Limit"] == "100"
    assert remaining(response) == 99  # its full burst, less this request


# -- tiers -------------------------------------------------------------------------------------------


def test_data_reads_still_pass_when_the_standard_tier_is_used_up(stack: LocalStack, org: Org) -> None:
    """A client that exhausted its management budget can still read its telemetry."""
    thing_id = make_bare_thing(stack, org)
    set_limits(stack, org, {STANDARD: per_minute(1, 2), DATA_READ: per_minute(1, 4)})
    refused = spend_until_refused(stack, org.admin_key)[-1]
    assert refused.json()["tier"] == STANDARD

    summary = get(stack, org.admin_key, summary_path(thing_id))
    recent = get(stack, org.admin_key, recent_events_path(thing_id))

    assert (summary.status, recent.status) == (200, 200), (summary.body, recent.body)
    assert summary.headers["RateLimit-Limit"] == recent.headers["RateLimit-Limit"] == "4"
    assert (remaining(summary), remaining(recent)) == (3, 2)


def test_standard_requests_still_pass_when_the_data_read_tier_is_used_up(stack: LocalStack, org: Org) -> None:
    """Heavy telemetry reads must never lock a client out of managing its org."""
    thing_id = make_bare_thing(stack, org)
    set_limits(stack, org, {DATA_READ: per_minute(1, 3)})
    reads = [get(stack, org.admin_key, summary_path(thing_id)) for _ in range(4)]
    assert [read.status for read in reads] == [200, 200, 200, 429]
    assert reads[-1].json()["tier"] == DATA_READ

    response = get(stack, org.admin_key)

    assert response.status == 200
    assert response.headers["RateLimit-Limit"] == "100"  # the standard plan's standard burst
    assert remaining(response) > 0


# -- refusals --------------------------------------------------------------------------------------


def test_the_429_names_the_tier_its_limit_and_when_to_retry(stack: LocalStack, org: Org) -> None:
    """A client needs the tier, the limit and a wait it can trust from the refusal alone."""
    set_limits(stack, org, {STANDARD: per_minute(1, 2)})
    assert [get(stack, org.admin_key).status for _ in range(2)] == [200, 200]

    response = get(stack, org.admin_key)

    problem = assert_problem(response, 429, "rate_limited")
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert problem["tier"] == STANDARD
    assert problem["limit"] == {"ratePerMinute": 1, "burst": 2}
    retry_after = problem["retryAfterSeconds"]
    assert isinstance(retry_after, int)
    assert 1 <= retry_after <= 60  # one token of 1/min
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.headers["RateLimit-Limit"] == "2"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) >= retry_after


def test_refused_requests_spend_nothing(stack: LocalStack, org: Org) -> None:
    """Retrying while refused must not push the client's next admission further away."""
    set_limits(stack, org, {STANDARD: per_minute(1, 3)})
    assert [get(stack, org.admin_key).status for _ in range(3)] == [200, 200, 200]
    bucket_when_empty = stored_bucket(stack, org, STANDARD)
    assert bucket_when_empty is not None

    refusals = [get(stack, org.admin_key) for _ in range(5)]

    assert [refusal.status for refusal in refusals] == [429] * 5
    waits = [int(refusal.headers["Retry-After"]) for refusal in refusals]
    resets = [int(refusal.headers["RateLimit-Reset"]) for refusal in refusals]
    assert waits == sorted(waits, reverse=True), waits  # time passes; refusals add nothing
    assert resets == sorted(resets, reverse=True), resets
    assert stored_bucket(stack, org, STANDARD) == bucket_when_empty
    assert requests_today(bucket_when_empty) == 3


# -- headers on every response of the tier -------------------------------------------------------


def test_every_standard_response_carries_its_tiers_headers(stack: LocalStack, org: Org, other_org: Org) -> None:
    """Successes, validation failures, scope refusals and 404s all cost a token and say so."""
    set_limits(stack, org, {STANDARD: per_minute(1, 10)})
    narrow = create_key(stack, org.admin_key, name="metrics reader", scopes=[scope("read", "DEFINITION/Metric/#")])

    responses = {
        "200": get(stack, org.admin_key),
        "400": stack.request("POST", API_KEYS_PATH, key=org.admin_key, json_body={**key_body(), "scopes": "all"}),
        "403": stack.request("POST", SITES_PATH, key=narrow.secret, json_body={"siteName": "HQ"}),
        "404": get(stack, org.admin_key, key_path(other_org.admin_key_id)),
    }

    assert_problem(responses["400"], 400, "validation_failed")
    assert_problem(responses["403"], 403, "forbidden_scope")
    assert_problem(responses["404"], 404, "not_found")
    assert responses["200"].status == 200
    levels = {status: rate_limit_headers(response) for status, response in responses.items()}
    assert all(headers["RateLimit-Limit"] == "10" for headers in levels.values()), levels
    # The 201 (the narrow key's creation) took the first token; each of these took one more.
    assert [int(headers["RateLimit-Remaining"]) for headers in levels.values()] == [8, 7, 6, 5]
    assert all("Retry-After" not in response.headers for response in responses.values())


def test_a_created_response_carries_the_rate_limit_headers(stack: LocalStack, org: Org) -> None:
    set_limits(stack, org, {STANDARD: per_minute(1, 10)})

    response = stack.request("POST", API_KEYS_PATH, key=org.admin_key, json_body=key_body())

    assert response.status == 201, response.body
    assert rate_limit_headers(response).keys() == set(RATE_LIMIT_HEADERS)
    assert (response.headers["RateLimit-Limit"], remaining(response)) == ("10", 9)


def test_every_data_read_response_carries_its_tiers_headers(stack: LocalStack, org: Org, other_org: Org) -> None:
    """Data reads answer with the data-read bucket, whatever their outcome."""
    thing_id = make_bare_thing(stack, org)
    theirs = make_bare_thing(stack, other_org)
    narrow = create_key(stack, org.admin_key, name="metrics reader", scopes=[scope("read", "DEFINITION/Metric/#")])
    set_limits(stack, org, {DATA_READ: per_minute(1, 10)})

    responses = {
        "200": get(stack, org.admin_key, summary_path(thing_id)),
        "400": stack.request("GET", recent_events_path(thing_id), key=org.admin_key, query={"limit": 0}),
        "403": get(stack, narrow.secret, summary_path(thing_id)),
        "404": get(stack, org.admin_key, summary_path(theirs)),
    }

    assert responses["200"].status == 200, responses["200"].body
    assert_problem(responses["400"], 400, "validation_failed")
    assert_problem(responses["403"], 403, "forbidden_scope")
    assert_problem(responses["404"], 404, "not_found")
    levels = {status: rate_limit_headers(response) for status, response in responses.items()}
    assert all(headers["RateLimit-Limit"] == "10" for headers in levels.values()), levels
    assert [int(headers["RateLimit-Remaining"]) for headers in levels.values()] == [9, 8, 7, 6]


DATA_READ_PATHS = [
    f"/v2/things/{UNKNOWN_ID}/events",
    f"/v2/things/{UNKNOWN_ID}/recent-events",
    f"/v2/things/{UNKNOWN_ID}/summary",
    f"/v2/sites/{UNKNOWN_ID}/timeseries",
    f"/v2/fleets/{UNKNOWN_ID}/timeseries",
]
STANDARD_REQUESTS = [
    ("GET", ORGANIZATION_PATH),
    ("GET", API_KEYS_PATH),
    ("GET", SITES_PATH),
    ("GET", "/v2/definitions/metrics"),
    ("GET", f"/v2/things/{UNKNOWN_ID}"),
    ("POST", f"/v2/things/{UNKNOWN_ID}/data"),
]


@pytest.mark.parametrize("path", DATA_READ_PATHS, ids=lambda path: f"{path.split('/')[2]}-{path.rsplit('/', 1)[1]}")
def test_each_data_read_route_spends_from_the_data_read_tier(stack: LocalStack, org: Org, path: str) -> None:
    """API.md puts every events, recent-events, timeseries and summary read in the data-read tier."""
    set_limits(stack, org, {STANDARD: per_minute(1, 50), DATA_READ: per_minute(1, 7)})

    response = get(stack, org.admin_key, path)

    assert (response.headers["RateLimit-Limit"], remaining(response)) == ("7", 6), response.body


@pytest.mark.parametrize(("method", "path"), STANDARD_REQUESTS, ids=lambda value: str(value))
def test_everything_else_spends_from_the_standard_tier(stack: LocalStack, org: Org, method: str, path: str) -> None:
    """Writes (telemetry ingest included) and every other read use the standard tier."""
    set_limits(stack, org, {STANDARD: per_minute(1, 50), DATA_READ: per_minute(1, 7)})

    response = stack.request(method, path, key=org.admin_key, json_body={} if method == "POST" else None)

    assert (response.headers["RateLimit-Limit"], remaining(response)) == ("50", 49), response.body


def test_a_key_without_the_scope_still_spends_the_orgs_tokens(stack: LocalStack, org: Org) -> None:
    """Otherwise a key could probe routes it may not use for free."""
    set_limits(stack, org, {STANDARD: per_minute(1, 4)})
    narrow = create_key(stack, org.admin_key, name="metrics reader", scopes=[scope("read", "DEFINITION/Metric/#")])

    denied = [stack.request("POST", SITES_PATH, key=narrow.secret, json_body={"siteName": "HQ"}) for _ in range(3)]

    assert [response.status for response in denied] == [403, 403, 403]
    assert_problem(get(stack, org.admin_key), 429, "rate_limited")
    assert requests_today(stored_bucket(stack, org, STANDARD)) == 4


# -- failing open ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "Internal server error"}},
            "UpdateItem",
        ),
    ],
    ids=["unreachable", "server-error"],
)
def test_a_failing_bucket_store_serves_the_request_and_counts_it(
    stack: LocalStack, org: Org, error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    """A limiter outage must never become an API outage, and must never go unnoticed."""
    capsys.readouterr()
    with failing_bucket_updates(stack, org, error):
        response = get(stack, org.admin_key)

    assert response.status == 200, response.body
    assert response.json()["orgId"] == org.org_id
    assert rate_limit_headers(response) == {}
    assert "Retry-After" not in response.headers
    assert emitted_metric_values(capsys.readouterr().out, "RateLimiterUnavailable") == [1.0]
    assert stored_bucket(stack, org, STANDARD) is None


def test_the_limiter_applies_again_once_the_store_is_back(stack: LocalStack, org: Org) -> None:
    set_limits(stack, org, {STANDARD: per_minute(1, 5)})
    with failing_bucket_updates(stack, org, EndpointConnectionError(endpoint_url="https://dynamodb.invalid")):
        assert rate_limit_headers(get(stack, org.admin_key)) == {}

    response = get(stack, org.admin_key)

    assert (response.status, response.headers["RateLimit-Limit"], remaining(response)) == (200, "5", 4)


# -- GET /organization/limits -----------------------------------------------------------------------


def tiers_by_name(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {tier["tier"]: tier for tier in body["tiers"]}


def test_limits_show_the_plan_and_both_tiers_of_a_new_org(stack: LocalStack, org: Org) -> None:
    response = get(stack, org.admin_key, LIMITS_PATH)

    assert response.status == 200, response.body
    body = response.json()
    assert body["plan"] == "standard"
    assert body["day"] == utc_today().strftime("%Y-%m-%d")
    tiers = tiers_by_name(body)
    assert tiers.keys() == {STANDARD, DATA_READ}
    standard = tiers[STANDARD]
    assert (standard["ratePerMinute"], standard["burst"], standard["source"]) == (60, 100, "plan")
    assert standard["requestsToday"] == 1  # this request
    assert standard["remaining"] in {99, 100}  # 60/min gives this request's token back within 1 s
    assert tiers[DATA_READ] == {
        "tier": DATA_READ,
        "ratePerMinute": 600,
        "burst": 1000,
        "source": "plan",
        "remaining": 1000,
        "resetSeconds": 0,
        "requestsToday": 0,
    }


def test_limits_show_overrides_and_the_usage_of_each_tier(stack: LocalStack, org: Org) -> None:
    """The numbers a client reads must match what the buckets actually admitted."""
    set_limits(stack, org, {STANDARD: per_minute(1, 10), DATA_READ: per_minute(1, 6)})
    thing_id = make_bare_thing(stack, org)  # three standard requests
    reads = [get(stack, org.admin_key, summary_path(thing_id)) for _ in range(2)]
    assert [read.status for read in reads] == [200, 200]
    assert get(stack, org.admin_key).status == 200

    response = get(stack, org.admin_key, LIMITS_PATH)

    assert response.status == 200, response.body
    tiers = tiers_by_name(response.json())
    data_read = tiers[DATA_READ]
    assert (data_read["ratePerMinute"], data_read["burst"], data_read["source"]) == (1, 6, "override")
    assert (data_read["remaining"], data_read["requestsToday"]) == (4, 2)
    assert 60 < data_read["resetSeconds"] <= 120
    standard = tiers[STANDARD]
    assert (standard["ratePerMinute"], standard["burst"], standard["source"]) == (1, 10, "override")
    # Thing type, site, thing, GET /organization and this request.
    assert (standard["remaining"], standard["requestsToday"]) == (5, 5)
    assert remaining(response) == 5


def test_limits_count_only_admitted_requests(stack: LocalStack, org: Org) -> None:
    set_limits(stack, org, {STANDARD: per_minute(1, 4)})
    assert [get(stack, org.admin_key).status for _ in range(3)] == [200, 200, 200]

    response = get(stack, org.admin_key, LIMITS_PATH)  # the last token
    assert get(stack, org.admin_key).status == 429

    standard = tiers_by_name(response.json())[STANDARD]
    assert (standard["source"], standard["remaining"], standard["requestsToday"]) == ("override", 0, 4)
    assert remaining(response) == 0
    assert requests_today(stored_bucket(stack, org, STANDARD)) == 4


# -- plans and overrides ---------------------------------------------------------------------------


def test_a_higher_plan_raises_the_limits_once_the_authorizer_cache_expires(stack: LocalStack, org: Org) -> None:
    assert get(stack, org.admin_key).headers["RateLimit-Limit"] == "100"

    set_plan(stack, org, "professional")
    response = get(stack, org.admin_key, LIMITS_PATH)

    assert response.headers["RateLimit-Limit"] == str(PROFESSIONAL_STANDARD_BURST)
    body = response.json()
    assert body["plan"] == "professional"
    assert tiers_by_name(body)[STANDARD]["burst"] == PROFESSIONAL_STANDARD_BURST


def test_limits_beyond_the_plans_edge_are_refused(stack: LocalStack, org: Org) -> None:
    """The edge usage plan throttles both tiers together, so an override must fit under it."""
    with pytest.raises(RuntimeError, match="validation_failed"):
        set_limits(stack, org, {STANDARD: per_minute(600, 1000)})

    assert get(stack, org.admin_key).headers["RateLimit-Limit"] == "100"


def test_clearing_an_override_restores_the_plans_limit(stack: LocalStack, org: Org) -> None:
    set_limits(stack, org, {STANDARD: per_minute(1, 5)})
    assert get(stack, org.admin_key).headers["RateLimit-Limit"] == "5"

    set_limits(stack, org, {STANDARD: None})
    response = get(stack, org.admin_key, LIMITS_PATH)

    assert response.headers["RateLimit-Limit"] == "100"
    standard = tiers_by_name(response.json())[STANDARD]
    assert (standard["ratePerMinute"], standard["burst"], standard["source"]) == (60, 100, "plan")


@pytest.mark.parametrize(
    "raised",
    [{STANDARD: None}, {STANDARD: per_minute(30, 50)}],
    ids=["override-cleared", "override-raised"],
)
def test_raising_the_limits_never_refuses_what_the_new_limits_allow(
    stack: LocalStack, org: Org, raised: Mapping[str, dict[str, int] | None]
) -> None:
    """An org throttled at a low limit that is given a higher one must get the new budget at
    once: what carries over is the tokens it spent, not the time they took to refill at the old rate."""
    set_limits(stack, org, {STANDARD: per_minute(1, 5)})
    assert [get(stack, org.admin_key).status for _ in range(6)] == [200] * 5 + [429]

    set_limits(stack, org, raised)
    response = get(stack, org.admin_key)

    assert response.status == 200, response.body
    new_burst = int(response.headers["RateLimit-Limit"])
    assert remaining(response) >= new_burst - 6  # at most the six requests made are missing


# -- storage and cost ------------------------------------------------------------------------------


def test_buckets_are_stored_per_org_and_tier_and_expire_when_idle(stack: LocalStack, org: Org) -> None:
    thing_id = make_bare_thing(stack, org)
    assert get(stack, org.admin_key, summary_path(thing_id)).status == 200

    partition = boto3.client("dynamodb").query(
        TableName=rate_limit_table(stack),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ORG#{org.org_id}#RATELIMIT#"}},
    )
    assert sorted(item["sk"]["S"] for item in partition["Items"]) == ["TIER#data-read#", "TIER#standard#"]
    for tier in (STANDARD, DATA_READ):
        bucket = stored_bucket(stack, org, tier)
        assert bucket is not None, tier
        assert isinstance(bucket["expiresAt"], int)
        assert bucket["expiresAt"] > datetime.now(UTC).timestamp()
    assert requests_today(stored_bucket(stack, org, STANDARD)) == 3
    assert requests_today(stored_bucket(stack, org, DATA_READ)) == 1


def test_an_admitted_request_costs_one_write_and_a_refused_one_writes_nothing(stack: LocalStack, org: Org) -> None:
    """The limiter sits on every request: it must stay at one DynamoDB call per request."""
    set_limits(stack, org, {STANDARD: per_minute(1, 3)})
    with bucket_updates(stack, org) as first:
        assert get(stack, org.admin_key).status == 200
    with bucket_updates(stack, org) as warm:
        assert get(stack, org.admin_key).status == 200
        assert get(stack, org.admin_key).status == 200
    bucket_when_empty = stored_bucket(stack, org, STANDARD)

    with bucket_updates(stack, org) as refused:
        assert get(stack, org.admin_key).status == 429

    assert (len(first), len(warm), len(refused)) == (1, 2, 1)
    assert stored_bucket(stack, org, STANDARD) == bucket_when_empty


def test_a_container_that_has_not_seen_a_spent_bucket_honours_it(stack: LocalStack, org: Org) -> None:
    """Containers guess a bucket's state from what they last saw; a wrong guess costs a second
    write, never a token: the stored bucket decides."""
    set_limits(stack, org, {STANDARD: per_minute(1, 3)})
    another_container = TokenBuckets(
        OrgSessions(stack.environment("organization")["ORG_DATA_ROLE_ARN"]), rate_limit_table(stack)
    )
    taken = another_container.take(
        OrgContext.for_operator(org.org_id), Tier.STANDARD, TierLimit(rate_per_minute=1, burst=3), now_micros()
    )
    assert (taken.allowed, taken.remaining) == (True, 2)

    with bucket_updates(stack, org) as first_look:
        first = get(stack, org.admin_key)
    with bucket_updates(stack, org) as later:
        second, third = get(stack, org.admin_key), get(stack, org.admin_key)

    assert (first.status, remaining(first), len(first_look)) == (200, 1, 2)
    assert (second.status, remaining(second)) == (200, 0)
    assert_problem(third, 429, "rate_limited")
    assert len(later) == 2
    assert requests_today(stored_bucket(stack, org, STANDARD)) == 3


def test_a_bucket_that_expired_starts_full_again(stack: LocalStack, org: Org) -> None:
    """The TTL removes idle buckets; a container still remembering one must start it afresh."""
    set_limits(stack, org, {STANDARD: per_minute(1, 3)})
    assert [get(stack, org.admin_key).status for _ in range(3)] == [200, 200, 200]
    boto3.client("dynamodb").delete_item(TableName=rate_limit_table(stack), Key=bucket_key(org, STANDARD))

    with bucket_updates(stack, org) as updates:
        response = get(stack, org.admin_key)

    assert (response.status, remaining(response)) == (200, 2)
    assert len(updates) == 2  # the remembered state was wrong once
    assert requests_today(stored_bucket(stack, org, STANDARD)) == 1


# -- time, moved by hand --------------------------------------------------------------------------


@dataclass
class LimiterClock:
    """The limiter's clock, moved by the test instead of by sleeping."""

    now_us: int

    def time_ns(self) -> int:
        return self.now_us * 1_000

    def advance(self, *, seconds: int = 0, micros: int = 0) -> None:
        self.now_us += seconds * 1_000_000 + micros

    def set(self, moment: datetime) -> None:
        self.now_us = int(moment.timestamp()) * 1_000_000


@pytest.fixture
def limiter_clock(monkeypatch: pytest.MonkeyPatch) -> LimiterClock:
    """Every function's limiter reads the time through ``time.time_ns`` in its module."""
    clock = LimiterClock(time.time_ns() // 1_000)
    monkeypatch.setattr(limiter, "time", clock)
    return clock


def test_retry_after_is_exactly_long_enough(stack: LocalStack, org: Org, limiter_clock: LimiterClock) -> None:
    """A client that waits Retry-After must be admitted, and not a microsecond sooner."""
    set_limits(stack, org, {STANDARD: per_minute(1, 2)})
    assert [get(stack, org.admin_key).status for _ in range(2)] == [200, 200]
    refused = get(stack, org.admin_key)
    assert (refused.status, refused.headers["Retry-After"]) == (429, "60")

    limiter_clock.advance(seconds=59, micros=999_999)
    too_early = get(stack, org.admin_key)
    limiter_clock.advance(micros=1)
    on_time = get(stack, org.admin_key)

    assert (too_early.status, too_early.headers["Retry-After"]) == (429, "1")
    assert (on_time.status, remaining(on_time)) == (200, 0)


def test_the_bucket_refills_at_the_sustained_rate_up_to_the_burst(
    stack: LocalStack, org: Org, limiter_clock: LimiterClock
) -> None:
    set_limits(stack, org, {STANDARD: per_minute(1, 3)})
    spent = [get(stack, org.admin_key) for _ in range(3)]
    assert [(remaining(r), r.headers["RateLimit-Reset"]) for r in spent] == [(2, "60"), (1, "120"), (0, "180")]

    limiter_clock.advance(seconds=120)  # two tokens back
    after_two_minutes = get(stack, org.admin_key)
    limiter_clock.advance(seconds=3600)  # far longer than a full refill
    after_an_hour = get(stack, org.admin_key)

    assert (after_two_minutes.status, remaining(after_two_minutes)) == (200, 1)
    assert (after_an_hour.status, remaining(after_an_hour)) == (200, 2)


def test_requests_today_starts_again_at_midnight_utc(stack: LocalStack, org: Org, limiter_clock: LimiterClock) -> None:
    """The daily count is per UTC day, and old days' counts do not pile up on the bucket."""
    set_limits(stack, org, {STANDARD: per_minute(1, 5)})
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day_one, day_two, day_three = (f"requests{midnight + timedelta(days=n - 1):%Y%m%d}" for n in range(3))

    limiter_clock.set(midnight - timedelta(seconds=30))
    assert [get(stack, org.admin_key).status for _ in range(2)] == [200, 200]
    limiter_clock.set(midnight + timedelta(seconds=30))
    limits = get(stack, org.admin_key, LIMITS_PATH)
    counts_on_day_two = stored_bucket(stack, org, STANDARD)
    limiter_clock.set(midnight + timedelta(days=1, seconds=30))
    assert get(stack, org.admin_key).status == 200

    assert tiers_by_name(limits.json())[STANDARD]["requestsToday"] == 1
    assert counts_on_day_two is not None
    assert (counts_on_day_two[day_one], counts_on_day_two[day_two]) == (2, 1)
    counts_on_day_three = stored_bucket(stack, org, STANDARD)
    assert counts_on_day_three is not None
    assert day_one not in counts_on_day_three
    assert (counts_on_day_three[day_two], counts_on_day_three[day_three]) == (1, 1)


def test_a_refused_post_leaves_its_idempotency_key_unused(
    stack: LocalStack, org: Org, limiter_clock: LimiterClock
) -> None:
    """A 429 happens before the request is recorded, so retrying it with the same
    Idempotency-Key later must create the resource, not replay the refusal."""
    set_limits(stack, org, {STANDARD: per_minute(1, 1)})
    assert get(stack, org.admin_key).status == 200
    headers = {"Idempotency-Key": "rate-limited-create-0001"}
    refused = stack.request("POST", API_KEYS_PATH, key=org.admin_key, json_body=key_body(), headers=headers)
    assert_problem(refused, 429, "rate_limited")

    limiter_clock.advance(seconds=int(refused.headers["Retry-After"]))
    retried = stack.request("POST", API_KEYS_PATH, key=org.admin_key, json_body=key_body(), headers=headers)

    assert retried.status == 201, retried.body
    assert "Idempotent-Replayed" not in retried.headers


def test_a_retried_write_whose_first_attempt_landed_is_not_counted_twice(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket write that landed but whose answer was lost is sent again by the SDK: the retry
    finds its own admission id on the item and takes no second token."""
    assert stack.request("GET", ORGANIZATION_PATH, key=org.admin_key).status == 200
    landed = stored_bucket(stack, org, STANDARD)
    assert landed is not None
    monkeypatch.setattr("spectra.ratelimits.store.uuid.uuid4", lambda: SimpleNamespace(hex=landed["lastAdmission"]))
    context = OrgContext.for_operator(org.org_id)
    with function_environment(stack.environment("organization")):
        retry = TokenBuckets(org_sessions(), rate_limit_table(stack))  # a container that never saw the bucket

        admission = retry.take(context, Tier.STANDARD, TierLimit(rate_per_minute=60, burst=100), now_micros())

    assert admission.allowed
    assert stored_bucket(stack, org, STANDARD) == landed
