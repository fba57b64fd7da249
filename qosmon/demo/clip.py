"""A generated test clip, encoded once to VP8 so the demo origin can loop the
encoded packets at almost no CPU (live libvpx encoding costs 45-94 % of a core
per stream on a 2-core machine)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes
    keyframe: bool


@dataclass(frozen=True)
class Clip:
    frames: tuple[EncodedFrame, ...]
    fps: int
    width: int
    height: int

    @property
    def bitrate_kbps(self) -> float:
        seconds = len(self.frames) / self.fps
        return sum(len(f.data) for f in self.frames) * 8 / seconds / 1000


def encode_clip(
    seconds: int = 10,
    fps: int = 25,
    width: int = 640,
    height: int = 360,
    bitrate_kbps: int = 700,
    keyframe_interval_s: float = 2.0,
) -> Clip:
    """Encode a moving colour pattern. Keyframes every ``keyframe_interval_s`` so
    a viewer that lost packets recovers within that time, as with a real
    live encoder's GOP."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuv420p"
    ctx.framerate = Fraction(fps)
    ctx.time_base = Fraction(1, fps)
    ctx.bit_rate = bitrate_kbps * 1000
    ctx.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "g": str(int(fps * keyframe_interval_s)),
        "lag-in-frames": "0",
    }
    xs = np.arange(width, dtype=np.int32)[None, :]
    ys = np.arange(height, dtype=np.int32)[:, None]
    packets: list[av.Packet] = []
    for i in range(seconds * fps):
        img = np.empty((height, width, 3), np.uint8)
        img[:, :, 0] = (xs + i * 4) % 256
        img[:, :, 1] = (ys + i * 2) % 256
        img[:, :, 2] = 64
        x0 = (i * 5) % (width - 60)
        img[height // 3 : height // 3 + 60, x0 : x0 + 60, :] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    return Clip(
        frames=tuple(EncodedFrame(bytes(p), bool(p.is_keyframe)) for p in packets),
        fps=fps,
        width=width,
        height=height,
    )
