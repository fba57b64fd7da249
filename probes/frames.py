"""Frames as a viewer's decoder gets them, assembled from RTP packets.

A frame is complete when every packet from its first (VP8 start-of-frame,
H.264 access unit opener) to its last (RTP marker bit, or the last packet
before one with a new RTP timestamp) has arrived, on the media SSRC or as an
RTX repair. It is a keyframe when any of its packets says so (the VP8 frame
header, an H.264 IDR slice), and its size comes from any packet that has it.
Frames are taken in order, as a decoder does: a complete frame waits for the
one before it, however late the repair that completes it comes, except:

- a complete keyframe held behind an incomplete frame goes to the decoder at
  once, and the frames before it are given up (a browser's frame buffer
  decodes the first frame whose references it has, and a keyframe has none);
- a frame still incomplete ``give_up_ms`` after the first packet behind its
  gap arrived is given up (default ``FRAME_WAIT_MS``, 3 s: how long a
  browser's receiver waits without a decodable frame before it asks for a
  keyframe); the delta frames after it cannot be decoded and are not shown
  until the next keyframe. The age counts from arrival, not from when the
  gap reached the head of the line, so after a burst of loss the whole
  backlog of broken frames is given up at once.

Giving up sooner (at the end of the repair requests, 1 s) threw away repairs
that came later, which a browser still decodes: under a squeeze where each
retransmission waits in a 200 ms queue and half are lost, that is common.
So "shown" frames are those a receiving browser would render, and their
times feed the W3C freeze counting.

Why not aiortc's own jitter buffer: one packet that never arrives stalls it
until 512 packets later (seconds), and it cannot tell an undecodable frame
from a good one.

Pure: ``now_ms`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.sequence import SEQ_SPAN, extend_seq


@dataclass(frozen=True)
class ShownFrame:
    at_ms: float
    size_bytes: int
    keyframe: bool
    width: int | None
    height: int | None
    rtp_timestamp: int | None = None
    repaired: bool = False  # one of its packets came by retransmission
    # When its own last packet arrived (``at_ms`` is when it could go to the
    # decoder: later, when it waited for a frame before it).
    arrived_ms: float | None = None


@dataclass(slots=True)  # one per packet: slots make it cheaper to build and read
class _Packet:
    start: bool
    end: bool
    keyframe: bool
    size: int
    width: int | None
    height: int | None
    at_ms: float
    ts: int | None  # RTP timestamp, when known
    repaired: bool = False


# Packets held at most, so a broken stream cannot grow memory without bound.
MAX_HELD = 4096
# A browser's receiver asks for a keyframe after this long without a
# decodable frame (libwebrtc's kMaxWaitForFrameMs): a frame still incomplete
# then is never going to be shown.
FRAME_WAIT_MS = 3000.0


class FrameAssembler:
    def __init__(self, give_up_ms: float = FRAME_WAIT_MS) -> None:
        self._give_up_ms = give_up_ms
        self._packets: dict[int, _Packet] = {}
        self._max_ext: int | None = None
        self._next: int | None = None  # ext seq where the next frame starts
        self._decodable = False  # a keyframe seen since the chain last broke
        # The head packet is known to start a frame (it follows a frame's
        # last packet, or a skip found it as a start) whatever its own flags say.
        self._head_after_end = False
        # The newest packet of a keyframe seen: while it is beyond the head,
        # a complete keyframe may be held there to jump to.
        self._newest_key: int | None = None
        # A frame was given up or could not be shown since the last keyframe:
        # only a keyframe brings the picture back.
        self._broken = False
        self.started = False  # a keyframe was shown
        self.frames_given_up = 0
        self.frames_undecodable = 0

    def _extend(self, seq: int) -> int:
        if self._max_ext is None:
            return seq + SEQ_SPAN  # room below for reordered packets
        return extend_seq(seq, self._max_ext)

    def packet(
        self,
        seq: int,
        start: bool,
        end: bool,
        keyframe: bool,
        size: int,
        now_ms: float,
        width: int | None = None,
        height: int | None = None,
        rtp_timestamp: int | None = None,
        repaired: bool = False,
    ) -> list[ShownFrame]:
        """Add one packet (original, or RTX-repaired: ``repaired``); frames it
        made showable."""
        ext = self._extend(seq)
        in_order = self._max_ext is not None and ext == self._max_ext + 1
        if self._max_ext is None or ext > self._max_ext:
            self._max_ext = ext
        if self._next is not None and ext < self._next:
            return []  # late copy of something already decided
        if self._next is None:
            if not start:
                return []  # joined mid-frame: wait for a frame's beginning
            self._next = ext
        self._packets.setdefault(ext, _Packet(start, end, keyframe, size, width, height, now_ms,
                                                rtp_timestamp, repaired))
        if keyframe and (self._newest_key is None or ext > self._newest_key):
            self._newest_key = ext
        if len(self._packets) > MAX_HELD:
            self._skip(now_ms, force=True)
        elif in_order and not end and not self._new_timestamp(ext):
            # The next packet of a frame still open: it cannot complete one
            # (saves walking the open frame again for each of its packets).
            return []
        return self.advance(now_ms)

    def advance(self, now_ms: float) -> list[ShownFrame]:
        """Take every frame that can go to the decoder now."""
        shown: list[ShownFrame] = []
        for _ in range(MAX_HELD):  # bounded: each turn takes a frame or stops
            if self._next is None:
                break
            frame = self._complete_at(self._next)
            if frame is None:
                if self._max_ext is None or self._max_ext < self._next:
                    break  # nothing beyond: just waiting for the stream
                key = self._complete_keyframe_after()
                if key is not None:
                    self._skip(now_ms, to=key)
                    continue
                if now_ms - self._head_since() < self._give_up_ms or not self._skip(now_ms):
                    break
                continue
            size = 0
            keyframe = False
            width = height = None
            ts: int | None = None
            repaired = False
            arrived = 0.0
            for s in range(self._next, frame + 1):
                p = self._packets.pop(s)
                size += p.size
                keyframe = keyframe or p.keyframe
                repaired = repaired or p.repaired
                arrived = max(arrived, p.at_ms)
                if ts is None:
                    ts = p.ts
                if p.width and p.height:
                    width, height = p.width, p.height
            self._next = frame + 1
            self._head_after_end = True
            if keyframe:
                self._decodable = True
                self._broken = False
                self.started = True
            if self._decodable:
                shown.append(ShownFrame(now_ms, size, keyframe, width, height, ts, repaired,
                                        arrived))
            else:
                self.frames_undecodable += 1
                self._broken = True
        return shown

    @property
    def needs_keyframe(self) -> bool:
        """The picture cannot go on without a keyframe."""
        return self._broken and not self._decodable

    def _head_since(self) -> float:
        """When the head frame was first known to be incomplete: the arrival
        of its first packet, or of the first packet held behind it."""
        assert self._next is not None
        head = self._packets.get(self._next)
        if head is not None:
            return head.at_ms
        return min((p.at_ms for s, p in self._packets.items() if s > self._next),
                   default=float("inf"))

    def _complete_at(self, begin: int) -> int | None:
        """The last sequence number of the complete frame starting at ``begin``."""
        first = self._packets.get(begin)
        if first is None or not (first.start or self._head_after_end
                                 or self._new_timestamp(begin)):
            return None
        return self._frame_end(begin)

    def _frame_end(self, begin: int) -> int | None:
        """The last sequence number of the frame starting at ``begin``, when
        all of its packets are held."""
        s = begin
        while True:
            p = self._packets.get(s)
            if p is None:
                return None
            if p.end or self._new_timestamp(s + 1):
                return s
            s += 1
            if s - begin > MAX_HELD:
                return None

    def _complete_keyframe_after(self) -> int | None:
        """Where the first complete keyframe held beyond the head starts."""
        assert self._next is not None
        if self._newest_key is None or self._newest_key <= self._next:
            return None  # the usual case: no keyframe in flight, nothing to scan
        after_end = False
        # Bounded: at most MAX_HELD packets are held, and the scan stops at
        # the newest keyframe packet.
        for s in range(self._next + 1, self._newest_key + 1):
            p = self._packets.get(s)
            if p is None:
                after_end = False
                continue
            if p.start or after_end or self._new_timestamp(s):
                end = self._frame_end(s)
                if end is not None and any(self._packets[i].keyframe
                                           for i in range(s, end + 1)):
                    return s
            after_end = p.end
        return None

    def _new_timestamp(self, seq: int) -> bool:
        """Packet ``seq`` is held and its predecessor is held with another RTP
        timestamp: a frame boundary even where the marker bit was not set."""
        p = self._packets.get(seq)
        before = self._packets.get(seq - 1)
        return (p is not None and before is not None and p.ts is not None
                and before.ts is not None and p.ts != before.ts)

    def _skip(self, now_ms: float, force: bool = False, to: int | None = None) -> bool:
        """Give up the frame at the head: jump to ``to`` (a frame start), or
        else to the next frame start held."""
        assert self._next is not None
        if to is None:
            starts = [s for s, p in self._packets.items()
                      if s > self._next and (p.start or self._new_timestamp(s))]
            if not starts and not force:
                return False
            to = min(starts) if starts else None
        target = to if to is not None else (self._max_ext or self._next) + 1
        for s in [s for s in self._packets if s < target]:
            del self._packets[s]
        self._next = target
        # A start found among the packets held stays one once the packet
        # before it (which may be what showed it) is dropped.
        self._head_after_end = to is not None
        self._decodable = False
        self._broken = True
        self.frames_given_up += 1
        return True
