"""The probe's configuration file (TOML), validated with unknown keys rejected.

One file per region; see ``config/probe-*.toml`` for examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from probes.joins.credentials import SecretSource
from qosmon.credentials import resolve_secret
from qosmon.model import Label, ProbeLabels

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
VideoCodec = Literal["vp8", "h264"]
_DEFAULT_CODECS: tuple[VideoCodec, ...] = ("vp8", "h264")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credential(_Strict):
    """A named secret the probe holds, for streams that refer to it by name
    (``credential = "NAME"``), including streams the collector assigns: the
    collector only ever names a credential, never carries it."""

    token_env: str | None = Field(default=None, pattern=_ENV_NAME)
    token_file: Path | None = None
    apisecret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    apisecret_file: Path | None = None

    @model_validator(mode="after")
    def _one_each(self) -> Credential:
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("give token_env or token_file, not both")
        if self.apisecret_env is not None and self.apisecret_file is not None:
            raise ValueError("give apisecret_env or apisecret_file, not both")
        if not any((self.token_env, self.token_file, self.apisecret_env, self.apisecret_file)):
            raise ValueError("a credential needs a token_* or apisecret_* key")
        return self


class StreamTarget(_Strict):
    """One stream the probe watches, and how it joins it."""

    show_id: Label
    stream_id: Label
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
    # Or the name of one of the probe's ``credentials``.
    credential: str | None = Field(default=None, max_length=128)
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
        if self.credential is not None and self._own_secret:
            raise ValueError("give credential or token_* / apisecret_* keys, not both")
        return self

    @property
    def _own_secret(self) -> bool:
        return any((self.token_env, self.token_file, self.apisecret_env, self.apisecret_file))

    def with_credentials(self, credentials: dict[str, Credential]) -> StreamTarget:
        """This target with its named credential's keys filled in. An unknown
        name is kept, and every join then fails saying so."""
        cred = credentials.get(self.credential or "")
        if cred is None:
            return self
        return self.model_copy(update=cred.model_dump())

    @property
    def token_source(self) -> SecretSource:
        return SecretSource(self.token_env, self.token_file, self._unknown_credential())

    @property
    def apisecret_source(self) -> SecretSource:
        return SecretSource(self.apisecret_env, self.apisecret_file, self._unknown_credential())

    def _unknown_credential(self) -> str | None:
        if self.credential is None or self._own_secret:
            return None
        return f"no credential {self.credential!r} in this probe's config"


class ProbeConfig(_Strict):
    labels: ProbeLabels
    # Bearer token for the collector. Never logged, never in repr(). Or
    # named: ``token_env`` (an environment variable), ``token_file`` (a
    # file, e.g. "${CREDENTIALS_DIRECTORY}/probe-token" under systemd).
    token: str = Field(default="", repr=False, max_length=4096)
    token_env: str | None = None
    token_file: str | None = None
    collector_url: str | None = Field(default=None, pattern=r"^https?://")
    # Streams watched whatever the collector says. May be empty when the
    # collector assigns the work.
    streams: list[StreamTarget] = Field(default_factory=list)
    # Named secrets for streams (from here or assigned) that refer to them.
    credentials: dict[str, Credential] = Field(default_factory=dict)
    # With a collector: register there and watch the streams of the running
    # shows it assigns to this probe (labels, capabilities), polling it.
    assignment: bool = True
    assignment_poll_s: float = Field(default=2.0, ge=0.2, le=300)
    max_streams: int = Field(default=50, ge=1, le=10_000)
    # Where samples wait while the collector is unreachable; None keeps them in
    # memory only (lost on restart, still bounded).
    spool_dir: Path | None = None
    spool_max_samples: int = Field(default=100_000, ge=10)
    # When the spool's disk refuses writes (full, read-only), batches are
    # held in memory up to this many samples, the oldest dropped first.
    spool_memory_max_samples: int = Field(default=10_000, ge=10)
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
    # Seconds without a media packet after which a session whose server
    # offers it (WHEP PATCH) gets an ICE restart, as a browser would, before
    # it is called dead and joined again. At or above dead_after_s: never.
    ice_restart_after_s: float = Field(default=3.0, gt=0, le=600)
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
        named = resolve_secret(SecretStr(self.token) if self.token else None,
                               self.token_env, self.token_file, "token")
        self.token = named.get_secret_value() if named is not None else ""
        if len(self.token) > 4096:
            raise ValueError("token: longer than 4096 characters")
        if self.collector_url is not None and not self.token:
            raise ValueError("collector_url needs a token (token, token_env or token_file)")
        if not self.streams and (self.collector_url is None or not self.assignment):
            raise ValueError("no streams: list some, or give a collector_url to be assigned "
                             "streams by the collector")
        for i, s in enumerate(self.streams):
            if s.credential is not None and s.credential not in self.credentials:
                raise ValueError(f"streams[{i}].credential: no credentials.{s.credential}")
        self.streams = [s.with_credentials(self.credentials) for s in self.streams]
        return self
