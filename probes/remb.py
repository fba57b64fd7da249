"""When a receiver sends its REMB: as a browser's receiver does.

aiortc hands its estimate to the sender every half second, and on every
packet while its detector says "overusing": under a squeeze, or with the
bursty arrivals of a keyframe on a busy host, that is a REMB per packet, to
a sender that reads one every 200 ms at most. libwebrtc's receiver throttles
them: a new estimate goes out at once when it is more than 3 % below the
last one sent, otherwise no sooner than 200 ms after it. The probe sends
what a browser would, which also spares it an RTCP packet per media packet.

Pure: times passed in.
"""

from __future__ import annotations

SEND_INTERVAL_MS = 200
# A new estimate this much below the last one sent goes out at once.
DROP_FACTOR = 1.03


class RembThrottle:
    def __init__(self) -> None:
        self._last_ms: int | None = None
        self._last_bps: int | None = None

    def send(self, bitrate_bps: int, now_ms: int) -> bool:
        """Whether this estimate is to be sent now (and is then the last sent)."""
        if (self._last_ms is not None and self._last_bps is not None
                and bitrate_bps * DROP_FACTOR > self._last_bps
                and now_ms < self._last_ms + SEND_INTERVAL_MS):
            return False
        self._last_ms, self._last_bps = now_ms, bitrate_bps
        return True
