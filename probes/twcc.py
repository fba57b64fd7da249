"""Transport-wide congestion control feedback, as a browser viewer sends it.

A libwebrtc sender (a browser, an SFU built on it) runs its congestion
control on the sender's side when the viewer offers ``transport-cc``: every
packet it sends carries a transport-wide sequence number, the viewer reports
when each one arrived (RTCP transport feedback, RTPFB FMT 15), and the sender
sets its rate from the delays and losses it reads there, probing upward with
padding. A viewer that only sends REMB gets another controller and so, under
a squeeze or loss, another rate than the browser next to it. The probe
therefore reports arrivals the way libwebrtc's receiver does:

- a report every :data:`FEEDBACK_INTERVAL_MS`, covering every sequence number
  since the last report (lost ones marked not received). A report starts
  where the last one ended, received or not, as libwebrtc's does: packets
  lost just after a report are the next one's first, not left out (the
  sender would never count them lost, and would read a lower loss than the
  path's). A late packet from before the last report is reported again
  with its neighbours, as libwebrtc does, rather than dropped;
- arrival deltas in 250 us ticks, relative to a reference time in 64 ms
  units taken from the first packet reported, each delta rounded and the
  running time advanced by the rounded delta so rounding never drifts;
- packet states as run-length chunks, the block padded to 32 bits with the
  count in its last byte and the padding bit set.

The packet layout is that of draft-holmer-rmcat-transport-wide-cc-extensions-01.
Pure: arrival times are passed in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

EXTENSION_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
FEEDBACK_INTERVAL_MS = 100.0

_TICK_US = 250
_REFERENCE_US = 64_000
_REFERENCE_WRAP = 1 << 24
_MAX_RUN = (1 << 13) - 1
_NOT_RECEIVED, _SMALL, _LARGE = 0, 1, 2
# How far back arrivals are kept for a late packet to be reported again.
_HISTORY = 1 << 12
# Packets reported in one feedback at most: keeps each report well under a
# datagram (a status chunk and a delta of two bytes each, at worst).
MAX_PER_FEEDBACK = 250


@dataclass
class TransportFeedbackLog:
    """Arrivals of one transport (all of a BUNDLE's streams share its
    sequence numbers), and the feedback that reports them."""

    arrivals: dict[int, int] = field(default_factory=dict)  # unwrapped seq -> us
    # First unwrapped seq of the next report: where the last one ended (or
    # the first packet, before any report; or a late one, reported again).
    next_to_report: int | None = None
    highest: int | None = None
    feedback_count: int = 0

    def arrived(self, seq: int, arrival_us: int) -> None:
        """Note transport-wide sequence number ``seq`` (16 bits, as sent)."""
        unwrapped = self._unwrap(seq)
        if self.highest is not None and unwrapped <= self.highest - _HISTORY:
            return  # far older than anything still kept: a stray duplicate
        self.arrivals.setdefault(unwrapped, arrival_us)
        if self.highest is None or unwrapped > self.highest:
            self.highest = unwrapped
        if self.next_to_report is None or unwrapped < self.next_to_report:
            self.next_to_report = unwrapped  # a late one is reported again
        if len(self.arrivals) > 2 * _HISTORY:
            floor = self.highest - _HISTORY
            self.arrivals = {s: t for s, t in self.arrivals.items() if s > floor}

    def _unwrap(self, seq: int) -> int:
        if self.highest is None:
            return seq
        # The unwrapped number closest to the highest one seen.
        delta = (seq - self.highest) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self.highest + delta

    def take(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """The feedback packets for everything since the last call (none if
        nothing arrived)."""
        if self.next_to_report is None or self.highest is None:
            return []
        out: list[bytes] = []
        start = self.next_to_report
        while start <= self.highest:
            packet, start = self._one(start, self.highest, sender_ssrc, media_ssrc)
            out.append(packet)
        self.next_to_report = start
        # Only what might still be needed to report a late packet again.
        floor = self.highest - _HISTORY
        if self.arrivals and min(self.arrivals) <= floor:
            self.arrivals = {s: t for s, t in self.arrivals.items() if s > floor}
        return out

    def _one(self, start: int, highest: int, sender_ssrc: int,
             media_ssrc: int) -> tuple[bytes, int]:
        """One feedback packet from ``start`` on; returns it and where the
        next one starts."""
        arrivals = self.arrivals
        # A report may start with lost packets (fewer than 2^15: a sequence
        # number further on than that would have read as an old one), but
        # its reference time is a received packet's.
        first = start
        while first not in arrivals:
            first += 1
        reference = arrivals[first] // _REFERENCE_US
        now_ticks = reference * (_REFERENCE_US // _TICK_US)
        symbols: list[int] = []
        deltas = bytearray()
        received = 0
        seq = start
        while seq <= highest and received < MAX_PER_FEEDBACK:
            arrival = arrivals.get(seq)
            if arrival is None:
                symbols.append(_NOT_RECEIVED)
                seq += 1
                continue
            # Rounded to the nearest tick, from the running (rounded) time.
            delta = (arrival + _TICK_US // 2) // _TICK_US - now_ticks
            if 0 <= delta <= 0xFF:
                symbols.append(_SMALL)
                deltas.append(delta)
            elif -0x8000 <= delta <= 0x7FFF:
                symbols.append(_LARGE)
                deltas += struct.pack("!h", delta)
            else:
                break  # too far from the last one: the next report starts here
            now_ticks += delta
            received += 1
            seq += 1
        while symbols and symbols[-1] == _NOT_RECEIVED:  # a report ends received
            symbols.pop()
        body = bytearray(struct.pack(
            "!IIHHI", sender_ssrc, media_ssrc, start & 0xFFFF, len(symbols),
            ((reference % _REFERENCE_WRAP) << 8) | (self.feedback_count & 0xFF)))
        self.feedback_count += 1
        body += _run_length_chunks(symbols)
        body += deltas
        padding = -len(body) % 4
        if padding:
            body += bytes(padding - 1) + bytes([padding])
        header = struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | 15, 205,
                             (len(body) + 4) // 4 - 1)
        return bytes(header + body), start + len(symbols)


def _run_length_chunks(symbols: list[int]) -> bytes:
    out = bytearray()
    i = 0
    while i < len(symbols):
        symbol = symbols[i]
        run = 1
        while i + run < len(symbols) and symbols[i + run] == symbol and run < _MAX_RUN:
            run += 1
        out += struct.pack("!H", (symbol << 13) | run)
        i += run
    return bytes(out)
