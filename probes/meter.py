"""Everything measured about one viewing session, turned into per-second
figures. Pure: fed with packets and frames by the receiver tap, times passed
in (ms on a monotonic clock); knows nothing of aiortc or the network."""

from __future__ import annotations

from dataclasses import dataclass

from probes.audio import AudioAccounting, SenderClock, av_skew_ms
from probes.chat import ChatLedger
from probes.frames import FrameAssembler
from probes.freeze import INACTIVE_MS, FreezeDetector
from probes.jitter import InterarrivalJitter
from probes.loss import LossAccounting
from probes.playout import Playout

# How long one RTT measurement stands in for seconds without a new answer.
RTT_HOLD_MS = 3000.0
# A check in flight this long (or twice the last answer, if longer) ends the
# hold: scheduling alone can delay an answer by tens of ms on a busy probe.
RTT_WAIT_FLOOR_MS = 200.0


@dataclass
class SecondFigures:
    """The measured fields of one ProbeSample (names and units as the model)."""

    packets_expected: int
    packets_received: int
    loss_pct: float | None
    residual_loss_pct: float | None
    jitter_ms: float | None
    bitrate_kbps: float | None
    fps: float | None
    width: int | None
    height: int | None
    freeze_count: int
    freeze_ms: float
    pause_count: int
    pause_ms: float
    no_frame_ms: float | None
    chat_sent: int
    chat_lost: int
    chat_rtt_ms: float | None
    rtt_ms: float | None
    received_kbps: float | None
    rtx_kbps: float | None
    goodput_kbps: float | None
    stuck_ms: float
    rtt_error: str | None
    video_codec: str | None
    audio_loss_pct: float | None = None
    audio_jitter_ms: float | None = None
    audio_kbps: float | None = None
    audio_concealed_ms: float | None = None
    audio_dtx_ms: float | None = None
    audio_stalled_ms: float | None = None
    audio_stalled: bool | None = None
    av_skew_ms: float | None = None


class _SsrcStats:
    def __init__(self, settle_ms: float, clock_rate: int) -> None:
        self.loss = LossAccounting(settle_ms=settle_ms)
        self.frames = FrameAssembler()
        self.jitter = InterarrivalJitter(clock_rate)
        self.packets_this_interval = 0


class StreamMeter:
    def __init__(
        self,
        start_ms: float,
        settle_ms: float = 1000.0,
        chat_deadline_ms: float = 3000.0,
        clock_rate: int = 90_000,
    ) -> None:
        self._settle_ms = settle_ms
        self.settle_ms = settle_ms  # repairs are asked for this long after a gap
        self._clock_rate = clock_rate
        self._ssrcs: dict[int, _SsrcStats] = {}
        self._frames = FreezeDetector()
        self._playout = Playout(clock_rate)
        self._frames_this_interval = 0
        self._frame_bytes_this_interval = 0
        self._reported = (0, 0.0, 0, 0.0)  # freeze/pause totals already reported
        self._last_take_ms = start_ms
        self.start_ms = start_ms
        self.first_frame_ms: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.chat = ChatLedger(deadline_ms=chat_deadline_ms)
        self._rtts_ms: list[float] = []
        self._last_rtt: tuple[float, float] | None = None  # (measured at, rtt)
        self._rtt_asked_ms: float | None = None  # the check in flight, if any
        self.packets_total = 0
        self.last_packet_ms: float | None = None
        self._rtx_bytes_this_interval = 0
        self._rtt_error: str | None = None
        self.video_codec: str | None = None
        self.audio: AudioAccounting | None = None  # from the first audio packet on
        self._audio_ssrc: int | None = None
        self._sender_clocks: dict[int, SenderClock] = {}
        self._last_video_rtp: tuple[int, float] | None = None  # newest (rtp ts, arrival)

    def _ssrc(self, ssrc: int) -> _SsrcStats:
        s = self._ssrcs.get(ssrc)
        if s is None:
            s = self._ssrcs[ssrc] = _SsrcStats(self._settle_ms, self._clock_rate)
            self._sender_clocks[ssrc] = SenderClock(self._clock_rate)
        return s

    @property
    def media_ssrcs(self) -> list[int]:
        return list(self._ssrcs)

    # -- inputs -----------------------------------------------------------

    def media_packet(
        self, ssrc: int, seq: int, rtp_timestamp: int, payload_bytes: int, now_ms: float
    ) -> None:
        last = self.last_packet_ms
        if last is not None and now_ms - last >= INACTIVE_MS:
            self._frames.stream_inactive()
        s = self._ssrcs.get(ssrc) or self._ssrc(ssrc)
        s.loss.media(seq, payload_bytes, now_ms)
        s.jitter.add(rtp_timestamp, now_ms)
        self._last_video_rtp = (rtp_timestamp, now_ms)
        s.packets_this_interval += 1
        self.packets_total += 1
        self.last_packet_ms = now_ms

    def audio_packet(
        self, ssrc: int, seq: int, rtp_timestamp: int, payload_bytes: int, now_ms: float,
        clock_rate: int = 48_000,
    ) -> None:
        """A packet of the (first) audio stream."""
        if self.audio is None:
            self.audio = AudioAccounting(now_ms, clock_rate)
            self._audio_ssrc = ssrc
            self._sender_clocks[ssrc] = SenderClock(clock_rate)
        if ssrc == self._audio_ssrc:
            self.audio.packet(seq, rtp_timestamp, payload_bytes, now_ms)

    def sender_report(self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """An RTCP sender report for one of the streams received."""
        clock = self._sender_clocks.get(ssrc)
        if clock is not None:
            clock.sender_report(ntp_timestamp, rtp_timestamp)

    def _av_skew_ms(self) -> float | None:
        if self.audio is None or self._audio_ssrc is None or not self._ssrcs:
            return None
        video_ssrc = next(iter(self._ssrcs))
        return av_skew_ms(self.audio.last_rtp, self._sender_clocks[self._audio_ssrc],
                          self._last_video_rtp, self._sender_clocks[video_ssrc])

    def rtx_packet(
        self, media_ssrc: int, original_seq: int, payload_bytes: int, now_ms: float
    ) -> None:
        """A retransmission; ``payload_bytes`` is the RTX payload, whose first
        two bytes are the original sequence number."""
        self._check_active(now_ms)
        self._ssrc(media_ssrc).loss.rtx(original_seq, now_ms)
        self._rtx_bytes_this_interval += max(0, payload_bytes - 2)
        self.last_packet_ms = now_ms

    def _check_active(self, now_ms: float) -> None:
        if self.last_packet_ms is not None and now_ms - self.last_packet_ms >= INACTIVE_MS:
            self._frames.stream_inactive()

    def video_packet(
        self,
        ssrc: int,
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
    ) -> None:
        """A packet of a codec whose frames the probe assembles itself (VP8,
        H.264), original or RTX-repaired (``repaired``; then ``ssrc`` is the
        media SSRC)."""
        s = self._ssrcs.get(ssrc) or self._ssrc(ssrc)
        for f in s.frames.packet(seq, start, end, keyframe, size, now_ms, width, height,
                                 rtp_timestamp, repaired):
            self.frame(f.at_ms, f.size_bytes, f.width, f.height, f.rtp_timestamp, f.repaired,
                       f.arrived_ms)

    def frame(
        self,
        now_ms: float,
        size_bytes: int,
        width: int | None = None,
        height: int | None = None,
        rtp_timestamp: int | None = None,
        repaired: bool = False,
        arrived_ms: float | None = None,
    ) -> None:
        """A frame a decoder could show, complete at ``now_ms``. With its RTP
        timestamp, stalls are judged at the time a browser would show it
        (:mod:`probes.playout`), else at ``now_ms``. ``repaired``: one of
        its packets came by retransmission; ``arrived_ms``: when its own last
        packet came, if before ``now_ms`` (it waited for a frame before it)."""
        if self.first_frame_ms is None:
            self.first_frame_ms = now_ms
        if width and height:
            self.width, self.height = width, height
        shown = (now_ms if rtp_timestamp is None
                 else self._playout.show_ms(now_ms, rtp_timestamp, repaired, arrived_ms))
        self._frames.frame(shown)
        self._frames_this_interval += 1
        self._frame_bytes_this_interval += size_bytes

    def rtt(self, rtt_ms: float, now_ms: float) -> None:
        self._rtts_ms.append(rtt_ms)
        self._last_rtt = (now_ms, rtt_ms)
        self._rtt_asked_ms = None

    def rtt_asked(self, now_ms: float) -> None:
        """An RTT check went out at ``now_ms`` (answered: :meth:`rtt`)."""
        self._rtt_asked_ms = now_ms

    def needs_keyframe(self, ssrc: int) -> bool:
        """The frames of ``ssrc`` cannot be shown again without a keyframe."""
        s = self._ssrcs.get(ssrc)
        return s is not None and s.frames.needs_keyframe

    def picture_started(self, ssrc: int) -> bool:
        """A keyframe of ``ssrc`` was shown."""
        s = self._ssrcs.get(ssrc)
        return s is not None and s.frames.started

    def rtt_failed(self, reason: str) -> None:
        """RTT cannot be measured any more in this session: samples say why."""
        self._rtt_error = reason

    # -- outputs ----------------------------------------------------------

    @property
    def ttff_ms(self) -> float | None:
        if self.first_frame_ms is None:
            return None
        return self.first_frame_ms - self.start_ms

    def no_packet_ms(self, now_ms: float) -> float:
        """Time since the last media packet (since the start before any)."""
        return now_ms - (self.last_packet_ms if self.last_packet_ms is not None else self.start_ms)

    def no_frame_ms(self, now_ms: float) -> float | None:
        """Time since the last frame, or since the start when none came yet."""
        since = self._frames.no_frame_ms(now_ms)
        return since if since is not None else max(0.0, now_ms - self.start_ms)

    def ongoing_stall(self, now_ms: float) -> str | None:
        stall = self._frames.ongoing(now_ms)
        return None if stall is None else str(stall)

    def take(self, now_ms: float) -> SecondFigures:
        """Close the interval ending at ``now_ms``."""
        elapsed_s = max(1e-3, (now_ms - self._last_take_ms) / 1000.0)
        self._last_take_ms = now_ms
        if self.last_packet_ms is not None and now_ms - self.last_packet_ms >= INACTIVE_MS:
            self._frames.stream_inactive()
        expected = received = path_lost = residual = payload = 0
        jitter: float | None = None
        busiest = -1
        for s in self._ssrcs.values():
            for f in s.frames.advance(now_ms):  # frames given up unblock later ones
                self.frame(f.at_ms, f.size_bytes, f.width, f.height, f.rtp_timestamp,
                           f.repaired, f.arrived_ms)
        for s in self._ssrcs.values():
            li = s.loss.take(now_ms)
            expected += li.expected
            received += li.received
            path_lost += li.path_lost
            residual += li.residual_lost
            payload += li.payload_bytes
            # Report the jitter of the stream that carried this second's media.
            if s.packets_this_interval > busiest and s.packets_this_interval > 0:
                busiest = s.packets_this_interval
                jitter = s.jitter.jitter_ms
            s.packets_this_interval = 0
        c = self._frames.counts
        fc, fm, pc, pm = self._reported
        self._reported = (c.freeze_count, c.freeze_ms, c.pause_count, c.pause_ms)
        chat = self.chat.take(now_ms)
        rtt = (sum(self._rtts_ms) / len(self._rtts_ms)) if self._rtts_ms else None
        self._rtts_ms = []
        if rtt is None and self._last_rtt is not None:
            # A check still in flight: the last answer stands for a while, but
            # a path that stopped answering must read as unknown, not as fine.
            # A check waiting longer than twice the last answer (a queue has
            # built up, or it was dropped) says that answer no longer holds.
            at, last = self._last_rtt
            asked = self._rtt_asked_ms
            waiting = 0.0 if asked is None else now_ms - asked
            if now_ms - at <= RTT_HOLD_MS and waiting <= max(2 * last, RTT_WAIT_FLOOR_MS):
                rtt = last
        frames = self._frames_this_interval
        frame_bytes = self._frame_bytes_this_interval
        rtx_bytes = self._rtx_bytes_this_interval
        self._frames_this_interval = 0
        self._frame_bytes_this_interval = 0
        self._rtx_bytes_this_interval = 0
        audio = self.audio.take(now_ms) if self.audio is not None else None
        return SecondFigures(
            packets_expected=expected,
            packets_received=min(received, expected) if expected else received,
            loss_pct=(min(100.0, 100.0 * path_lost / expected) if expected else None),
            residual_loss_pct=(min(100.0, 100.0 * residual / expected) if expected else None),
            jitter_ms=jitter,
            bitrate_kbps=payload * 8 / elapsed_s / 1000.0,
            fps=frames / elapsed_s,
            width=self.width,
            height=self.height,
            freeze_count=c.freeze_count - fc,
            freeze_ms=c.freeze_ms - fm,
            pause_count=c.pause_count - pc,
            pause_ms=c.pause_ms - pm,
            no_frame_ms=self.no_frame_ms(now_ms),
            chat_sent=chat.sent,
            chat_lost=chat.lost,
            chat_rtt_ms=chat.mean_rtt_ms,
            rtt_ms=rtt,
            received_kbps=(payload + rtx_bytes) * 8 / elapsed_s / 1000.0,
            rtx_kbps=rtx_bytes * 8 / elapsed_s / 1000.0,
            goodput_kbps=frame_bytes * 8 / elapsed_s / 1000.0,
            stuck_ms=self._frames.take_stuck_ms(now_ms),
            rtt_error=self._rtt_error if rtt is None else None,
            video_codec=self.video_codec,
            **(vars(audio) if audio is not None else {}),
            av_skew_ms=self._av_skew_ms(),
        )
