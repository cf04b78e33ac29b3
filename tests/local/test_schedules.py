"""Schedule expressions and the EventBridge event the local runtime sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spectra_local.schedules import Schedule, scheduled_event


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(2 days)", timedelta(days=2)),
        ("cron(0 3 * * ? *)", None),
    ],
)
def test_rate_expressions_give_their_interval(expression: str, interval: timedelta | None) -> None:
    assert Schedule(expression).interval() == interval


@pytest.mark.parametrize("expression", ["every day", "rate(5 fortnights)", "cron()", "rate(-1 minutes)"])
def test_unsupported_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Schedule(expression)


@pytest.mark.parametrize(
    ("expression", "moment", "fires"),
    [
        ("cron(0 3 * * ? *)", datetime(2026, 11, 26, 3, 0, tzinfo=UTC), True),
        ("cron(0 3 * * ? *)", datetime(2026, 11, 26, 3, 1, tzinfo=UTC), False),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 26, 7, 45, tzinfo=UTC), True),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 26, 7, 50, tzinfo=UTC), False),
        ("cron(30 2 ? * 2 *)", datetime(2026, 11, 23, 2, 30, tzinfo=UTC), True),
        ("cron(30 2 ? * 2 *)", datetime(2026, 11, 24, 2, 30, tzinfo=UTC), False),
        ("cron(0 0 1 1-6 ? 2026)", datetime(2026, 3, 1, 0, 0, tzinfo=UTC), True),
        ("cron(0 0 1 1-6 ? 2026)", datetime(2026, 7, 1, 0, 0, tzinfo=UTC), False),
        ("cron(5,35 * * * ? *)", datetime(2026, 11, 26, 9, 35, tzinfo=UTC), True),
    ],
)
def test_cron_expressions_select_utc_minutes(expression: str, moment: datetime, fires: bool) -> None:
    assert Schedule(expression).matches_minute(moment) is fires


def test_scheduled_event_has_eventbridge_shape() -> None:
    when = datetime(2026, 11, 26, 3, 0, 12, 345_000, tzinfo=UTC)
    event = scheduled_event("RetentionSchedule", region="eu-west-1", when=when)
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-11-26T03:00:12Z"
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/RetentionSchedule"]
    assert event["detail"] == {}
