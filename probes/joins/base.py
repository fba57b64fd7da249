"""The one small interface every way of joining a stream implements.

A joiner does the signalling and hands back a :class:`Joined` session; the
viewer (``probes.viewer``) owns the measuring. The joiner must call
``hooks.on_receiver(receiver)`` as soon as the video receiver exists and
before the remote description that starts it is applied, so the tap sees the
first packet, and ``hooks.on_chat_text(text)`` for every chat text it gets.
Likewise ``hooks.on_audio_receiver(receiver)`` for the audio receiver; a join
offers or accepts audio only when that hook is set (the viewer then owns the
receiver, including draining whatever it decodes).

A join that fails raises :class:`JoinError` with the reason the samples
report: the HTTP status and its reason phrase, or the server's error code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver

from probes.config import StreamTarget

# Defined with the other errors; the joins import it from here.
from qosmon.errors import JoinError as JoinError


@dataclass
class JoinHooks:
    rtc_config: RTCConfiguration
    on_receiver: Callable[[RTCRtpReceiver], None]
    on_chat_text: Callable[[str], None]
    # Called once the chat channel can carry messages.
    on_chat_ready: Callable[[], None] = lambda: None
    # Called with the audio receiver, as on_receiver; None: no audio wanted.
    on_audio_receiver: Callable[[RTCRtpReceiver], None] | None = None


@dataclass
class Joined:
    pc: RTCPeerConnection  # the one carrying the video
    send_chat: Callable[[str], None] | None = None  # None: no chat on this join
    close: Callable[[], Awaitable[None]] = field(default=lambda: _noop())
    other_pcs: list[RTCPeerConnection] = field(default_factory=list)
    # Restarts ICE under the running session (same DTLS, same server-side
    # resource); raises JoinError when it cannot. None: the server offers none.
    restart_ice: Callable[[], Awaitable[None]] | None = None


async def _noop() -> None:
    return None


class Joiner(Protocol):
    async def join(
        self, target: StreamTarget, http: aiohttp.ClientSession, hooks: JoinHooks
    ) -> Joined: ...
