"""The probe's sliding-window rate answers what aiortc's RateCounter does."""

from __future__ import annotations

import random

import pytest
from aiortc.rate import RateCounter

from probes.sliding_rate import SlidingRate


@pytest.mark.parametrize("seed", range(6))
def test_same_rates_as_aiortcs_counter(seed: int) -> None:
    rng = random.Random(seed)
    ours, theirs = SlidingRate(1000, 8000), RateCounter(1000, 8000)
    now = 3_900_000_000_000 + rng.randrange(1000)
    answers = 0
    for _ in range(5000):
        # Bursts, the usual spacing, and silences longer than the window.
        now += rng.choice((0, 0, 1, 3, 10, 40, 250, 1200))
        if rng.random() < 0.01:
            ours.reset()
            theirs.reset()
        size = rng.randrange(20, 1300)
        assert ours.rate(now) == theirs.rate(now)
        ours.add(size, now)
        theirs.add(size, now)
        assert ours.rate(now) == theirs.rate(now)
        answers += ours.rate(now) is not None
    assert answers > 3000  # the comparison was of figures, not of Nones


def test_holds_at_most_one_entry_per_millisecond_of_the_window() -> None:
    rate = SlidingRate(100)
    for ms in range(10_000):
        for _ in range(3):
            rate.add(1200, ms)
    assert len(rate._entries) <= 100
    assert rate.rate(10_000) == round(8000 * 1200 * 3 * 99 / 100)


def test_a_clock_that_steps_back_counts_in_the_newest_millisecond() -> None:
    rate = SlidingRate(1000)
    rate.add(100, 5000)
    rate.add(100, 5500)
    rate.add(100, 4000)  # stepped back
    assert rate.rate(5500) == round(8000 * 300 / 501)
    assert rate.rate(6400) == round(8000 * 200 / 1000)  # the 5000 ms one has left the window
