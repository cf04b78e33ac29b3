"""Point-in-time restore: the "a tested restore tool" half of the backups promise.

Every table has point-in-time recovery; this module turns that into an operator's procedure. A
table is restored to a *new* table (never over the live one), encrypted with the platform key and
itself protected (PITR, deletion protection), and its items are counted. With an org, only that
org's items are copied back into the live table: every item whose partition key starts with the
org's prefix (``tenancy.keys.org_prefix``), or every item of the org's own telemetry table. Live
items of the org that the restore does not have are reported, and deleted only when asked.

Scan is used here and nowhere on a request path: this is an operator tool reading whole tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spectra.config import Settings
from spectra.errors import ValidationFailed
from spectra.models.common import to_iso
from spectra.telemetry_store import telemetry_table_name
from spectra.tenancy.context import OrgContext
from spectra.tenancy.keys import api_keys_partition, org_prefix, org_profile_key

BATCH_SIZE = 25
"""The most items one ``BatchWriteItem`` takes."""
WRITE_ATTEMPTS = 8
RESTORE_WAIT = {"Delay": 20, "MaxAttempts": 540}
"""A restore takes minutes to hours with the table's size: wait up to three hours."""


@dataclass(frozen=True)
class OrgCopy:
    """What copying one org's items back did."""

    org_id: str
    restored_items: int
    live_items_before: int
    copied: int
    only_live: int
    """Items of the org in the live table that the restore does not have (newer, or restored away)."""
    deleted: int
    live_items_after: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "orgId": self.org_id,
            "restoredItems": self.restored_items,
            "liveItemsBefore": self.live_items_before,
            "copied": self.copied,
            "onlyLive": self.only_live,
            "deleted": self.deleted,
            "liveItemsAfter": self.live_items_after,
        }


@dataclass(frozen=True)
class Restore:
    """A finished restore: the new table, its item count, and the org copy if one was asked for."""

    source_table: str
    restored_table: str
    restored_to: datetime
    restored_items: int
    org: OrgCopy | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "sourceTable": self.source_table,
            "restoredTable": self.restored_table,
            "restoredTo": to_iso(self.restored_to),
            "restoredItems": self.restored_items,
        }
        if self.org is not None:
            result["org"] = self.org.as_dict()
        return result


def restored_table_name(source_table: str, started_at: datetime) -> str:
    """``<source>-restore-<UTC stamp>``: next to its source in listings, never a live name."""
    return f"{source_table}-restore-{started_at:%Y%m%dT%H%M%SZ}"


class TableRestorer:
    """Restores a table to a point in time, verifies it, and copies one org's items back."""

    def __init__(
        self,
        dynamodb: Any,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        restore_wait: dict[str, int] | None = None,
    ) -> None:
        self._dynamodb = dynamodb
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._restore_wait = restore_wait or RESTORE_WAIT

    def restore(
        self,
        table: str,
        to: datetime,
        *,
        org_id: str | None = None,
        delete_newer: bool = False,
        include_access: bool = False,
    ) -> Restore:
        """Restore ``table`` as it was at ``to`` into a new table; with ``org_id``, copy that
        org's items back into ``table`` (and with ``delete_newer``, delete its items the
        restore does not have). The org's profile and API keys are left as they are live unless
        ``include_access``: a restore must not bring back a key revoked, or an org suspended,
        since."""
        org = OrgContext.for_operator(org_id) if org_id is not None else None
        if org is not None:
            self._refuse_unsafe_copy(table, org, delete_newer=delete_newer)
        elif delete_newer:
            raise ValidationFailed.single("delete-newer", "only with --org: a whole table is swapped, not merged")
        to = self._check_restorable(table, to)
        target = restored_table_name(table, self._clock())
        self._dynamodb.restore_table_to_point_in_time(
            SourceTableName=table,
            TargetTableName=target,
            RestoreDateTime=to,
            BillingModeOverride="PAY_PER_REQUEST",
            SSESpecificationOverride={
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": self._settings.platform_key_arn,
            },
        )
        self._dynamodb.get_waiter("table_exists").wait(TableName=target, WaiterConfig=self._restore_wait)
        # The restored table may become the live one (a swap): protect it like every table.
        self._dynamodb.update_continuous_backups(
            TableName=target, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        self._dynamodb.update_table(TableName=target, DeletionProtectionEnabled=True)
        copy = (
            self.copy_org_back(target, table, org, delete_newer=delete_newer, include_access=include_access)
            if org is not None
            else None
        )
        return Restore(
            source_table=table,
            restored_table=target,
            restored_to=to,
            restored_items=self.count_items(target),
            org=copy,
        )

    def copy_org_back(
        self, restored: str, live: str, org: OrgContext, *, delete_newer: bool, include_access: bool = False
    ) -> OrgCopy:
        """Put every item of ``org`` in ``restored`` into ``live`` (overwriting the live version),
        its access items (profile, API keys) only with ``include_access``."""
        key_names = self._key_names(live)
        whole = self._is_org_telemetry_table(live, org)
        access = set() if include_access or whole else _access_partitions(org)

        def copied_here(item: dict[str, Any]) -> bool:
            return item[key_names[0]].get("S") not in access

        live_items = self._org_items(live, org, whole, key_names=key_names)
        live_keys = {_key_of(item, key_names) for item in live_items if copied_here(item)}
        restored_keys: set[tuple[Any, ...]] = set()
        copied = 0
        for batch in _batches(item for item in self._org_items(restored, org, whole) if copied_here(item)):
            self._write(live, [{"PutRequest": {"Item": item}} for item in batch])
            restored_keys.update(_key_of(item, key_names) for item in batch)
            copied += len(batch)
        only_live = live_keys - restored_keys
        deleted = 0
        if delete_newer:
            for keys in _batches(sorted(only_live, key=str)):
                self._write(live, [{"DeleteRequest": {"Key": _item_key(key, key_names)}} for key in keys])
                deleted += len(keys)
        return OrgCopy(
            org_id=org.org_id,
            restored_items=copied,
            live_items_before=len(live_keys),
            copied=copied,
            only_live=len(only_live),
            deleted=deleted,
            live_items_after=self.count_org_items(live, org),
        )

    def count_items(self, table: str) -> int:
        """Every item of the table (a counting Scan, no items returned)."""
        return sum(page["Count"] for page in self._scan(TableName=table, Select="COUNT"))

    def count_org_items(self, table: str, org: OrgContext) -> int:
        """The org's items in a live table."""
        whole = self._is_org_telemetry_table(table, org)
        return sum(1 for _ in self._org_items(table, org, whole, key_names=self._key_names(table)))

    def _org_items(
        self, table: str, org: OrgContext, whole_table: bool, *, key_names: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The org's items: all of them (its own telemetry table, or a restore of it), or those
        the org's prefix leads (``key_names``: only the keys)."""
        arguments: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if key_names:
            arguments["ProjectionExpression"] = ", ".join(f"#k{i}" for i in range(len(key_names)))
            arguments["ExpressionAttributeNames"] = {f"#k{i}": name for i, name in enumerate(key_names)}
        if not whole_table:
            partition_key = self._key_names(table)[0]
            arguments["FilterExpression"] = "begins_with(#pk, :org)"
            arguments.setdefault("ExpressionAttributeNames", {})["#pk"] = partition_key
            arguments["ExpressionAttributeValues"] = {":org": {"S": org_prefix(org)}}
        for page in self._scan(**arguments):
            yield from page.get("Items", [])

    def _refuse_unsafe_copy(self, table: str, org: OrgContext, *, delete_newer: bool) -> None:
        """Copy back only where an org's items are known by key: tables keyed by the org prefix,
        and the org's own telemetry table. The audit chain is append-only: never delete from it."""
        org_partitioned = {self._settings.records_table, self._settings.audit_table, self._settings.rate_limit_table}
        if table not in org_partitioned - {""} and not self._is_org_telemetry_table(table, org):
            raise ValidationFailed.single(
                "org",
                "--org copies back into the records, audit or rate-limit table, or into the org's own telemetry table",
            )
        if delete_newer and table == self._settings.audit_table:
            raise ValidationFailed.single("delete-newer", "the audit chain is append-only: events are never deleted")

    def _is_org_telemetry_table(self, table: str, org: OrgContext) -> bool:
        return bool(self._settings.telemetry_table_prefix) and table == telemetry_table_name(self._settings, org.org_id)

    def _check_restorable(self, table: str, to: datetime) -> datetime:
        """The time to restore to: ``to``, or the latest restorable time when that is earlier."""
        now = self._clock()
        if to > now:
            raise ValidationFailed.single("to", f"{to_iso(to)} is in the future (now is {to_iso(now)})")
        recovery = self._dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        window = recovery.get("PointInTimeRecoveryDescription", {})
        if window.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise ValidationFailed.single("table", f"{table} has no point-in-time recovery to restore from")
        earliest = window["EarliestRestorableDateTime"]
        if to < earliest:
            raise ValidationFailed.single(
                "to", f"{to_iso(to)} is before the earliest restorable time of {table}, {to_iso(earliest)}"
            )
        latest = window.get("LatestRestorableDateTime")
        # DynamoDB restores up to a few minutes ago: a later time means "as late as it can".
        return min(to, latest) if latest is not None else to

    def _key_names(self, table: str) -> list[str]:
        """The table's key attributes, partition key first (from the table, never assumed)."""
        schema = self._dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
        return [key["AttributeName"] for key in sorted(schema, key=lambda key: key["KeyType"] != "HASH")]

    def _scan(self, **arguments: Any) -> Iterator[dict[str, Any]]:
        yield from self._dynamodb.get_paginator("scan").paginate(**arguments)

    def _write(self, table: str, requests: list[dict[str, Any]]) -> None:
        """One batch, retrying what DynamoDB leaves unprocessed (with backoff) until it is all in."""
        pending: dict[str, Any] = {table: requests}
        for attempt in range(WRITE_ATTEMPTS):
            pending = self._dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                return
            self._sleep(min(0.05 * 2**attempt, 5.0))
        raise RuntimeError(f"{len(pending[table])} writes to {table} stayed unprocessed after {WRITE_ATTEMPTS} tries")


def _access_partitions(org: OrgContext) -> set[str]:
    """The partitions that decide who may act for the org: its profile and its API keys."""
    return {org_profile_key(org)["pk"], api_keys_partition(org)}


def _key_of(item: dict[str, Any], key_names: Sequence[str]) -> tuple[Any, ...]:
    """An item's key as a hashable value (attribute values are ``{"S": ...}``-style maps)."""
    return tuple(tuple(sorted(item[name].items())) for name in key_names)


def _item_key(key: tuple[Any, ...], key_names: Sequence[str]) -> dict[str, Any]:
    """The ``Key`` argument for a key made by ``_key_of``."""
    return {name: dict(value) for name, value in zip(key_names, key, strict=True)}


def _batches(items: Iterator[Any] | Sequence[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch
