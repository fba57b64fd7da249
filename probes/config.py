"""The probe's configuration file (TOML), validated with unknown keys rejected.

One file per region; see ``config/probe-*.toml`` for examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from probes.joins.credentials import SecretSource
from qosmon.model import ProbeLabels

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
VideoCodec = Literal["vp8", "h264"]
_DEFAULT_CODECS: tuple[VideoCodec, ...] = ("vp8", "h264")


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
    # The join's credential, named by where to read it, never by value: for
    # WHEP the ``Authorization: Bearer`` token, for Janus its ``token``.
    token_env: str | None = Field(default=None, pattern=_ENV_NAME)
    token_file: Path | None = None
    # Janus ``api_secret`` (``apisecret`` in every request).
    apisecret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    apisecret_file: Path | None = None
    # Video codecs offered (WHEP) or accepted (Janus), in order of preference.
    video_codecs: list[VideoCodec] = Field(
        default_factory=lambda: list(_DEFAULT_CODECS), min_length=1, max_length=2)
    # Receive the show's audio (Opus) too.
    audio: bool = True

    @model_validator(mode="after")
    def _janus_needs_mountpoint(self) -> StreamTarget:
        if self.join == "janus" and self.mountpoint is None:
            raise ValueError("join = 'janus' needs mountpoint")
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("give token_env or token_file, not both")
        if self.apisecret_env is not None and self.apisecret_file is not None:
            raise ValueError("give apisecret_env or apisecret_file, not both")
        if self.join != "janus" and (self.apisecret_env or self.apisecret_file):
            raise ValueError("apisecret_env / apisecret_file are for join = 'janus'")
        if len(set(self.video_codecs)) != len(self.video_codecs):
            raise ValueError("video_codecs lists a codec twice")
        return self

    @property
    def token_source(self) -> SecretSource:
        return SecretSource(self.token_env, self.token_file)

    @property
    def apisecret_source(self) -> SecretSource:
        return SecretSource(self.apisecret_env, self.apisecret_file)


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
    chat_deadline_s: float = Field(default=3.0, gt=0, le=60)
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
