"""The audit table: each org's chain, appended with a conditional put, never updated.

An append reads the newest event (one strongly consistent Query) and writes the next one at
``sequence + 1`` only if that position is still free: of two writers racing for a position one
wins and the other reads the new head and tries again, so concurrent requests never fork the
chain. The roles that write here may put and read, never update or delete (the template's IAM,
checked as data by the tests); the chain makes any other change visible to ``verify``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from spectra.audit.chain import AuditRecord, seal
from spectra.config import Settings
from spectra.errors import SpectraError
from spectra.models.common import to_iso, utc_now
from spectra.repositories.dynamo import (
    OrgScopedTable,
    QueryPage,
    from_item,
    is_condition_failure,
    to_item,
    to_values,
)
from spectra.tenancy import keys
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

APPEND_ATTEMPTS = 8
DEFAULT_AUDIT_RETENTION_DAYS = 400


class AuditChainBusy(SpectraError):
    """Every attempt to append lost the race for the next position (a 503: try again)."""

    status = 503
    code = "audit_busy"
    title = "Service Unavailable"


class AuditLog(OrgScopedTable):
    """An org's audit chain in the audit table, reached with the org's own credentials."""

    def __init__(
        self,
        sessions: OrgSessions,
        table: str,
        *,
        retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(sessions, table)
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    @classmethod
    def of(cls, sessions: OrgSessions, settings: Settings) -> AuditLog | None:
        """The deployment's audit log with its retention (``None`` where it has no audit table)."""
        if not settings.audit_table:
            return None
        return cls(sessions, settings.audit_table, retention_days=settings.audit_retention_days)

    def append(self, org: OrgContext, record: AuditRecord) -> dict[str, Any]:
        """Add ``record`` at the end of the org's chain; the sealed event."""
        for attempt in range(APPEND_ATTEMPTS):
            now = self._clock()
            previous = self.head(org)
            # Never before the event it follows: expiry stays monotonic along the chain even when
            # the retention is shortened, so TTL only ever removes a leading run of events.
            expires_at = max(
                int((now + self._retention).timestamp()), int(previous.get("expiresAt") or 0) if previous else 0
            )
            event = seal(
                record,
                org_id=org.org_id,
                event_id=str(uuid.uuid4()),
                time=to_iso(now),
                expires_at=expires_at,
                previous=previous,
            )
            item = {**event, **keys.audit_event_key(org, int(event["sequence"]))}
            try:
                self._client(org).put_item(
                    TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311 - jitter, not crypto
                continue
            return event
        raise AuditChainBusy("The audit log is busy; try again.")

    def head(self, org: OrgContext) -> dict[str, Any] | None:
        """The newest event of the org's chain (``None`` before the first)."""
        response = self._client(org).query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=to_values(
                {":pk": keys.audit_partition(org), ":prefix": keys.AUDIT_EVENT_SORT_PREFIX}
            ),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return _event(from_item(items[0])) if items else None

    def page(
        self,
        org: OrgContext,
        *,
        limit: int,
        start_after: Mapping[str, str] | None,
        keep: Callable[[dict[str, Any]], bool],
    ) -> QueryPage:
        """A page of the org's retained events, newest first, filtered by ``keep``."""
        now = self._clock()
        page = self._page(
            org,
            keys.audit_partition(org),
            keys.AUDIT_EVENT_SORT_PREFIX,
            limit=limit,
            start_after=start_after,
            keep=lambda item: self._retained(item, now) and keep(item),
            newest_first=True,
        )
        return QueryPage([_event(item) for item in page.items], page.resume_after)

    def events(self, org: OrgContext, *, after_sequence: int = 0) -> Iterator[dict[str, Any]]:
        """The org's retained events in chain order, from the one after ``after_sequence``.

        Events past their ``expiresAt`` are left out even before DynamoDB's TTL removes them
        (which can take days), so the log keeps exactly as long as configured. Only a leading
        run is left out: clocks of concurrent writers may disagree by a little around the
        cutoff, and a hidden event in the middle would look like a deletion to ``verify``.
        """
        now = self._clock()
        leading = True
        for item in self.stored_events(org, after_sequence=after_sequence):
            if leading and not self._retained(item, now):
                continue
            leading = False
            yield _event(item)

    def expired(self, org: OrgContext) -> int:
        """How many events are past the retention period but still stored (awaiting TTL)."""
        now = self._clock()
        count = 0
        for item in self.stored_events(org):
            if self._retained(item, now):
                break
            count += 1
        return count

    @staticmethod
    def _retained(item: Mapping[str, Any], now: datetime) -> bool:
        """Kept until ``expiresAt``: the retention in force when the event was written."""
        expires_at = item.get("expiresAt")
        return expires_at is None or int(expires_at) > now.timestamp()

    def now(self) -> datetime:
        """The log's clock (what "expired" is measured against)."""
        return self._clock()

    def stored_events(self, org: OrgContext, *, after_sequence: int = 0) -> Iterator[dict[str, Any]]:
        """Every stored item of the org's chain in order, storage fields (``expiresAt``) included."""
        start: dict[str, Any] | None = None
        while True:
            params: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND sk > :after",
                "ExpressionAttributeValues": to_values(
                    {
                        ":pk": keys.audit_partition(org),
                        ":after": f"{keys.AUDIT_EVENT_SORT_PREFIX}{after_sequence:016d}#",
                    }
                ),
                "ConsistentRead": True,
            }
            if start:
                params["ExclusiveStartKey"] = start
            response = self._client(org).query(**params)
            for raw in response.get("Items", []):
                yield from_item(raw)
            start = response.get("LastEvaluatedKey")
            if not start:
                return


def _event(item: dict[str, Any]) -> dict[str, Any]:
    """An event as the chain defines it (the storage keys left out)."""
    return {name: value for name, value in item.items() if name not in {"pk", "sk"}}
