"""Packet loss of one RTP stream, before and after retransmission.

- Path loss: what the network lost on the way, from the media SSRC's own
  sequence numbers (RFC 3550 expected - received), counting retransmissions
  on the RTX SSRC as *not* received: RTX hides path loss, and aiortc's own
  counters mix the two streams up.
- Residual loss: sequence numbers still missing ``settle_ms`` after they were
  found missing, neither the original nor an RTX copy having arrived: what
  the decoder really lacked.

Pure: arrival times are passed in (ms on a monotonic clock).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from probes.sequence import extend_seq

# More gaps than this outstanding at once means the stream broke off; the
# oldest are called lost rather than tracked for ever.
MAX_TRACKED_MISSING = 4096
# A jump larger than this is a restart of the stream (new sequence base), not
# thousands of lost packets.
MAX_GAP = 3000


@dataclass
class LossInterval:
    """Counts for one interval (e.g. one second)."""

    expected: int = 0
    received: int = 0  # unique media packets, not RTX copies
    path_lost: int = 0
    residual_lost: int = 0
    repaired: int = 0  # missing packets that arrived on the RTX SSRC
    payload_bytes: int = 0

    @property
    def loss_pct(self) -> float | None:
        if self.expected <= 0:
            return None
        return min(100.0, 100.0 * self.path_lost / self.expected)

    @property
    def residual_loss_pct(self) -> float | None:
        if self.expected <= 0:
            return None
        return min(100.0, 100.0 * self.residual_lost / self.expected)


class LossAccounting:
    def __init__(self, settle_ms: float = 1000.0) -> None:
        self._settle_ms = settle_ms
        self._max_ext: int | None = None
        self._interval_base: int | None = None  # highest ext seq at last take
        self._missing: OrderedDict[int, float] = OrderedDict()  # ext seq -> found at
        self._cur = LossInterval()
        self.totals = LossInterval()

    def _extend(self, seq: int) -> int:
        if self._max_ext is None:
            return seq
        return extend_seq(seq, self._max_ext)

    def media(self, seq: int, payload_bytes: int, now_ms: float) -> None:
        """A packet on the media SSRC."""
        if self._max_ext is None:
            self._max_ext = seq
            self._interval_base = seq - 1
            self._count_received(payload_bytes)
            return
        ext = self._extend(seq)
        if ext > self._max_ext:
            gap = ext - self._max_ext - 1
            if gap > MAX_GAP:
                # The sender restarted its numbering: start over from here.
                self._settle_all_missing()
                self._max_ext = ext
                self._interval_base = ext - 1
                self._count_received(payload_bytes)
                return
            for missing in range(self._max_ext + 1, ext):
                self._missing[missing] = now_ms
            while len(self._missing) > MAX_TRACKED_MISSING:
                self._missing.popitem(last=False)
                self._cur.residual_lost += 1
            self._max_ext = ext
            self._count_received(payload_bytes)
        elif ext in self._missing:
            # Late (reordered) original: it was never lost.
            del self._missing[ext]
            self._count_received(payload_bytes)
        # else: duplicate, ignored

    def rtx(self, original_seq: int, now_ms: float) -> None:
        """A retransmission (RTX SSRC) carrying ``original_seq``."""
        if self._max_ext is None:
            return
        ext = self._extend(original_seq)
        if ext in self._missing:
            del self._missing[ext]
            self._cur.repaired += 1

    def _count_received(self, payload_bytes: int) -> None:
        self._cur.received += 1
        self._cur.payload_bytes += payload_bytes

    def _settle_all_missing(self) -> None:
        self._cur.residual_lost += len(self._missing)
        self._missing.clear()

    def take(self, now_ms: float) -> LossInterval:
        """Close the interval ending at ``now_ms`` and return its counts."""
        while self._missing:
            seq, found = next(iter(self._missing.items()))
            if now_ms - found < self._settle_ms:
                break
            del self._missing[seq]
            self._cur.residual_lost += 1
        cur = self._cur
        if self._max_ext is not None and self._interval_base is not None:
            cur.expected = self._max_ext - self._interval_base
            self._interval_base = self._max_ext
        cur.path_lost = max(0, cur.expected - cur.received)
        for name in ("expected", "received", "path_lost", "residual_lost", "repaired",
                     "payload_bytes"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(cur, name))
        self._cur = LossInterval()
        return cur
