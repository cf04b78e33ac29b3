"""Scheduled functions: EventBridge ``rate(...)`` and ``cron(...)`` expressions, run locally.

``make dev`` runs every schedule of the template on its expression (unless
``SPECTRA_SCHEDULES=off``); ``spectra schedule run FUNCTION --local`` runs one now. The event is
the one EventBridge sends for a scheduled rule.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from spectra_local.aws import ACCOUNT_ID

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def scheduled_event(rule_name: str, *, region: str, when: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge delivers to a function for a scheduled rule."""
    moment = (when or datetime.now(UTC)).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


def _field_matches(spec: str, value: int, *, lowest: int) -> bool:
    if spec in {"*", "?"}:
        return True
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in {"*", ""}:
            start, end = lowest, 10_000
        elif "-" in part:
            start_text, end_text = part.split("-", 1)
            start, end = int(start_text), int(end_text)
        else:
            start = int(part)
            end = start if step == 1 else 10_000
        if start <= value <= end and (value - start) % step == 0:
            return True
    return False


@dataclass(frozen=True)
class Schedule:
    """One schedule expression; ``due(previous, now)`` says whether it fires in (previous, now]."""

    expression: str

    def __post_init__(self) -> None:
        if not (_RATE.match(self.expression) or _CRON.match(self.expression)):
            raise ValueError(f"unsupported schedule expression {self.expression!r}")

    def interval(self) -> timedelta | None:
        match = _RATE.match(self.expression)
        if match is None:
            return None
        unit = match.group(2).rstrip("s")
        return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[unit])

    def matches_minute(self, moment: datetime) -> bool:
        """Whether a ``cron(...)`` expression selects this UTC minute (minute hour dom month dow year)."""
        match = _CRON.match(self.expression)
        if match is None:
            return False
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ValueError(f"cron needs 6 fields: {self.expression!r}")
        minute, hour, day, month, weekday, year = fields
        # EventBridge numbers weekdays 1-7 from Sunday; Python's isoweekday is 1-7 from Monday.
        eventbridge_weekday = moment.isoweekday() % 7 + 1
        return (
            _field_matches(minute, moment.minute, lowest=0)
            and _field_matches(hour, moment.hour, lowest=0)
            and _field_matches(day, moment.day, lowest=1)
            and _field_matches(month, moment.month, lowest=1)
            and _field_matches(weekday, eventbridge_weekday, lowest=1)
            and _field_matches(year, moment.year, lowest=1970)
        )
