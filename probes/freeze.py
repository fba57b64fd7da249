"""Freezes and pauses by the W3C webrtc-stats definitions, from frame times.

- freeze: an inter-frame gap >= max(3 x mean, mean + 150 ms), the mean taken
  over the last 30 inter-frame durations (libwebrtc also waits for a few
  frames before judging; so do we);
- pause: more than 5 s without a frame. A pause is not also a freeze.

Both are counted when the frame that ends them arrives, as the spec does. A
freeze or pause still in progress is reported by :meth:`FreezeDetector.ongoing`
so that "no frame for N s" is visible while it lasts.

Pure: times are passed in, in milliseconds on any monotonic clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

PAUSE_MS = 5000.0
FREEZE_FLOOR_MS = 150.0
WINDOW_FRAMES = 30
MIN_FRAMES_TO_JUDGE = 5


class Stall(StrEnum):
    FREEZE = "freeze"
    PAUSE = "pause"


@dataclass
class FreezeCounts:
    freeze_count: int = 0
    freeze_ms: float = 0.0
    pause_count: int = 0
    pause_ms: float = 0.0


class FreezeDetector:
    def __init__(self) -> None:
        self._durations: deque[float] = deque(maxlen=WINDOW_FRAMES)
        self._sum_ms = 0.0
        self._last_ms: float | None = None
        self.counts = FreezeCounts()  # totals since start

    @property
    def last_frame_ms(self) -> float | None:
        return self._last_ms

    def threshold_ms(self) -> float | None:
        """The gap that makes a freeze now, or None while too few frames seen."""
        if len(self._durations) < MIN_FRAMES_TO_JUDGE:
            return None
        mean = self._sum_ms / len(self._durations)
        return max(3.0 * mean, mean + FREEZE_FLOOR_MS)

    def frame(self, now_ms: float) -> Stall | None:
        """Record a frame; return the stall it ended, if any."""
        last = self._last_ms
        self._last_ms = now_ms
        if last is None:
            return None
        gap = max(0.0, now_ms - last)
        ended: Stall | None = None
        if gap > PAUSE_MS:
            ended = Stall.PAUSE
            self.counts.pause_count += 1
            self.counts.pause_ms += gap
        else:
            threshold = self.threshold_ms()
            if threshold is not None and gap >= threshold:
                ended = Stall.FREEZE
                self.counts.freeze_count += 1
                self.counts.freeze_ms += gap
        if len(self._durations) == self._durations.maxlen:
            self._sum_ms -= self._durations[0]
        self._durations.append(gap)
        self._sum_ms += gap
        return ended

    def ongoing(self, now_ms: float) -> Stall | None:
        """The stall in progress at ``now_ms`` (no frame since long enough)."""
        if self._last_ms is None:
            return None
        gap = now_ms - self._last_ms
        if gap > PAUSE_MS:
            return Stall.PAUSE
        threshold = self.threshold_ms()
        if threshold is not None and gap >= threshold:
            return Stall.FREEZE
        return None

    def no_frame_ms(self, now_ms: float) -> float | None:
        return None if self._last_ms is None else max(0.0, now_ms - self._last_ms)
