"""When a browser would show each frame: not the moment its last packet
arrived, but at its playout time, as a receiver's jitter buffer schedules it.

A browser holds each frame for a target delay past the fastest transit seen
lately (its RTP timestamp mapped to the receiver's clock) and shows it then,
or as soon as it is complete if it comes later than that. So a lost packet
repaired within the hold costs no visible stall, while a frame repaired
later, or a stream that stops, shows as a gap between shown frames. The W3C
freeze counting (:mod:`probes.freeze`) works on these times, as the
browser's does on the frames it renders.

The hold adapts to the path's jitter as libwebrtc's does (its jitter
estimator and timing), kept simple: each frame's excess transit (its
own last packet's arrival, less its timestamp and the fastest such transit
of the window) feeds a running mean and variance
whose weight grows to 1/``JITTER_FRAMES`` (about 16 s at 25 fps: fast at the
start, slow to forget after), and the hold is::

    PLAYOUT_DELAY_MS + max(0, mean + JITTER_STD_DEVS x std dev - JITTER_OFFSET_MS)

bounded by ``MAX_HOLD_MS``. As in libwebrtc, frames that needed a
retransmission are left out of the estimate: a repair's lateness is what
the hold has to absorb, not a measure of the path's jitter (libwebrtc's
``jitterBufferTargetDelay`` stays flat under random loss on a short path,
89-95 ms on Janus from clean to 15 % loss, while its actual
``jitterBufferDelay`` grows with the repairs). The offset lets a path's
small jitter (a few ms of sender pacing and scheduling) leave the hold
where it is; a jittery path (tens of ms) raises it.

``PLAYOUT_DELAY_MS`` is what Chromium's video jitter buffer targets on a
short clean path with NACK on (``jitterBufferTargetDelay`` /
``jitterBufferEmittedCount`` read 89-95 ms next to the probe, on Janus and
on a libwebrtc sender): its decode and render delay and its floor.

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
# The jitter estimate (see above): libwebrtc's noise threshold is 2.33
# standard deviations less 30 ms, its averaging up to 400 frames.
JITTER_STD_DEVS = 2.33
JITTER_OFFSET_MS = 30.0
JITTER_FRAMES = 400
# Never hold longer than this: a path whose jitter is larger is a broken one.
MAX_HOLD_MS = 1000.0


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
        self._jitter_n = 0  # frames in the estimate, up to JITTER_FRAMES
        self._excess_mean = 0.0
        self._excess_var = 0.0

    @property
    def hold_ms(self) -> float:
        """How long past the fastest transit a frame is held now."""
        noise = (self._excess_mean + JITTER_STD_DEVS * self._excess_var ** 0.5
                 - JITTER_OFFSET_MS)
        return min(MAX_HOLD_MS, self._delay_ms + max(0.0, noise))

    def _estimate(self, excess_ms: float) -> None:
        self._jitter_n = min(JITTER_FRAMES, self._jitter_n + 1)
        w = 1.0 / self._jitter_n
        d = excess_ms - self._excess_mean
        self._excess_mean += w * d
        self._excess_var = (1.0 - w) * (self._excess_var + w * d * d)

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

    def show_ms(self, complete_ms: float, rtp_timestamp: int, repaired: bool = False,
                arrived_ms: float | None = None) -> float:
        """When the frame completed at ``complete_ms`` is shown (never
        before the frame shown last). ``repaired``: one of its packets came
        by retransmission (its transit then says nothing of the path's
        jitter, and it leaves the fastest transit and the estimate alone).
        ``arrived_ms``: when its own last packet came, if it then waited for
        a frame before it: its transit is taken from that (as libwebrtc
        takes a frame's receive time), not from when it could be shown."""
        ext = self._unwrap(rtp_timestamp)
        if ext is None:  # the sender started over: so does the reference
            self._ext = rtp_timestamp
            self._transits.clear()
            ext = rtp_timestamp
        ts_ms = ext / self._per_ms
        transit = (complete_ms if arrived_ms is None else min(arrived_ms, complete_ms)) - ts_ms
        if not repaired or not self._transits:
            while self._transits and self._transits[-1][1] >= transit:
                self._transits.pop()
            self._transits.append((self._n, transit))
        while self._transits[0][0] <= self._n - TRANSIT_WINDOW and len(self._transits) > 1:
            self._transits.popleft()
        self._n += 1
        fastest = self._transits[0][1]
        if not repaired:
            self._estimate(transit - fastest)
        at = max(complete_ms, ts_ms + fastest + self.hold_ms)
        if self._last_ms is not None:
            at = max(at, self._last_ms)
        self._last_ms = at
        return at
