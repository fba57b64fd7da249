"""The collector's configuration (``config/collector.toml``).

Tokens are ``SecretStr``: they print as ``**********`` in reprs, logs and
error messages. Each may also be named instead of written: ``*_env`` (an
environment variable) or ``*_file`` (a file, e.g. a systemd credential);
see ``qosmon.credentials``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from qosmon.credentials import resolve_secret
from qosmon.logs import LogFormat
from qosmon.model import Label, OptLabel
from qosmon.store.url import DEFAULT_STORE_URL, parse_store_url

# Short tokens can be guessed; 16 characters of a random token is ~96 bits.
TOKEN_MIN_CHARS = 16
TOKEN_MAX_CHARS = 512


def _check_token(token: SecretStr, what: str) -> SecretStr:
    n = len(token.get_secret_value())
    if not TOKEN_MIN_CHARS <= n <= TOKEN_MAX_CHARS:
        raise ValueError(f"{what} must have {TOKEN_MIN_CHARS} to {TOKEN_MAX_CHARS} characters")
    return token


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbePin(_Cfg):
    """The labels a probe's token may post under; a label left out is not
    checked. A sample or heartbeat claiming another value is refused (403),
    so a leaked probe token cannot fabricate an incident elsewhere."""

    region: Label | None = None
    isp: OptLabel | None = None
    edge_node: OptLabel | None = None


class ProbeCredential(_Cfg):
    probe_id: Label
    token: SecretStr | None = Field(default=None, repr=False, min_length=TOKEN_MIN_CHARS,
                                    max_length=TOKEN_MAX_CHARS)
    token_env: str | None = None
    token_file: str | None = None
    labels: ProbePin = Field(default_factory=ProbePin)
    # The shows this probe may post samples for; empty: any show the
    # collector knows (a show it does not know is refused either way).
    shows: list[Label] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _resolve_token(self) -> ProbeCredential:
        token = resolve_secret(self.token, self.token_env, self.token_file, "token")
        if token is None:
            raise ValueError("needs token, token_env or token_file")
        source = "token_env" if self.token_env else "token_file" if self.token_file else "token"
        self.token = _check_token(token, source)
        return self

    @property
    def secret(self) -> SecretStr:
        assert self.token is not None  # resolved by the validator
        return self.token


class RateLimit(_Cfg):
    """A token bucket per API token: ``burst`` requests at once, refilled at
    ``requests_per_s``."""

    requests_per_s: float = Field(default=20.0, gt=0)
    burst: int = Field(default=40, ge=1)
    # Reads without a token (``read_tokens`` empty): a bucket per client
    # address instead.
    open_reads_per_s: float = Field(default=5.0, gt=0)
    open_reads_burst: int = Field(default=20, ge=1)


class Limits(_Cfg):
    """Bounds on what one request may cost and on the times it may claim.
    Each refusal is counted in ``qosmon_collector_requests_rejected``."""

    # Connection open (or idle after a response) this long without a whole
    # request head: closed. Also the idle keep-alive time.
    header_timeout_s: float = Field(default=20.0, gt=0, le=600)
    # A request body not fully received within this: 408.
    body_timeout_s: float = Field(default=15.0, gt=0, le=600)
    # A handler (body, store, answer) taking longer: 503 (streams exempt).
    request_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # One store call taking longer: 503, nothing acknowledged.
    store_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # Series reads: at most this many points per answer (more rows are
    # averaged into buckets server-side), this many minutes back, this
    # many reads at once (more: 429).
    series_max_points: int = Field(default=20_000, ge=100, le=1_000_000)
    series_max_minutes: float = Field(default=24 * 60.0, gt=0)
    series_concurrency: int = Field(default=2, ge=1, le=64)
    # Samples older than this (probe clock vs ours) are refused; the spool
    # of a probe holds about a day at most.
    max_sample_age_s: float = Field(default=2 * 86400.0, gt=0)
    # Samples older than this are stored but not handed to the live
    # analysis (it would replay every second since then to place them).
    live_max_age_s: float = Field(default=600.0, gt=0)
    # Shows: start no further ahead than this, no longer than this.
    max_show_lead_days: float = Field(default=30.0, gt=0)
    max_show_hours: float = Field(default=48.0, gt=0)


class Retention(_Cfg):
    """Embedded store only: raw probe samples of shows whose newest sample is
    older than ``raw_days`` are replaced by per-minute aggregates; with
    ``keep_days`` set, shows older than that are deleted altogether."""

    enabled: bool = True
    raw_days: float = Field(default=30.0, gt=0)
    keep_days: float | None = Field(default=365.0, gt=0)
    # Probe batch ids (kept so a retry is answered "duplicate") are
    # forgotten after this; a probe retries for as long as its spool
    # holds a batch, about a day at most.
    batch_id_days: float = Field(default=7.0, gt=0)
    check_interval_s: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _keep_after_raw(self) -> Retention:
        if self.keep_days is not None and self.keep_days < self.raw_days:
            raise ValueError("keep_days must be at least raw_days")
        return self


class LiveConfig(_Cfg):
    """Live analysis behind the collector: diagnosis, stock levels, alerts,
    and the report written when a show ends. Paths are relative to the
    collector's config file; an absent file means the defaults (and, for
    alerting, no routes: incidents are still diagnosed and stored)."""

    enabled: bool = True
    diagnosis_config: str | None = None
    inventory_config: str | None = None
    alerting_config: str | None = None
    # Where each show's report is written when it ends; unset: not written.
    report_dir: str | None = "reports"
    # Language of those reports, their index and the history next to them.
    report_language: Literal["en", "zh"] = "en"
    # Link put in alerts once the show is over; {show_id} is replaced.
    report_url: str = Field(default="", max_length=500)
    # The collector's address as on-call reaches it (e.g.
    # https://qosmon.example.net:8480): while a show runs, alerts link to its
    # live page there ({page_url}/shows/{show_id}). Unset: report_url.
    page_url: str = Field(default="", max_length=500, pattern=r"^(https?://[^\s]+)?$")
    # Stored data replayed into a show's diagnosis on start (and for a show
    # created after its samples came).
    replay_s: float = Field(default=600.0, ge=0, le=86400)
    # A show with no end call ends at its planned end plus this.
    end_grace_s: float = Field(default=600.0, ge=0, le=86400)
    # After a restart, how long a show's diagnosis waits for its probes.
    resume_wait_s: float = Field(default=30.0, ge=0, le=3600)
    # This collector's name in the store's show leases (default: the host
    # name). Keep it across restarts; give each collector sharing a store
    # its own.
    collector_id: str = Field(default="", max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")
    # A show's lease runs out this long after its holder last renewed it;
    # then another collector takes the show over.
    lease_ttl_s: float = Field(default=15.0, ge=1, le=3600)
    lease_renew_s: float = Field(default=3.0, gt=0, le=600)

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> LiveConfig:
        if self.lease_renew_s * 2 > self.lease_ttl_s:
            raise ValueError("lease_renew_s must be at most half of lease_ttl_s")
        return self


class CollectorConfig(_Cfg):
    host: str = Field(default="127.0.0.1", min_length=1)
    # 0 picks a free port (tests, the in-process demo).
    port: int = Field(default=8480, ge=0, le=65535)
    store: str = Field(default=DEFAULT_STORE_URL, min_length=1)
    probes: list[ProbeCredential] = Field(default_factory=list)
    # Commerce platform and warehouse feeds (shows, business, inventory).
    feed_tokens: list[SecretStr] = Field(default_factory=list)
    # Or named: environment variables, files (one token each).
    feed_tokens_env: list[str] = Field(default_factory=list)
    feed_tokens_file: list[str] = Field(default_factory=list)
    # Empty: the read endpoints (GET) are open, as on a loopback-only
    # collector. Otherwise a GET needs one of these (or a feed token).
    read_tokens: list[SecretStr] = Field(default_factory=list)
    read_tokens_env: list[str] = Field(default_factory=list)
    read_tokens_file: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retention: Retention = Field(default_factory=Retention)
    # Samples stamped further ahead of the collector's clock are rejected.
    max_future_skew_s: float = Field(default=30.0, ge=0)
    # A probe is up while its last heartbeat is younger than 3 intervals.
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    # Worker threads that wait on the store (writes are group-committed by
    # the store itself, so more waiters mean bigger groups, not more locks).
    store_threads: int = Field(default=16, ge=1, le=256)
    # Log lines on stderr: "text", or "json" (one object a line, for a log
    # shipper). The command line's --log-format wins over this.
    log_format: LogFormat = "text"
    live: LiveConfig = Field(default_factory=LiveConfig)
    # The live show pages (/shows/...) need no token from the machine itself
    # (127.0.0.1, ::1) even when read tokens are configured.
    pages_open_on_loopback: bool = False
    # How often an open live page is brought up to date (at most; a show
    # whose page takes long to build is updated less often).
    page_refresh_s: float = Field(default=2.0, ge=0.5, le=60)

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        parse_store_url(value)  # a StoreURLError is a ValueError: reported with the key
        return value

    @model_validator(mode="after")
    def _unique(self) -> CollectorConfig:
        for kind in ("feed", "read"):
            tokens: list[SecretStr] = getattr(self, f"{kind}_tokens")
            for var in getattr(self, f"{kind}_tokens_env"):
                got = resolve_secret(None, var, None, f"{kind}_tokens")
                assert got is not None
                tokens.append(got)
            for path in getattr(self, f"{kind}_tokens_file"):
                got = resolve_secret(None, None, path, f"{kind}_tokens")
                assert got is not None
                tokens.append(got)
            getattr(self, f"{kind}_tokens_env").clear()
            getattr(self, f"{kind}_tokens_file").clear()
        ids = [p.probe_id for p in self.probes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"probe_id listed twice: {', '.join(dup)}")
        secrets = [p.secret.get_secret_value() for p in self.probes]
        if len(set(secrets)) != len(secrets):
            raise ValueError("two probes share a token (each probe needs its own)")
        for t in self.feed_tokens + self.read_tokens:
            _check_token(t, "feed and read tokens")
        return self
