"""Bins and roll-ups: UTC alignment, each aggregation, empty bins omitted, lazy paging."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from spectra.metric_values import Aggregation
from spectra.telemetry.bins import BinUnit, bin_millis, bin_start, merge_ascending, roll_up

HOUR = 3_600_000
MINUTE = 60_000
MIDNIGHT = int(datetime(2026, 11, 26, tzinfo=UTC).timestamp() * 1000)


def frame(timestamp: int, thing: str = "t1", **values: Any) -> dict[str, Any]:
    return {"thingId": thing, "timestamp": timestamp, "values": values}


@pytest.mark.parametrize(
    ("unit", "value", "moment", "expected"),
    [
        (BinUnit.MINUTE, 15, MIDNIGHT + 7 * HOUR + 44 * MINUTE, MIDNIGHT + 7 * HOUR + 30 * MINUTE),
        (BinUnit.HOUR, 1, MIDNIGHT + 7 * HOUR + 59 * MINUTE, MIDNIGHT + 7 * HOUR),
        (BinUnit.HOUR, 6, MIDNIGHT + 17 * HOUR, MIDNIGHT + 12 * HOUR),
        (BinUnit.DAY, 1, MIDNIGHT + 23 * HOUR, MIDNIGHT),
    ],
)
def test_bins_start_on_utc_boundaries(unit: BinUnit, value: int, moment: int, expected: int) -> None:
    assert bin_start(moment, bin_millis(unit, value)) == expected


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        (Aggregation.AVG, 2.5),
        (Aggregation.SUM, 10),
        (Aggregation.COUNT, 4),
        (Aggregation.FIRST, 1),
        (Aggregation.LAST, 4),
    ],
)
def test_each_aggregation_rolls_up_a_bin(aggregation: Aggregation, expected: float) -> None:
    frames = [frame(MIDNIGHT + i * MINUTE, m=i + 1) for i in range(4)]
    page = roll_up(frames, size_ms=HOUR, aggregations={"m": aggregation}, max_bins=10)
    assert [b.values({"m": "M"}) for b in page.bins] == [{"M": expected}]


def test_first_and_last_follow_time_not_arrival_order() -> None:
    frames = [frame(MIDNIGHT + 5, thing="b", m="late"), frame(MIDNIGHT + 5, thing="a", m="early")]
    ordered = list(merge_ascending([iter(frames[1:]), iter(frames[:1])]))
    page = roll_up(ordered, size_ms=HOUR, aggregations={"m": Aggregation.LAST}, max_bins=1)
    assert page.bins[0].values({"m": "M"}) == {"M": "late"}  # ties on time: the larger thing id is "last"


def test_empty_bins_are_omitted_and_frames_without_selected_metrics_ignored() -> None:
    frames = [frame(MIDNIGHT, m=1), frame(MIDNIGHT + HOUR, other=5), frame(MIDNIGHT + 3 * HOUR, m=2)]
    page = roll_up(frames, size_ms=HOUR, aggregations={"m": Aggregation.SUM}, max_bins=10)
    assert [b.start for b in page.bins] == [MIDNIGHT, MIDNIGHT + 3 * HOUR]
    assert page.next_bin is None


def test_a_page_stops_at_the_first_frame_of_the_next_bin() -> None:
    read: list[int] = []

    def lazily() -> Iterator[dict[str, Any]]:
        for i in range(10):
            read.append(i)
            yield frame(MIDNIGHT + i * HOUR, m=i)

    page = roll_up(lazily(), size_ms=HOUR, aggregations={"m": Aggregation.LAST}, max_bins=3)
    assert [b.start for b in page.bins] == [MIDNIGHT, MIDNIGHT + HOUR, MIDNIGHT + 2 * HOUR]
    assert page.next_bin == MIDNIGHT + 3 * HOUR
    assert read == [0, 1, 2, 3]  # one frame past the page, no more


def test_streams_of_several_things_merge_in_time_order() -> None:
    first = iter([frame(1, thing="a", m=1), frame(4, thing="a", m=1)])
    second = iter([frame(2, thing="b", m=1), frame(3, thing="b", m=1)])
    assert [f["timestamp"] for f in merge_ascending([first, second])] == [1, 2, 3, 4]


def test_place_rollup_sums_and_averages_over_every_things_values() -> None:
    streams = [
        iter([frame(MIDNIGHT, thing="a", power=10, temp=20.0)]),
        iter([frame(MIDNIGHT + MINUTE, thing="b", power=5, temp=22.0)]),
    ]
    page = roll_up(
        merge_ascending(streams),
        size_ms=HOUR,
        aggregations={"power": Aggregation.SUM, "temp": Aggregation.AVG},
        max_bins=5,
    )
    assert page.bins[0].values({"power": "Power", "temp": "Temp"}) == {"Power": 15, "Temp": 21.0}


def test_a_budget_spent_inside_one_bin_is_too_dense_even_before_a_selected_metric() -> None:
    frames = [frame(MIDNIGHT + i, other=i) for i in range(6)] + [frame(MIDNIGHT + 10, m=1)]
    page = roll_up(frames, size_ms=HOUR, aggregations={"m": Aggregation.LAST}, max_bins=5, max_frames=5)
    assert page.too_dense


def test_a_budget_spent_across_bins_without_selected_metrics_moves_on() -> None:
    frames = [frame(MIDNIGHT + i * HOUR, other=i) for i in range(6)] + [frame(MIDNIGHT + 7 * HOUR, m=1)]
    page = roll_up(frames, size_ms=HOUR, aggregations={"m": Aggregation.LAST}, max_bins=5, max_frames=5)
    assert (page.bins, page.next_bin, page.too_dense) == ([], MIDNIGHT + 5 * HOUR, False)
