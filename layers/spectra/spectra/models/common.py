"""Base models: request bodies refuse unknown fields; lists share one page shape."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

Item = TypeVar("Item")


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="ignore")


class Page(ResponseModel, Generic[Item]):
    """Every list response: ``{items, continuationToken, hasMore}``."""

    items: list[Item]
    continuationToken: str | None = Field(default=None, description="Pass back to get the next page.")
    hasMore: bool = False


def utc_now() -> datetime:
    """Now, in UTC, at millisecond precision (what the API shows)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, the storage and wire format of timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_millis(moment: datetime) -> int:
    """A moment as Unix epoch milliseconds, the unit of telemetry timestamps."""
    return int(moment.timestamp() * 1000)


def as_utc(moment: datetime | None) -> datetime | None:
    """A query's moment in UTC: one given without an offset is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_iso(text: str) -> datetime:
    """Parse a stored ISO-8601 timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


Timestamp = Annotated[
    datetime,
    PlainSerializer(to_iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A datetime shown as ISO-8601 UTC with milliseconds and ``Z`` (every ``…At`` field)."""


class LifecycleStatus(StrEnum):
    """Which soft-deletable records a list shows (``active`` unless asked otherwise)."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"

    def includes(self, is_deleted: bool) -> bool:
        return self is LifecycleStatus.ALL or (self is LifecycleStatus.DELETED) == is_deleted


class HistoryEntry(ResponseModel):
    """One lifecycle event of a soft-deletable record (created, updated, deleted, restored)."""

    event: str
    at: Timestamp
    by: str


Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=50, description="Free-form labels"),
]
