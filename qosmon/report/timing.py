"""The time a report covers and how it writes times.

Charts and tables count time from the show's start ("0:12 into the show");
absolute times are UTC, with a region's own local time next to them where a
time belongs to a region. A show still running covers up to ``now``. Texts
with words take the page's translator ``t`` (English when none is given).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from qosmon.report.data import ShowData

Translate = Callable[[str], str]


def english(text: str) -> str:
    """The translator of the English page: every text as it is."""
    return text


@dataclass(frozen=True)
class Span:
    t0: float
    t1: float

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def show_span(data: ShowData, now: float | None = None) -> Span:
    """From the show's start to its end; for a show still running, to
    ``now`` (or to the last data when no ``now`` is given)."""
    t0 = data.show.start_ts
    t1 = data.show.end_ts
    if t1 is None and now is not None:
        t1 = now
    if t1 is None:
        last = [s.ts for s in data.probe_samples[-1:]] + [b.ts for b in data.business[-1:]]
        t1 = max(last, default=t0 + 1)
    return Span(t0, max(t1, t0 + 1))


def utc(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_time(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def utc_and_local(ts: float | None, zone: str, t: Translate = english) -> str:
    """``12:00:05 UTC (19:00:05 Asia/Bangkok)``: the time in UTC and in the
    zone of the region it happened in (UTC alone when the zone is UTC). The
    local date is said when it is not the UTC date."""
    if ts is None:
        return "–"
    if zone == "UTC":
        return f"{utc_time(ts)} UTC"
    at = datetime.fromtimestamp(ts, UTC)
    here = at.astimezone(ZoneInfo(zone))
    local = here.strftime("%H:%M:%S" if here.date() == at.date() else "%Y-%m-%d %H:%M:%S")
    return t("{utc} UTC ({local} {zone})").format(utc=utc_time(ts), local=local, zone=zone)


def duration_text(seconds: float, t: Translate = english) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return t("{h} h {m:02d} min").format(h=h, m=m)
    if m:
        return t("{m} min {s:02d} s").format(m=m, s=sec) if sec else t("{m} min").format(m=m)
    return t("{s} s").format(s=sec)


def rate_unit(width_s: int, t: Translate = english) -> str:
    """'per 10 s', 'per minute', 'per 5 min' for a bucket width."""
    if width_s < 60:
        return t("per {n} s").format(n=width_s)
    if width_s == 60:
        return t("per minute")
    if width_s < 3600:
        return t("per {n} min").format(n=width_s // 60)
    return t("per hour") if width_s == 3600 else t("per {n:g} h").format(n=width_s / 3600)
