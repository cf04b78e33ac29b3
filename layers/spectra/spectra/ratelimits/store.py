"""The token buckets in DynamoDB: one item per org per tier, reached with the org's credentials.

Admitting a request is one conditional ``UpdateItem``. DynamoDB update expressions cannot take
``max(tat, now)``, so the update is written for one of two cases, guessed from what this
container last saw of the bucket:

- *idle* (the bucket is full: ``tat <= now`` or no item): ``tat = now + T``;
- *busy* (tokens have been spent: ``now < tat <= now + (B-1)T``, at this ``T``): ``tat = tat + T``.

When the guess is wrong the condition fails and DynamoDB returns the item as it is
(``ReturnValuesOnConditionCheckFailure``); from it we know whether the bucket is empty (refused:
nothing was written, so a refused request spends nothing) or which update to send instead. So
an admitted request costs one write, two when the bucket changed state since this container last
looked (or, once, after the org's limit changed: the backlog is converted to the new interval
with a compare-and-set); a refused one costs one. The same update counts the day's admitted requests (one
attribute per UTC day, the one from two days before removed) and moves the item's TTL, so
buckets left idle expire.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from spectra.ratelimits.bucket import MICROS, Admission, admit, level, rescaled
from spectra.ratelimits.plans import Tier, TierLimit
from spectra.repositories.dynamo import OrgScopedTable, from_item, is_condition_failure, to_values
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

ATTEMPTS = 3
KEEP_IDLE_BUCKET_SECONDS = 24 * 3600
"""How long after its last use (and the end of that day) a bucket item lingers before its TTL."""
MAX_REMEMBERED_BUCKETS = 10_000


class BucketContention(RuntimeError):
    """Concurrent writers changed the bucket under every attempt (never expected in practice)."""


def day_attribute(day: datetime) -> str:
    """The attribute counting one UTC day's admitted requests, e.g. ``requests20261127``."""
    return f"requests{day:%Y%m%d}"


@dataclass(frozen=True)
class BucketReading:
    """A tier's bucket as ``GET /organization/limits`` shows it."""

    admission: Admission
    requests_today: int


class TokenBuckets(OrgScopedTable):
    """Per-org, per-tier token buckets (see the module docstring for the one-write protocol)."""

    def __init__(self, sessions: OrgSessions, table: str) -> None:
        super().__init__(sessions, table)
        self._last_tat: dict[tuple[str, Tier], int] = {}
        self._lock = threading.Lock()

    def take(self, org: OrgContext, tier: Tier, limit: TierLimit, now_us: int) -> Admission:
        """Admit one request of ``tier`` or refuse it (``Admission.allowed``); writes only when
        admitting."""
        remembered = self._remembered(org, tier)
        busy = remembered is not None and remembered > now_us
        request = self._admit_request(org, tier, limit, now_us, busy=busy)
        for _attempt in range(ATTEMPTS):
            try:
                attributes = self._client(org).update_item(**request, ReturnValues="UPDATED_NEW")["Attributes"]
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                stored_tat, stored_interval = _stored_state(dict(error.response).get("Item"))
                decision = admit(tier, limit, rescaled(stored_tat, stored_interval, limit, now_us), now_us)
                if not decision.allowed:
                    self._remember(org, tier, decision.tat_us)
                    return decision
                if stored_tat is None or stored_tat <= now_us:
                    request = self._admit_request(org, tier, limit, now_us, busy=False)
                elif stored_interval in (None, limit.interval_us):
                    request = self._admit_request(org, tier, limit, now_us, busy=True)
                else:  # the limit changed since the last request: convert and admit in one write
                    request = self._rescale_request(org, tier, limit, now_us, stored_tat, stored_interval, decision)
                continue
            new_tat = int(from_item(attributes)["tat"])
            self._remember(org, tier, new_tat)
            # The decision this write made: the token before ``new_tat`` was the one taken.
            return admit(tier, limit, new_tat - limit.interval_us, now_us)
        raise BucketContention(f"bucket {tier} kept changing")

    def read(self, org: OrgContext, limits: dict[Tier, TierLimit], now_us: int) -> dict[Tier, BucketReading]:
        """Every tier's bucket, without taking a token (one Query of the org's partition)."""
        response = self._client(org).query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_values({":pk": keys.rate_limit_partition(org)}),
            ConsistentRead=True,
        )
        stored = {str(item["sk"]): item for item in (from_item(raw) for raw in response.get("Items", []))}
        today = day_attribute(_utc(now_us))
        readings: dict[Tier, BucketReading] = {}
        for tier, limit in limits.items():
            item = stored.get(keys.rate_limit_bucket_key(org, tier.value)["sk"], {})
            tat = rescaled(item.get("tat"), item.get("intervalUs"), limit, now_us)
            readings[tier] = BucketReading(level(tier, limit, tat, now_us), int(item.get(today, 0)))
        return readings

    def _admit_request(
        self, org: OrgContext, tier: Tier, limit: TierLimit, now_us: int, *, busy: bool
    ) -> dict[str, Any]:
        """The one-write admission for a bucket guessed idle (full) or busy at this interval."""
        values: dict[str, Any] = {":now": now_us, ":interval": limit.interval_us}
        if busy:
            assignment = "tat = tat + :interval"
            condition = "tat > :now AND tat <= :latest AND intervalUs = :interval"
            values[":latest"] = now_us + (limit.burst - 1) * limit.interval_us
        else:
            assignment = "tat = :next, intervalUs = :interval"
            condition = "attribute_not_exists(tat) OR tat <= :now"
            values[":next"] = now_us + limit.interval_us
        return self._admission_write(org, tier, limit, now_us, assignment, condition, values)

    def _rescale_request(
        self,
        org: OrgContext,
        tier: Tier,
        limit: TierLimit,
        now_us: int,
        stored_tat: int,
        stored_interval: int,
        decision: Admission,
    ) -> dict[str, Any]:
        """Admit against a backlog built at another interval: set the converted state, if the
        bucket is still exactly as read."""
        values = {":new": decision.tat_us, ":interval": limit.interval_us, ":seen": stored_tat}
        values[":seenInterval"] = stored_interval
        return self._admission_write(
            org,
            tier,
            limit,
            now_us,
            "tat = :new, intervalUs = :interval",
            "tat = :seen AND intervalUs = :seenInterval",
            values,
        )

    def _admission_write(
        self,
        org: OrgContext,
        tier: Tier,
        limit: TierLimit,
        now_us: int,
        assignment: str,
        condition: str,
        values: dict[str, Any],
    ) -> dict[str, Any]:
        """One admission write: the bucket's new state, today's count, the TTL of the item."""
        now = _utc(now_us)
        end_of_day = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        latest_tat_us = now_us + limit.burst * limit.interval_us
        expires_at = max(int(end_of_day.timestamp()), -(-latest_tat_us // MICROS)) + KEEP_IDLE_BUCKET_SECONDS
        return {
            "TableName": self._table,
            "Key": to_values(keys.rate_limit_bucket_key(org, tier.value)),
            "UpdateExpression": f"SET {assignment}, expiresAt = :expires ADD #today :one REMOVE #stale",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                "#today": day_attribute(now),
                "#stale": day_attribute(now - timedelta(days=2)),
            },
            "ExpressionAttributeValues": to_values({**values, ":one": 1, ":expires": expires_at}),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _remembered(self, org: OrgContext, tier: Tier) -> int | None:
        with self._lock:
            return self._last_tat.get((org.org_id, tier))

    def _remember(self, org: OrgContext, tier: Tier, tat_us: int) -> None:
        with self._lock:
            if len(self._last_tat) >= MAX_REMEMBERED_BUCKETS:
                self._last_tat.clear()
            self._last_tat[(org.org_id, tier)] = tat_us


def _stored_state(item: Any) -> tuple[int | None, int | None]:
    """The stored bucket's ``tat`` and the interval that built it (``None`` where absent)."""
    if not item:
        return None, None
    stored = from_item(item)
    tat, interval = stored.get("tat"), stored.get("intervalUs")
    return (int(tat) if tat is not None else None), (int(interval) if interval is not None else None)


def _utc(now_us: int) -> datetime:
    return datetime.fromtimestamp(now_us / MICROS, UTC)
