"""Token-bucket arithmetic: refill, burst, retry-after rounding and a clock that goes backwards."""

from __future__ import annotations

import pytest

from spectra.ratelimits.bucket import MICROS, Admission, admit, level, rescaled
from spectra.ratelimits.plans import Tier, TierLimit

STANDARD = TierLimit(rate_per_minute=60, burst=100)  # one token a second
T0 = 1_800_000_000 * MICROS


def drain(limit: TierLimit, count: int, now_us: int, tat_us: int | None = None) -> tuple[list[Admission], int | None]:
    """``count`` requests at the same instant; the admissions and the bucket's final state."""
    decisions = []
    for _ in range(count):
        decision = admit(Tier.STANDARD, limit, tat_us, now_us)
        decisions.append(decision)
        if decision.allowed:
            tat_us = decision.tat_us
    return decisions, tat_us


def test_a_new_bucket_admits_exactly_its_burst_at_once() -> None:
    decisions, _ = drain(STANDARD, 150, T0)

    assert sum(d.allowed for d in decisions) == 100
    assert all(d.allowed for d in decisions[:100])
    assert not any(d.allowed for d in decisions[100:])


def test_remaining_counts_down_to_zero_through_the_burst() -> None:
    decisions, _ = drain(STANDARD, 100, T0)

    assert [d.remaining for d in decisions] == list(range(99, -1, -1))


def test_the_bucket_refills_continuously_at_the_sustained_rate() -> None:
    _, tat = drain(STANDARD, 100, T0)

    after_2_5_seconds, _ = drain(STANDARD, 10, T0 + 2_500_000, tat)

    assert sum(d.allowed for d in after_2_5_seconds) == 2


def test_refill_never_exceeds_the_burst() -> None:
    _, tat = drain(STANDARD, 100, T0)

    a_day_later, _ = drain(STANDARD, 500, T0 + 86_400 * MICROS, tat)

    assert sum(d.allowed for d in a_day_later) == 100


def test_accepted_requests_over_time_are_burst_plus_rate_times_elapsed() -> None:
    limit = TierLimit(rate_per_minute=600, burst=20)  # ten a second
    tat: int | None = None
    admitted = 0
    for step in range(0, 5_000_001, 1_000):  # a request every millisecond for five seconds
        decision = admit(Tier.STANDARD, limit, tat, T0 + step)
        if decision.allowed:
            admitted += 1
            tat = decision.tat_us

    assert admitted == 20 + 50


def test_a_refused_request_leaves_the_bucket_as_it_was() -> None:
    _, tat = drain(STANDARD, 100, T0)

    refused = admit(Tier.STANDARD, STANDARD, tat, T0)

    assert not refused.allowed
    assert refused.tat_us == tat


def test_retry_after_is_rounded_up_to_whole_seconds_and_is_never_early() -> None:
    limit = TierLimit(rate_per_minute=7, burst=1)  # a token every 8.571 s
    first = admit(Tier.STANDARD, limit, None, T0)

    refused = admit(Tier.STANDARD, limit, first.tat_us, T0 + 1_000)

    assert refused.retry_after_seconds == 9
    assert not admit(Tier.STANDARD, limit, first.tat_us, T0 + 8 * MICROS).allowed
    assert admit(Tier.STANDARD, limit, first.tat_us, T0 + 1_000 + 9 * MICROS).allowed


def test_retry_after_is_at_least_one_second() -> None:
    limit = TierLimit(rate_per_minute=600_000, burst=1)  # a token every 100 µs
    first = admit(Tier.STANDARD, limit, None, T0)

    refused = admit(Tier.STANDARD, limit, first.tat_us, T0)

    assert not refused.allowed
    assert refused.retry_after_seconds == 1


def test_reset_is_the_time_until_the_bucket_is_full_again() -> None:
    decisions, _ = drain(STANDARD, 10, T0)

    assert decisions[-1].reset_seconds == 10
    assert decisions[0].reset_seconds == 1


def test_a_clock_that_went_backwards_never_grants_more_than_the_burst() -> None:
    _, tat = drain(STANDARD, 100, T0)

    earlier, _ = drain(STANDARD, 10, T0 - 30 * MICROS, tat)

    assert not any(d.allowed for d in earlier)
    assert all(d.remaining == 0 and d.retry_after_seconds >= 1 for d in earlier)


def test_a_clock_that_went_backwards_does_not_move_the_bucket_back() -> None:
    first = admit(Tier.STANDARD, STANDARD, None, T0)

    earlier = admit(Tier.STANDARD, STANDARD, first.tat_us, T0 - 5 * MICROS)

    assert earlier.allowed
    assert earlier.tat_us == first.tat_us + STANDARD.interval_us


def test_level_reads_the_bucket_without_taking_a_token() -> None:
    _, tat = drain(STANDARD, 30, T0)

    reading = level(Tier.STANDARD, STANDARD, tat, T0)

    assert reading.remaining == 70
    assert reading.reset_seconds == 30
    assert level(Tier.STANDARD, STANDARD, None, T0).remaining == 100


def test_headers_name_the_tier_limit_and_add_retry_after_only_when_refused() -> None:
    _, tat = drain(STANDARD, 100, T0)
    admitted = admit(Tier.STANDARD, STANDARD, None, T0)
    refused = admit(Tier.STANDARD, STANDARD, tat, T0)

    assert admitted.headers() == {"RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "1"}
    assert refused.headers()["Retry-After"] == "1"
    assert refused.headers()["RateLimit-Remaining"] == "0"


@pytest.mark.parametrize(("rpm", "burst"), [(0, 1), (1, 0), (600_001, 1), (1, 100_001)])
def test_limits_outside_their_bounds_are_refused(rpm: int, burst: int) -> None:
    with pytest.raises(ValueError, match="must be 1-"):
        TierLimit(rate_per_minute=rpm, burst=burst)


def test_a_backlog_is_converted_to_a_new_interval_keeping_the_tokens_owed() -> None:
    slow = TierLimit(rate_per_minute=1, burst=5)
    _, tat = drain(slow, 5, T0)

    converted = rescaled(tat, slow.interval_us, STANDARD, T0)

    assert converted == T0 + 5 * STANDARD.interval_us
    assert admit(Tier.STANDARD, STANDARD, converted, T0).remaining == 94


def test_a_backlog_at_the_same_limit_or_a_full_bucket_is_left_as_it_is() -> None:
    assert rescaled(T0 + 7, STANDARD.interval_us, STANDARD, T0) == T0 + 7
    assert rescaled(T0 - 7, 1, STANDARD, T0) == T0 - 7
    assert rescaled(None, None, STANDARD, T0) is None
    assert rescaled(T0 + 7, None, STANDARD, T0) == T0 + 7


def test_lowering_the_rate_converts_the_debt_upwards_never_forgiving_it() -> None:
    fast = TierLimit(rate_per_minute=6_000, burst=100)  # 10 ms a token
    _, tat = drain(fast, 3, T0)

    converted = rescaled(tat, fast.interval_us, STANDARD, T0)

    assert converted == T0 + 3 * STANDARD.interval_us


def test_a_move_to_a_smaller_bucket_owes_at_most_that_bucket() -> None:
    enterprise = TierLimit(rate_per_minute=1_200, burst=2_000)
    _, tat = drain(enterprise, 1_500, T0)

    converted = rescaled(tat, enterprise.interval_us, STANDARD, T0)
    refused = admit(Tier.STANDARD, STANDARD, converted, T0)

    assert converted == T0 + 100 * STANDARD.interval_us
    assert not refused.allowed
    assert refused.retry_after_seconds == 1


def test_a_smaller_burst_at_the_same_rate_owes_at_most_that_burst() -> None:
    bigger = TierLimit(rate_per_minute=60, burst=500)
    _, tat = drain(bigger, 400, T0)

    converted = rescaled(tat, bigger.interval_us, STANDARD, T0)

    assert converted == T0 + 100 * STANDARD.interval_us
