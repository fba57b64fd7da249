"""The probe's receive side over real aiortc on loopback (ICE, DTLS, SRTP,
RTCP): H.264 frames counted from packets, NACKs repeated until a packet
comes, PLI when the picture cannot recover without a keyframe.

The sender is a plain aiortc peer. Loss is made deterministic at the
sender's transport, just before SRTP: chosen packets (and chosen
retransmissions of them) never leave, so each test knows exactly what the
probe must repair. The sender's RTCP handler is watched to count the NACKs
and PLIs that reached it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import aiohttp
import aiortc.rtcrtpreceiver
import av
import numpy as np
import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    unpack_remb_fci,
)

from probes.agent import ProbeAgent
from probes.config import ProbeConfig, StreamTarget
from probes.ice_host_pin import pin_host_addresses
from probes.joins.base import Joined, JoinHooks
from probes.meter import StreamMeter
from probes.sinks import MemorySink
from probes.tap import AudioTap, ReceiverTap, monotonic_ms
from probes.vp8 import parse_vp8_packet
from qosmon.model import ConnectionState
from tests.test_probe_h264 import encode as encode_h264
from tests.test_probe_whep import ClipTrack

FPS = 25


class LiveTrack(MediaStreamTrack):
    """Raw frames for aiortc to encode: only a live encoder answers a PLI."""

    kind = "video"

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self._i = 0
        self._start: float | None = None
        self._w, self._h = width, height

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._i / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        img = np.full((self._h, self._w, 3), self._i % 256, np.uint8)
        img[:, (self._i * 3) % self._w, :] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = self._i
        frame.time_base = Fraction(1, FPS)
        self._i += 1
        return frame


@dataclass
class Dropper:
    """Decides, per outgoing RTP packet of the sender, whether it is lost."""

    media_drop: set[int] = field(default_factory=set)  # media seqs never sent
    audio_ssrc: int | None = None
    audio_drop: set[int] = field(default_factory=set)  # audio seqs never sent
    # retransmissions of these seqs dropped this many times before one goes
    rtx_drops: dict[int, int] = field(default_factory=dict)
    media_ssrc: int | None = None
    rtx_sent: dict[int, int] = field(default_factory=dict)  # osn -> RTX copies sent
    armed: bool = False
    # Keyframes the sender makes of its own accord (aiortc's encoder starts
    # over when its target bitrate moves) never arrive, until a PLI came.
    drop_keyframes: bool = False

    def lost(self, data: bytes) -> bool:
        if len(data) < 12 or 192 <= data[1] <= 223:  # RTCP
            return False
        packet = RtpPacket.parse(data)
        if packet.ssrc == self.media_ssrc:
            seq = packet.sequence_number
            if self.armed and self.drop_keyframes:
                vp8 = parse_vp8_packet(packet.payload)
                if vp8 is not None and vp8.keyframe:
                    self.rtx_drops[seq] = 1000
                    return True
            return self.armed and seq in self.media_drop
        if packet.ssrc == self.audio_ssrc:
            return self.armed and packet.sequence_number in self.audio_drop
        if len(packet.payload) >= 2:  # RTX: the original seq leads the payload
            osn = (packet.payload[0] << 8) | packet.payload[1]
            n = self.rtx_sent[osn] = self.rtx_sent.get(osn, 0) + 1
            return n <= self.rtx_drops.get(osn, 0)
        return False


@dataclass
class Loopback:
    sender_pc: RTCPeerConnection
    viewer_pc: RTCPeerConnection
    sender: RTCRtpSender
    meter: StreamMeter
    tap: ReceiverTap
    dropper: Dropper
    nacked: dict[int, int] = field(default_factory=dict)  # seq -> NACKs received
    plis: list[float] = field(default_factory=list)  # when PLIs reached the sender
    sent_seq: list[int] = field(default_factory=list)
    audio_sent: list[int] = field(default_factory=list)

    def next_seq(self) -> int:
        return self.sent_seq[-1] + 1


async def start_loopback(track: MediaStreamTrack, mime: str,
                         audio: MediaStreamTrack | None = None) -> Loopback:
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = viewer.addTransceiver("video", direction="recvonly")
    audio_transceiver = viewer.addTransceiver("audio", direction="recvonly") if audio else None
    caps = RTCRtpReceiver.getCapabilities("video")
    assert caps is not None
    transceiver.setCodecPreferences(
        [c for c in caps.codecs if c.mimeType.lower() in (mime.lower(), "video/rtx")])
    meter = StreamMeter(start_ms=monotonic_ms())
    tap = ReceiverTap(transceiver.receiver, meter)
    if audio_transceiver is not None:
        AudioTap(audio_transceiver.receiver, meter)
    sender = sender_pc.addTrack(track)
    audio_sender = sender_pc.addTrack(audio) if audio is not None else None
    await viewer.setLocalDescription(await viewer.createOffer())
    await sender_pc.setRemoteDescription(viewer.localDescription)
    await sender_pc.setLocalDescription(await sender_pc.createAnswer())
    loop = Loopback(sender_pc, viewer, sender, meter, tap, Dropper())
    loop.dropper.media_ssrc = sender._ssrc
    if audio_sender is not None:
        loop.dropper.audio_ssrc = audio_sender._ssrc

    transport = sender.transport
    real_send = transport._send_rtp

    async def send_rtp(data: bytes) -> None:
        if len(data) >= 12 and not 192 <= data[1] <= 223:
            packet = RtpPacket.parse(data)
            if packet.ssrc == sender._ssrc:
                loop.sent_seq.append(packet.sequence_number)
            elif packet.ssrc == loop.dropper.audio_ssrc:
                loop.audio_sent.append(packet.sequence_number)
        if not loop.dropper.lost(data):
            await real_send(data)

    transport._send_rtp = send_rtp
    real_rtcp = sender._handle_rtcp_packet

    async def on_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            for seq in packet.lost:
                loop.nacked[seq] = loop.nacked.get(seq, 0) + 1
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            loop.plis.append(monotonic_ms())
            loop.dropper.drop_keyframes = False
        await real_rtcp(packet)

    sender._handle_rtcp_packet = on_rtcp
    await viewer.setRemoteDescription(sender_pc.localDescription)
    return loop


@pytest.fixture
async def loopbacks() -> AsyncIterator[Callable[[MediaStreamTrack, str], Any]]:
    pin_host_addresses(["127.0.0.1"])
    made: list[Loopback] = []

    async def make(track: MediaStreamTrack, mime: str,
                   audio: MediaStreamTrack | None = None) -> Loopback:
        lb = await start_loopback(track, mime, audio)
        made.append(lb)
        return lb

    try:
        yield make
    finally:
        for lb in made:
            await lb.viewer_pc.close()
            await lb.sender_pc.close()
        pin_host_addresses(None)


async def wait_for(cond: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def h264_clip(seconds: int = 4) -> list[bytes]:
    return encode_h264(640, 360, frames=seconds * FPS, gop=FPS * 2)


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_h264_frames_size_and_codec_over_aiortc(loopbacks: Any) -> None:
    lb: Loopback = await loopbacks(ClipTrack(h264_clip(), {}), "video/H264")
    await wait_for(lambda: lb.meter.first_frame_ms is not None, 10)
    lb.meter.take(monotonic_ms())
    await asyncio.sleep(3.0)
    s = lb.meter.take(monotonic_ms())
    assert s.video_codec == "H264"
    assert s.fps is not None and 22 <= s.fps <= 28, s
    assert (s.width, s.height) == (640, 360)
    assert s.loss_pct == 0.0 and s.freeze_count == 0 and s.stuck_ms == 0.0
    assert s.goodput_kbps is not None and s.goodput_kbps > 100


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_packets_skip_aiortc_but_the_sender_keeps_its_feedback(
    loopbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe measures H.264 alone: aiortc must not depayload its packets
    # (the work saved), yet the sender still gets what a browser sends it:
    # receiver reports on its stream and REMB from abs-send-time.
    depayloaded: list[str] = []
    real_depayload = aiortc.rtcrtpreceiver.depayload

    def counting(codec: Any, payload: bytes) -> bytes:
        depayloaded.append(codec.mimeType.lower())
        return real_depayload(codec, payload)  # type: ignore[no-any-return]

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "depayload", counting)
    lb: Loopback = await loopbacks(ClipTrack(h264_clip(), {}), "video/H264")
    reports: list[int] = []  # highest sequence numbers reported on the sender's stream
    rembs: list[int] = []  # bitrates
    real_rtcp = lb.sender._handle_rtcp_packet

    async def on_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpRrPacket):
            reports.extend(r.highest_sequence for r in packet.reports
                           if r.ssrc == lb.sender._ssrc)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
            if lb.sender._ssrc in ssrcs:
                rembs.append(bitrate)
        await real_rtcp(packet)

    lb.sender._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]
    await wait_for(lambda: lb.meter.first_frame_ms is not None, 10)
    await asyncio.sleep(3.0)
    assert "video/h264" not in depayloaded
    assert lb.meter.packets_total > 100
    assert len(reports) >= 2, reports
    assert 0 < (lb.sent_seq[-1] - reports[-1]) % 65536 < 1000  # about the stream sent
    # aiortc's estimator gives its first estimate after 5 s of the stream.
    await wait_for(lambda: len(rembs) >= 2, 10)
    assert all(b > 0 for b in rembs), rembs


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_nack_is_repeated_until_the_packet_comes(loopbacks: Any) -> None:
    lb: Loopback = await loopbacks(ClipTrack(h264_clip(), {}), "video/H264")
    await wait_for(lambda: lb.meter.first_frame_ms is not None, 10)
    await asyncio.sleep(0.5)
    lb.meter.take(monotonic_ms())
    # The next packet is lost, and so are its first two retransmissions: one
    # NACK (aiortc's own way) would leave it missing and the picture broken.
    seq = lb.next_seq() + 5
    lb.dropper.media_drop = {seq}
    lb.dropper.rtx_drops = {seq: 2}
    lb.dropper.armed = True
    await asyncio.sleep(2.5)
    s1 = lb.meter.take(monotonic_ms())
    assert lb.nacked.get(seq, 0) >= 3, lb.nacked
    assert lb.dropper.rtx_sent.get(seq, 0) >= 3
    assert s1.loss_pct is not None and s1.loss_pct > 0  # path loss seen...
    assert s1.residual_loss_pct == 0.0  # ...and repaired
    assert s1.rtx_kbps is not None and s1.rtx_kbps > 0
    assert s1.received_kbps is not None and s1.bitrate_kbps is not None
    assert s1.received_kbps > s1.bitrate_kbps
    frames = lb.tap._meter._ssrcs[lb.dropper.media_ssrc or 0].frames
    assert frames.frames_given_up == 0 and frames.frames_undecodable == 0
    # NACKs stop once it came: no request for it after the repair
    asked = lb.nacked[seq]
    await asyncio.sleep(0.5)
    assert lb.nacked[seq] == asked


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_receiver_reports_tell_the_loss_before_repairs(loopbacks: Any) -> None:
    # A libwebrtc sender sets its rate partly from the loss receiver reports
    # tell it. A browser's tell the path's loss: a packet recovered by a
    # retransmission is not counted on the media stream (on the libwebrtc
    # origin at 11.4 % path loss its reports said 9.2 %). The probe's must
    # say the same, repairs or not, or the sender treats it otherwise.
    lb: Loopback = await loopbacks(ClipTrack(h264_clip(), {}), "video/H264")
    lost_reported: list[int] = []  # cumulative, on the sender's media stream
    real_rtcp = lb.sender._handle_rtcp_packet

    async def on_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpRrPacket):
            lost_reported.extend(r.packets_lost for r in packet.reports
                                 if r.ssrc == lb.sender._ssrc)
        await real_rtcp(packet)

    lb.sender._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]
    await wait_for(lambda: lb.meter.first_frame_ms is not None, 10)
    await asyncio.sleep(0.5)
    first = lb.next_seq() + 5
    repaired = {first, first + 7, first + 19}
    never = first + 30  # every retransmission of it is lost too
    lb.dropper.media_drop = repaired | {never}
    lb.dropper.rtx_drops = {never: 1000}
    lb.dropper.armed = True
    await wait_for(lambda: lb.sent_seq[-1] > never + 50, 10)
    reports_before = len(lost_reported)
    await wait_for(lambda: len(lost_reported) >= reports_before + 2, 10)
    assert all(lb.dropper.rtx_sent.get(seq, 0) >= 1 for seq in repaired)
    assert lost_reported[-1] == 4, lost_reported  # three of them repaired


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_pli_brings_the_picture_back(loopbacks: Any) -> None:
    lb: Loopback = await loopbacks(LiveTrack(), "video/VP8")
    await wait_for(lambda: lb.meter.first_frame_ms is not None, 10)
    await asyncio.sleep(1.0)
    assert lb.plis == []  # a clean start asks for nothing
    lb.meter.take(monotonic_ms())
    # A packet that no retransmission can repair: its frame is given up, and
    # no keyframe comes unasked, so only a PLI brings the picture back.
    seq = lb.next_seq() + 3
    lb.dropper.media_drop = {seq}
    lb.dropper.rtx_drops = {seq: 1000}
    lb.dropper.drop_keyframes = True
    armed = monotonic_ms()
    lb.dropper.armed = True
    await asyncio.sleep(5.0)
    s = lb.meter.take(monotonic_ms())
    assert lb.plis, "no PLI reached the sender"
    # Asked when a browser asks: after 3 s without a decodable frame, not
    # when the repair requests end (1 s), which would have the sender make
    # keyframes no browser viewer asked for.
    assert 2800 < lb.plis[0] - armed < 3800, lb.plis[0] - armed
    assert s.residual_loss_pct is not None and s.residual_loss_pct > 0
    # 3 s, plus a keyframe's trip: then frames again
    assert s.freeze_count == 1 and 2800 < s.freeze_ms < 4500, s
    assert len(lb.plis) == 1  # the keyframe came: not asked again
    await asyncio.sleep(1.0)
    s = lb.meter.take(monotonic_ms())
    assert s.fps is not None and s.fps > 15
    assert lb.meter.no_frame_ms(monotonic_ms()) < 200


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone (aiortc's AudioStreamTrack sends silence, which Opus
    would code as almost nothing)."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        n = frame.samples
        t = (np.arange(n) + (frame.pts or 0)) / frame.sample_rate
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        out = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
        return out


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_audio_loss_concealment_and_av_skew(loopbacks: Any) -> None:
    lb: Loopback = await loopbacks(LiveTrack(), "video/VP8", ToneTrack())
    await wait_for(lambda: lb.meter.audio is not None and lb.meter.first_frame_ms is not None,
                   10)
    await asyncio.sleep(1.5)
    s0 = lb.meter.take(monotonic_ms())
    sent_before = len(lb.audio_sent)
    assert s0.audio_loss_pct == 0.0 and s0.audio_stalled is False
    assert s0.audio_kbps is not None and s0.audio_kbps > 10
    # Only audio packets are lost: 10 of the next 50 (20 ms each).
    first = lb.audio_sent[-1] + 5
    lb.dropper.audio_drop = {(first + k * 5) & 0xFFFF for k in range(10)}
    lb.dropper.armed = True
    await asyncio.sleep(2.0)
    s1 = lb.meter.take(monotonic_ms())
    sent = len(lb.audio_sent) - sent_before
    assert s1.audio_loss_pct is not None and s1.audio_loss_pct > 0
    assert s1.audio_concealed_ms is not None and 200 <= s1.audio_concealed_ms < 400, s1
    assert s1.audio_dtx_ms == 0.0
    assert s1.loss_pct == 0.0  # video untouched
    truth_pct = 100 * 10 / sent  # the sender's count, give or take one in flight
    assert abs(s1.audio_loss_pct - truth_pct) < 1, (s1.audio_loss_pct, truth_pct)
    # both streams' sender reports seen: loopback, so the streams line up
    assert s1.av_skew_ms is not None and abs(s1.av_skew_ms) < 100, s1.av_skew_ms


class LoopbackJoiner:
    """Joins an in-process aiortc sender of video and audio: a ``Joiner``
    (the project's own seam), so the whole watcher runs as it does live."""

    def __init__(self) -> None:
        self.pcs: list[RTCPeerConnection] = []

    async def join(self, target: StreamTarget, http: aiohttp.ClientSession,
                   hooks: JoinHooks) -> Joined:
        viewer = RTCPeerConnection(hooks.rtc_config)
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs += [viewer, sender]
        for kind in ("video", "audio"):
            hooks.on_receiver(viewer.addTransceiver(kind, direction="recvonly").receiver)
        sender.addTrack(LiveTrack())
        sender.addTrack(ToneTrack())
        await viewer.setLocalDescription(await viewer.createOffer())
        await sender.setRemoteDescription(viewer.localDescription)
        await sender.setLocalDescription(await sender.createAnswer())
        await viewer.setRemoteDescription(sender.localDescription)

        async def close() -> None:
            await viewer.close()
            await sender.close()

        return Joined(pc=viewer, close=close)


@pytest.mark.server  # a real WebRTC session over aiortc loopback
@pytest.mark.timeout(60)
async def test_watcher_reports_audio_when_the_join_hands_it_over() -> None:
    pin_host_addresses(["127.0.0.1"])
    try:
        cfg = ProbeConfig.model_validate({
            "labels": {"probe_id": "p1", "region": "test"},
            "streams": [{"show_id": "show", "stream_id": "s1", "join": "whep",
                         "url": "http://127.0.0.1:9/unused", "chat": False}],
            "ice_host_addresses": ["127.0.0.1"],
        })
        sink = MemorySink()
        stop = asyncio.Event()
        task = asyncio.create_task(
            ProbeAgent(cfg, sink, joiners={"whep": LoopbackJoiner()}).run(stop))
        await asyncio.sleep(5.2)
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        pin_host_addresses(None)
    steady = [s for s in sink.samples if s.state == ConnectionState.CONNECTED][2:]
    assert len(steady) >= 2, [(s.state, s.error) for s in sink.samples]
    for s in steady:
        assert s.audio_loss_pct == 0.0 and s.audio_stalled is False
        assert s.audio_kbps is not None and s.audio_kbps > 10
        assert s.audio_concealed_ms is not None and s.audio_concealed_ms < 100
        assert s.av_skew_ms is not None and abs(s.av_skew_ms) < 100
        assert s.video_codec == "VP8" and s.fps is not None and s.fps > 15
        assert s.loss_pct == 0.0  # audio packets are not counted as video
