"""Notifiers: one class per receiver format behind one small interface.

``send(notification)`` delivers one group of alerts or raises
:class:`DeliveryError` saying whether trying again could help. Retrying,
backoff and the delivery log belong to the runtime (``alerter.py``), so every
notifier gets the same policy.

Secrets (the HMAC key, PagerDuty routing key, the Slack webhook URL, any URL
path) never appear in an error message: notifiers describe their endpoint by
scheme://host:port only and redact every secret from the text they return.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from qosmon.alerting import signing
from qosmon.alerting.config import NotifierKind, RouteConfig
from qosmon.alerting.message import body_lines, headline, label
from qosmon.alerting.rules import Notification
from qosmon.configfile import ConfigError
from qosmon.errors import DeliveryError
from qosmon.model import Alert, AlertStatus, Severity

log = logging.getLogger(__name__)

Clock = Callable[[], float]
_BODY_SNIPPET = 200


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def public_endpoint(url: str) -> str:
    """What can be shown of a URL: scheme, host and port, never the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


class Notifier:
    """Base: an HTTP receiver reached through a shared aiohttp session."""

    kind: ClassVar[NotifierKind]
    # Seconds between re-posts of firing alerts, for receivers that forget
    # alerts that are not repeated (Alertmanager); None for the others.
    resend_s: float | None = None

    def __init__(
        self, route: RouteConfig, session: aiohttp.ClientSession, *, clock: Clock = time.time
    ) -> None:
        self.name = route.name
        self.route = route
        self.lang = route.language
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=route.timeout_s)
        try:
            self._url = route.endpoint_url()
            self._secrets = [
                s for s in (route.resolve(f) for f in ("url", "secret", "routing_key")) if s
            ]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        parts = urlsplit(self._url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"route {route.name}: url must be an http(s) URL with a host")
        # The path of a webhook URL is often the credential (Slack): hide it too.
        if parts.path.strip("/"):
            self._secrets.append(parts.path)
        self.endpoint = public_endpoint(self._url)

    async def send(self, notification: Notification) -> None:
        raise NotImplementedError

    async def resend(self) -> None:
        """Re-post what is still firing (only where ``resend_s`` is set)."""

    def restore(self, firing: Sequence[Alert]) -> None:
        """After a restart: the alerts this receiver was last told are firing
        (only receivers that need them re-posted keep them)."""

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """POST and classify the outcome; returns (status, response text)."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        try:
            async with self._session.post(
                url, data=body, headers=hdrs, timeout=self._timeout, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
        except TimeoutError:
            raise DeliveryError(
                f"no answer from {self.endpoint} within {self.route.timeout_s:g} s",
                retryable=True,
            ) from None
        except aiohttp.ClientConnectorError as exc:
            why = exc.os_error.strerror or type(exc.os_error).__name__
            raise DeliveryError(f"cannot connect to {self.endpoint}: {why}", retryable=True) \
                from None
        except aiohttp.ClientError as exc:
            # Other transport failures (reset, bad response line): transient.
            raise DeliveryError(
                self.redact(f"{type(exc).__name__} talking to {self.endpoint}: {exc}"),
                retryable=True,
            ) from None
        if 200 <= status < 300:
            return status, text
        snippet = " ".join(text.split())[:_BODY_SNIPPET]
        retryable = status in (408, 425, 429) or status >= 500
        raise DeliveryError(
            self.redact(f"{self.endpoint} answered HTTP {status}: {snippet}"), retryable=retryable
        )

    def _json(self, payload: Any) -> bytes:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _alert_json(alert: Alert, now: float, lang: str) -> dict[str, Any]:
    data = alert.model_dump(mode="json")
    data["headline"] = headline(alert, now, lang)
    data["starts_at_rfc3339"] = rfc3339(alert.starts_at)
    if alert.ends_at is not None:
        data["ends_at_rfc3339"] = rfc3339(alert.ends_at)
    return data


def _group_status(alerts: Sequence[Alert]) -> AlertStatus:
    firing = any(a.status == AlertStatus.FIRING for a in alerts)
    return AlertStatus.FIRING if firing else AlertStatus.RESOLVED


class WebhookNotifier(Notifier):
    """Generic JSON webhook, signed in the Standard Webhooks layout:
    ``webhook-id`` (the delivery id, also in the body as ``delivery_id``),
    ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>``
    (see ``signing.py``)."""

    kind = NotifierKind.WEBHOOK

    def __init__(
        self, route: RouteConfig, session: aiohttp.ClientSession, *, clock: Clock = time.time
    ) -> None:
        super().__init__(route, session, clock=clock)
        self._secret = route.resolve("secret") or ""

    def payload(self, n: Notification) -> dict[str, Any]:
        now = self._clock()
        return {
            "version": 1,
            "delivery_id": n.delivery_id,
            "group_key": n.group_key,
            "status": _group_status(n.alerts).value,
            "show_id": n.show_id,
            "region": n.region,
            "route": n.route,
            "sent_at": now,
            "language": self.lang,
            "text": "\n\n".join("\n".join(body_lines(a, now, self.lang)) for a in n.alerts),
            "alerts": [_alert_json(a, now, self.lang) for a in n.alerts],
        }

    async def send(self, notification: Notification) -> None:
        body = self._json(self.payload(notification))
        # Signed per attempt so a retry after a long outage is still fresh;
        # the id stays the same so the receiver can drop a duplicate.
        ts = int(self._clock())
        await self._post(self._url, body,
                         signing.headers(self._secret, notification.delivery_id, ts, body))


class SlackNotifier(Notifier):
    """Slack incoming webhook: ``text`` (fallback / notification) + ``blocks``."""

    kind = NotifierKind.SLACK
    _MAX_ALERTS = 20  # Slack allows 50 blocks per message

    def payload(self, n: Notification) -> dict[str, Any]:
        now = self._clock()
        first = headline(n.alerts[0], now, self.lang)
        more = f" (+{len(n.alerts) - 1} more)" if len(n.alerts) > 1 else ""
        where = f"{n.show_id} / {n.region or 'all regions'}"
        status = _group_status(n.alerts)
        title = f"qosmon {n.route}: {where} - {status.value}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        ]
        for alert in n.alerts[: self._MAX_ALERTS]:
            lines = [f"*{_mrkdwn(headline(alert, now, self.lang))}*"]
            if alert.summary:
                lines.append(_mrkdwn(alert.summary))
            if alert.evidence:
                lines.append(f"_{label(self.lang, 'evidence')}:_ {_mrkdwn(alert.evidence)}")
            if alert.url:
                lines.append(f"<{alert.url}|{label(self.lang, 'live view / report')}>")
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}}
            )
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": _mrkdwn(f"key {alert.key}")[:3000]}
            ]})
        if len(n.alerts) > self._MAX_ALERTS:
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": f"and {len(n.alerts) - self._MAX_ALERTS} more alerts"
            }})
        return {"text": first + more, "blocks": blocks}

    async def send(self, notification: Notification) -> None:
        await self._post(self._url, self._json(self.payload(notification)),
                         _id_header(notification))


def _id_header(n: Notification) -> dict[str, str]:
    # Receivers other than the signed webhook may log it; it costs nothing.
    return {signing.ID_HEADER: n.delivery_id} if n.delivery_id else {}


def _mrkdwn(text: str) -> str:
    # Slack's required escapes; anything else is shown as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


class PagerDutyNotifier(Notifier):
    """PagerDuty Events API v2: one event per alert, ``dedup_key`` = alert key,
    so a repeat updates the open incident and the resolve closes it."""

    kind = NotifierKind.PAGERDUTY

    def __init__(
        self, route: RouteConfig, session: aiohttp.ClientSession, *, clock: Clock = time.time
    ) -> None:
        super().__init__(route, session, clock=clock)
        self._routing_key = route.resolve("routing_key") or ""

    def event(self, alert: Alert) -> dict[str, Any]:
        if alert.status == AlertStatus.RESOLVED:
            return {
                "routing_key": self._routing_key, "event_action": "resolve",
                "dedup_key": alert.key,
            }
        now = self._clock()
        details: dict[str, Any] = {
            "show": alert.show_id, "region": alert.region or "all", "node": alert.node,
            "cause": alert.cause.value, "since": rfc3339(alert.starts_at),
            "summary": alert.summary, "evidence": alert.evidence, "route": alert.route,
            "incident_id": alert.incident_id,
        }
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": alert.key,
            "payload": {
                "summary": headline(alert, now, self.lang)[:1024],
                "source": f"qosmon/{alert.show_id}/{alert.region or 'all'}",
                "severity": _PD_SEVERITY[alert.severity],
                "timestamp": rfc3339(alert.starts_at),
                "component": alert.node or alert.region or "show",
                "group": alert.region or "all",
                "class": alert.cause.value,
                "custom_details": details,
            },
        }
        if alert.url:
            event["links"] = [{"href": alert.url,
                               "text": label(self.lang, "live view / report")}]
        return event

    async def send(self, notification: Notification) -> None:
        # One event per alert; a retry re-sends all of them, which PagerDuty
        # de-duplicates by dedup_key.
        for alert in notification.alerts:
            await self._post(self._url, self._json(self.event(alert)), _id_header(notification))


class AlertmanagerNotifier(Notifier):
    """Prometheus Alertmanager ``POST /api/v2/alerts``.

    Firing alerts carry ``endsAt`` a few resend periods ahead and are
    re-posted every ``resend_s`` (as Prometheus does), so Alertmanager keeps
    them open exactly as long as qosmon does; a resolve posts ``endsAt``. A
    label change (severity escalation) ends the old label set in the same
    request, since Alertmanager identifies alerts by their labels."""

    kind = NotifierKind.ALERTMANAGER

    def __init__(
        self, route: RouteConfig, session: aiohttp.ClientSession, *, clock: Clock = time.time
    ) -> None:
        super().__init__(route, session, clock=clock)
        base = self._url.rstrip("/")
        self._post_url = base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"
        self.resend_s = route.resend_s
        # key -> (labels last sent, alert) for alerts Alertmanager holds firing
        self._firing: dict[str, tuple[dict[str, str], Alert]] = {}

    @staticmethod
    def labels(alert: Alert) -> dict[str, str]:
        labels = {
            "alertname": "Qosmon" + "".join(w.title() for w in alert.cause.value.split("_")),
            "show": alert.show_id,
            "region": alert.region,
            "node": alert.node,
            "cause": alert.cause.value,
            "severity": alert.severity.value,
            "route": alert.route,
        }
        # An empty label is the same as no label to Alertmanager.
        return {k: v for k, v in labels.items() if v}

    def _entry(self, labels: dict[str, str], alert: Alert, ends_at: float) -> dict[str, Any]:
        annotations = {"summary": headline(alert, lang=self.lang), "evidence": alert.evidence,
                       "url": alert.url, "description": alert.summary}
        entry: dict[str, Any] = {
            "labels": labels,
            "annotations": {k: v for k, v in annotations.items() if v},
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(ends_at),
        }
        if alert.url:
            entry["generatorURL"] = alert.url
        return entry

    def payload(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        now = self._clock()
        lease = now + 4 * self.route.resend_s
        out: list[dict[str, Any]] = []
        for alert in alerts:
            labels = self.labels(alert)
            before = self._firing.get(alert.key)
            if before is not None and before[0] != labels:
                out.append(self._entry(before[0], before[1], now))
            if alert.status == AlertStatus.RESOLVED:
                out.append(self._entry(labels, alert, alert.ends_at or now))
            else:
                out.append(self._entry(labels, alert, lease))
        return out

    async def send(self, notification: Notification) -> None:
        await self._post(self._post_url, self._json(self.payload(notification.alerts)),
                         _id_header(notification))
        for alert in notification.alerts:
            if alert.status == AlertStatus.RESOLVED:
                self._firing.pop(alert.key, None)
            else:
                self._firing[alert.key] = (self.labels(alert), alert)

    def restore(self, firing: Sequence[Alert]) -> None:
        for alert in firing:
            self._firing[alert.key] = (self.labels(alert), alert)

    async def resend(self) -> None:
        if self._firing:
            alerts = [a for _, a in self._firing.values()]
            await self._post(self._post_url, self._json(self.payload(alerts)))


NOTIFIERS: dict[NotifierKind, type[Notifier]] = {
    cls.kind: cls
    for cls in (WebhookNotifier, SlackNotifier, PagerDutyNotifier, AlertmanagerNotifier)
}


def make_notifier(
    route: RouteConfig, session: aiohttp.ClientSession, *, clock: Clock = time.time
) -> Notifier:
    return NOTIFIERS[route.kind](route, session, clock=clock)

