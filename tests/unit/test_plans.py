"""The plan definitions: the contract's defaults, overrides, and the edge derived from them."""

from __future__ import annotations

import pytest

from spectra.errors import ValidationFailed
from spectra.ratelimits.plans import (
    DEFAULT_PLAN,
    PLANS,
    Tier,
    TierLimit,
    check_overrides_fit,
    effective_limits,
    overrides_document,
    parse_overrides,
    plan_named,
)
from spectra.tenancy.context import OrgContext


def test_the_standard_plan_has_the_contracts_limits() -> None:
    standard = PLANS["standard"]

    assert DEFAULT_PLAN == "standard"
    assert standard.limit(Tier.STANDARD) == TierLimit(rate_per_minute=60, burst=100)
    assert standard.limit(Tier.DATA_READ) == TierLimit(rate_per_minute=600, burst=1_000)


def test_there_is_a_higher_plan_that_raises_both_tiers() -> None:
    standard = PLANS["standard"]
    higher = [
        plan
        for plan in PLANS.values()
        if all(
            plan.limit(tier).rate_per_minute > standard.limit(tier).rate_per_minute
            and plan.limit(tier).burst > standard.limit(tier).burst
            for tier in Tier
        )
    ]

    assert higher


def test_the_edge_is_every_tier_together_with_a_day_of_both_at_full_rate() -> None:
    edge = PLANS["standard"].edge

    assert edge.rate_per_second == 11
    assert edge.burst == 1_100
    assert edge.daily_quota == 660 * 24 * 60


def test_overrides_replace_only_their_tier() -> None:
    override = TierLimit(rate_per_minute=120, burst=150)

    limits = effective_limits("standard", {Tier.STANDARD: override})

    assert limits == {Tier.STANDARD: override, Tier.DATA_READ: PLANS["standard"].limit(Tier.DATA_READ)}


def test_an_unknown_plan_name_in_a_context_falls_back_to_the_default_plan() -> None:
    assert effective_limits("retired-plan") == effective_limits(DEFAULT_PLAN)


def test_plan_named_refuses_an_unknown_plan_with_a_field_error() -> None:
    with pytest.raises(ValidationFailed) as raised:
        plan_named("platinum")

    assert raised.value.errors[0].field == "plan"


def test_overrides_round_trip_through_their_stored_form() -> None:
    overrides = {Tier.DATA_READ: TierLimit(rate_per_minute=900, burst=1_000)}

    document = overrides_document(overrides)

    assert document == {"data-read": {"ratePerMinute": 900, "burst": 1_000}}
    assert parse_overrides(document) == overrides
    assert parse_overrides('{"data-read": {"ratePerMinute": 900, "burst": 1000}}') == overrides
    assert parse_overrides("") == {}


@pytest.mark.parametrize("raw", ['{"premium": {"ratePerMinute": 1, "burst": 1}}', '{"standard": {"burst": 1}}', "[]"])
def test_malformed_overrides_are_refused(raw: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        parse_overrides(raw)


def test_overrides_beyond_the_plans_edge_are_refused() -> None:
    standard = PLANS["standard"]

    check_overrides_fit(standard, {Tier.STANDARD: TierLimit(rate_per_minute=60, burst=100)})
    with pytest.raises(ValidationFailed):
        check_overrides_fit(standard, {Tier.STANDARD: TierLimit(rate_per_minute=6_000, burst=100)})
    with pytest.raises(ValidationFailed):
        check_overrides_fit(standard, {Tier.DATA_READ: TierLimit(rate_per_minute=600, burst=5_000)})


def test_malformed_overrides_in_an_authorizer_context_fall_back_to_the_plan() -> None:
    """A limiter setting must never turn into refusing the org's every request."""
    context = {
        "orgId": "6f1c2a8e-0d5b-4c1e-9a7f-3b2d1e0c9a84",
        "keyId": "0b7e2d4c-5a1f-4e3b-8c9d-2f6a1b3c4d5e",
        "keyType": "admin",
        "scopes": '[{"action": "*", "resourceFilter": ""}]',
        "plan": "standard",
        "limitOverrides": '{"premium": {"ratePerMinute": 1}}',
    }

    org = OrgContext.from_authorizer(context)

    assert org.limit_overrides == {}
    assert effective_limits(org.plan, org.limit_overrides) == effective_limits("standard")
