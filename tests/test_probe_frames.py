"""Frames as a decoder gets them: assembled from packets, in order, given up
after a while, undecodable until the next keyframe."""

from __future__ import annotations

from probes.frames import FrameAssembler
from probes.vp8 import parse_vp8_packet


def frame_packets(first_seq: int, n: int, keyframe: bool) -> list[tuple[int, bool, bool, bool]]:
    return [(first_seq + i, i == 0, i == n - 1, keyframe and i == 0) for i in range(n)]


def feed(asm: FrameAssembler, packets: list[tuple[int, bool, bool, bool]], t: float,
         skip: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    shown = 0
    for seq, start, end, key in packets:
        if seq & 0xFFFF not in skip:
            shown += len(asm.packet(seq & 0xFFFF, start, end, key, 100, t))
    return shown


def test_complete_frames_shown_in_order() -> None:
    asm = FrameAssembler()
    shown = feed(asm, frame_packets(10, 3, True), 0) + feed(asm, frame_packets(13, 2, False), 40)
    assert shown == 2


def test_joined_mid_gop_waits_for_keyframe() -> None:
    asm = FrameAssembler()
    assert feed(asm, frame_packets(10, 2, False), 0) == 0
    assert feed(asm, frame_packets(12, 2, True), 40) == 1
    assert asm.frames_undecodable == 1


def test_repair_releases_held_frames() -> None:
    asm = FrameAssembler(give_up_ms=1000)
    feed(asm, frame_packets(0, 2, True), 0)
    held = feed(asm, frame_packets(2, 3, False), 40, skip={3})
    held += feed(asm, frame_packets(5, 2, False), 80)
    assert held == 0  # frame 2-4 incomplete: frame 5-6 waits for it
    released = asm.packet(3, False, False, False, 100, 100)  # the RTX copy
    assert len(released) == 2 and released[0].at_ms == 100


def test_given_up_frame_breaks_chain_until_keyframe() -> None:
    asm = FrameAssembler(give_up_ms=500)
    feed(asm, frame_packets(0, 2, True), 0)
    feed(asm, frame_packets(2, 3, False), 40, skip={3})
    feed(asm, frame_packets(5, 2, False), 80)
    assert asm.advance(400) == []
    assert asm.advance(700) == []  # given up; 5-6 cannot be decoded
    assert asm.frames_given_up == 1 and asm.frames_undecodable == 1
    assert feed(asm, frame_packets(7, 2, False), 720) == 0
    assert feed(asm, frame_packets(9, 2, True), 760) == 1


def test_lost_first_packet_of_a_frame() -> None:
    asm = FrameAssembler(give_up_ms=200)
    feed(asm, frame_packets(0, 2, True), 0)
    feed(asm, frame_packets(2, 2, False), 40, skip={2})
    feed(asm, frame_packets(4, 2, False), 80)
    assert asm.advance(300) == []  # given up; 4-5 is a delta frame: undecodable
    assert asm.frames_given_up == 1 and asm.needs_keyframe


def test_complete_keyframe_behind_a_broken_frame_is_shown_at_once() -> None:
    # A browser's frame buffer decodes a complete keyframe as soon as it has
    # it; the incomplete frames before it are dropped, not waited for.
    asm = FrameAssembler(give_up_ms=3000)
    feed(asm, frame_packets(0, 2, True), 0)
    feed(asm, frame_packets(2, 3, False), 40, skip={3})
    feed(asm, frame_packets(5, 2, False), 80)
    shown = feed(asm, frame_packets(7, 3, True), 120)
    assert shown == 1 and asm.frames_given_up == 1 and not asm.needs_keyframe
    assert feed(asm, frame_packets(10, 2, False), 160) == 1
    assert asm.packet(3, False, False, False, 100, 170) == []  # too late now


def test_incomplete_keyframe_is_not_jumped_to() -> None:
    asm = FrameAssembler(give_up_ms=3000)
    feed(asm, frame_packets(0, 2, True), 0)
    feed(asm, frame_packets(2, 3, False), 40, skip={3})
    feed(asm, frame_packets(5, 3, True), 80, skip={6})
    assert asm.advance(1000) == [] and asm.frames_given_up == 0
    # The repair of the delta frame comes late (after the requests for it
    # ended), but before the frame was given up: it is decoded, then the
    # keyframe behind it once complete.
    assert len(asm.packet(3, False, False, False, 100, 1500, repaired=True)) == 1
    assert len(asm.packet(6, False, False, False, 100, 1510, repaired=True)) == 1


def test_keyframe_whose_first_packet_follows_a_frame_end() -> None:
    # H.264 without a start flag on the keyframe's first packet: it is a
    # start because the packet before it ended a frame.
    asm = FrameAssembler(give_up_ms=3000)
    feed(asm, frame_packets(0, 2, True), 0)
    feed(asm, frame_packets(2, 3, False), 40, skip={3})
    for seq, _, end, _ in frame_packets(5, 3, True):
        shown = asm.packet(seq, False, end, seq == 6, 100, 80)
    assert len(shown) == 1 and shown[0].keyframe


def test_sequence_wrap() -> None:
    asm = FrameAssembler()
    shown = feed(asm, frame_packets(65534, 3, True), 0)
    shown += feed(asm, frame_packets(65537, 2, False), 40)
    assert shown == 2


def test_vp8_payload_descriptor() -> None:
    # X=1,S=1,PID=0; I=1 with 15-bit picture id; then a keyframe header 320x180
    payload = bytes([0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A,
                     0x40, 0x01, 0xB4, 0x00]) + b"x" * 10
    info = parse_vp8_packet(payload)
    assert info is not None and info.frame_start and info.keyframe
    assert (info.width, info.height) == (320, 180)
    cont = parse_vp8_packet(bytes([0x80, 0x80, 0x05, 0xAA, 0xBB]))
    assert cont is not None and not cont.frame_start
    delta = parse_vp8_packet(bytes([0x10, 0x31, 0x00, 0x00]))
    assert delta is not None and delta.frame_start and not delta.keyframe
    assert parse_vp8_packet(b"") is None


def test_backlog_of_broken_frames_is_given_up_at_once_after_a_loss_burst() -> None:
    # Five seconds of heavy loss leave many broken frames held: every frame
    # whose gap is older than the give-up time is given up at once (not one
    # give-up time per broken frame, which took minutes), so the keyframe is
    # asked for as soon as a browser would.
    asm = FrameAssembler(give_up_ms=3000)
    feed(asm, frame_packets(0, 2, True), 0)
    seq, t = 2, 0.0
    for _ in range(125):  # 5 s at 25 fps, one packet of three lost each frame
        t += 40
        feed(asm, frame_packets(seq, 3, False), t, skip={(seq + 1) & 0xFFFF})
        seq += 3
    assert asm.advance(t) == []
    assert 45 <= asm.frames_given_up <= 55  # those older than 3 s, and only those
    assert asm.needs_keyframe
    t += 40
    shown = feed(asm, frame_packets(seq, 3, True), t)  # a clean keyframe: shown at once
    assert shown == 1 and not asm.needs_keyframe
