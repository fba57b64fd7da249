"""Freezes and pauses as the reference browser (libwebrtc) counts them, from
frame times.

- freeze: an inter-frame gap >= max(3 x mean, mean + 150 ms), the mean taken
  over the last 30 inter-frame durations (W3C webrtc-stats; libwebrtc also
  waits for a few frames before judging; so do we). A freeze can be long:
  a 24 s stall while packets keep arriving is one 24 s freeze;
- pause: a gap during which the stream itself stopped, i.e. no media packet
  came for ``INACTIVE_MS`` (libwebrtc marks the stream inactive then, and
  files the gap that ends as a pause). A pause is not also a freeze. The
  caller says when the stream went quiet (:meth:`FreezeDetector.stream_inactive`).

Both are counted when the frame that ends them arrives, as the spec does. A
stall still in progress is reported by :meth:`FreezeDetector.ongoing`, and
:meth:`FreezeDetector.take_stuck_ms` hands out the "picture stuck" time as it
accrues, so per-second figures show a stall while it lasts.

Pure: times are passed in, in milliseconds on any monotonic clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

# No media packet for this long: the stream is inactive, the gap a pause.
INACTIVE_MS = 5000.0
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
        self._inactive = False  # the stream stopped during the current gap
        self._stuck_pending_ms = 0.0  # stuck time of ended stalls not yet taken
        self._gap_taken_ms = 0.0  # of the current gap, already taken as stuck

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
        if self._inactive:
            ended = Stall.PAUSE
            self.counts.pause_count += 1
            self.counts.pause_ms += gap
        else:
            threshold = self.threshold_ms()
            if threshold is not None and gap >= threshold:
                ended = Stall.FREEZE
                self.counts.freeze_count += 1
                self.counts.freeze_ms += gap
        if ended is not None:
            self._stuck_pending_ms += max(0.0, gap - self._gap_taken_ms)
        self._gap_taken_ms = 0.0
        self._inactive = False
        if len(self._durations) == self._durations.maxlen:
            self._sum_ms -= self._durations[0]
        self._durations.append(gap)
        self._sum_ms += gap
        return ended

    def stream_inactive(self) -> None:
        """No media packet came for ``INACTIVE_MS``: the current gap (once
        a frame was seen) is a pause, not a freeze."""
        if self._last_ms is not None:
            self._inactive = True

    def take_stuck_ms(self, now_ms: float) -> float:
        """Picture-stuck time accrued since the last call: every stall counts
        in full (from its last frame, as its freeze or pause duration does),
        handed out while it lasts. When a gap crosses the freeze threshold
        its first part comes at once, so one call can exceed the time since
        the last by up to that threshold."""
        out = self._stuck_pending_ms
        self._stuck_pending_ms = 0.0
        if self._last_ms is not None and self.ongoing(now_ms) is not None:
            gap = now_ms - self._last_ms
            out += max(0.0, gap - self._gap_taken_ms)
            self._gap_taken_ms = max(self._gap_taken_ms, gap)
        return out

    def ongoing(self, now_ms: float) -> Stall | None:
        """The stall in progress at ``now_ms`` (no frame since long enough)."""
        if self._last_ms is None:
            return None
        gap = now_ms - self._last_ms
        if self._inactive:
            return Stall.PAUSE
        threshold = self.threshold_ms()
        if threshold is not None and gap >= threshold:
            return Stall.FREEZE
        return None

    def no_frame_ms(self, now_ms: float) -> float | None:
        return None if self._last_ms is None else max(0.0, now_ms - self._last_ms)
