"""WHEP (RFC 9725): POST an SDP offer, get 201 + answer + Location; DELETE the
Location to leave. The offer has one recvonly VP8 video transceiver and, when
``chat`` is wanted, a DataChannel labelled ``chat``."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from probes.config import StreamTarget
from probes.joins.base import Joined, JoinError, JoinHooks

log = logging.getLogger(__name__)


def _vp8_only(pc: RTCPeerConnection) -> None:
    caps = RTCRtpSender.getCapabilities("video")
    wanted = [c for c in caps.codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")]
    pc.getTransceivers()[0].setCodecPreferences(wanted)


async def _delete(http: aiohttp.ClientSession, location: str) -> None:
    try:
        async with http.delete(location, timeout=aiohttp.ClientTimeout(total=3)):
            pass
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.debug("WHEP DELETE %s failed: %s", location, exc)


class WhepJoiner:
    """Plain WHEP. ``with_chat`` adds the ``chat`` DataChannel echo (demo origin)."""

    def __init__(self, with_chat: bool = False) -> None:
        self.with_chat = with_chat

    async def join(
        self, target: StreamTarget, http: aiohttp.ClientSession, hooks: JoinHooks
    ) -> Joined:
        pc = RTCPeerConnection(hooks.rtc_config)
        try:
            return await self._join(pc, target, http, hooks)
        except BaseException:
            await pc.close()
            raise

    async def _join(
        self,
        pc: RTCPeerConnection,
        target: StreamTarget,
        http: aiohttp.ClientSession,
        hooks: JoinHooks,
    ) -> Joined:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        _vp8_only(pc)
        hooks.on_receiver(transceiver.receiver)
        send_chat = None
        if self.with_chat and target.chat:
            channel = pc.createDataChannel("chat")

            @channel.on("open")
            def _open() -> None:
                hooks.on_chat_ready()

            @channel.on("message")
            def _message(message: str | bytes) -> None:
                if isinstance(message, bytes):
                    message = message.decode("utf-8", "replace")
                hooks.on_chat_text(message)

            def send_chat(text: str) -> None:
                if channel.readyState == "open":
                    channel.send(text)

        await pc.setLocalDescription(await pc.createOffer())
        try:
            async with http.post(
                target.url,
                data=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                body = await resp.text()
                if resp.status != 201:
                    raise JoinError(f"WHEP POST answered {resp.status}: {body.strip()[:200]}")
                location = resp.headers.get("Location")
                if not location:
                    raise JoinError("WHEP answer has no Location header")
                location = urljoin(str(resp.url), location)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JoinError(f"WHEP POST failed: {exc or type(exc).__name__}") from None
        try:
            await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        except Exception as exc:  # aiortc raises ValueError and others on bad SDP
            await _delete(http, location)
            raise JoinError(f"WHEP answer not usable: {exc}") from None

        async def close() -> None:
            await asyncio.gather(pc.close(), _delete(http, location))

        return Joined(pc=pc, send_chat=send_chat, close=close)
