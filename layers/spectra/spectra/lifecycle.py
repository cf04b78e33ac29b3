"""Soft delete, restore and history: the lifecycle shared by every definition record.

Definitions are never physically removed by the API. Deleting one sets ``isDeleted`` with
``deletedAt``/``deletedBy``; restoring clears them; every lifecycle event is appended to the
record's ``history``. A ``lockVersion`` counter guards each change against a concurrent one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from spectra.models.common import LifecycleStatus, to_iso
from spectra.tenancy.context import OrgContext

ACTIVE_AND_CURRENT = "attribute_exists(pk) AND isDeleted = :false AND lockVersion = :seen"
DELETED_AND_CURRENT = "attribute_exists(pk) AND isDeleted = :true AND lockVersion = :seen"


def history_event(event: str, org: OrgContext, now: datetime) -> dict[str, str]:
    return {"event": event, "at": to_iso(now), "by": org.actor}


def stamps(org: OrgContext, now: datetime) -> dict[str, str]:
    """Who created a record and when (every record carries these, soft-deletable or not)."""
    stamp = to_iso(now)
    return {"createdAt": stamp, "updatedAt": stamp, "createdBy": org.actor, "updatedBy": org.actor}


def touched(org: OrgContext, now: datetime) -> dict[str, str]:
    """Who changed a record last and when."""
    return {"updatedAt": to_iso(now), "updatedBy": org.actor}


def new_record_fields(org: OrgContext, now: datetime) -> dict[str, Any]:
    """The bookkeeping fields of a newly created definition."""
    return {
        "isDeleted": False,
        "lockVersion": 1,
        **stamps(org, now),
        "history": [history_event("created", org, now)],
    }


def change_fields(org: OrgContext, now: datetime, record: Mapping[str, Any]) -> dict[str, Any]:
    """Fields every change sets: who, when, and the next version."""
    return {**touched(org, now), "lockVersion": int(record.get("lockVersion", 1)) + 1}


def deletion_fields(org: OrgContext, now: datetime, record: Mapping[str, Any]) -> dict[str, Any]:
    return {**change_fields(org, now, record), "isDeleted": True, "deletedAt": to_iso(now), "deletedBy": org.actor}


def guard_values(record: Mapping[str, Any], *, deleted: bool) -> dict[str, Any]:
    """Condition values for ``ACTIVE_AND_CURRENT`` / ``DELETED_AND_CURRENT``."""
    values: dict[str, Any] = {":seen": int(record.get("lockVersion", 1))}
    values[":true" if deleted else ":false"] = deleted
    return values


def visible(record: Mapping[str, Any], status: LifecycleStatus) -> bool:
    """Whether a list filtered by ``status`` shows ``record``."""
    return status.includes(bool(record.get("isDeleted", False)))
