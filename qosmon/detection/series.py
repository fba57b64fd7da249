"""The business-series detectors, built one way for the live engine and for
``qosmon detect``, and a change-onset score on top of them.

Three kinds of series, each with the engine's own detector and thresholds
(``DiagnosisConfig.business``):

- ``level``: a level sampled every tick (viewers online, a conversion or
  failure ratio): ``LevelShift``, a robust trend line against the median of
  the last ticks. The engine watches viewers online for drops.
- ``count``: events per tick (orders, chat messages): a window's sum against a
  Poisson reference rate, ``CountDrop`` for drops (the engine's orders and
  chat), ``CountRise`` for surges.
- ``rate``: events per tick whose surge is the fault (viewers leaving): the
  same count tests with the engine's short leave windows, surges by default.

Time is the detector's tick: the engine feeds whole seconds, ``qosmon detect``
feeds row numbers (arrival order), so a series whose clock steps back or
repeats is scored as it arrived.

The score is sparse on purpose: 1.0 on the tick a change is confirmed (its
onset as the detector sees it), 0.5 on the following ticks while the change
lasts, 0 otherwise. A threshold at 0.9 gives change onsets, at 0.4 every
anomalous tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from qosmon.detection.counts import CountDrop, CountDropResult, CountRise
from qosmon.detection.levelshift import LevelShift, LevelShiftResult
from qosmon.diagnosis.config import BusinessThresholds


class Kind(StrEnum):
    LEVEL = "level"
    COUNT = "count"
    RATE = "rate"


class Direction(StrEnum):
    DOWN = "down"
    UP = "up"
    BOTH = "both"


# Which way each kind is watched by the engine.
DEFAULT_DIRECTION = {
    Kind.LEVEL: Direction.DOWN,
    Kind.COUNT: Direction.DOWN,
    Kind.RATE: Direction.UP,
}

ONSET_SCORE = 1.0
ONGOING_SCORE = 0.5


def viewers_detector(b: BusinessThresholds, direction: Direction = Direction.DOWN) -> LevelShift:
    """The level detector (viewers online in the engine)."""
    return LevelShift(
        rel=b.viewers_drop_rel,
        k_sigma=b.viewers_k_sigma,
        current_s=b.current_s,
        gap_s=b.gap_s,
        reference_s=b.reference_s,
        rebaseline_s=b.rebaseline_s,
        direction=direction.value,
    )


def count_drop_detector(b: BusinessThresholds) -> CountDrop:
    """Drops of a count (orders and chat messages in the engine)."""
    return CountDrop(
        window_s=b.orders_window_s,
        reference_s=b.orders_reference_s,
        p_value=b.orders_p_value,
        drop_rel=b.orders_drop_rel,
        min_expected=b.orders_min_expected,
        rebaseline_s=b.rebaseline_s,
    )


def count_rise_detector(b: BusinessThresholds, *, short: bool = False) -> CountRise:
    """Surges of a count; ``short`` takes the engine's leave-rate windows."""
    if short:
        return CountRise(
            window_s=b.leaves_window_s,
            reference_s=b.leaves_reference_s,
            p_value=b.leaves_p_value,
            ratio=b.leaves_ratio,
            rebaseline_s=b.rebaseline_s,
        )
    return CountRise(
        window_s=b.orders_window_s,
        reference_s=b.orders_reference_s,
        p_value=b.orders_p_value,
        ratio=1 / (1 - b.orders_drop_rel),
        min_expected=b.orders_min_expected,
        rebaseline_s=b.rebaseline_s,
    )


def count_drop_short_detector(b: BusinessThresholds) -> CountDrop:
    """Drops of a leave-like count, on the engine's leave-rate windows."""
    return CountDrop(
        window_s=b.leaves_window_s,
        reference_s=b.leaves_reference_s,
        p_value=b.leaves_p_value,
        drop_rel=1 - 1 / b.leaves_ratio,
        rebaseline_s=b.rebaseline_s,
    )


@dataclass(frozen=True)
class Point:
    """One tick's verdict."""

    ts: float
    value: float
    expected: float | None  # per tick (a count's expected window sum / window)
    anomalous: bool
    onset: bool  # the first anomalous tick of a change
    score: float


def _expected_of(r: LevelShiftResult | CountDropResult, window: int) -> float | None:
    if isinstance(r, LevelShiftResult):
        return r.expected
    return None if r.expected is None else r.expected / window


class SeriesDetector:
    """One series, one kind: the engine's detectors for that kind, in the
    directions asked, with an onset score."""

    def __init__(
        self,
        kind: Kind,
        direction: Direction | None = None,
        thresholds: BusinessThresholds | None = None,
    ) -> None:
        b = thresholds or BusinessThresholds()
        self.kind = kind
        self.direction = direction or DEFAULT_DIRECTION[kind]
        both = self.direction == Direction.BOTH
        dirs = (Direction.DOWN, Direction.UP) if both else (self.direction,)
        self._level: LevelShift | None = None
        self._counts: list[tuple[CountDrop | CountRise, int]] = []
        if kind == Kind.LEVEL:
            self._level = viewers_detector(b, self.direction)
        else:
            short = kind == Kind.RATE
            for d in dirs:
                if d == Direction.DOWN:
                    det: CountDrop | CountRise = (
                        count_drop_short_detector(b) if short else count_drop_detector(b)
                    )
                else:
                    det = count_rise_detector(b, short=short)
                self._counts.append((det, det.window_s))
        self._was = False

    def update(self, ts: float, value: float) -> Point:
        expected: float | None
        if self._level is not None:
            r = self._level.update(ts, value)
            anomalous, expected = r.anomalous, r.expected
        else:
            count = max(0, round(value))
            results = [(det.update(ts, count), w) for det, w in self._counts]
            hit = [x for x in results if x[0].anomalous]
            anomalous = bool(hit)
            first = hit[0] if hit else results[0]
            expected = _expected_of(first[0], first[1])
        onset = anomalous and not self._was
        self._was = anomalous
        score = ONSET_SCORE if onset else (ONGOING_SCORE if anomalous else 0.0)
        return Point(ts, value, expected, anomalous, onset, score)


def pick_kind(values: list[float]) -> Kind:
    """``count`` when every value is a whole number >= 0, else ``level``."""
    if values and all(v >= 0 and float(v).is_integer() for v in values):
        return Kind.COUNT
    return Kind.LEVEL
