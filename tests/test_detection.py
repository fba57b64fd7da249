"""Detectors, without an event loop: hysteresis, level shifts, count drops and
rises, and the series detector ``qosmon detect`` and the engine share."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from qosmon.detection.counts import CountDrop, CountRise, poisson_cdf
from qosmon.detection.levelshift import LevelShift
from qosmon.detection.persistence import Persistence
from qosmon.detection.series import Direction, Kind, SeriesDetector, pick_kind


def test_persistence_needs_min_on_and_min_off() -> None:
    p = Persistence(min_on=3, min_off=2)
    seq = [True, True, False, True, True, True, None, False, True, False, False]
    active = [p.update(c, float(i)) for i, c in enumerate(seq)]
    # A 2-second blip does not activate; 3 in a row does, from when the run began.
    assert active[:5] == [False] * 5
    assert active[5] is True
    # Unknown (None) keeps the state; one fine second does not end it.
    assert active[6] is True and active[7] is True and active[8] is True
    assert active[9] is True and active[10] is False


def test_persistence_since_is_start_of_run() -> None:
    p = Persistence(min_on=2, min_off=1)
    p.update(True, 10.0)
    p.update(True, 11.0)
    assert p.active and p.since == 10.0


def test_poisson_cdf_matches_direct_sum() -> None:
    assert poisson_cdf(0, 2.0) == pytest.approx(math.exp(-2))
    assert poisson_cdf(2, 2.0) == pytest.approx(math.exp(-2) * (1 + 2 + 2))
    assert poisson_cdf(-1, 3.0) == 0.0
    assert poisson_cdf(600, 600.0) == pytest.approx(0.51, abs=0.02)


def _level(rnd: random.Random, n: int, f) -> list[float]:  # type: ignore[no-untyped-def]
    return [f(t) * (1 + rnd.gauss(0, 0.005)) for t in range(n)]


def test_levelshift_ignores_noise_ramps_and_swings() -> None:
    rnd = random.Random(7)
    det = LevelShift()
    # +40 % over ~3 minutes then a slow decline: an audience, not an incident.
    series = _level(
        rnd,
        900,
        lambda t: (
            3000 * (1 + 0.4 / (1 + math.exp(-(t - 300) / 45))) * (1 - 0.0003 * max(0, t - 600))
        ),
    )
    assert not any(det.update(float(t), v).anomalous for t, v in enumerate(series))


def test_levelshift_flags_a_sudden_drop_and_freezes_the_expected_level() -> None:
    rnd = random.Random(8)
    det = LevelShift()
    series = _level(rnd, 300, lambda t: 4000 if t < 200 else 2600)
    flags = [det.update(float(t), v) for t, v in enumerate(series)]
    first = next(r for r in flags if r.anomalous)
    assert 200 <= first.ts <= 206
    assert first.expected == pytest.approx(4000, rel=0.03)
    # The expected course stays at the pre-drop level while the drop lasts.
    assert flags[280].anomalous and flags[280].expected == pytest.approx(4000, rel=0.03)


def test_levelshift_accepts_a_lasting_new_level() -> None:
    det = LevelShift(rebaseline_s=60)
    flags = [det.update(float(t), 1000.0 if t < 100 else 700.0) for t in range(400)]
    assert flags[110].anomalous
    assert not any(r.anomalous for r in flags[200:])


def test_count_drop_on_a_stop_not_on_poisson_noise() -> None:
    rnd = random.Random(3)
    det = CountDrop(p_value=1e-6)
    noise = [rnd.choice([0, 1, 1, 2, 2, 3]) for _ in range(600)]
    assert not any(det.update(float(t), c).anomalous for t, c in enumerate(noise))
    stopped = [det.update(float(600 + t), 0) for t in range(30)]
    first = next(i for i, r in enumerate(stopped) if r.anomalous)
    assert first <= 15
    assert stopped[-1].rate_per_s == pytest.approx(1.5, rel=0.2)


def test_count_rise_sees_a_leave_surge_within_seconds_and_ignores_noise() -> None:
    rng = np.random.default_rng(5)
    det = CountRise()
    flagged = []
    for t in range(200):
        rate = 70.0 if 120 <= t < 150 else 7.0  # viewers walk out of a fine stream
        r = det.update(float(t), int(rng.poisson(rate)))
        if r.anomalous:
            flagged.append(t)
    assert flagged and flagged[0] - 120 <= 2
    assert all(118 <= t < 156 for t in flagged)  # nothing before, nothing long after


def test_count_rise_ignores_a_mild_rise_and_small_counts() -> None:
    rng = np.random.default_rng(6)
    det = CountRise()
    for t in range(200):
        rate = 4.5 if t >= 100 else 3.0  # x1.5: a chat stall's worth, not a walk-out
        assert not det.update(float(t), int(rng.poisson(rate))).anomalous
    small = CountRise()
    for t in range(100):
        assert not small.update(float(t), 3 if t == 60 else 0).anomalous


def test_series_detector_scores_onsets_sparsely() -> None:
    rng = np.random.default_rng(9)
    det = SeriesDetector(Kind.LEVEL, Direction.BOTH)
    values = [3000 * (1 + rng.normal(0, 0.01)) * (0.6 if 400 <= t < 500 else 1.0)
              for t in range(900)]
    points = [det.update(float(t), v) for t, v in enumerate(values)]
    onsets = [p.ts for p in points if p.score >= 0.9]
    # The drop and the recovery are changes; nothing else is.
    assert len(onsets) == 2 and 400 <= onsets[0] <= 406 and 500 <= onsets[1] <= 506
    assert all(p.score in (0.0, 0.5, 1.0) for p in points)
    assert sum(p.score == 0.5 for p in points) > 50  # the drop lasts


def test_series_detector_counts_both_ways() -> None:
    rng = np.random.default_rng(10)
    det = SeriesDetector(Kind.COUNT, Direction.BOTH)
    rates = [2.0] * 300 + [0.0] * 60 + [2.0] * 300 + [8.0] * 60
    onsets = [t for t, r in enumerate(rates) if det.update(float(t), float(rng.poisson(r))).onset]
    # The stop, the surge, and at most the way back from the stop in between.
    assert 300 <= onsets[0] <= 315 and 660 <= onsets[-1] <= 675 and len(onsets) <= 3
    assert all(360 <= t < 400 for t in onsets[1:-1])


def test_pick_kind() -> None:
    assert pick_kind([0, 3, 2, 5]) == Kind.COUNT
    assert pick_kind([0.5, 3, 2]) == Kind.LEVEL
    assert pick_kind([-1, 3]) == Kind.LEVEL


def test_count_drop_accepts_a_lasting_lower_rate_once() -> None:
    # Orders fall from ~9 to ~4 a second for good: one drop, then the new rate
    # is normal. The counts from before must not come back into the
    # reference and raise the same drop every few minutes.
    rng = np.random.default_rng(0)
    det = CountDrop(p_value=1e-6)
    flags = [det.update(float(t), int(rng.poisson(9.0 if t < 300 else 4.0))).anomalous
             for t in range(1500)]
    starts = [t for t in range(1, 1500) if flags[t] and not flags[t - 1]]
    assert len(starts) == 1 and 300 <= starts[0] <= 315


def test_levelshift_judges_the_next_change_right_after_accepting_a_new_level() -> None:
    # 1000 -> 700 lasts until it becomes the new normal (180 s after it was
    # confirmed), then the level comes straight back: that is a change too,
    # seen at once rather than after relearning the reference.
    det = LevelShift(direction="both")
    series = [1000.0 if t < 100 else 700.0 for t in range(290)] + [1000.0] * 60
    flags = [det.update(float(t), v).anomalous for t, v in enumerate(series)]
    starts = [t for t in range(1, len(series)) if flags[t] and not flags[t - 1]]
    assert len(starts) == 2 and 100 <= starts[0] <= 105 and 290 <= starts[1] <= 295
