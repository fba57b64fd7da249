"""The timeline: the audience and orders over the show by region, the
on-screen SKUs' stock, and the list of incidents in order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from qosmon.report import charts
from qosmon.report.charts import Series
from qosmon.report.sections.context import N_BUCKETS, ReportContext
from qosmon.report.sections.incidents import IncidentRow, incident_rows
from qosmon.report.sections.stock import on_screen_charts
from qosmon.report.signals import Grid, bucket_series, bucket_sum, grid_for, nice_width
from qosmon.report.timing import rate_unit


@dataclass(frozen=True)
class TimelineView:
    viewers_chart: Markup  # viewers online, stacked by region
    orders_chart: Markup  # orders per bucket, stacked by region
    orders_caption: str
    on_screen_lanes: Markup  # empty when no SKU was on screen
    stock_chart: Markup
    incidents: list[IncidentRow]


def _business_charts(ctx: ReportContext) -> tuple[Markup, Markup, str]:
    """(viewers online stacked by region, orders stacked by region, the
    orders chart's caption)."""
    bv, span, bands, t = ctx.business, ctx.span, ctx.bands, ctx.t
    n_s = bv.viewers.shape[1] if bv.regions else max(1, int(np.rint(span.seconds)))
    colours = charts.SERIES_COLOURS
    grid = grid_for(span.t0, span.t0 + n_s, N_BUCKETS)
    sec_all = np.arange(n_s, dtype=np.int64)
    base = np.zeros(grid.n)
    viewer_series: list[Series] = []
    for i, name in enumerate(bv.regions):
        b = bucket_series(sec_all, bv.viewers[i], grid)
        top = base + np.nan_to_num(b.mean)
        s = Series.from_buckets(name or t("all viewers"), b, colours[i % 7])
        s.v = np.where(np.isnan(b.mean), np.nan, top)
        s.base, s.lo, s.hi, s.width = base, None, None, 1.0
        viewer_series.append(s)
        base = top
    if len(viewer_series) > 1:
        total = bucket_series(sec_all, bv.total_viewers, grid)
        tl = Series.from_buckets(t("all regions"), total, charts.INK)
        tl.lo = tl.hi = None
        tl.width = 1.8
        viewer_series.append(tl)
    viewers_chart = charts.time_chart(
        span.t0, span.t1, viewer_series, title=t("viewers online"), unit=t("viewers"),
        bands=bands, height=200, t=t,
    )
    # Bars a reader can count: ~24-40 of them whatever the show's length.
    width = nice_width(n_s, 40)
    og = Grid(span.t0, 0, n_s, width)
    base = np.zeros(og.n)
    order_series: list[Series] = []
    for i, name in enumerate(bv.regions):
        m = bv.region_idx == i
        counts = bucket_sum(np.clip(bv.sec[m], 0, n_s - 1), bv.orders[m], og)
        s = Series(name=name or t("all orders"), t=og.starts + width / 2, v=base + counts,
                   base=base, bar_s=width, colour=colours[i % 7])
        order_series.append(s)
        base = base + counts
    unit = t("orders {rate}").format(rate=rate_unit(width, t))
    orders_chart = charts.time_chart(
        span.t0, span.t1, order_series, title=unit, unit=unit, bands=bands, height=170, t=t,
    )
    return viewers_chart, orders_chart, t("Orders {rate}, by region").format(
        rate=rate_unit(width, t))


def build(ctx: ReportContext) -> TimelineView:
    viewers, orders, caption = _business_charts(ctx)
    lanes, units = on_screen_charts(ctx)
    return TimelineView(viewers_chart=viewers, orders_chart=orders, orders_caption=caption,
                        on_screen_lanes=lanes, stock_chart=units, incidents=incident_rows(ctx))
