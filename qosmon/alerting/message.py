"""What a person reads in a notification: what, where, since when, why.

Pure text formatting shared by every notifier, so a Slack message, a
PagerDuty summary and a webhook body say the same thing, in the route's
language (English or Simplified Chinese). Times are UTC with the region's
own local time next to them: on-call may sit far from the viewers."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from qosmon.i18n import DEFAULT_LANGUAGE, cause_name
from qosmon.model import Alert, AlertStatus
from qosmon.regions import region_zone

_ZH = {
    "show": "直播", "region": "地区", "all regions": "全部地区", "node": "节点",
    "since": "自", "to": "至", "RESOLVED": "已恢复", "evidence": "证据",
    "live view / report": "实时页面 / 报告", "CRITICAL": "严重", "WARNING": "警告",
    "INFO": "提示",
}


def label(lang: str, text: str) -> str:
    """A fixed word of the message frame in ``lang``."""
    return _ZH.get(text, text) if lang == "zh" else text


def format_since(ts: float, region: str = "") -> str:
    """``12:00:05 UTC``, with the region's local time when it has a zone of
    its own: ``12:00:05 UTC (19:00:05 Asia/Bangkok)``."""
    utc = datetime.fromtimestamp(ts, UTC)
    text = utc.strftime("%H:%M:%S UTC")
    zone = region_zone(region) if region else "UTC"
    if zone != "UTC":
        text += f" ({utc.astimezone(ZoneInfo(zone)).strftime('%H:%M:%S')} {zone})"
    return text


def format_duration(seconds: float, lang: str = DEFAULT_LANGUAGE) -> str:
    s = max(0, round(seconds))
    if lang == "zh":
        if s < 60:
            return f"{s} 秒"
        if s < 3600:
            return f"{s // 60} 分 {s % 60:02d} 秒"
        return f"{s // 3600} 小时 {s % 3600 // 60:02d} 分"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def where(show_id: str, region: str, node: str, lang: str = DEFAULT_LANGUAGE) -> str:
    parts = [f"{label(lang, 'show')} {show_id}"]
    parts.append(f"{label(lang, 'region')} {region}" if region else label(lang, "all regions"))
    if node:
        parts.append(f"{label(lang, 'node')} {node}")
    return ("，" if lang == "zh" else ", ").join(parts)


def headline(alert: Alert, now: float | None = None, lang: str = DEFAULT_LANGUAGE) -> str:
    """One line: what, where, since when (and how long, or when it ended)."""
    what = cause_name(alert.cause, lang)
    loc = where(alert.show_id, alert.region, alert.node, lang)
    if alert.status == AlertStatus.RESOLVED and alert.ends_at is not None:
        lasted = format_duration(alert.ends_at - alert.starts_at, lang)
        span = (f"{format_since(alert.starts_at, alert.region)} {label(lang, 'to')} "
                f"{format_since(alert.ends_at, alert.region)}")
        return f"{label(lang, 'RESOLVED')} {what} - {loc} - {span} ({lasted})"
    since = f"{label(lang, 'since')} {format_since(alert.starts_at, alert.region)}"
    if now is not None:
        since += f" ({format_duration(now - alert.starts_at, lang)})"
    return f"[{label(lang, alert.severity.value.upper())}] {what} - {loc} - {since}"


def body_lines(alert: Alert, now: float | None = None,
               lang: str = DEFAULT_LANGUAGE) -> list[str]:
    """The headline, then the cause's summary, the evidence and the link."""
    lines = [headline(alert, now, lang)]
    if alert.summary:
        lines.append(alert.summary)
    if alert.evidence:
        lines.append(f"{label(lang, 'evidence')}: {alert.evidence}")
    if alert.url:
        lines.append(f"{label(lang, 'live view / report')}: {alert.url}")
    return lines

