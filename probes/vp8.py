"""What the probe reads from an encoded VP8 frame without decoding it
(RFC 6386 section 9.1): the keyframe flag and, on keyframes, the size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vp8FrameInfo:
    keyframe: bool
    width: int | None = None
    height: int | None = None


_START_CODE = b"\x9d\x01\x2a"


def parse_vp8_frame(data: bytes) -> Vp8FrameInfo | None:
    """``data`` is a whole depayloaded frame; None if it is not VP8-shaped."""
    if len(data) < 3:
        return None
    keyframe = (data[0] & 0x01) == 0
    if not keyframe:
        return Vp8FrameInfo(keyframe=False)
    if len(data) < 10 or data[3:6] != _START_CODE:
        return None
    width = (data[6] | (data[7] << 8)) & 0x3FFF
    height = (data[8] | (data[9] << 8)) & 0x3FFF
    return Vp8FrameInfo(keyframe=True, width=width, height=height)
