"""Token-bucket arithmetic, kept apart from storage so it can be checked exactly.

The bucket is stored as one number, its *theoretical arrival time* (``tat``, as in GCRA): the
moment at which it would be full again. With ``T`` the interval between two tokens and ``B`` the
burst, the bucket holds ``B - (tat - now) / T`` tokens, and a request is admitted when at least
one token is left, i.e. when ``max(tat, now) + T - now <= B * T``; admitting moves ``tat`` to
``max(tat, now) + T``. Refill is continuous (no ticks), a refused request changes nothing, and
a bucket that is full is the same as no bucket at all (so idle buckets can expire).

The backlog ``tat - now`` is measured in time at the interval that built it, so the bucket also
stores the limit it was built under: when the org's limit changes, the backlog is converted
first (``rescaled``), keeping the number of tokens owed (at most the new burst); otherwise a raise
from 1/min to 60/min would read a 5-token debt as a 300-token one, and a move to a smaller plan
would owe more tokens than its bucket holds.

Times are integer microseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from spectra.ratelimits.plans import Tier, TierLimit

MICROS = 1_000_000


def _ceil_seconds(micros: int) -> int:
    return -(-micros // MICROS) if micros > 0 else 0


@dataclass(frozen=True)
class Admission:
    """The outcome of one request against one bucket, and what to tell the client about it."""

    tier: Tier
    limit: TierLimit
    allowed: bool
    remaining: int
    """Whole tokens left after this request."""
    reset_seconds: int
    """Seconds until the bucket is full again."""
    retry_after_seconds: int
    """Seconds until a refused request would be admitted (0 when admitted)."""
    tat_us: int
    """The bucket's state after this request."""

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers of this request's tier (and ``Retry-After`` when refused)."""
        headers = {
            "RateLimit-Limit": str(self.limit.burst),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


def level(tier: Tier, limit: TierLimit, tat_us: int | None, now_us: int) -> Admission:
    """The bucket as it stands at ``now_us``, without taking a token (for ``GET /limits``)."""
    backlog = max(0, (tat_us or now_us) - now_us)
    tokens = max(0, limit.burst - _tokens_owed(backlog, limit))
    return Admission(
        tier=tier,
        limit=limit,
        allowed=tokens >= 1,
        remaining=tokens,
        reset_seconds=_ceil_seconds(backlog),
        retry_after_seconds=0 if tokens >= 1 else _retry_after(backlog, limit),
        tat_us=max(tat_us or now_us, now_us),
    )


def admit(tier: Tier, limit: TierLimit, tat_us: int | None, now_us: int) -> Admission:
    """Take one token if there is one. A clock that went backwards only makes the bucket
    look emptier (never fuller): ``tat`` is never moved back."""
    start = max(tat_us if tat_us is not None else now_us, now_us)
    interval = limit.interval_us
    if start - now_us <= (limit.burst - 1) * interval:
        new_tat = start + interval
        backlog = new_tat - now_us
        return Admission(
            tier=tier,
            limit=limit,
            allowed=True,
            remaining=max(0, limit.burst - _tokens_owed(backlog, limit)),
            reset_seconds=_ceil_seconds(backlog),
            retry_after_seconds=0,
            tat_us=new_tat,
        )
    backlog = start - now_us
    return Admission(
        tier=tier,
        limit=limit,
        allowed=False,
        remaining=0,
        reset_seconds=_ceil_seconds(backlog),
        retry_after_seconds=_retry_after(backlog, limit),
        tat_us=start,
    )


def _tokens_owed(backlog_us: int, limit: TierLimit) -> int:
    """Tokens missing from a full bucket whose backlog is ``backlog_us`` (rounded up)."""
    return -(-backlog_us // limit.interval_us)


def _retry_after(backlog_us: int, limit: TierLimit) -> int:
    """Whole seconds (at least 1) until one token is back: never an instant too early."""
    wait = backlog_us - (limit.burst - 1) * limit.interval_us
    return max(1, _ceil_seconds(wait))


def rescaled(tat_us: int | None, stored_interval_us: int | None, limit: TierLimit, now_us: int) -> int | None:
    """``tat`` as the current limit reads it, for a bucket built at ``stored_interval_us``: the
    tokens owed are kept, their time converted to the current interval, and never more than the
    current burst (a bucket holds no fewer than zero tokens, whatever the limit was before)."""
    if tat_us is None or tat_us <= now_us or stored_interval_us is None:
        return tat_us
    owed_us = tat_us - now_us
    if stored_interval_us != limit.interval_us:
        owed_us = -(-owed_us * limit.interval_us // stored_interval_us)
    return now_us + min(owed_us, limit.burst * limit.interval_us)
