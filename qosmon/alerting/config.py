"""Alerting settings and routes, as read from ``config/alerting.toml``.

Secrets (HMAC secret, PagerDuty routing key, Slack webhook URL) can be given
inline or, better, through ``*_env`` keys naming an environment variable; they
are held as ``SecretStr`` so a repr or a log line never shows them.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from qosmon.alerting.rules import ROUTE_NAMES, RuleSettings

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class NotifierKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    ALERTMANAGER = "alertmanager"


class RetryPolicy(BaseModel):
    """Exponential backoff, bounded both per wait and in attempts."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=12, ge=1, le=100)
    initial_backoff_s: float = Field(default=0.5, gt=0, le=600)
    max_backoff_s: float = Field(default=30.0, gt=0, le=3600)
    multiplier: float = Field(default=2.0, ge=1, le=10)

    def backoff_s(self, attempt: int) -> float:
        """Wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))


class RouteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: NotifierKind
    # For slack the whole URL is the secret: use url_env.
    url: SecretStr | None = None
    url_env: str | None = None
    secret: SecretStr | None = None  # webhook HMAC key
    secret_env: str | None = None
    routing_key: SecretStr | None = None  # PagerDuty integration key
    routing_key_env: str | None = None
    serves: list[str] = Field(default_factory=lambda: ["oncall"], min_length=1)
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # Alertmanager forgets an alert not re-posted within its resolve_timeout
    # (5 min by default), so firing alerts are re-posted this often.
    resend_s: float = Field(default=60.0, gt=0, le=3600)
    # The language people on this route read: "en" or "zh" (Simplified Chinese).
    language: Literal["en", "zh"] = "en"

    @field_validator("serves")
    @classmethod
    def _known_audiences(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in ROUTE_NAMES]
        if bad:
            raise ValueError(f"unknown audience {bad[0]!r}: use {' or '.join(ROUTE_NAMES)}")
        return v

    @model_validator(mode="after")
    def _complete(self) -> RouteConfig:
        for field in ("url", "secret", "routing_key"):
            if getattr(self, field) is not None and getattr(self, f"{field}_env") is not None:
                raise ValueError(f"give {field} or {field}_env, not both")
        if self.kind != NotifierKind.PAGERDUTY and not self._has("url"):
            raise ValueError(f"a {self.kind.value} route needs url (or url_env)")
        if self.kind == NotifierKind.WEBHOOK and not self._has("secret"):
            raise ValueError("a webhook route needs secret (or secret_env) to sign its body")
        if self.kind == NotifierKind.PAGERDUTY and not self._has("routing_key"):
            raise ValueError("a pagerduty route needs routing_key (or routing_key_env)")
        return self

    def _has(self, field: str) -> bool:
        return getattr(self, field) is not None or getattr(self, f"{field}_env") is not None

    def resolve(self, field: str) -> str | None:
        """The value of a secret-bearing field, reading ``<field>_env`` if set.

        Raises ValueError naming the variable (never its value) if unset."""
        value: SecretStr | None = getattr(self, field)
        if value is not None:
            return value.get_secret_value()
        env: str | None = getattr(self, f"{field}_env")
        if env is None:
            return None
        got = os.environ.get(env)
        if not got:
            raise ValueError(f"route {self.name}: environment variable {env} ({field}) is not set")
        return got

    def endpoint_url(self) -> str:
        url = self.resolve("url")
        if url is None and self.kind == NotifierKind.PAGERDUTY:
            return PAGERDUTY_EVENTS_URL
        if url is None:
            raise ValueError(f"route {self.name}: no url")
        return url


class AlertingConfig(RuleSettings):
    """Rule timings (see :class:`RuleSettings`) plus where alerts go."""

    routes: list[RouteConfig] = Field(default_factory=list)
    # Maximum notifications waiting per route while its receiver is down;
    # beyond this the oldest is dropped (and logged).
    max_queue: int = Field(default=1000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertingConfig:
        seen: set[str] = set()
        for r in self.routes:
            if r.name in seen:
                raise ValueError(f"route name {r.name!r} used twice")
            seen.add(r.name)
        return self
