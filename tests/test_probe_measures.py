"""Jitter (RFC 3550), VP8 frame headers, the chat ledger and the per-second
meter: pure, no event loop."""

from __future__ import annotations

import pytest

from probes.chat import ChatLedger, chat_message, parse_chat_message
from probes.jitter import InterarrivalJitter
from probes.meter import StreamMeter
from probes.vp8 import parse_vp8_frame


def test_jitter_zero_for_perfect_timing() -> None:
    j = InterarrivalJitter()
    for i in range(50):
        j.add(i * 3600, 1000.0 + i * 40.0)
    assert j.jitter_ms == pytest.approx(0.0, abs=1e-9)


def test_jitter_converges_to_alternating_offset() -> None:
    # arrivals alternate +-5 ms around nominal: |D| = 10 ms every packet,
    # so J converges to 10 ms (RFC 3550 estimator).
    j = InterarrivalJitter()
    for i in range(500):
        j.add(i * 3600, i * 40.0 + (5.0 if i % 2 else -5.0))
    assert j.jitter_ms == pytest.approx(10.0, rel=0.01)


def test_jitter_ignores_packets_of_same_frame_and_wrap() -> None:
    j = InterarrivalJitter()
    base = 2**32 - 3600 * 5
    for i in range(20):
        ts = (base + i * 3600) % 2**32
        j.add(ts, i * 40.0)
        j.add(ts, i * 40.0 + 3.0)  # same frame, later packet
    assert j.jitter_ms == pytest.approx(0.0, abs=1e-6)


def test_vp8_keyframe_header() -> None:
    # frame tag (keyframe, show_frame) + start code + 640x360
    data = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01, 0, 0])
    info = parse_vp8_frame(data)
    assert info is not None and info.keyframe and (info.width, info.height) == (640, 360)
    inter = parse_vp8_frame(bytes([0x31, 0x02, 0x00, 0x00]))
    assert inter is not None and not inter.keyframe and inter.width is None
    assert parse_vp8_frame(b"\x00") is None
    assert parse_vp8_frame(bytes([0x10, 0, 0, 1, 2, 3, 4, 5, 6, 7])) is None


def test_chat_ledger() -> None:
    led = ChatLedger(deadline_ms=3000)
    a = led.send(0)
    b = led.send(1000)
    assert led.echo(a, 80) == 80
    assert led.echo(a, 90) is None  # duplicate echo
    first = led.take(1000)
    assert first.sent == 2 and first.lost == 0 and first.mean_rtt_ms == 80
    lost = led.take(4000.0)
    assert lost.lost == 1
    assert led.echo(b, 4500) is None  # too late: already counted lost


def test_chat_message_roundtrip_only_our_own() -> None:
    text = chat_message("p1/s/abcd", 7, 1.5)
    assert parse_chat_message(text, "p1/s/abcd") == 7
    assert parse_chat_message(text, "someone-else") is None
    assert parse_chat_message("not json", "p1") is None
    assert parse_chat_message("[1]", "p1") is None


def test_meter_second() -> None:
    m = StreamMeter(start_ms=0.0)
    seq = 0
    for f in range(25):  # 25 frames of 4 packets, one packet lost and repaired
        t = f * 40.0
        for _ in range(4):
            if seq != 10:
                m.media_packet(1234, seq, f * 3600, 1000, t)
            seq += 1
        m.frame(t + 1, 4000, 640 if f == 0 else None, 360 if f == 0 else None)
    m.rtx_packet(1234, 10, 1002, 500.0)
    m.rtt(42.0, 900.0)
    s = m.take(1000.0)
    assert s.packets_expected == 100 and s.packets_received == 99
    assert s.loss_pct == 1.0 and s.residual_loss_pct == 0.0
    assert s.fps == 25.0 and s.bitrate_kbps == pytest.approx(99 * 1000 * 8 / 1000)
    # the browser's bytesReceived counts the retransmission too
    assert s.received_kbps == pytest.approx(100 * 1000 * 8 / 1000)
    assert s.rtx_kbps == pytest.approx(1000 * 8 / 1000)
    assert s.goodput_kbps == pytest.approx(25 * 4000 * 8 / 1000)
    assert (s.width, s.height) == (640, 360)
    assert s.rtt_ms == 42.0 and s.no_frame_ms == pytest.approx(1000 - 961)
    assert m.ttff_ms == 1.0
    # a silent second: no packets -> loss unknown, no frame for a while
    s2 = m.take(2000.0)
    assert s2.packets_expected == 0 and s2.loss_pct is None and s2.fps == 0.0
    assert s2.rtt_ms == 42.0  # the last answer stands for a few seconds
    s3 = m.take(5000.0)
    assert s3.rtt_ms is None  # then it is unknown, never "fine"
    assert s3.no_frame_ms == pytest.approx(5000 - 961)


def test_rtt_check_waiting_long_ends_the_hold() -> None:
    """Under a squeeze the next check waits in the queue (or is dropped):
    the answer from before the queue built up must not stand for it."""
    m = StreamMeter(start_ms=0.0)
    m.rtt(40.0, 900.0)
    m.take(1000.0)
    m.rtt_asked(1900.0)
    assert m.take(2000.0).rtt_ms == 40.0  # waiting 100 ms: within the hold
    assert m.take(3000.0).rtt_ms is None  # waiting 1.1 s: no longer
    m.rtt(700.0, 3100.0)  # the queued answer arrives
    assert m.take(4000.0).rtt_ms == 700.0


def test_meter_before_any_frame_counts_from_start() -> None:
    m = StreamMeter(start_ms=100.0)
    assert m.no_frame_ms(1100.0) == 1000.0 and m.ttff_ms is None
