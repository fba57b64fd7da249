"""The demo origin over real WebRTC on loopback: WHEP semantics, media and
chat through the region's relay, and the relay's impairments felt by a real
aiortc viewer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from qosmon.demo.clip import Clip, encode_clip
from qosmon.demo.netpath import Impairment, RegionPath
from qosmon.demo.origin import DemoOrigin

# Real WebRTC sessions (aiortc) against the demo origin.
pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def clip() -> Clip:
    return encode_clip(seconds=4)


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice leaves 127.0.0.1 out of its host candidates; the demo pins it.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def origin(clip: Clip, loopback_ice: None) -> AsyncIterator[DemoOrigin]:
    o = DemoOrigin(clip, {"ID": RegionPath("ID", impairment=Impairment(delay_ms=10))})
    await o.start()
    try:
        yield o
    finally:
        await o.stop()


class Viewer:
    """A bare aiortc viewer that keeps the chat echoes it gets."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.chat = self.pc.createDataChannel("chat")
        self.echoes: list[str] = []
        self.chat.on("message", self.echoes.append)
        self.location = ""

    async def join(self, http: aiohttp.ClientSession, url: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with http.post(url, data=self.pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as resp:
            assert resp.status == 201
            assert resp.content_type == "application/sdp"
            self.location = resp.headers["Location"]
            answer = await resp.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


async def _wait(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def _inbound_packets(pc: RTCPeerConnection) -> int:
    stats = await pc.getStats()
    return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")


async def test_whep_join_media_chat_and_leave(origin: DemoOrigin) -> None:
    viewer = Viewer()
    async with aiohttp.ClientSession() as http:
        await viewer.join(http, origin.whep_url("ID"))
        await _wait(lambda: viewer.chat.readyState == "open", 10)
        viewer.chat.send("hello")
        await _wait(lambda: viewer.echoes == ["hello"], 5)
        await asyncio.sleep(1.5)
        assert await _inbound_packets(viewer.pc) > 40  # ~700 kbps of 1200-byte packets
        assert origin.paths["ID"].counters.forwarded > 40  # all of it via the relay

        origin.chat_stalled = {"ID"}
        viewer.chat.send("lost?")
        await asyncio.sleep(1.0)
        assert viewer.echoes == ["hello"]

        async with http.delete(origin.url + viewer.location) as resp:
            assert resp.status == 200
        assert origin.viewers == {}
        async with http.delete(origin.url + viewer.location) as resp:
            assert resp.status == 404
    await viewer.pc.close()


async def test_outage_cuts_media(origin: DemoOrigin) -> None:
    viewer = Viewer()
    async with aiohttp.ClientSession() as http:
        await viewer.join(http, origin.whep_url("ID"))
        await _wait(lambda: viewer.chat.readyState == "open", 10)
        await asyncio.sleep(1.0)
        origin.paths["ID"].impairment = Impairment(outage=True)
        await asyncio.sleep(0.3)  # packets already in flight
        before = await _inbound_packets(viewer.pc)
        await asyncio.sleep(1.5)
        assert await _inbound_packets(viewer.pc) == before
        assert origin.paths["ID"].counters.dropped_outage > 30
    await viewer.pc.close()


async def test_whep_rejects_bad_requests(origin: DemoOrigin) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(origin.whep_url("XX"), data="v=0",
                             headers={"Content-Type": "application/sdp"}) as resp:
            assert resp.status == 404
        async with http.post(origin.whep_url("ID"), json={"sdp": "x"}) as resp:
            assert resp.status == 415
        async with http.post(origin.whep_url("ID"), data="v=0\r\n",
                             headers={"Content-Type": "application/sdp"}) as resp:
            assert resp.status == 400
            assert "candidate" in await resp.text()
