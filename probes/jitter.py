"""RTP interarrival jitter (RFC 3550 section 6.4.1), reported in milliseconds.

Like libwebrtc, only the first packet of each new RTP timestamp updates the
estimate: the packets of one video frame leave the sender in a burst and
would otherwise read as jitter.
"""

from __future__ import annotations


class InterarrivalJitter:
    def __init__(self, clock_rate: int = 90_000) -> None:
        self._rate = clock_rate
        self._jitter = 0.0  # RTP clock units
        self._last_transit: float | None = None
        self._last_ts: int | None = None

    def add(self, rtp_timestamp: int, arrival_ms: float) -> None:
        if rtp_timestamp == self._last_ts:
            return
        self._last_ts = rtp_timestamp
        transit = arrival_ms * self._rate / 1000.0 - rtp_timestamp
        if self._last_transit is not None:
            d = transit - self._last_transit
            # RTP timestamps wrap at 2**32; a transit jump of that size is the wrap.
            if d > 2**31:
                d -= 2**32
            elif d < -(2**31):
                d += 2**32
            self._jitter += (abs(d) - self._jitter) / 16.0
        self._last_transit = transit

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000.0 / self._rate
