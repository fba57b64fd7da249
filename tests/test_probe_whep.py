"""The probe against a WHEP origin on loopback: a small aiortc server written
here (our seam: the demo origin speaks the same WHEP + chat echo) that plays
a VP8 clip encoded once, without re-encoding. Real ICE, DTLS, SRTP, SCTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol, TypeVar

import av
import numpy as np
import pytest
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from probes.ice_host_pin import pin_host_addresses
from probes.sinks import MemorySink
from qosmon.model import ConnectionState

# Real WebRTC sessions (aiortc) against a WHEP origin served by the test.
pytestmark = pytest.mark.server

FPS = 25
W, H = 320, 180


def encode_clip(seconds: int = 4) -> list[bytes]:
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
    ctx.framerate = Fraction(FPS, 1)
    ctx.time_base = Fraction(1, FPS)
    ctx.bit_rate = 300_000
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "g": str(FPS * 2),
                   "lag-in-frames": "0"}
    out: list[bytes] = []
    xs = np.arange(W, dtype=np.int32)[None, :]
    for i in range(seconds * FPS):
        img = np.zeros((H, W, 3), np.uint8)
        img[:, :, 0] = (xs + i * 4) % 256
        img[:, :, 1] = 80
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out


class ClipTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, frames: list[bytes], stall: dict[str, float]) -> None:
        super().__init__()
        self._frames = frames
        self._i = 0
        self._start: float | None = None
        self._stall = stall  # {"until": monotonic time}: send nothing before it

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        while True:
            due = self._start + self._i / FPS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() >= self._stall.get("until", 0.0):
                break
            self._i += 1  # frames "lost" in the stall: a real freeze for the viewer
        packet = av.Packet(self._frames[self._i % len(self._frames)])
        packet.pts = self._i
        packet.time_base = Fraction(1, FPS)
        self._i += 1
        return packet


class WhepOrigin:
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.deleted: list[str] = []
        self.stall: dict[str, float] = {}
        # When set, a POST needs "Authorization: Bearer <token>"; a wrong one
        # is refused with a body that echoes the header back (as careless
        # servers do), to check the probe never repeats it.
        self.token: str | None = None
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def post(self, request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            raise web.HTTPUnsupportedMediaType()
        got = request.headers.get("Authorization", "")
        if self.token is not None and got != f"Bearer {self.token}":
            raise web.HTTPForbidden(text=f"refused: {got!r}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(ClipTrack(self.frames, self.stall))

        @pc.on("datachannel")
        def on_dc(channel):  # type: ignore[no-untyped-def]
            @channel.on("message")
            def on_message(message):  # type: ignore[no-untyped-def]
                channel.send(message)

        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sid = f"s{len(self.pcs)}"
        self.pcs[sid] = pc
        return web.Response(status=201, text=pc.localDescription.sdp,
                            content_type="application/sdp",
                            headers={"Location": f"/whep/resource/{sid}"})

    async def overloaded(self, request: web.Request) -> web.Response:
        # Slow to refuse, so samples fall while a retry is in flight.
        await asyncio.sleep(0.7)
        raise web.HTTPServiceUnavailable(text="overloaded")

    async def delete(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        pc = self.pcs.pop(sid, None)
        if pc is None:
            raise web.HTTPNotFound()
        self.deleted.append(sid)
        await pc.close()
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/whep", self.post)
        app.router.add_delete("/whep/resource/{sid}", self.delete)
        app.router.add_post("/busy", self.overloaded)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/whep"

    async def stop(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs.values()))
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture(scope="module")
def clip() -> list[bytes]:
    return encode_clip()


class Origin(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


OriginT = TypeVar("OriginT", bound=Origin)


@contextlib.asynccontextmanager
async def serving_on_loopback(origin: OriginT) -> AsyncIterator[OriginT]:
    """``origin`` started, with ICE pinned to loopback (aioice leaves it out
    otherwise) until it is stopped again."""
    pin_host_addresses(["127.0.0.1"])
    await origin.start()
    try:
        yield origin
    finally:
        await origin.stop()
        pin_host_addresses(None)


@pytest.fixture
async def origin(clip: list[bytes]) -> AsyncIterator[WhepOrigin]:
    async with serving_on_loopback(WhepOrigin(clip)) as o:
        yield o


def config(streams: list[dict[str, object]]) -> ProbeConfig:
    return ProbeConfig.model_validate({
        "labels": {"probe_id": "p1", "region": "test", "isp": "lo"},
        "streams": streams,
        "ice_host_addresses": ["127.0.0.1"],
        "join_timeout_s": 5,
    })


async def run_for(agent: ProbeAgent, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 15)


@pytest.mark.timeout(60)
async def test_demo_join_measures_video_and_chat(origin: WhepOrigin, clip: list[bytes]) -> None:
    sink = MemorySink()
    agent = ProbeAgent(config([{"show_id": "show", "stream_id": "s1", "join": "demo",
                                "url": origin.url, "chat_interval_s": 0.5}]), sink)
    await run_for(agent, 6.5)
    samples = sink.samples
    assert 5 <= len(samples) <= 7, [s.state for s in samples]
    assert all(s.show_id == "show" and s.probe_id == "p1" and s.isp == "lo" for s in samples)
    steady = [s for s in samples if s.state == ConnectionState.CONNECTED][1:]
    assert len(steady) >= 3, [(s.state, s.error) for s in samples]
    for s in steady:
        assert s.fps is not None and 20 <= s.fps <= 30, s
        assert (s.width, s.height) == (W, H)
        assert s.loss_pct == 0.0 and s.residual_loss_pct == 0.0
        assert s.rtt_ms is not None and s.rtt_ms < 50
        assert s.jitter_ms is not None and s.jitter_ms < 20
        assert s.no_frame_ms is not None and s.no_frame_ms < 200
        assert s.freeze_count == 0
    assert steady[-1].ttff_ms is not None and steady[-1].ttff_ms < 3000
    # Bitrate as sent: the clip's payload rate (VP8 payload descriptors add a
    # few bytes per packet).
    clip_kbps = sum(len(f) for f in clip) * 8 / (len(clip) / FPS) / 1000
    mean_kbps = sum(s.bitrate_kbps or 0 for s in steady) / len(steady)
    assert abs(mean_kbps - clip_kbps) / clip_kbps < 0.15, (mean_kbps, clip_kbps)
    # Chat: sent twice a second, echoed back by the origin, none lost.
    sent = sum(s.chat_sent for s in samples)
    assert sent >= 8
    assert sum(s.chat_lost for s in samples) == 0
    assert any(s.chat_rtt_ms is not None and s.chat_rtt_ms < 100 for s in steady)
    # Leaving deletes the WHEP resource.
    assert origin.deleted == ["s0"]


@pytest.mark.timeout(60)
async def test_freeze_in_progress_then_counted(origin: WhepOrigin) -> None:
    sink = MemorySink()
    agent = ProbeAgent(config([{"show_id": "show", "stream_id": "s1", "join": "whep",
                                "url": origin.url}]), sink)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(3.0)
    origin.stall["until"] = time.monotonic() + 1.6
    await asyncio.sleep(4.0)
    stop.set()
    await asyncio.wait_for(task, 15)
    during = [s for s in sink.samples if (s.no_frame_ms or 0) > 700]
    assert during, "a freeze in progress must show in no_frame_ms while it lasts"
    assert sum(s.freeze_count for s in sink.samples) == 1
    frozen = sum(s.freeze_ms for s in sink.samples)
    assert 1400 <= frozen <= 2000, frozen


@pytest.mark.timeout(60)
async def test_failed_join_is_a_sample_and_other_streams_go_on(origin: WhepOrigin) -> None:
    sink = MemorySink()
    agent = ProbeAgent(config([
        {"show_id": "show", "stream_id": "good", "join": "whep", "url": origin.url},
        {"show_id": "show", "stream_id": "missing", "join": "whep",
         "url": origin.url.replace("/whep", "/nope")},
        {"show_id": "show", "stream_id": "refused", "join": "whep",
         "url": "http://127.0.0.1:9/whep"},
        {"show_id": "show", "stream_id": "busy", "join": "whep",
         "url": origin.url.replace("/whep", "/busy")},
    ]), sink)
    await run_for(agent, 4.5)
    by = {sid: [s for s in sink.samples if s.stream_id == sid]
          for sid in ("good", "missing", "refused", "busy")}
    assert all(len(v) >= 3 for v in by.values()), {k: len(v) for k, v in by.items()}
    assert by["good"][-1].state == ConnectionState.CONNECTED
    assert (by["good"][-1].fps or 0) > 15
    for sid in ("missing", "refused", "busy"):
        states = [s.state for s in by[sid]]
        assert ConnectionState.CONNECTED not in states, states
        # Once failed, the stream reads as failed through its retries, with
        # the reason, never as "connecting" between them.
        failing = by[sid][states.index(ConnectionState.JOIN_FAILED):]
        assert all(s.state == ConnectionState.JOIN_FAILED and s.error for s in failing), \
            [(s.state, s.error) for s in by[sid]]
    assert "404" in (by["missing"][-1].error or "")
    assert "503" in (by["busy"][-1].error or "")


@pytest.mark.timeout(60)
async def test_bearer_token_from_file_and_refusal_never_echoed(
    origin: WhepOrigin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    origin.token = "tok-" + "7" * 20
    (tmp_path / "token").write_text(origin.token + "\n")
    monkeypatch.setenv("QOSMON_TEST_WRONG_TOKEN", "wrong-token-0123456789")
    sink = MemorySink()
    agent = ProbeAgent(config([
        {"show_id": "show", "stream_id": "good", "join": "whep", "url": origin.url,
         "token_file": str(tmp_path / "token")},
        {"show_id": "show", "stream_id": "wrong", "join": "whep", "url": origin.url,
         "token_env": "QOSMON_TEST_WRONG_TOKEN"},
    ]), sink)
    await run_for(agent, 3.5)
    good = [s for s in sink.samples if s.stream_id == "good"]
    wrong = [s for s in sink.samples if s.stream_id == "wrong"]
    assert good[-1].state == ConnectionState.CONNECTED and (good[-1].fps or 0) > 10
    assert wrong[-1].state == ConnectionState.JOIN_FAILED
    error = wrong[-1].error or ""
    assert error.startswith("WHEP POST answered 403 Forbidden: refused: 'Bearer ***'"), error
    for secret in (origin.token, "wrong-token-0123456789"):
        assert secret not in caplog.text
        assert all(secret not in s.model_dump_json() for s in sink.samples)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_collector_outage_mid_run_loses_no_sample(origin: WhepOrigin,
                                                        tmp_path: Path) -> None:
    """A real viewer, a real uplink, a stand-in collector stopped for 10 s
    and started again on its port: the spool and resend mechanics. The
    minute-long outage against the real collector is in
    test_probe_collector_outage.py."""
    from probes.uplink import CollectorUplink
    from tests.test_probe_uplink import TOKEN, FakeCollector

    coll = FakeCollector()
    await coll.start()
    cfg = config([{"show_id": "show", "stream_id": "s1", "join": "demo", "url": origin.url}])
    up = CollectorUplink(coll.url, TOKEN, cfg.labels, spool_dir=tmp_path / "spool",
                         retry_max_s=1.0, streams=["show/s1"])
    agent = ProbeAgent(cfg, up)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(3)
        await coll.stop()
        await asyncio.sleep(10)
        assert up.spool.samples >= 8
        await coll.start()
        await asyncio.sleep(3)
        stop.set()
        await asyncio.wait_for(task, 15)
        await up.aclose()
        emitted = agent.watchers[0].samples_emitted
        stored = coll.stored()
        assert emitted >= 14
        assert len(stored) == emitted
        assert len({s.ts for s in stored}) == emitted
        assert sum(s.state == ConnectionState.CONNECTED for s in stored) >= emitted - 1
    finally:
        stop.set()
        await coll.stop()
