"""What a person reads in a notification: what, where, since when, why.

Pure text formatting shared by every notifier, so a Slack message, a
PagerDuty summary and a webhook body say the same thing."""

from __future__ import annotations

from datetime import UTC, datetime

from qosmon.model import Alert, AlertStatus


def format_since(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def where(show_id: str, region: str, node: str) -> str:
    parts = [f"show {show_id}"]
    parts.append(f"region {region}" if region else "all regions")
    if node:
        parts.append(f"node {node}")
    return ", ".join(parts)


def headline(alert: Alert, now: float | None = None) -> str:
    """One line: what, where, since when (and how long, or when it ended)."""
    what = alert.cause.value.replace("_", " ")
    loc = where(alert.show_id, alert.region, alert.node)
    if alert.status == AlertStatus.RESOLVED and alert.ends_at is not None:
        lasted = format_duration(alert.ends_at - alert.starts_at)
        span = f"{format_since(alert.starts_at)} to {format_since(alert.ends_at)}"
        return f"RESOLVED {what} - {loc} - {span} ({lasted})"
    since = f"since {format_since(alert.starts_at)}"
    if now is not None:
        since += f" ({format_duration(now - alert.starts_at)})"
    return f"[{alert.severity.value.upper()}] {what} - {loc} - {since}"


def body_lines(alert: Alert, now: float | None = None) -> list[str]:
    """The headline, then the cause's summary, the evidence and the link."""
    lines = [headline(alert, now)]
    if alert.summary:
        lines.append(alert.summary)
    if alert.evidence:
        lines.append(f"evidence: {alert.evidence}")
    if alert.url:
        lines.append(f"live view / report: {alert.url}")
    return lines
