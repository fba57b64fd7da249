"""The headline: the show's figures at a glance and the verdict per region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup

from qosmon.model import STOCK_CAUSES, Cause
from qosmon.report import charts
from qosmon.report.charts import Lane
from qosmon.report.sections.context import ReportContext
from qosmon.report.timing import duration_text, utc
from qosmon.report.verdict import STATUS_NAMES, RegionVerdict, ReportThresholds
from qosmon.report.vocabulary import STATUS_ORDER


@dataclass(frozen=True)
class HeadlineView:
    show_id: str
    title: str
    start_ts: float
    start: str  # UTC
    end: str  # UTC: the show's end, or "now" for a show still running
    live: bool
    duration_s: float
    duration: str
    peak_viewers: int | None
    peak_at: str | None  # h:mm into the show
    orders: int | None
    stream_incidents: int
    stock_incidents: int
    local_incidents: int
    lost_viewers: float
    lost_orders: float
    verdicts: list[RegionVerdict]
    verdict_lanes: Markup
    status_legend: list[tuple[str, str]]  # (status, fill)
    th: ReportThresholds
    n_probes: int
    n_samples: int
    n_regions: int

    def index_entry(self) -> dict[str, Any]:
        """The show's line in the folder's index (index.json)."""
        return {
            "show_id": self.show_id, "title": self.title, "start_ts": self.start_ts,
            "start": self.start, "duration_s": self.duration_s,
            # The index is data: in English whatever the page's language.
            "duration": duration_text(self.duration_s),
            "peak_viewers": self.peak_viewers, "orders": self.orders,
            "incidents": self.stream_incidents, "stock_incidents": self.stock_incidents,
            "verdicts": {v.region: {"overall": v.overall,
                                    "good_pct": round(v.pct("good"), 1),
                                    "degraded_pct": round(v.pct("degraded"), 1),
                                    "failed_pct": round(v.pct("failed"), 1),
                                    "unknown_pct": round(v.pct("unknown"), 1)}
                         for v in self.verdicts},
        }


def build(ctx: ReportContext) -> HeadlineView:
    span, show = ctx.span, ctx.data.show
    total_v = ctx.business.total_viewers
    peak_viewers = peak_at = None
    if len(total_v) and not np.all(np.isnan(total_v)):
        k = int(np.nanargmax(total_v))
        peak_viewers, peak_at = int(total_v[k]), span.t0 + k + 1
    orders = ctx.business.orders
    total_orders = int(np.nansum(orders)) if not np.all(np.isnan(orders)) else None
    t = ctx.t
    lanes = charts.lanes_chart(
        span.t0, span.t1,
        [Lane(label=v.region, runs=charts.runs_from_timeline(span.t0, v.timeline,
                                                               dict(STATUS_NAMES)))
         for v in ctx.verdicts],
        charts.STATUS_FILL, title=t("verdict per region over the show"), bands=ctx.bands, t=t,
    )
    return HeadlineView(
        show_id=show.show_id, title=show.title, start_ts=span.t0, start=utc(span.t0),
        end=utc(span.t1), live=ctx.live, duration_s=span.seconds,
        duration=duration_text(span.seconds, t), peak_viewers=peak_viewers,
        peak_at=charts.fmt_clock(peak_at - span.t0) if peak_at else None,
        orders=total_orders,
        stream_incidents=sum(1 for i in ctx.incidents
                             if i.cause not in STOCK_CAUSES and i.cause != Cause.PROBE_LOCAL),
        stock_incidents=sum(1 for i in ctx.incidents if i.cause in STOCK_CAUSES),
        local_incidents=len(ctx.local),
        lost_viewers=sum(i.viewers_lost or 0 for i in ctx.incidents),
        lost_orders=sum(i.orders_lost or 0 for i in ctx.incidents),
        verdicts=ctx.verdicts, verdict_lanes=lanes,
        status_legend=[(t(s), charts.STATUS_FILL[s]) for s in STATUS_ORDER],
        th=ctx.th, n_probes=len(ctx.table.probes), n_samples=len(ctx.table),
        n_regions=len(ctx.regions),
    )
