"""When a browser would show each frame: not the moment its last packet
arrived, but at its playout time, as a receiver's jitter buffer schedules it.

A browser holds each frame for a target delay past the fastest transit seen
lately (its RTP timestamp mapped to the receiver's clock) and shows it then,
or as soon as it is complete if it comes later than that. So a lost packet
repaired within the hold costs no visible stall, while a frame repaired
later, or a stream that stops, shows as a gap between shown frames. The W3C
freeze counting (:mod:`probes.freeze`) works on these times, as the
browser's does on the frames it renders.

``PLAYOUT_DELAY_MS`` is what Chromium's video jitter buffer targets on a
short clean path with NACK on (``jitterBufferTargetDelay`` /
``jitterBufferEmittedCount`` read 89-95 ms next to the probe, on Janus and
on a libwebrtc sender). Chromium also raises its target with measured
jitter; the probe keeps it fixed, so on a very jittery path it counts stalls
a browser would have buffered away.

Pure: arrival times are passed in (ms on a monotonic clock).
"""

from __future__ import annotations

from collections import deque

PLAYOUT_DELAY_MS = 90.0
# Frames over which the fastest transit is taken (about 5 s at 25 fps): the
# reference follows a path whose delay grows for good (a queue filling).
TRANSIT_WINDOW = 128
# An RTP timestamp jump larger than this is a new timeline, not a gap.
MAX_JUMP_MS = 10_000.0


class Playout:
    def __init__(self, clock_rate: int = 90_000, delay_ms: float = PLAYOUT_DELAY_MS) -> None:
        self._per_ms = clock_rate / 1000.0
        self._delay_ms = delay_ms
        self._ext: int | None = None  # newest RTP timestamp, unwrapped
        # (frame index, transit) with rising transits: the front is the
        # smallest of the window (a monotonic queue: O(1) per frame).
        self._transits: deque[tuple[int, float]] = deque()
        self._n = 0
        self._last_ms: float | None = None

    def _unwrap(self, rtp_timestamp: int) -> int | None:
        """The timestamp on one growing line, or None for a new timeline."""
        if self._ext is None:
            self._ext = rtp_timestamp
            return rtp_timestamp
        d = (rtp_timestamp - self._ext) % (1 << 32)
        if d >= 1 << 31:
            d -= 1 << 32
        if abs(d) / self._per_ms > MAX_JUMP_MS:
            return None
        ext = self._ext + d
        self._ext = max(self._ext, ext)
        return ext

    def show_ms(self, complete_ms: float, rtp_timestamp: int) -> float:
        """When the frame completed at ``complete_ms`` is shown (never
        before the frame shown last)."""
        ext = self._unwrap(rtp_timestamp)
        if ext is None:  # the sender started over: so does the reference
            self._ext = rtp_timestamp
            self._transits.clear()
            ext = rtp_timestamp
        ts_ms = ext / self._per_ms
        transit = complete_ms - ts_ms
        while self._transits and self._transits[-1][1] >= transit:
            self._transits.pop()
        self._transits.append((self._n, transit))
        while self._transits[0][0] <= self._n - TRANSIT_WINDOW:
            self._transits.popleft()
        self._n += 1
        at = max(complete_ms, ts_ms + self._transits[0][1] + self._delay_ms)
        if self._last_ms is not None:
            at = max(at, self._last_ms)
        self._last_ms = at
        return at
