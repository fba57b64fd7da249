"""When to ask the sender again, as a browser receiver does (libwebrtc's
NACK module and keyframe requests), so the probe recovers from loss when a
viewer would and its frozen time is the viewer's.

- NACK: a missing sequence number is first asked for once the packets seen
  since the gap show it is not merely late (a path that reorders delays the
  first request: see below), then again every ``RETRY_MS`` (100 ms), until
  it arrives (original or RTX), ``deadline_ms`` (1 s) after the gap was seen
  or ``MAX_RETRIES`` requests were sent. A browser viewer learns no RTT from
  RTCP (it sends no media, so it gets no receiver reports) and its NACK
  module resends every 100 ms, its default RTT, however long the path: so
  its ten tries span about a second; a repair that comes later still
  completes its frame (:mod:`probes.frames`). (A sender that answers RTCP XR
  receiver reference time reports, as a libwebrtc sender does, tells
  Chromium the RTT, and Chromium then asks again every RTT; the probe sends
  no such reports yet.) The probe does know the RTT, but spacing its tries
  by it asks less often than a viewer exactly where it matters: under a
  squeeze the queue inflates the RTT (to 250 ms and more behind a 200 ms
  queue), the probe asked half as often as a browser, its path carried 4 500
  dropped packets a window where the browser's carried 7 600, fewer repairs
  got through, and its frame rate read up to a quarter under the browser's.
  Asking every few ms on a short path would spend the tries in a fraction of
  a second, and a sender that ignores repeated NACKs for a while after a
  retransmission (Janus: 200 ms) would then never repair a packet whose
  retransmission was lost, where the browser asks again in time. aiortc on
  its own asks once per gap.
- Reordering: a packet that arrives after later ones is remembered with how
  many packets late it was (the last ``REORDER_KEPT``). A new gap is asked
  for once the newest packet is that many past it, the median of those
  distances, or ``FIRST_NACK_WAIT_MS`` after it was seen, whichever comes
  first: libwebrtc's rule (its NACK module also sends what is pending on its
  20 ms process tick, on average 10 ms later). Without it a path that
  reorders a frame's packets by a few ms has every late packet asked for
  and sent twice (40 % more traffic at +-5 ms jitter), which the sender pays
  and the probe's ``rtx_kbps`` reports as repairs that were never needed.
- PLI: while the picture cannot recover without a keyframe, ask for one,
  as a browser's receiver does: before the first keyframe at once and again
  every ``FIRST_PLI_RETRY_MS``; once the picture has started, when the frame
  assembler gives a frame up (no decodable frame for ``FRAME_WAIT_MS``) and
  again every ``PLI_RETRY_MS`` until a keyframe completes. A request every
  200 ms through a long outage would have the sender encode a keyframe every
  few hundred ms for the probe alone, where a browser asks once in 3 s.

Pure: times are passed in (ms on a monotonic clock).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from probes.frames import FRAME_WAIT_MS
from probes.sequence import SEQ_SPAN, extend_seq

RETRY_MS = 100.0  # a browser viewer's resend interval (see above)
MAX_RETRIES = 10
FIRST_PLI_RETRY_MS = 200.0  # libwebrtc's kMaxWaitForKeyFrameMs
PLI_RETRY_MS = FRAME_WAIT_MS
MAX_TRACKED = 1000  # missing packets remembered at once
MAX_GAP = 3000  # a bigger jump is a new sequence base, not loss
FIRST_NACK_WAIT_MS = 10.0  # mean wait for libwebrtc's 20 ms process tick
REORDER_KEPT = 128  # reordering distances remembered, as libwebrtc
MAX_REORDER = 10  # a larger distance counts as this many packets


@dataclass
class _Missing:
    found_ms: float
    ask_at_ext: int  # the first request waits until the newest packet is this
    sent_ms: float | None = None
    retries: int = 0


class NackScheduler:
    def __init__(self, deadline_ms: float = 1000.0) -> None:
        self._deadline_ms = deadline_ms
        self._max_ext: int | None = None
        self._missing: OrderedDict[int, _Missing] = OrderedDict()
        self._last_pli_ms: float | None = None
        self._reorders: deque[int] = deque(maxlen=REORDER_KEPT)
        self.nacks_sent = 0  # sequence numbers asked for, retries included
        self.plis_sent = 0

    def _extend(self, seq: int) -> int:
        if self._max_ext is None:
            return seq + SEQ_SPAN  # room below for reordered packets
        return extend_seq(seq, self._max_ext)

    def media(self, seq: int, now_ms: float) -> None:
        """A packet of the media SSRC arrived."""
        ext = self._extend(seq)
        if self._max_ext is None or ext - self._max_ext > MAX_GAP:
            self._missing.clear()
            self._max_ext = ext
            return
        if ext > self._max_ext:
            wait = self._reorder_wait()
            for missing in range(self._max_ext + 1, ext):
                self._missing[missing] = _Missing(now_ms, missing + wait)
            while len(self._missing) > MAX_TRACKED:
                self._missing.popitem(last=False)
            self._max_ext = ext
        elif self._missing.pop(ext, None) is not None:
            self._reorders.append(min(self._max_ext - ext, MAX_REORDER))

    def _reorder_wait(self) -> int:
        """Packets to wait before asking: the median reordering distance."""
        if not self._reorders:
            return 0
        return sorted(self._reorders)[len(self._reorders) // 2]

    @property
    def waiting(self) -> bool:
        """Some sequence number is missing: :meth:`due` may have work."""
        return bool(self._missing)

    def repaired(self, seq: int) -> None:
        """A retransmission of ``seq`` arrived."""
        if self._max_ext is not None:
            self._missing.pop(self._extend(seq), None)

    def due(self, now_ms: float) -> list[int]:
        """Sequence numbers (16-bit) to NACK now; marks them as asked."""
        out: list[int] = []
        expired: list[int] = []
        for ext, m in self._missing.items():
            if now_ms - m.found_ms >= self._deadline_ms or m.retries >= MAX_RETRIES:
                expired.append(ext)
                continue
            if m.sent_ms is None:
                if (self._max_ext is not None and self._max_ext < m.ask_at_ext
                        and now_ms - m.found_ms < FIRST_NACK_WAIT_MS):
                    continue  # may still be a late packet, not a lost one
            elif now_ms - m.sent_ms < RETRY_MS:
                continue
            m.sent_ms = now_ms
            m.retries += 1
            out.append(ext & 0xFFFF)
        for ext in expired:
            del self._missing[ext]
        self.nacks_sent += len(out)
        return out

    def pli_due(self, needs_keyframe: bool, now_ms: float, started: bool) -> bool:
        """Whether to send a PLI now, given whether the picture needs a
        keyframe and whether it has ``started`` (a keyframe was shown)."""
        if not needs_keyframe:
            self._last_pli_ms = None
            return False
        retry_ms = PLI_RETRY_MS if started else FIRST_PLI_RETRY_MS
        if self._last_pli_ms is not None and now_ms - self._last_pli_ms < retry_ms:
            return False
        self._last_pli_ms = now_ms
        self.plis_sent += 1
        return True
