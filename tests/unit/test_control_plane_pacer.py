"""The worker's pacing: API Gateway's management API allows a few calls a second per account, so
the one worker never calls it faster than its configured rate (fake clock, no real sleeps)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from itertools import pairwise

import pytest

from spectra.ratelimits.identifiers import ControlPlanePacer

TOLERANCE = 1e-9


@dataclass
class FakeTime:
    """A monotonic clock that only moves when something sleeps or the test advances it."""

    now: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the pacer slept for nothing"
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(time: FakeTime, calls_per_second: float) -> ControlPlanePacer:
    return ControlPlanePacer(calls_per_second, clock=time.clock, sleep=time.sleep)


@pytest.mark.parametrize("calls_per_second", [2.0, 5.0, 0.5])
def test_back_to_back_calls_are_spaced_at_least_one_interval_apart(calls_per_second: float) -> None:
    time = FakeTime()
    paced = pacer(time, calls_per_second)

    started = []
    for _ in range(6):
        paced.wait()
        started.append(time.now)

    gaps = [later - earlier for earlier, later in pairwise(started)]
    assert all(gap >= 1 / calls_per_second - TOLERANCE for gap in gaps), gaps


def test_the_first_call_goes_at_once() -> None:
    time = FakeTime()

    pacer(time, 2).wait()

    assert time.sleeps == []


def test_time_spent_since_the_last_call_counts_toward_the_interval() -> None:
    time = FakeTime()
    paced = pacer(time, 2)
    paced.wait()

    time.now += 0.3
    paced.wait()
    time.now += 1.0
    paced.wait()

    assert time.sleeps == [pytest.approx(0.2)]


def test_an_idle_pacer_saves_no_credit_for_a_burst() -> None:
    """Idle time never lets later calls go closer together than the interval."""
    time = FakeTime()
    paced = pacer(time, 2)
    paced.wait()
    time.now += 60

    paced.wait()
    paced.wait()
    paced.wait()

    assert time.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_concurrent_callers_are_spaced_too() -> None:
    """The pacer is shared by the calls of one container; its lock keeps them apart. The fake
    clock moves only by sleeping, so every caller after the first waits a whole interval."""
    time = FakeTime()
    paced = pacer(time, 4)
    threads = [threading.Thread(target=paced.wait) for _ in range(8)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert time.sleeps == [pytest.approx(0.25)] * 7


@pytest.mark.parametrize("calls_per_second", [0, -1.0])
def test_a_rate_that_is_not_positive_is_refused(calls_per_second: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        ControlPlanePacer(calls_per_second)
