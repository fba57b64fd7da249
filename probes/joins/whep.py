"""WHEP (the viewer side of WHIP, RFC 9725): POST an SDP offer, get 201 + answer
+ Location; DELETE the Location to leave. The offer has one recvonly video
transceiver carrying the codecs the probe can account for (VP8, H.264 in the
usual profiles and both packetization modes, each with RTX) in the stream's
order of preference, a recvonly Opus audio transceiver when audio is wanted,
and, when ``chat`` is wanted, a DataChannel labelled ``chat``. The server
picks from the offer.

With a token configured every request carries ``Authorization: Bearer``;
any status but 201 is a join failure naming the status and reason phrase.

A server that takes PATCHes (``Accept-Patch: application/trickle-ice-sdpfrag``
on its 201) gets an ICE restart when the media stops: new ICE credentials and
candidates PATCHed to the Location, the server's new ones back, and the same
DTLS session carried on over the new path (:class:`probes.rtc_seams.SwitchableIce`),
as a browser's ``restartIce()`` does. Trickle is not needed the other way:
aiortc's offer already holds every candidate.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from probes.config import StreamTarget
from probes.joins.base import Joined, JoinError, JoinHooks
from probes.joins.codecs import accountable, audio_preferences, video_preferences
from probes.joins.credentials import CredentialError, redact
from probes.joins.icerestart import Exchange
from probes.joins.icerestart import restart_ice as restart_ice_under
from probes.joins.sdpfrag import (
    MAX_FRAGMENT_CHARS,
    MEDIA_TYPE,
    FragmentError,
    IceCredentials,
    parse_fragment,
    restart_fragment,
)
from probes.rtc_seams import restartable_ice

log = logging.getLogger(__name__)

POST_TIMEOUT_S = 10.0
ERROR_BODY_CHARS = 200
ANSWER_MAX_BYTES = 256 * 1024  # an SDP answer is a few KB


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> str:
    body = bytearray()
    async for chunk in resp.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > limit:
            raise JoinError(f"WHEP {resp.method} answer longer than {limit} bytes")
    return body.decode("utf-8", "replace")


async def _delete(http: aiohttp.ClientSession, location: str, headers: dict[str, str]) -> None:
    try:
        async with http.delete(location, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=3)):
            pass
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.debug("WHEP DELETE failed: %s", type(exc).__name__)


class WhepJoiner:
    """Plain WHEP. ``with_chat`` adds the ``chat`` DataChannel echo (demo origin)."""

    def __init__(self, with_chat: bool = False) -> None:
        self.with_chat = with_chat

    async def join(
        self, target: StreamTarget, http: aiohttp.ClientSession, hooks: JoinHooks
    ) -> Joined:
        try:
            token = target.token_source.read()
        except CredentialError as exc:
            raise JoinError(f"WHEP token: {exc}") from None
        pc = RTCPeerConnection(hooks.rtc_config)
        try:
            return await self._join(pc, target, http, hooks, token)
        except BaseException:
            await pc.close()
            raise

    async def _join(
        self,
        pc: RTCPeerConnection,
        target: StreamTarget,
        http: aiohttp.ClientSession,
        hooks: JoinHooks,
        token: str | None,
    ) -> Joined:
        video = pc.addTransceiver("video", direction="recvonly")
        video.setCodecPreferences(video_preferences(target.video_codecs))
        hooks.on_receiver(video.receiver)
        # Video is the bundle's first section: its transport carries the session.
        ice = restartable_ice(video.receiver)
        if target.audio and hooks.on_audio_receiver is not None:
            audio = pc.addTransceiver("audio", direction="recvonly")
            audio.setCodecPreferences(audio_preferences())
            hooks.on_audio_receiver(audio.receiver)
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

        auth = {"Authorization": f"Bearer {token}"} if token else {}
        await pc.setLocalDescription(await pc.createOffer())
        try:
            async with http.post(
                target.url,
                data=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp", **auth},
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
            ) as resp:
                body = await _read_capped(resp, ANSWER_MAX_BYTES)
                if resp.status != 201:
                    text = redact(" ".join(body.split())[:ERROR_BODY_CHARS], token)
                    raise JoinError(f"WHEP POST answered {resp.status} {resp.reason or ''}"
                                    .rstrip() + (f": {text}" if text else ""))
                location = resp.headers.get("Location")
                if not location:
                    raise JoinError("WHEP answer has no Location header")
                location = urljoin(str(resp.url), location)
                patchable = MEDIA_TYPE in resp.headers.get("Accept-Patch", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = redact(str(exc) or type(exc).__name__, token)
            raise JoinError(f"WHEP POST failed: {reason}") from None
        try:
            await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
            if not any(accountable(c) and c.mimeType.lower() != "video/rtx"
                       for c in video._codecs):
                raise ValueError("no video codec in common with the offer "
                                 f"({', '.join(target.video_codecs)})")
        except Exception as exc:  # aiortc raises ValueError and others on bad SDP
            await _delete(http, location, auth)
            raise JoinError(f"WHEP answer not usable: {redact(str(exc), token)}") from None

        async def close() -> None:
            await asyncio.gather(pc.close(), _delete(http, location, auth))

        async def restart_ice() -> None:
            await restart_ice_under(
                ice, hooks.rtc_config,
                _patch_exchange(http, location, auth, video.mid or "0"), "ICE restart")

        return Joined(pc=pc, send_chat=send_chat, close=close,
                      restart_ice=restart_ice if patchable else None)


def _patch_exchange(
    http: aiohttp.ClientSession, location: str, auth: dict[str, str], mid: str
) -> Exchange:
    """The WHEP side of an ICE restart: PATCH ours, read the server's."""

    async def exchange(local: IceCredentials) -> IceCredentials:
        try:
            async with http.patch(
                location,
                data=restart_fragment(local, mid),
                headers={"Content-Type": MEDIA_TYPE, "If-Match": "*", **auth},
            ) as resp:
                text = await _read_capped(resp, MAX_FRAGMENT_CHARS)
                if resp.status != 200:
                    raise JoinError(f"WHEP PATCH (ICE restart) answered {resp.status} "
                                    f"{resp.reason or ''}".rstrip())
        except aiohttp.ClientError as exc:
            raise JoinError(f"WHEP PATCH (ICE restart) failed: {type(exc).__name__}") from None
        try:
            return parse_fragment(text)
        except FragmentError as exc:
            raise JoinError(f"WHEP PATCH (ICE restart) answer not usable: {exc}") from None

    return exchange
