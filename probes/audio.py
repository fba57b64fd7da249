"""What a listener got of one Opus stream, second by second, from RTP packets
alone (nothing is decoded); and the audio/video skew from RTCP sender reports.

- loss: RFC 3550 expected - received on the audio SSRC;
- jitter: RFC 3550 interarrival jitter at 48 kHz;
- concealment: time a receiver must fill in because audio is missing: lost
  packets (a sequence gap, times the packet time the RTP timestamps show),
  and arrival gaps longer than the audio they carry by more than a jitter
  buffer absorbs (``LATE_ALLOWANCE_MS``). Silence the sender chose (Opus DTX:
  the RTP timestamp jumps with no sequence gap) is counted apart, as
  ``dtx_ms``, never as concealment;
- stalled: no audio packet for ``STALL_MS`` (DTX still sends one every
  400 ms), counted while it lasts as :mod:`probes.freeze` counts a stuck
  picture.

Pure: arrival times are passed in (ms on a monotonic clock).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from probes.jitter import InterarrivalJitter
from probes.loss import MAX_GAP, LossAccounting

OPUS_CLOCK = 48_000
# Late audio a receiver's jitter buffer absorbs without concealing.
LATE_ALLOWANCE_MS = 40.0
# No audio packet this long: the audio is stalled (DTX sends every 400 ms).
STALL_MS = 1000.0


@dataclass
class AudioSecond:
    audio_loss_pct: float | None
    audio_jitter_ms: float | None
    audio_kbps: float | None
    audio_concealed_ms: float
    audio_dtx_ms: float
    audio_stalled_ms: float
    audio_stalled: bool


class AudioAccounting:
    def __init__(self, start_ms: float, clock_rate: int = OPUS_CLOCK) -> None:
        self._rate = clock_rate
        self._loss = LossAccounting()
        self._jitter = InterarrivalJitter(clock_rate)
        self._last: tuple[int, int, float] | None = None  # ext seq, rtp ts, arrival
        self._concealed_ms = 0.0
        self._dtx_ms = 0.0
        self._last_take_ms = start_ms
        self._stall_taken_ms = 0.0  # of the current silence, already counted
        self._stall_pending_ms = 0.0
        self.last_packet_ms: float | None = None
        self.last_rtp: tuple[int, float] | None = None  # (rtp ts, arrival) of the newest
        self._ts_steps: deque[float] = deque(maxlen=50)  # RTP time per packet, recent

    def packet(self, seq: int, rtp_timestamp: int, payload_bytes: int, now_ms: float) -> None:
        self._loss.media(seq, payload_bytes, now_ms)
        self._jitter.add(rtp_timestamp, now_ms)
        self._stall_ended(now_ms)
        self.last_packet_ms = now_ms
        last = self._last
        if last is None:
            self._last = (seq + (1 << 16), rtp_timestamp, now_ms)
            self.last_rtp = (rtp_timestamp, now_ms)
            return
        last_ext, last_ts, last_at = last
        ext = (last_ext & ~0xFFFF) | seq
        if ext - last_ext > 0x8000:
            ext -= 0x10000
        elif last_ext - ext > 0x8000:
            ext += 0x10000
        steps = ext - last_ext
        if steps <= 0 or steps > MAX_GAP:
            if steps > MAX_GAP:  # new sequence base: start over
                self._last = (ext, rtp_timestamp, now_ms)
            return  # reordered or duplicate: its gap was counted already
        ts_ms = ((rtp_timestamp - last_ts) % (1 << 32)) * 1000.0 / self._rate
        if ts_ms > 60_000:  # timestamp went backwards or restarted
            ts_ms = 0.0
        if steps > 1:
            # Lost packets: their share of the timestamp advance is concealed.
            self._concealed_ms += ts_ms * (steps - 1) / steps
        else:
            per_packet = self._packet_ms()
            if per_packet is not None and ts_ms > 1.5 * per_packet:
                self._dtx_ms += ts_ms - per_packet  # the sender chose silence
        late = (now_ms - last_at) - ts_ms
        if late > LATE_ALLOWANCE_MS:
            self._concealed_ms += late - LATE_ALLOWANCE_MS
        self._last = (ext, rtp_timestamp, now_ms)
        self.last_rtp = (rtp_timestamp, now_ms)
        if ts_ms > 0:
            self._ts_steps.append(ts_ms / steps)

    def _packet_ms(self) -> float | None:
        """The packet time: the smallest timestamp step lately (20 ms for the
        usual Opus stream; DTX and loss only make steps longer)."""
        return min(self._ts_steps) if self._ts_steps else None

    def _stall_ended(self, now_ms: float) -> None:
        if self.last_packet_ms is None:
            return
        gap = now_ms - self.last_packet_ms
        if gap >= STALL_MS:
            self._stall_pending_ms += max(0.0, gap - self._stall_taken_ms)
        self._stall_taken_ms = 0.0

    def stalled(self, now_ms: float) -> bool:
        return self.last_packet_ms is not None and now_ms - self.last_packet_ms >= STALL_MS

    def take(self, now_ms: float) -> AudioSecond:
        elapsed_s = max(1e-3, (now_ms - self._last_take_ms) / 1000.0)
        self._last_take_ms = now_ms
        li = self._loss.take(now_ms)
        stalled_ms = self._stall_pending_ms
        self._stall_pending_ms = 0.0
        stalled = self.stalled(now_ms)
        if stalled and self.last_packet_ms is not None:
            gap = now_ms - self.last_packet_ms
            stalled_ms += gap - self._stall_taken_ms
            self._stall_taken_ms = gap
        out = AudioSecond(
            audio_loss_pct=li.loss_pct,
            audio_jitter_ms=self._jitter.jitter_ms if li.received else None,
            audio_kbps=li.payload_bytes * 8 / elapsed_s / 1000.0,
            audio_concealed_ms=self._concealed_ms,
            audio_dtx_ms=self._dtx_ms,
            audio_stalled_ms=stalled_ms,
            audio_stalled=stalled,
        )
        self._concealed_ms = 0.0
        self._dtx_ms = 0.0
        return out


# -- audio/video skew ---------------------------------------------------------


class SenderClock:
    """Maps one stream's RTP timestamps to the sender's wall clock, from its
    latest RTCP sender report (RFC 3550 section 6.4.1)."""

    def __init__(self, clock_rate: int) -> None:
        self._rate = clock_rate
        self._sr: tuple[float, int] | None = None  # (NTP seconds, RTP ts)

    def sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """``ntp_timestamp`` as carried: 32.32 fixed point seconds."""
        self._sr = (ntp_timestamp / float(1 << 32), rtp_timestamp)

    def capture_s(self, rtp_timestamp: int) -> float | None:
        if self._sr is None:
            return None
        ntp, sr_ts = self._sr
        d = (rtp_timestamp - sr_ts) % (1 << 32)
        if d >= 1 << 31:
            d -= 1 << 32
        return ntp + d / self._rate


def av_skew_ms(
    audio: tuple[int, float] | None,
    audio_clock: SenderClock,
    video: tuple[int, float] | None,
    video_clock: SenderClock,
) -> float | None:
    """How much later video arrives than the audio captured with it, in ms
    (negative: video early). ``audio`` and ``video`` are each stream's newest
    (RTP timestamp, arrival ms). The sender's and the probe's clocks differ
    by a constant that cancels in the difference of the two delays."""
    if audio is None or video is None:
        return None
    ca = audio_clock.capture_s(audio[0])
    cv = video_clock.capture_s(video[0])
    if ca is None or cv is None:
        return None
    delay_audio = audio[1] - ca * 1000.0
    delay_video = video[1] - cv * 1000.0
    return delay_video - delay_audio
