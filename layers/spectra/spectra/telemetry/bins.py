"""Time bins and roll-ups: how raw frames become one value per metric per bin.

Bins start at multiples of their size counted from 1970-01-01T00:00Z, so every size that
divides a day (1, 5, 15 minutes; 1, 6 hours; 1 day) starts at UTC midnight and at the UTC hour.
Each metric is rolled up by its ``defaultAggregation``; a bin with no value of any selected
metric is omitted.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from spectra.metric_values import Aggregation


class BinUnit(StrEnum):
    MINUTE = "m"
    HOUR = "h"
    DAY = "d"


UNIT_MILLIS = {BinUnit.MINUTE: 60_000, BinUnit.HOUR: 3_600_000, BinUnit.DAY: 86_400_000}
MAX_BIN_VALUE = {BinUnit.MINUTE: 1440, BinUnit.HOUR: 744, BinUnit.DAY: 366}


def bin_millis(unit: BinUnit, value: int) -> int:
    """The length of a bin of ``value`` ``unit``s, in milliseconds."""
    return UNIT_MILLIS[unit] * value


def bin_start(timestamp: int, size_ms: int) -> int:
    """The start of the UTC-aligned bin holding ``timestamp``."""
    return timestamp - timestamp % size_ms


@dataclass
class _Rollup:
    """One metric's running roll-up inside one bin (order of arrival does not matter)."""

    aggregation: Aggregation
    count: int = 0
    total: float | int = 0
    first: tuple[int, str, Any] | None = None
    last: tuple[int, str, Any] | None = None

    def add(self, timestamp: int, source: str, value: Any) -> None:
        self.count += 1
        if self.aggregation in (Aggregation.SUM, Aggregation.AVG):
            self.total += value
        marker = (timestamp, source, value)
        # Ties on time (two things in a place) break on the thing id, so results are stable.
        if self.first is None or marker[:2] < self.first[:2]:
            self.first = marker
        if self.last is None or marker[:2] >= self.last[:2]:
            self.last = marker

    def value(self) -> Any:
        if self.aggregation is Aggregation.COUNT:
            return self.count
        if self.aggregation is Aggregation.SUM:
            return self.total
        if self.aggregation is Aggregation.AVG:
            return self.total / self.count
        chosen = self.first if self.aggregation is Aggregation.FIRST else self.last
        return chosen[2] if chosen else None


@dataclass
class Bin:
    start: int
    rollups: dict[str, _Rollup] = field(default_factory=dict)

    def values(self, names: Mapping[str, str]) -> dict[str, Any]:
        """The bin's values by metric name (``names`` maps metric id to name)."""
        return {names[metric_id]: rollup.value() for metric_id, rollup in self.rollups.items()}


@dataclass(frozen=True)
class BinnedPage:
    bins: list[Bin]
    next_bin: int | None
    """Where the next page starts (a bin start), or ``None`` when the range is done."""
    too_dense: bool = False
    """The frame budget ran out inside the first bin: not even one bin could be finished."""


def roll_up(
    frames: Iterable[Mapping[str, Any]],
    *,
    size_ms: int,
    aggregations: Mapping[str, Aggregation],
    max_bins: int,
    max_frames: int | None = None,
) -> BinnedPage:
    """Bins of ``frames`` (ascending by time), at most ``max_bins`` non-empty ones.

    ``frames`` may be a lazy stream: it is read only until the first frame of the bin after
    the last one returned, so a page costs no more reads than its own bins need. After
    ``max_frames`` frames the page ends with the bins known to be complete (the last one might
    not be), so no request reads without bound.
    """
    bins: list[Bin] = []
    first_bin: int | None = None
    for read, frame in enumerate(frames, start=1):
        if first_bin is None:
            first_bin = bin_start(int(frame["timestamp"]), size_ms)
        if max_frames is not None and read > max_frames:
            # This frame is past the budget: bins before its own are complete, its own is not.
            upcoming = bin_start(int(frame["timestamp"]), size_ms)
            complete = [b for b in bins if b.start != upcoming]
            if not complete and upcoming == first_bin:
                # Every frame read lies in one bin: the next page would start here again.
                return BinnedPage(bins=[], next_bin=upcoming, too_dense=True)
            return BinnedPage(bins=complete, next_bin=upcoming)
        values = frame.get("values") or {}
        present = [metric_id for metric_id in aggregations if metric_id in values]
        if not present:
            continue
        timestamp = int(frame["timestamp"])
        start = bin_start(timestamp, size_ms)
        if not bins or bins[-1].start != start:
            if len(bins) == max_bins:
                return BinnedPage(bins=bins, next_bin=start)
            bins.append(Bin(start=start))
        current = bins[-1]
        source = str(frame.get("thingId", ""))
        for metric_id in present:
            rollup = current.rollups.get(metric_id)
            if rollup is None:
                rollup = current.rollups[metric_id] = _Rollup(aggregations[metric_id])
            rollup.add(timestamp, source, values[metric_id])
    return BinnedPage(bins=bins, next_bin=None)


def merge_ascending(streams: Iterable[Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Several things' frames as one stream in time order (each stream already ascending)."""
    return heapq.merge(*streams, key=lambda frame: (int(frame["timestamp"]), str(frame.get("thingId", ""))))
