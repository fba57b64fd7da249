"""H.264 frame accounting without decoding, on real encoder output: libx264
(through PyAV) packetized by aiortc's own RFC 6184 packetizer (STAP-A, FU-A)
or one NAL unit per packet (packetization mode 0)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder

from probes.frames import FrameAssembler, ShownFrame
from probes.h264 import FU_A, STAP_A, parse_h264_packet, parse_sps

FPS = 25


def encode(width: int, height: int, frames: int = 50, profile: str = "baseline",
           gop: int = 25, extra: dict[str, str] | None = None) -> list[bytes]:
    """Annex-B access units, one per frame."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.framerate = Fraction(FPS, 1)
    ctx.time_base = Fraction(1, FPS)
    ctx.bit_rate = 600_000
    ctx.options = {"profile": profile, "tune": "zerolatency", "preset": "ultrafast",
                   "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0",
                   **(extra or {})}
    xs = np.arange(width, dtype=np.int32)[None, :]
    out: list[bytes] = []
    for i in range(frames):
        img = np.zeros((height, width, 3), np.uint8)
        img[:, :, 0] = (xs + i * 7) % 256
        img[:, :, 2] = (i * 3) % 256
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


def nal_units(access_unit: bytes) -> list[bytes]:
    return list(H264Encoder._split_bitstream(access_unit))


def packetize_mode1(access_unit: bytes) -> list[bytes]:
    return H264Encoder._packetize(nal_units(access_unit))


def packetize_mode0(access_unit: bytes) -> list[bytes]:
    return nal_units(access_unit)


def feed(units: list[bytes], packetize: object = packetize_mode1, drop: set[int] | None = None,
         markers: bool = True) -> tuple[list[ShownFrame], FrameAssembler, int]:
    """Sends the access units as RTP would (seq, timestamp, marker) through the
    parser into the assembler, as the receiver tap does; ``drop`` lists
    sequence numbers never delivered."""
    asm = FrameAssembler(give_up_ms=500)
    shown: list[ShownFrame] = []
    seq = 0
    seen_sps = seen_pps = False
    for i, au in enumerate(units):
        packets = packetize(au)  # type: ignore[operator]
        now = i * 40.0
        for k, payload in enumerate(packets):
            if drop is None or seq not in drop:
                info = parse_h264_packet(payload)
                assert info is not None
                seen_sps = seen_sps or info.sps
                seen_pps = seen_pps or info.pps
                shown += asm.packet(seq, info.frame_start, markers and k == len(packets) - 1,
                                    info.idr and seen_sps and seen_pps, len(payload), now,
                                    info.width, info.height, rtp_timestamp=i * 3600)
            seq += 1
    shown += asm.advance(len(units) * 40.0 + 1000)
    return shown, asm, seq


@pytest.mark.parametrize(("width", "height", "profile"), [
    (640, 360, "baseline"),  # 360 is not a multiple of 16: cropped
    (1280, 720, "main"),
    (1920, 1080, "high"),  # High profile SPS: chroma format, bit depths
    (854, 480, "high"),
    (176, 144, "baseline"),
])
def test_picture_size_from_the_sps(width: int, height: int, profile: str) -> None:
    units = encode(width, height, frames=2, profile=profile)
    sps = [n for n in nal_units(units[0]) if n[0] & 0x1F == 7]
    assert sps, "libx264 puts an SPS before the first IDR"
    assert parse_sps(sps[0]) == (width, height)


def test_sps_with_scaling_matrix() -> None:
    units = encode(320, 240, frames=2, profile="high", extra={"x264-params": "cqm=jvt"})
    sps = next(n for n in nal_units(units[0]) if n[0] & 0x1F == 7)
    assert parse_sps(sps) == (320, 240)


def test_frames_keyframes_and_size_with_stap_a_and_fu_a() -> None:
    units = encode(640, 360, frames=50, gop=25)
    types = {p[0] & 0x1F for au in units for p in packetize_mode1(au)}
    assert STAP_A in types and FU_A in types  # both aggregation and fragments met
    shown, asm, _ = feed(units)
    assert len(shown) == len(units) == 50
    assert [i for i, f in enumerate(shown) if f.keyframe] == [0, 25]
    assert (shown[0].width, shown[0].height) == (640, 360)
    assert sum(f.size_bytes for f in shown) > 0
    assert asm.frames_given_up == 0 and asm.frames_undecodable == 0


def test_packetization_mode_0() -> None:
    # One NAL unit per packet: slices kept under the MTU by the encoder.
    units = encode(640, 360, frames=30, gop=15, extra={"slice-max-size": "1100"})
    assert all(len(n) <= 1200 for au in units for n in nal_units(au))
    assert max(len(nal_units(au)) for au in units) > 3  # several slices per picture
    shown, asm, _ = feed(units, packetize=packetize_mode0)
    assert asm.frames_given_up == 0
    assert len(shown) == 30
    assert [i for i, f in enumerate(shown) if f.keyframe] == [0, 15]
    assert (shown[0].width, shown[0].height) == (640, 360)


def test_frame_ends_by_timestamp_when_marker_bits_are_missing() -> None:
    units = encode(320, 240, frames=20, gop=10)
    shown, _, _ = feed(units, markers=False)
    # every frame but the last is closed by the next frame's new timestamp
    assert len(shown) == 19
    assert [i for i, f in enumerate(shown) if f.keyframe] == [0, 10]


def test_lost_fragment_breaks_the_chain_until_the_next_idr() -> None:
    units = encode(640, 360, frames=50, gop=25)
    # find a fragment in the middle of a delta frame's FU-A (frame 5)
    seq = sum(len(packetize_mode1(au)) for au in units[:5])
    frame5 = packetize_mode1(units[5])
    assert len(frame5) >= 2, "delta frame too small to fragment"
    shown, asm, _ = feed(units, drop={seq + len(frame5) - 1})
    # frames 0-4 shown, 5-24 not (broken chain), 25-49 from the next IDR
    assert len(shown) == 5 + 25
    assert asm.frames_given_up == 1 and asm.frames_undecodable == 19
    assert shown[5].keyframe


def test_not_h264() -> None:
    assert parse_h264_packet(b"") is None
    assert parse_h264_packet(b"\x80\x00") is None  # forbidden bit
    assert parse_h264_packet(bytes([26, 0, 0])) is None  # MTAP16: mode 2
    assert parse_sps(b"\x67\x42") is None
