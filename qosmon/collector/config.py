"""The collector's configuration (``config/collector.toml``).

Tokens are ``SecretStr``: they print as ``**********`` in reprs, logs and
error messages.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from qosmon.logs import LogFormat
from qosmon.store.url import DEFAULT_STORE_URL, parse_store_url

_LABEL = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
# Short tokens can be guessed; 16 characters of a random token is ~96 bits.
_TOKEN = Field(min_length=16, max_length=512)


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbeCredential(_Cfg):
    probe_id: str = _LABEL
    token: SecretStr = _TOKEN


class RateLimit(_Cfg):
    """A token bucket per API token: ``burst`` requests at once, refilled at
    ``requests_per_s``."""

    requests_per_s: float = Field(default=20.0, gt=0)
    burst: int = Field(default=40, ge=1)


class Retention(_Cfg):
    """Embedded store only: raw probe samples of shows whose newest sample is
    older than ``raw_days`` are replaced by per-minute aggregates; with
    ``keep_days`` set, shows older than that are deleted altogether."""

    enabled: bool = True
    raw_days: float = Field(default=30.0, gt=0)
    keep_days: float | None = Field(default=None, gt=0)
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
    # Empty: the read endpoints (GET) are open, as on a loopback-only
    # collector. Otherwise a GET needs one of these (or a feed token).
    read_tokens: list[SecretStr] = Field(default_factory=list)
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
        ids = [p.probe_id for p in self.probes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"probe_id listed twice: {', '.join(dup)}")
        tokens = [p.token.get_secret_value() for p in self.probes]
        if len(set(tokens)) != len(tokens):
            raise ValueError("two probes share a token (each probe needs its own)")
        for t in self.feed_tokens + self.read_tokens:
            if len(t.get_secret_value()) < 16:
                raise ValueError("feed and read tokens need at least 16 characters")
        return self
