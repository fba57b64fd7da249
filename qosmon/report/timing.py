"""The time a report covers and how it writes times.

Charts and tables count time from the show's start ("0:12 into the show");
absolute times are UTC. A show still running covers up to ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from qosmon.report.data import ShowData


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


def duration_text(seconds: float) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s" if sec else f"{m} min"
    return f"{sec} s"


def rate_unit(width_s: int) -> str:
    """'per 10 s', 'per minute', 'per 5 min' for a bucket width."""
    if width_s < 60:
        return f"per {width_s} s"
    if width_s == 60:
        return "per minute"
    if width_s < 3600:
        return f"per {width_s // 60} min"
    return "per hour" if width_s == 3600 else f"per {width_s / 3600:g} h"
