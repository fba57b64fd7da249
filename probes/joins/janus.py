"""Janus (1.x) over its REST API: the streaming plugin for the video
(``watch`` a mountpoint, Janus offers, we answer, ``start``) and, for chat,
the TextRoom plugin over a DataChannel (a message sent to the room is
broadcast to everyone in it, the sender included).

One Janus session with one handle per plugin; events arrive by long-polling
the session, which also keeps it alive. Each plugin handle is its own
PeerConnection in Janus, so chat has a second one.

Auth: with a ``token`` (Janus ``token_auth``, stored or HMAC-signed tokens)
and/or an ``apisecret`` (Janus ``api_secret``) configured, every request
carries them, the long poll as query parameters. Janus answers a wrong or
missing one with its error 403, reported as the join failure.

ICE restart (when the media stops, see ``Joined.restart_ice``): the
streaming plugin restarts ICE for a viewer that sends ``watch`` again on
the same handle with ``"restart": true``; Janus answers with a new offer
(new credentials and candidates), the probe answers it with ``start`` and
its session's answer with new credentials and candidates
(:func:`probes.joins.sdpfrag.with_ice`), and moves the running DTLS/SRTP
session onto the new path (:mod:`probes.joins.icerestart`). The chat's
PeerConnection is restarted alongside, by the TextRoom plugin's own
``restart`` request (answered with ``ack``): it is a second path from the
same host, which whatever broke the media's (a NAT mapping, a handover) has
broken too. A chat restart that fails is logged and leaves the media's
alone: the chat figures then show the chat's loss until the next join.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from probes.config import StreamTarget
from probes.joins.base import Joined, JoinError, JoinHooks
from probes.joins.codecs import accountable, register_probe_codecs
from probes.joins.credentials import CredentialError, redact
from probes.joins.icerestart import Exchange
from probes.joins.icerestart import restart_ice as restart_ice_under
from probes.joins.sdpfrag import FragmentError, IceCredentials, parse_ice, with_ice
from probes.rtc_seams import SwitchableIce, restartable_data_ice, restartable_ice

log = logging.getLogger(__name__)

KEEPALIVE_S = 25.0  # Janus drops a session after 60 s without a request
EVENT_TIMEOUT_S = 8.0


def _fingerprints(sdp: str) -> set[str]:
    return {line.split(":", 1)[1].strip().lower() for line in sdp.splitlines()
            if line.startswith("a=fingerprint:")}


# The chat PeerConnection's ICE and its side of a restart.
_ChatRestart = tuple[SwitchableIce, Exchange]


def _tid() -> str:
    return secrets.token_hex(6)


class JanusSession:
    def __init__(self, url: str, http: aiohttp.ClientSession, token: str | None = None,
                 apisecret: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = http
        self._auth: dict[str, str] = {}
        if token:
            self._auth["token"] = token
        if apisecret:
            self._auth["apisecret"] = apisecret
        self.session_id: int | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[int, Any] = {}  # handle id -> callable(event)
        self._poller: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None

    def _redact(self, text: str) -> str:
        return redact(text, *self._auth.values())

    async def _request(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self.http.post(
                self.url + path, json={**body, **self._auth},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                if resp.status != 200:
                    raise JoinError(f"Janus {body.get('janus')} answered HTTP {resp.status}"
                                    f" {resp.reason or ''}".rstrip())
                data: dict[str, Any] = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            reason = self._redact(str(exc) or type(exc).__name__)
            raise JoinError(f"Janus {body.get('janus')} failed: {reason}") from None
        if data.get("janus") == "error":
            err = data.get("error", {})
            raise JoinError(self._redact(f"Janus error {err.get('code')}: {err.get('reason')}"))
        return data

    async def create(self) -> None:
        data = await self._request("", {"janus": "create", "transaction": _tid()})
        self.session_id = int(data["data"]["id"])
        self._poller = asyncio.create_task(self._poll())
        self._keepalive = asyncio.create_task(self._keep_alive())

    async def attach(self, plugin: str) -> int:
        data = await self._request(
            f"/{self.session_id}", {"janus": "attach", "plugin": plugin, "transaction": _tid()}
        )
        return int(data["data"]["id"])

    def on_event(self, handle: int, handler: Any) -> None:
        self._handlers[handle] = handler

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a plugin message and wait for its asynchronous event."""
        tid = _tid()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[tid] = fut
        req: dict[str, Any] = {"janus": "message", "transaction": tid, "body": body}
        if jsep is not None:
            req["jsep"] = jsep
        try:
            data = await self._request(f"/{self.session_id}/{handle}", req)
            if data.get("janus") == "success":  # synchronous answer
                return data
            try:
                event = await asyncio.wait_for(fut, EVENT_TIMEOUT_S)
            except TimeoutError:
                raise JoinError(f"Janus sent no answer to {body.get('request')}") from None
        finally:
            self._waiters.pop(tid, None)
        pdata = event.get("plugindata", {}).get("data", {})
        if "error" in pdata:
            raise JoinError(f"Janus {body.get('request')}: {pdata.get('error')}"
                            f" (code {pdata.get('error_code')})")
        return event

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(
                    f"{self.url}/{self.session_id}",
                    params={"maxev": "5", **self._auth},
                    timeout=aiohttp.ClientTimeout(total=40),
                ) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.debug("Janus long poll: %s", self._redact(str(exc)))
                await asyncio.sleep(1.0)
                continue
            events = body if isinstance(body, list) else [body]
            for ev in events:
                if not isinstance(ev, dict):
                    continue
                fut = self._waiters.get(str(ev.get("transaction")))
                if fut is not None and not fut.done() and ev.get("janus") == "event":
                    fut.set_result(ev)
                    continue
                handler = self._handlers.get(ev.get("sender", -1))
                if handler is not None:
                    handler(ev)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(JoinError):
                await self._request(f"/{self.session_id}",
                                    {"janus": "keepalive", "transaction": _tid()})

    async def destroy(self) -> None:
        for task in (self._poller, self._keepalive):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.session_id is not None:
            with contextlib.suppress(JoinError):
                await self._request(f"/{self.session_id}",
                                    {"janus": "destroy", "transaction": _tid()})


def _jsep(event: dict[str, Any], what: str) -> RTCSessionDescription:
    jsep = event.get("jsep")
    if not isinstance(jsep, dict) or jsep.get("type") != "offer" \
            or not isinstance(jsep.get("sdp"), str):
        raise JoinError(f"Janus {what}: no SDP offer in its answer")
    return RTCSessionDescription(jsep["sdp"], "offer")


def _answer_exchange(
    janus: JanusSession,
    handle: int,
    request: dict[str, Any],
    answer_with: dict[str, Any],
    last_answer: list[str],
    first_offer: str,
    what: str,
) -> Exchange:
    """One plugin's side of an ICE restart: ``request`` asks the plugin for an
    offer that restarts ICE, ``answer_with`` carries the answer back: the
    session's last answer (``last_answer[0]``, updated once Janus took the
    new one) with the new local credentials and candidates."""
    fingerprints = _fingerprints(first_offer)

    async def exchange(local: IceCredentials) -> IceCredentials:
        offer = _jsep(await janus.message(handle, request), what).sdp
        try:
            remote = parse_ice(offer)
            answer = with_ice(last_answer[0], local)
        except FragmentError as exc:
            raise JoinError(f"Janus {what}: {exc}") from None
        if _fingerprints(offer) != fingerprints:
            # The running DTLS session cannot move to a new certificate: that
            # is a new session, which only a rejoin makes.
            raise JoinError(f"Janus {what}: the offer has a new DTLS fingerprint")
        await janus.message(handle, answer_with, {"type": "answer", "sdp": answer})
        last_answer[0] = answer
        return remote

    return exchange


class JanusJoiner:
    async def join(
        self, target: StreamTarget, http: aiohttp.ClientSession, hooks: JoinHooks
    ) -> Joined:
        try:
            token = target.token_source.read()
            apisecret = target.apisecret_source.read()
        except CredentialError as exc:
            raise JoinError(f"Janus credentials: {exc}") from None
        janus = JanusSession(target.url, http, token, apisecret)
        register_probe_codecs()
        pcs: list[RTCPeerConnection] = []

        async def close() -> None:
            await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
            await janus.destroy()

        try:
            await janus.create()
            handle = await janus.attach("janus.plugin.streaming")
            event = await janus.message(handle, {"request": "watch", "id": target.mountpoint})
            pc = RTCPeerConnection(hooks.rtc_config)
            pcs.append(pc)
            try:
                await pc.setRemoteDescription(_jsep(event, "watch"))
            except JoinError:
                raise
            except Exception as exc:  # aiortc: ValueError and others on SDP it cannot use
                raise JoinError(f"Janus offer not usable: {exc}") from None
            video = [t for t in pc.getTransceivers() if t.kind == "video"]
            if not video:
                raise JoinError(f"mountpoint {target.mountpoint} offers no video")
            codec = next((c for c in video[0]._codecs
                          if accountable(c) and c.mimeType.lower() != "video/rtx"), None)
            if codec is None or codec.name.lower() not in target.video_codecs:
                raise JoinError(f"mountpoint {target.mountpoint} sends no video codec in "
                                f"video_codecs ({', '.join(target.video_codecs)})")
            hooks.on_receiver(video[0].receiver)
            # After the offer (every bundled receiver is on the bundle's
            # transport now), before the answer (which gathers through it).
            ice = restartable_ice(video[0].receiver)
            audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
            for t in audio:
                if target.audio and hooks.on_audio_receiver is not None and any(
                        accountable(c) for c in t._codecs):
                    hooks.on_audio_receiver(t.receiver)
                else:
                    t.direction = "inactive"
            await pc.setLocalDescription(await pc.createAnswer())
            await janus.message(
                handle,
                {"request": "start"},
                {"type": "answer", "sdp": pc.localDescription.sdp},
            )
            media_restart = _answer_exchange(
                janus, handle, {"request": "watch", "id": target.mountpoint, "restart": True},
                {"request": "start"}, [pc.localDescription.sdp], pc.remoteDescription.sdp,
                "watch (ICE restart)")
            send_chat = None
            chat_restart: _ChatRestart | None = None
            if target.chat and target.textroom_room is not None:
                send_chat, chat_restart = await self._textroom(
                    janus, target.textroom_room, hooks, pcs)
        except BaseException:
            await close()
            raise
        where = f"{target.show_id}/{target.stream_id}"

        async def restart_ice() -> None:
            media = restart_ice_under(ice, hooks.rtc_config, media_restart, "ICE restart")
            if chat_restart is None:
                await media
                return
            chat = restart_ice_under(chat_restart[0], hooks.rtc_config, chat_restart[1],
                                     "chat ICE restart")
            media_result, chat_result = await asyncio.gather(media, chat,
                                                             return_exceptions=True)
            if isinstance(chat_result, Exception):
                log.warning("%s: %s", where, chat_result)
            elif isinstance(chat_result, BaseException):
                raise chat_result
            else:
                log.info("%s: chat ICE restarted", where)
            if isinstance(media_result, BaseException):
                raise media_result

        return Joined(pc=pc, send_chat=send_chat, close=close, other_pcs=pcs[1:],
                      restart_ice=restart_ice)

    async def _textroom(
        self,
        janus: JanusSession,
        room: int,
        hooks: JoinHooks,
        pcs: list[RTCPeerConnection],
    ) -> tuple[Any, _ChatRestart]:
        handle = await janus.attach("janus.plugin.textroom")
        event = await janus.message(handle, {"request": "setup"})
        pc = RTCPeerConnection(hooks.rtc_config)
        pcs.append(pc)
        await pc.setRemoteDescription(_jsep(event, "textroom setup"))
        if pc.sctp is None:
            raise JoinError("Janus textroom setup: the offer has no DataChannel section")
        ice = restartable_data_ice(pc)
        channel = pc.createDataChannel("JanusDataChannel")
        username = f"probe-{secrets.token_hex(4)}"

        @channel.on("open")
        def _open() -> None:
            channel.send(json.dumps({"textroom": "join", "transaction": _tid(), "room": room,
                                     "username": username}))

        @channel.on("message")
        def _message(message: str | bytes) -> None:
            try:
                data = json.loads(message)
            except ValueError:
                return
            if not isinstance(data, dict):
                return
            if data.get("textroom") == "success" and "participants" in data:
                hooks.on_chat_ready()
            elif data.get("textroom") == "message" and isinstance(data.get("text"), str):
                hooks.on_chat_text(data["text"])
            elif data.get("textroom") == "error":
                log.warning("Janus TextRoom: %s", data.get("error"))

        await pc.setLocalDescription(await pc.createAnswer())
        await janus.message(handle, {"request": "ack"},
                            {"type": "answer", "sdp": pc.localDescription.sdp})

        def send_chat(text: str) -> None:
            if channel.readyState == "open":
                channel.send(json.dumps({"textroom": "message", "transaction": _tid(),
                                         "room": room, "text": text, "ack": False}))

        restart = _answer_exchange(janus, handle, {"request": "restart"}, {"request": "ack"},
                                   [pc.localDescription.sdp], pc.remoteDescription.sdp,
                                   "textroom restart")
        return send_chat, (ice, restart)
