"""A rate over a sliding window of milliseconds, in O(1) per packet.

aiortc's REMB estimator measures the incoming bitrate with a counter that
keeps one bucket per millisecond and, on every packet, walks every
millisecond since the last one to empty the buckets that left the window:
about 10 steps of Python per packet at a live show's packet rate, twice per
packet, on every stream. :class:`SlidingRate` gives the same figures (it is
tested against aiortc's counter) keeping one entry per millisecond that had
packets, dropped when it leaves the window.

Pure: times passed in.
"""

from __future__ import annotations

from collections import deque


class SlidingRate:
    """What aiortc's ``RateCounter(window_ms, scale)`` answers, for the same
    calls: ``add(value, now_ms)``, ``rate(now_ms)`` (None until two
    milliseconds of the window have passed with something in it) and
    ``reset()``. Holds at most ``window_ms`` entries."""

    def __init__(self, window_ms: int, scale: int = 8000) -> None:
        self._window_ms = window_ms
        self._scale = scale
        self._entries: deque[list[int]] = deque()  # [ms, count, value], oldest first
        self._origin_ms: int | None = None
        self._count = 0
        self._value = 0

    def reset(self) -> None:
        self._entries.clear()
        self._origin_ms = None
        self._count = 0
        self._value = 0

    def _erase_old(self, now_ms: int) -> None:
        assert self._origin_ms is not None
        new_origin_ms = now_ms - self._window_ms + 1
        if self._origin_ms >= new_origin_ms:
            return
        self._origin_ms = new_origin_ms
        entries = self._entries
        while entries and entries[0][0] < new_origin_ms:
            _, count, value = entries.popleft()
            self._count -= count
            self._value -= value

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        entries = self._entries
        if entries and entries[-1][0] >= now_ms:
            # The same millisecond (or a clock that stepped back: counted in
            # the newest one, as it cannot have left the window before it).
            last = entries[-1]
            last[1] += 1
            last[2] += value
        else:
            entries.append([now_ms, 1, value])
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is None:
            return None
        self._erase_old(now_ms)
        active_ms = now_ms - self._origin_ms + 1
        if self._count > 0 and active_ms > 1:
            return round(self._scale * self._value / active_ms)
        return None
