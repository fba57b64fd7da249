"""Opus accounting from packets: loss, concealment apart from DTX silence,
stalls counted while they last, and A/V skew from sender reports. Pure."""

from __future__ import annotations

import pytest

from probes.audio import AudioAccounting, SenderClock, av_skew_ms
from probes.meter import StreamMeter

PT_MS = 20.0
STEP = 960  # 20 ms at 48 kHz


def send(acc: AudioAccounting, n: int, start_seq: int = 0, start_ts: int = 0,
         start_ms: float = 0.0, drop: set[int] | None = None) -> tuple[int, int, float]:
    seq, ts, t = start_seq, start_ts, start_ms
    for _ in range(n):
        if drop is None or seq not in drop:
            acc.packet(seq & 0xFFFF, ts % (1 << 32), 120, t)
        seq, ts, t = seq + 1, ts + STEP, t + PT_MS
    return seq, ts, t


def test_clean_stream() -> None:
    acc = AudioAccounting(start_ms=0.0)
    send(acc, 50)
    s = acc.take(1000.0)
    assert s.audio_loss_pct == 0.0 and s.audio_concealed_ms == 0.0 and s.audio_dtx_ms == 0.0
    assert s.audio_kbps == pytest.approx(50 * 120 * 8 / 1000)
    assert s.audio_jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert not s.audio_stalled and s.audio_stalled_ms == 0.0


def test_lost_packets_are_concealed() -> None:
    acc = AudioAccounting(start_ms=0.0)
    send(acc, 51, drop={10, 11, 30, 31, 32})
    s = acc.take(1020.0)
    assert s.audio_loss_pct == pytest.approx(100 * 5 / 51)
    assert s.audio_concealed_ms == pytest.approx(5 * PT_MS)
    assert s.audio_dtx_ms == 0.0


def test_dtx_silence_is_not_loss() -> None:
    # Opus DTX: during silence one packet every 400 ms, sequence numbers
    # contiguous, the RTP timestamp jumping with the silence.
    acc = AudioAccounting(start_ms=0.0)
    seq, ts, t = send(acc, 10)
    for _ in range(5):
        acc.packet(seq, ts, 3, t)
        seq, ts, t = seq + 1, ts + 20 * STEP, t + 400
    send(acc, 10, seq, ts, t)
    s = acc.take(t + 200)
    assert s.audio_loss_pct == 0.0
    assert s.audio_concealed_ms == 0.0
    assert s.audio_dtx_ms == pytest.approx(5 * (400 - PT_MS))
    assert not s.audio_stalled


def test_late_audio_is_concealed_beyond_what_a_jitter_buffer_absorbs() -> None:
    acc = AudioAccounting(start_ms=0.0)
    seq, ts, t = send(acc, 20)
    # 300 ms without a packet, then the held packets come in a burst
    t += 300
    for _ in range(15):
        acc.packet(seq, ts, 120, t)
        seq, ts, t = seq + 1, ts + STEP, t + 1
    s = acc.take(t)
    assert s.audio_loss_pct == 0.0
    assert s.audio_concealed_ms == pytest.approx(300 + PT_MS - PT_MS - 40, abs=1)


def test_stall_counted_while_it_lasts() -> None:
    acc = AudioAccounting(start_ms=0.0)
    _, _, t = send(acc, 50)
    last = t - PT_MS
    s1 = acc.take(1000.0)
    assert not s1.audio_stalled
    s2 = acc.take(2000.0)  # 1 s after the last packet: stalled, whole gap so far
    assert s2.audio_stalled and s2.audio_stalled_ms == pytest.approx(2000 - last)
    s3 = acc.take(3000.0)
    assert s3.audio_stalled and s3.audio_stalled_ms == pytest.approx(1000)
    acc.packet(50, 50 * STEP, 120, 3500.0)
    s4 = acc.take(4000.0)
    assert not s4.audio_stalled and s4.audio_stalled_ms == pytest.approx(500)
    assert s2.audio_stalled_ms + s3.audio_stalled_ms + s4.audio_stalled_ms == 3500 - last


def test_av_skew_from_sender_reports() -> None:
    audio, video = SenderClock(48_000), SenderClock(90_000)
    ntp = 3_900_000_000 << 32  # some wall-clock second, 32.32 fixed point
    audio.sender_report(ntp, 1000)
    video.sender_report(ntp, 5000)
    # both captured 1 s after the reports; audio arrives after 30 ms, video
    # after 110 ms on the probe's (unrelated) clock
    arrive = 777_000.0
    a = (1000 + 48_000, arrive + 30)
    v = (5000 + 90_000, arrive + 110)
    assert av_skew_ms(a, audio, v, video) == pytest.approx(80.0)
    assert av_skew_ms(a, SenderClock(48_000), v, video) is None  # no report yet


def test_meter_without_audio_is_silent() -> None:
    m = StreamMeter(start_ms=0.0)
    m.media_packet(1, 0, 0, 1000, 10.0)
    s = m.take(1000.0)
    assert s.audio_loss_pct is None and s.audio_stalled is None and s.av_skew_ms is None
