"""The probe's configuration file (TOML), validated with unknown keys rejected.

One file per region; see ``config/probe-*.toml`` for examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qosmon.model import ProbeLabels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamTarget(_Strict):
    """One stream the probe watches, and how it joins it."""

    show_id: str = Field(min_length=1, max_length=128)
    stream_id: str = Field(min_length=1, max_length=128)
    # whep: any WHEP endpoint; janus: Janus streaming plugin over its REST API
    # (``url`` is the API root, e.g. http://host:8088/janus); demo: the demo
    # origin, which is WHEP plus a chat echo on the ``chat`` DataChannel.
    join: Literal["whep", "janus", "demo"]
    url: str = Field(min_length=1, pattern=r"^https?://")
    mountpoint: int | None = Field(default=None, ge=0)
    textroom_room: int | None = Field(default=None, ge=0)
    chat: bool = True
    chat_interval_s: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _janus_needs_mountpoint(self) -> StreamTarget:
        if self.join == "janus" and self.mountpoint is None:
            raise ValueError("join = 'janus' needs mountpoint")
        return self


class ProbeConfig(_Strict):
    labels: ProbeLabels
    # Bearer token for the collector. Never logged, never in repr().
    token: str = Field(default="", repr=False, max_length=4096)
    collector_url: str | None = Field(default=None, pattern=r"^https?://")
    streams: list[StreamTarget] = Field(min_length=1)
    # Where samples wait while the collector is unreachable; None keeps them in
    # memory only (lost on restart, still bounded).
    spool_dir: Path | None = None
    spool_max_samples: int = Field(default=100_000, ge=10)
    batch_interval_s: float = Field(default=1.0, gt=0, le=60)
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=300)
    # Host addresses aioice may offer as ICE candidates. aioice leaves out
    # 127.0.0.1 and offers every other interface; pin them for loopback tests
    # or multi-homed hosts. Applies to the whole process.
    ice_host_addresses: list[str] | None = None
    # STUN/TURN servers, e.g. ["stun:stun.example.net:3478"]; none by default
    # so an offline probe never sends traffic to a public server.
    ice_servers: list[str] = Field(default_factory=list)
    # Decode video (costs ~3x CPU); off by default: the probe measures from
    # RTP packets and encoded frames.
    decode_video: bool = False
    # Seconds without a media packet (or, while joining, without a first
    # frame) after which a session is called dead and rejoined.
    dead_after_s: float = Field(default=10.0, gt=1, le=600)
    # A chat message not seen back within this many seconds counts as lost.
    # Diagnosis calls chat slower than 1.5 s degraded anyway (chat.rtt_ms),
    # so waiting longer only shows a stalled channel later.
    chat_deadline_s: float = Field(default=1.5, gt=0, le=60)
    join_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _unique_streams(self) -> ProbeConfig:
        seen: set[tuple[str, str]] = set()
        for s in self.streams:
            key = (s.show_id, s.stream_id)
            if key in seen:
                raise ValueError(f"stream {s.show_id}/{s.stream_id} listed twice")
            seen.add(key)
        if self.collector_url is not None and not self.token:
            raise ValueError("collector_url needs a token")
        return self
