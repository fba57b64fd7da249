"""The demo's WebRTC origin: serves a looped VP8 clip and a chat channel to
viewers over WHEP, one endpoint per region, each behind that region's
``RegionPath`` relay.

WHEP (RFC 9725): ``POST /whep/{region}`` with an SDP offer answers ``201`` with
the SDP answer and a ``Location``; ``DELETE`` that location leaves. A viewer
that opens a DataChannel labelled ``chat`` gets every text message echoed
back, as a chat server broadcasts a viewer's message to the room, unless the
scenario has stalled chat for that region.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction

import av
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

from qosmon.demo.clip import Clip
from qosmon.demo.netpath import RegionPath, _Session

log = logging.getLogger(__name__)

_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ udp \d+ )(\S+) (\d+)( typ host.*)$", re.IGNORECASE | re.MULTILINE
)


def host_candidates(sdp: str) -> list[tuple[str, int]]:
    return [(m.group(2), int(m.group(3))) for m in _CANDIDATE.finditer(sdp)]


def rewrite_candidates(sdp: str, host: str, port: int) -> str:
    """Point every UDP host candidate at ``host:port`` and drop the others
    (TCP, srflx), so the peer can reach this session only through the relay."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            m = _CANDIDATE.match(line)
            if m is None:
                continue
            line = f"{m.group(1)}{host} {port}{m.group(4)}"
        out.append(line)
    return "\r\n".join(out) + "\r\n"


class ClipTrack(MediaStreamTrack):
    """Plays a pre-encoded clip in real time, from its first keyframe, as
    av.Packet objects: aiortc packetizes them without re-encoding."""

    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self._clip = clip
        self._index = 0
        self._start: float | None = None
        self._time_base = Fraction(1, clip.fps)

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / self._clip.fps
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = self._clip.frames[self._index % len(self._clip.frames)]
        packet = av.Packet(frame.data)
        packet.pts = self._index
        packet.time_base = self._time_base
        self._index += 1
        return packet


@dataclass
class _Viewer:
    region: str
    pc: RTCPeerConnection
    session: _Session


@dataclass
class DemoOrigin:
    clip: Clip
    paths: dict[str, RegionPath]
    host: str = "127.0.0.1"
    chat_stalled: set[str] = field(default_factory=set)  # regions; "*" = all
    viewers: dict[str, _Viewer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    def whep_url(self, region: str) -> str:
        return f"{self.url}/whep/{region}"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/whep/{region}", self._post)
        app.router.add_delete("/whep/{region}/{session}", self._delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{self.host}:{bound[1]}"

    async def stop(self) -> None:
        await asyncio.gather(*(v.pc.close() for v in self.viewers.values()), return_exceptions=True)
        for v in self.viewers.values():
            self.paths[v.region].close_session(v.session)
        self.viewers.clear()
        if self._runner is not None:
            await self._runner.cleanup()

    def _chat_ok(self, region: str) -> bool:
        return "*" not in self.chat_stalled and region not in self.chat_stalled

    async def _post(self, request: web.Request) -> web.Response:
        region = request.match_info["region"]
        path = self.paths.get(region)
        if path is None:
            raise web.HTTPNotFound(text=f"no stream for region {region!r}\n")
        if request.content_type != "application/sdp":
            raise web.HTTPUnsupportedMediaType(text="WHEP offers are application/sdp\n")
        offer = await request.text()
        cands = host_candidates(offer)
        if not cands:
            raise web.HTTPBadRequest(text="offer has no UDP host candidate\n")
        a_port, b_port, session = await path.open_session(cands[0])
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(ClipTrack(self.clip))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != "chat":
                return

            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if self._chat_ok(region) and channel.readyState == "open":
                    channel.send(message)

        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(rewrite_candidates(offer, path.host, b_port), "offer")
            )
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and others on bad SDP
            await pc.close()
            path.close_session(session)
            raise web.HTTPBadRequest(text=f"cannot answer this offer: {exc}\n") from None
        answer = pc.localDescription.sdp
        own = host_candidates(answer)
        if not own:
            await pc.close()
            path.close_session(session)
            raise web.HTTPInternalServerError(text="origin gathered no candidate\n")
        path.connect_origin(session, own[0])
        sid = uuid.uuid4().hex
        self.viewers[sid] = _Viewer(region, pc, session)
        return web.Response(
            status=201,
            text=rewrite_candidates(answer, path.host, a_port),
            content_type="application/sdp",
            headers={"Location": f"/whep/{region}/{sid}"},
        )

    async def _delete(self, request: web.Request) -> web.Response:
        viewer = self.viewers.pop(request.match_info["session"], None)
        if viewer is None:
            raise web.HTTPNotFound(text="no such session\n")
        await viewer.pc.close()
        self.paths[viewer.region].close_session(viewer.session)
        return web.Response(status=200)
