"""Turn a :class:`ShowData` into one self-contained HTML page, and keep an
index of the reports in a folder.

Everything the page needs is inline (styles, SVG charts); it has no script
and asks nothing of the network. Outside text is escaped by jinja2's
autoescape; chart text is escaped where the SVG is built.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from qosmon import __version__
from qosmon.model import (
    STOCK_CAUSES,
    AlertDelivery,
    AlertStatus,
    BusinessSample,
    Cause,
    Incident,
    InjectedFault,
    Metric,
    StockLevel,
    StockState,
    incident_alert_key,
)
from qosmon.report import charts
from qosmon.report.charts import Band, Lane, Series, Threshold
from qosmon.report.data import ShowData
from qosmon.report.signals import (
    FloatArray,
    Grid,
    IntArray,
    ProbeTable,
    bucket_ratio,
    bucket_series,
    bucket_sum,
    grid_for,
    nice_width,
    per_second,
    second_slots,
    session_ttffs,
)
from qosmon.report.verdict import (
    STATUS_NAMES,
    ReportThresholds,
    excluded_mask,
    region_verdicts,
)

N_BUCKETS = 320  # points per chart: about two per pixel column at full width

CAUSE_TEXT = {
    Cause.NODE_FAILURE: ("node failure", "an edge or origin node stopped serving media"),
    Cause.BANDWIDTH: ("bandwidth", "bitrate down, queueing RTT up, frame rate down"),
    Cause.PACKET_LOSS: ("packet loss", "loss on the path with latency normal"),
    Cause.HIGH_LATENCY: ("high latency", "RTT high while media kept flowing"),
    Cause.CHAT_CHANNEL: ("chat channel", "the interaction channel failed; media fine"),
    Cause.STOCK_OUT: ("stock-out", "a SKU on screen sold out where viewers buy"),
    Cause.LOW_STOCK: ("low stock", "a SKU on screen ran low"),
    Cause.STALE_INVENTORY: ("stale inventory", "warehouse data too old or a sync fault"),
    Cause.NETWORK_FINE: ("not the network", "business moved while the stream was fine"),
    Cause.PROBE_LOCAL: ("probe-local", "one probe alone: its own problem"),
    Cause.UNKNOWN: ("unknown", "no rule explained it"),
}

# Evidence metric -> (label, unit) of its chart; every metric has one.
METRIC_TEXT: dict[Metric, tuple[str, str]] = {
    Metric.RTT_MS: ("RTT", "ms"),
    Metric.LOSS_PCT: ("packet loss", "%"),
    Metric.BITRATE_KBPS: ("bitrate", "kbps"),
    Metric.FPS: ("frame rate", "fps"),
    Metric.NO_FRAME_MS: ("time since last frame", "ms"),
    Metric.TTFF_MS: ("time to first frame", "ms"),
    Metric.CHAT_RTT_MS: ("chat delivery time", "ms"),
    Metric.CHAT_LOST_RATIO: ("chat messages lost", "% of sent"),
    Metric.PROBES_WITHOUT_MEDIA: ("probes without media", "probes"),
    Metric.DISCONNECTED_PROBES: ("probes disconnected", "probes"),
    Metric.HEALTHY_PEERS: ("other probes of the region fine", "probes"),
    Metric.HEALTHY_PROBES: ("probes with a fine stream", "probes"),
    Metric.VIEWERS_ONLINE: ("viewers online", "viewers"),
    Metric.VIEWERS_LEAVING: ("viewers leaving", "viewers"),
    Metric.ORDERS: ("orders", "orders"),
    Metric.CHAT_MESSAGES: ("chat messages", "messages"),
    Metric.SKU_ORDERS_30S: ("orders of the SKU", "orders"),
    Metric.ON_HAND: ("units on hand", "units"),
    Metric.DATA_AGE_S: ("age of the stock figures", "s"),
}
# Probe signals charted per probe from the probe table's column of that name.
_PROBE_METRICS = frozenset({
    Metric.RTT_MS, Metric.LOSS_PCT, Metric.BITRATE_KBPS, Metric.FPS, Metric.NO_FRAME_MS,
    Metric.CHAT_RTT_MS, Metric.CHAT_LOST_RATIO,
})
# Counts of probes: drawn as how many of the incident's probes had no media.
_MEDIA_COUNT_METRICS = frozenset({Metric.PROBES_WITHOUT_MEDIA, Metric.DISCONNECTED_PROBES})
# The platform's figures for the incident's region.
_BUSINESS_METRICS = frozenset({
    Metric.VIEWERS_ONLINE, Metric.ORDERS, Metric.CHAT_MESSAGES, Metric.SKU_ORDERS_30S,
})
# Stock signals: drawn per SKU x warehouse serving the incident's region.
_STOCK_METRICS = frozenset({Metric.ON_HAND, Metric.DATA_AGE_S})
# Ratios diagnosis reports as 0-1 but charts show in %.
_RATIO_METRICS = frozenset({Metric.CHAT_LOST_RATIO})


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("qosmon.report", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = charts.fmt_num
    env.filters["pct"] = lambda v: "–" if v is None else f"{v:.1f}%"
    env.filters["mins"] = lambda v: f"{v:.1f}"
    return env


_ENV: jinja2.Environment | None = None


def _get_env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    return _ENV


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


# --------------------------------------------------------------------------
# business figures


@dataclass
class BusinessView:
    """The platform's figures per region on the show's second grid."""

    regions: list[str]  # "" = the whole show, when only totals were sent
    viewers: FloatArray  # (region, second): last known level, NaN before the first
    sec: IntArray  # per counter row: its second, region index and counts
    region_idx: IntArray
    orders: FloatArray
    chat: FloatArray

    @property
    def total_viewers(self) -> FloatArray:
        """Viewers online per second over all regions (NaN where none knew)."""
        if not len(self.regions):
            return np.zeros(0)
        known = ~np.isnan(self.viewers)
        out: FloatArray = np.where(known.any(axis=0), np.nansum(self.viewers, axis=0), np.nan)
        return out


def _business_view(samples: list[BusinessSample], span: Span, regions: list[str]) -> BusinessView:
    """Per-region figures (or the whole-show series when the platform only
    sent totals), each region on its own aligned second grid: regions
    report on different sub-second offsets, and summing rows by exact
    timestamp would add up partial totals."""
    rows = [s for s in samples if not s.sku]
    per_region = [s for s in rows if s.region]
    rows = per_region or [s for s in rows if not s.region]
    rows.sort(key=lambda s: s.ts)
    names = [r for r in regions if any(s.region == r for s in rows)] if per_region else [""]
    names += sorted({s.region for s in rows} - set(names))
    codes = {r: i for i, r in enumerate(names)}
    n_s = max(1, int(np.rint(span.seconds)))
    ts = np.array([s.ts for s in rows], dtype=float)
    ridx = np.array([codes[s.region] for s in rows], dtype=np.int64)
    # Counters cover the interval ending at ts: second k ends at t0 + k + 1.
    sec = second_slots(ts, ridx, span.t0) if len(rows) else np.zeros(0, np.int64)
    viewers = np.array([np.nan if s.viewers_online is None else s.viewers_online for s in rows],
                       dtype=float)
    level = np.full((len(names), n_s), np.nan)
    for i in range(len(names)):
        m = ridx == i
        level[i] = per_second(np.clip(sec[m], 0, n_s - 1), viewers[m], n_s)
    return BusinessView(
        regions=names if rows else [], viewers=level if rows else np.zeros((0, n_s)), sec=sec,
        region_idx=ridx,
        orders=np.array([np.nan if s.orders is None else s.orders for s in rows], dtype=float),
        chat=np.array([np.nan if s.chat_messages is None else s.chat_messages for s in rows],
                      dtype=float),
    )


def rate_unit(width_s: int) -> str:
    """'per 10 s', 'per minute', 'per 5 min' for a bucket width."""
    if width_s < 60:
        return f"per {width_s} s"
    if width_s == 60:
        return "per minute"
    if width_s < 3600:
        return f"per {width_s // 60} min"
    return "per hour" if width_s == 3600 else f"per {width_s / 3600:g} h"


def _business_charts(
    bv: BusinessView, span: Span, bands: list[Band]
) -> tuple[Markup, Markup, str]:
    """(viewers online stacked by region, orders stacked by region, the
    orders chart's caption)."""
    n_s = bv.viewers.shape[1] if bv.regions else max(1, int(np.rint(span.seconds)))
    colours = charts.SERIES_COLOURS
    grid = grid_for(span.t0, span.t0 + n_s, N_BUCKETS)
    sec_all = np.arange(n_s, dtype=np.int64)
    base = np.zeros(grid.n)
    viewer_series: list[Series] = []
    for i, name in enumerate(bv.regions):
        b = bucket_series(sec_all, bv.viewers[i], grid)
        top = base + np.nan_to_num(b.mean)
        s = Series.from_buckets(name or "all viewers", b, colours[i % 7])
        s.v = np.where(np.isnan(b.mean), np.nan, top)
        s.base, s.lo, s.hi, s.width = base, None, None, 1.0
        viewer_series.append(s)
        base = top
    if len(viewer_series) > 1:
        total = bucket_series(sec_all, bv.total_viewers, grid)
        tl = Series.from_buckets("all regions", total, charts.INK)
        tl.lo = tl.hi = None
        tl.width = 1.8
        viewer_series.append(tl)
    viewers_chart = charts.time_chart(
        span.t0, span.t1, viewer_series, title="viewers online", unit="viewers",
        bands=bands, height=200,
    )
    # Bars a reader can count: ~24-40 of them whatever the show's length.
    width = nice_width(n_s, 40)
    og = Grid(span.t0, 0, n_s, width)
    base = np.zeros(og.n)
    order_series: list[Series] = []
    for i, name in enumerate(bv.regions):
        m = bv.region_idx == i
        counts = bucket_sum(np.clip(bv.sec[m], 0, n_s - 1), bv.orders[m], og)
        s = Series(name=name or "all orders", t=og.starts + width / 2, v=base + counts,
                   base=base, bar_s=width, colour=colours[i % 7])
        order_series.append(s)
        base = base + counts
    unit = rate_unit(width)
    orders_chart = charts.time_chart(
        span.t0, span.t1, order_series, title=f"orders {unit}", unit=f"orders {unit}",
        bands=bands, height=170,
    )
    return viewers_chart, orders_chart, f"Orders {unit}, by region"


@dataclass
class Span:
    t0: float
    t1: float

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def _show_span(data: ShowData) -> Span:
    t0 = data.show.start_ts
    t1 = data.show.end_ts
    if t1 is None:
        last = [s.ts for s in data.probe_samples[-1:]] + [b.ts for b in data.business[-1:]]
        t1 = max(last, default=t0 + 1)
    return Span(t0, max(t1, t0 + 1))


# --------------------------------------------------------------------------
# the report


def _incident_bands(incidents: list[Incident], numbers: dict[str, int], t1: float,
                    region: str | None = None) -> list[Band]:
    out = []
    for inc in incidents:
        stock = inc.cause in STOCK_CAUSES
        if region is not None and (stock or inc.scope.get("region") not in (region, None)):
            continue
        n = numbers[inc.incident_id]
        label_txt, _ = CAUSE_TEXT.get(inc.cause, (str(inc.cause), ""))
        where = inc.scope.get("region", "all regions")
        out.append(Band(
            start=inc.start_ts, end=inc.end_ts if inc.end_ts is not None else t1,
            label=f"#{n}", ref=f"incident-{n}", title=f"#{n} {label_txt} — {where}",
            marker=stock,
        ))
    return out


# Resolves are sent after an incident ends (flap cool-off, group interval).
ALERT_AFTER_END_S = 300.0


def _deliveries_for(inc: Incident, deliveries: list[AlertDelivery]) -> list[AlertDelivery]:
    # An alert is keyed by show, place and cause, so it stays one alert when
    # diagnosis re-detects the same problem as a new incident: match on the
    # key within the incident's time, or on the incident it was raised for.
    key = incident_alert_key(inc)
    end = inc.end_ts if inc.end_ts is not None else float("inf")
    return sorted(
        (d for d in deliveries
         if d.incident_id == inc.incident_id
         or (d.alert_key == key and inc.start_ts <= d.ts <= end + ALERT_AFTER_END_S)),
        key=lambda d: d.ts,
    )


def _window_grid(span: Span, w0: float, w1: float) -> Grid:
    return grid_for(w0, w1, 160, show_t0=span.t0)


def _probe_window_series(
    table: ProbeTable, metric: Metric, probes: list[str], region: str | None, grid: Grid,
) -> list[Series]:
    codes = {p: i for i, p in enumerate(table.probes)}
    idx = [codes[p] for p in probes if p in codes]
    inside, _ = grid.index(table.sec)
    if not idx and region in table.regions:
        sel = inside & (table.region_idx == table.regions.index(region))
        idx = sorted(set(table.probe_idx[sel].tolist()))
    out = []
    for k, p in enumerate(idx[:6]):
        m = inside & (table.probe_idx == p)
        sec = table.sec[m]
        if metric is Metric.CHAT_LOST_RATIO:
            # Messages go out every few seconds: a ratio needs several per point.
            g = Grid(grid.t0, grid.first_s, grid.n_s, max(grid.width_s, 5))
            b = bucket_ratio(sec, table.chat_lost[m].astype(float),
                             table.chat_sent[m].astype(float), g)
        else:
            b = bucket_series(sec, getattr(table, metric)[m], grid)
        out.append(Series.from_buckets(table.probes[p], b, charts.SERIES_COLOURS[k % 7]))
    return out


def _media_count_series(
    table: ProbeTable, probes: list[str], grid: Grid, th: ReportThresholds
) -> list[Series]:
    """How many of the incident's probes had no media, per second."""
    codes = {p: i for i, p in enumerate(table.probes)}
    idx = np.array([codes[p] for p in probes if p in codes], dtype=np.int64)
    if not len(idx):
        return []
    inside, _ = grid.index(table.sec)
    m = inside & np.isin(table.probe_idx, idx)
    with np.errstate(invalid="ignore"):
        dark = (~table.connected[m]) | (table.no_frame_ms[m] >= th.no_frame_failed_ms) | (
            table.bitrate_kbps[m] < 50)
    one_s = Grid(grid.t0, grid.first_s, grid.n_s, 1)
    secs = table.sec[m]
    n_dark = bucket_sum(secs, dark.astype(float), one_s)
    seen = bucket_sum(secs, np.ones(int(m.sum())), one_s) > 0
    v = np.where(seen, n_dark, np.nan)
    return [
        Series(name=f"of {len(idx)} probes without media", t=one_s.starts + 0.5, v=v, step=True,
               colour=charts.SERIES_COLOURS[5]),
    ]


def _business_window_series(
    data: ShowData, metric: Metric, inc: Incident, span: Span, grid: Grid
) -> tuple[list[Series], str]:
    """The platform's series for the incident's region (or the whole show)
    around the incident; counters summed per bucket."""
    region = inc.scope.get("region", "")
    if metric is Metric.SKU_ORDERS_30S:
        rows = [b for b in data.business if b.sku in inc.skus and b.region == region]
    else:
        rows = [b for b in data.business if not b.sku and b.region == region]
        if not rows and not region:
            rows = [b for b in data.business if not b.sku]
    if not rows:
        return [], ""
    rows.sort(key=lambda b: b.ts)
    ts = np.array([b.ts for b in rows])
    sec = second_slots(ts, np.zeros(len(rows), np.int64), span.t0)
    name = "orders" if metric is Metric.SKU_ORDERS_30S else str(metric)
    vals = np.array([np.nan if getattr(b, name) is None else getattr(b, name) for b in rows],
                    dtype=float)
    where = region or "whole show"
    if metric is Metric.VIEWERS_ONLINE:
        b = bucket_series(sec, vals, grid)
        return [Series.from_buckets(f"viewers online, {where}", b, charts.SERIES_COLOURS[0])], ""
    width = nice_width(grid.n_s, 30, min_s=5)
    g = Grid(grid.t0, grid.first_s, grid.n_s, width)
    counts = bucket_sum(sec, vals, g)
    label = f"{name.replace('_', ' ')} {rate_unit(width)}, {where}"
    if metric is Metric.SKU_ORDERS_30S:
        label = f"orders of {', '.join(inc.skus)} {rate_unit(width)}, {where}"
    return [Series(name=label, t=g.starts + width / 2, v=counts, base=np.zeros(g.n),
                   bar_s=width, colour=charts.SERIES_COLOURS[1])], rate_unit(width)


def _stock_window_series(
    data: ShowData, inc: Incident, metric: Metric, t0: float, t1: float
) -> list[Series]:
    """Per SKU x warehouse that serves the incident's region (all of the
    SKU's warehouses when the incident names none), held to the window end."""
    wh = inc.scope.get("warehouse")
    region = inc.scope.get("region")
    serving = set(data.show.region_warehouses.get(region, [])) if region else set()
    field = metric.value  # both are StockState fields
    by_key: dict[tuple[str, str], list[StockState]] = defaultdict(list)
    for st in data.stock_states:
        if st.sku not in inc.skus or getattr(st, field) is None:
            continue
        if wh and st.warehouse != wh:
            continue
        if not wh and serving and st.warehouse not in serving:
            continue
        by_key[(st.sku, st.warehouse)].append(st)
    out = []
    for k, ((sku, w), rows) in enumerate(sorted(by_key.items())[:6]):
        rows.sort(key=lambda s: s.ts)
        ts = np.array([s.ts for s in rows])
        v = np.array([getattr(s, field) for s in rows], dtype=float)
        before = ts < t0
        m = (ts >= t0) & (ts <= t1)
        # The level holds until the next figure: start from the last one
        # before the window and carry the last one to its end.
        t_w = ts[m]
        v_w = v[m]
        if before.any():
            t_w = np.concatenate(([t0], t_w))
            v_w = np.concatenate(([v[before][-1]], v_w))
        if len(t_w):
            t_w = np.concatenate((t_w, [t1]))
            v_w = np.concatenate((v_w, [v_w[-1]]))
        out.append(Series(name=f"{sku} @ {w}", t=t_w, v=v_w, step=True,
                          colour=charts.SERIES_COLOURS[k % 7]))
    return out


# Which end of a signal is bad: the worst second is its max or its min.
_LOW_IS_BAD = frozenset({Metric.BITRATE_KBPS, Metric.FPS})
# Probe signals whose whole-incident median and worst second are worth a line.
_DURING_METRICS = frozenset({
    Metric.RTT_MS, Metric.LOSS_PCT, Metric.BITRATE_KBPS, Metric.FPS, Metric.NO_FRAME_MS,
    Metric.CHAT_RTT_MS,
})


def _during(table: ProbeTable, metric: Metric, inc: Incident, span: Span, unit: str) -> str:
    """The incident's probes over the whole incident, next to diagnosis's
    figure, which is a snapshot taken when the incident opened."""
    if metric not in _DURING_METRICS:
        return ""
    codes = {p: i for i, p in enumerate(table.probes)}
    idx = [codes[p] for p in inc.probes if p in codes]
    if not idx:
        return ""
    end = inc.end_ts if inc.end_ts is not None else span.t1
    m = (table.ts > inc.start_ts) & (table.ts <= end + 1e-6) & np.isin(table.probe_idx, idx)
    v = getattr(table, metric, None)
    if v is None:
        return ""
    v = v[m]
    v = v[~np.isnan(v)]
    if not len(v):
        return f"during the incident: no {metric.split('_')[0]} measured"
    worst = float(v.min()) if metric in _LOW_IS_BAD else float(v.max())
    fmt = charts.fmt_num
    return (f"during the incident: median {fmt(float(np.median(v)))} {unit}, "
            f"worst second {fmt(worst)} {unit}")


def _evidence_views(
    inc: Incident, data: ShowData, table: ProbeTable, span: Span, th: ReportThresholds
) -> list[dict[str, Any]]:
    end = inc.end_ts if inc.end_ts is not None else span.t1
    pad = max(60.0, 0.5 * (end - inc.start_ts))
    w0 = max(span.t0, inc.start_ts - pad)
    w1 = min(span.t1, end + pad)
    grid = _window_grid(span, w0, w1)
    band = [Band(inc.start_ts, end, "", title="incident")]
    thresholds_for = {
        Metric.RTT_MS: th.rtt_failed_ms, Metric.LOSS_PCT: th.loss_failed_pct,
        Metric.NO_FRAME_MS: th.no_frame_failed_ms, Metric.BITRATE_KBPS: th.bitrate_degraded_kbps,
        Metric.CHAT_RTT_MS: th.chat_rtt_degraded_ms,
        Metric.CHAT_LOST_RATIO: th.chat_lost_chart_pct,
    }
    out = []
    drawn: set[str] = set()  # one chart per kind of signal (e.g. stock of all warehouses)
    for ev in inc.evidence:
        scale = 100.0 if ev.metric in _RATIO_METRICS else 1.0
        label, unit = METRIC_TEXT[ev.metric]
        observed = None if ev.observed is None else ev.observed * scale
        baseline = None if ev.baseline is None else ev.baseline * scale
        limit = None if ev.threshold is None else ev.threshold * scale
        view: dict[str, Any] = {"text": ev.text, "metric": ev.metric, "chart": Markup(""),
                                "label": label, "window": "", "per": "per probe",
                                "during": ""}
        # A bar needs something to compare with; a lone count reads better as text.
        view["bullet"] = (charts.bullet_chart(ev.metric, observed, baseline, limit, unit)
                          if baseline is not None or limit is not None else Markup(""))
        series: list[Series] = []
        ths: list[Threshold] = []
        key: str = ev.metric
        y_max = None
        if ev.metric in _PROBE_METRICS:
            series = _probe_window_series(table, ev.metric, inc.probes,
                                          inc.scope.get("region"), grid)
            view["during"] = _during(table, ev.metric, inc, span, unit)
            lim = limit if limit is not None else thresholds_for.get(ev.metric)
            if lim is not None:
                ths.append(Threshold(lim, f"limit {charts.fmt_num(lim)}"))
            if baseline is not None:
                ths.append(Threshold(baseline, f"before {charts.fmt_num(baseline)}",
                                     label_left=True, colour=charts.INK))
            if unit.startswith("%"):
                y_max = 100.0 if max((np.nanmax(s.v) for s in series if np.isfinite(
                    s.v).any()), default=0) > 20 else None
        elif ev.metric in _MEDIA_COUNT_METRICS:
            key = "media_count"
            series = _media_count_series(table, inc.probes, grid, th)
            label, unit = "probes without media", "probes"
            view["per"] = "of the incident's probes"
            y_max = float(max(1, len(inc.probes)))
        elif ev.metric in _BUSINESS_METRICS:
            series, per = _business_window_series(data, ev.metric, inc, span, grid)
            view["per"] = f"{inc.scope.get('region') or 'whole show'}, from the platform"
            if per:
                unit = f"{unit} {per}"
            elif baseline is not None:
                ths.append(Threshold(baseline, f"expected {charts.fmt_num(baseline)}",
                                     label_left=True, colour=charts.INK))
                if limit is not None:
                    ths.append(Threshold(limit, f"alarm below {charts.fmt_num(limit)}",
                                         bad_above=False))
        elif ev.metric in _STOCK_METRICS:
            key = "stock" if ev.metric is Metric.ON_HAND else "data_age_s"
            series = _stock_window_series(data, inc, ev.metric, w0, w1)
            view["per"] = "per SKU and warehouse serving the region"
        if series and key not in drawn:
            drawn.add(key)
            view["label"] = label
            view["chart"] = charts.time_chart(
                w0, w1, series, title=f"{ev.metric} around incident {inc.incident_id}",
                unit=unit, thresholds=ths, bands=band, height=150, width=charts.W_HALF + 80,
                origin=span.t0, y_max=y_max,
            )
            view["window"] = f"{charts.fmt_clock(w0 - span.t0)}–{charts.fmt_clock(w1 - span.t0)}"
        out.append(view)
    return out


def _alert_views(inc: Incident, deliveries: list[AlertDelivery]) -> dict[str, Any]:
    rows = _deliveries_for(inc, deliveries)
    fired = [d for d in rows if d.status == AlertStatus.FIRING and d.ok]
    resolved = [d for d in rows if d.status == AlertStatus.RESOLVED and d.ok]
    resolve_after = ""
    if resolved and inc.end_ts is not None:
        lag = resolved[-1].ts - inc.end_ts
        resolve_after = (f"{duration_text(lag)} after it ended" if lag >= 0.5 else
                         f"{duration_text(-lag)} before it ended" if lag <= -0.5 else
                         "as it ended")
    return {
        "first_after": duration_text(max(0.0, fired[0].ts - inc.start_ts)) if fired else "",
        "resolve_after": resolve_after,
        "rows": [
            {"time": utc_time(d.ts), "status": str(d.status), "notifier": d.notifier,
             "ok": d.ok, "attempt": d.attempt, "error": d.error}
            for d in rows
        ],
        "first_sent": utc_time(fired[0].ts) if fired else None,
        "resolved": utc_time(resolved[-1].ts) if resolved else None,
        "failed_attempts": sum(1 for d in rows if not d.ok),
    }


def _stock_sections(
    data: ShowData, span: Span, bands: list[Band]
) -> tuple[Markup, Markup, list[dict[str, Any]], Markup]:
    """(heat map, on-screen stock chart, suggested actions, on-screen lanes)."""
    names = {s.sku: s.name for s in data.show.skus}
    states = sorted(data.stock_states, key=lambda s: s.ts)
    by_key: dict[tuple[str, str], list[StockState]] = defaultdict(list)
    for st in states:
        by_key[(st.sku, st.warehouse)].append(st)
    sku_order = [s.sku for s in data.show.skus]
    sku_order += sorted({k[0] for k in by_key} - set(sku_order))
    keys = sorted(by_key, key=lambda k: (sku_order.index(k[0]), k[1]))

    # On-screen spans per SKU from the on/off events.
    on_spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    opened: dict[str, float] = {}
    for ev in sorted(data.on_screen, key=lambda e: e.ts):
        if ev.on:
            opened.setdefault(ev.sku, ev.ts)
        elif ev.sku in opened:
            on_spans[ev.sku].append((opened.pop(ev.sku), ev.ts))
    for sku, s in opened.items():
        on_spans[sku].append((s, span.t1))

    lanes, marks = [], []
    for i, (sku, wh) in enumerate(keys):
        rows = by_key[(sku, wh)]
        runs: list[tuple[float, float, str]] = []
        for j, st in enumerate(rows):
            end = rows[j + 1].ts if j + 1 < len(rows) else span.t1
            lv = str(st.level)
            if runs and runs[-1][2] == lv:
                runs[-1] = (runs[-1][0], end, lv)
            else:
                runs.append((st.ts, end, lv))
        name = names.get(sku, "")
        lanes.append(Lane(label=f"{sku} · {wh}", runs=runs,
                          title=f"{sku} {name} in {wh}".strip()))
        for s, e in on_spans.get(sku, []):
            marks.append((i, s, e))
    heat = (
        charts.lanes_chart(span.t0, span.t1, lanes, charts.LEVEL_FILL,
                           title="stock alert level per SKU and warehouse", bands=[],
                           marks=marks, label_w=220)
        if lanes else Markup("")
    )

    # Per SKU: worst level over its warehouses, outlined while on screen.
    sku_lanes, sku_marks = [], []
    on_skus = [s for s in sku_order if on_spans.get(s)]
    for i, sku in enumerate(on_skus):
        times = sorted({st.ts for st in states if st.sku == sku})
        latest: dict[str, StockLevel] = {}
        runs = []
        per_ts: dict[float, list[StockState]] = defaultdict(list)
        for st in states:
            if st.sku == sku:
                per_ts[st.ts].append(st)
        for j, ts in enumerate(times):
            for st in per_ts[ts]:
                latest[st.warehouse] = st.level
            worst = max(latest.values(), key=lambda lv: lv.severity)
            end = times[j + 1] if j + 1 < len(times) else span.t1
            if runs and runs[-1][2] == worst:
                runs[-1] = (runs[-1][0], end, worst)
            else:
                runs.append((ts, end, worst))
        sku_lanes.append(Lane(label=sku, runs=runs, title=f"{sku} {names.get(sku, '')}"))
        for s, e in on_spans[sku]:
            sku_marks.append((i, s, e))
    lanes_on = (
        charts.lanes_chart(span.t0, span.t1, sku_lanes, charts.LEVEL_FILL,
                           title="stock level (worst warehouse) of SKUs shown; outlined: on screen",
                           bands=bands, marks=sku_marks)
        if sku_lanes else Markup("")
    )

    # Units on hand over the show, per SKU shown (sum over its warehouses).
    series = []
    for k, sku in enumerate(on_skus):
        latest_units: dict[str, int] = {}
        ts_list: list[float] = []
        v_list: list[float] = []
        for st in states:
            if st.sku != sku or st.on_hand is None:
                continue
            latest_units[st.warehouse] = st.on_hand
            if ts_list and ts_list[-1] == st.ts:
                # Several warehouses report at once: one point with their sum.
                v_list[-1] = float(sum(latest_units.values()))
            else:
                ts_list.append(st.ts)
                v_list.append(float(sum(latest_units.values())))
        if ts_list:  # the last figure holds until the show ends
            ts_list.append(max(span.t1, ts_list[-1]))
            v_list.append(v_list[-1])
        series.append(Series(name=f"{sku} {names.get(sku, '')}".strip(), t=np.array(ts_list),
                             v=np.array(v_list), step=True,
                             colour=charts.SERIES_COLOURS[k % 7]))
    stock_chart = (
        charts.time_chart(span.t0, span.t1, series, title="units on hand, SKUs shown",
                          unit="units", bands=bands, height=160)
        if series else Markup("")
    )

    # Suggested actions: each time a SKU x warehouse enters a level with one.
    actions: list[dict[str, Any]] = []
    for sku, wh in keys:
        prev = None
        for st in by_key[(sku, wh)]:
            key = (str(st.level), st.action)
            if key != prev and st.action:
                actions.append({
                    "ts": st.ts, "time": utc_time(st.ts),
                    "into": charts.fmt_clock(st.ts - span.t0),
                    "sku": sku, "name": names.get(sku, ""), "warehouse": wh,
                    "level": st.level, "on_hand": st.on_hand,
                    "minutes_left": st.minutes_left, "action": st.action,
                    "refill_units": st.refill_units, "on_screen": st.on_screen,
                })
            prev = key
    actions.sort(key=lambda a: a["ts"])
    return heat, stock_chart, actions, lanes_on


def _region_charts(
    table: ProbeTable, region: str, span: Span, bands: list[Band], th: ReportThresholds
) -> list[tuple[str, Markup]]:
    """(caption, chart) for each signal of one region, against its threshold."""
    t0, t1 = span.t0, span.t1
    if region not in table.regions:
        return []
    m = table.region_idx == table.regions.index(region)
    sec = table.sec[m]
    grid = grid_for(t0, t1, N_BUCKETS // 2)
    c = charts.SERIES_COLOURS
    fmt = charts.fmt_num

    def line(name: str, arr: FloatArray, colour: str) -> list[Series]:
        return [Series.from_buckets(name, bucket_series(sec, arr, grid), colour)]

    def chart(caption: str, series: list[Series], unit: str, limit: Threshold,
              y_max: float | None = None) -> tuple[str, Markup]:
        return caption, charts.time_chart(
            t0, t1, series, title=f"{region}: {caption}", unit=unit, bands=bands,
            thresholds=[limit], width=charts.W_HALF, height=190, y_max=y_max,
        )

    # A freeze is reported in the second it ends, with its whole length.
    frozen = bucket_ratio(sec, np.minimum(table.freeze_ms[m], 1000.0),
                          np.full(int(m.sum()), 1000.0), grid)
    chat_lost = bucket_ratio(sec, table.chat_lost[m].astype(float),
                             table.chat_sent[m].astype(float), grid)
    return [
        chart("Round-trip time", line("RTT, mean of probes", table.rtt_ms[m], c[0]), "ms",
              Threshold(th.rtt_failed_ms, f"fails at {fmt(th.rtt_failed_ms)} ms")),
        chart("Packet loss", line("loss, mean of probes", table.loss_pct[m], c[1]), "%",
              Threshold(th.loss_failed_pct, f"fails above {fmt(th.loss_failed_pct)}%")),
        chart("Video bitrate", line("bitrate, mean of probes", table.bitrate_kbps[m], c[2]),
              "kbps", Threshold(th.bitrate_degraded_kbps,
                                f"degraded below {fmt(th.bitrate_degraded_kbps)} kbps",
                                bad_above=False)),
        chart("Freezes", [Series.from_buckets("share of watch time frozen", frozen, c[3])],
              "% of time frozen",
              Threshold(th.freeze_chart_pct, f"{fmt(th.freeze_chart_pct)}%")),
        chart("Chat delivery time", line("chat round trip", table.chat_rtt_ms[m], c[4]), "ms",
              Threshold(th.chat_rtt_degraded_ms, f"slow above {fmt(th.chat_rtt_degraded_ms)} ms")),
        chart("Chat messages lost", [Series.from_buckets("lost, % of sent", chat_lost, c[5])],
              "% of messages sent",
              Threshold(th.chat_lost_chart_pct, f"{fmt(th.chat_lost_chart_pct)}%"), y_max=100.0),
    ]


def _pctl(v: FloatArray, q: float) -> float | None:
    return float(np.percentile(v, q)) if len(v) else None


def build_report(
    data: ShowData, thresholds: ReportThresholds | None = None
) -> tuple[str, dict[str, Any]]:
    """The HTML page and the headline figures (for the index)."""
    th = thresholds or ReportThresholds()
    show = data.show
    span = _show_span(data)
    table = ProbeTable.from_samples(data.probe_samples, show.regions, t0=span.t0)
    regions = list(show.regions) or list(table.regions)
    for r in table.regions:
        if r not in regions:
            regions.append(r)

    incidents = sorted(data.incidents, key=lambda i: (i.start_ts, i.incident_id))
    numbers = {inc.incident_id: n for n, inc in enumerate(incidents, start=1)}
    local = [i for i in incidents if i.cause == Cause.PROBE_LOCAL]
    windows = [
        (p, i.start_ts, i.end_ts if i.end_ts is not None else span.t1)
        for i in local for p in i.probes
    ]
    excl = excluded_mask(table, windows)
    verdicts = region_verdicts(table, span.t0, span.t1, regions, th, excl)

    # Headline figures.
    bv = _business_view(data.business, span, regions)
    total_v = bv.total_viewers
    peak_viewers = peak_at = None
    if len(total_v) and not np.all(np.isnan(total_v)):
        k = int(np.nanargmax(total_v))
        peak_viewers, peak_at = int(total_v[k]), span.t0 + k + 1
    total_orders = int(np.nansum(bv.orders)) if not np.all(np.isnan(bv.orders)) else None
    stream_incidents = [i for i in incidents if i.cause not in STOCK_CAUSES
                        and i.cause != Cause.PROBE_LOCAL]
    stock_incidents = [i for i in incidents if i.cause in STOCK_CAUSES]
    lost_viewers = sum(i.viewers_lost or 0 for i in incidents)
    lost_orders = sum(i.orders_lost or 0 for i in incidents)

    bands_all = _incident_bands(incidents, numbers, span.t1)
    status_names = dict(STATUS_NAMES)
    verdict_lanes = charts.lanes_chart(
        span.t0, span.t1,
        [Lane(label=v.region, runs=charts.runs_from_timeline(span.t0, v.timeline, status_names))
         for v in verdicts],
        charts.STATUS_FILL, title="verdict per region over the show", bands=bands_all,
    )

    # Timeline charts.
    viewers_chart, orders_chart, orders_caption = _business_charts(bv, span, bands_all)
    heat, stock_chart, actions, on_screen_lanes = _stock_sections(data, span, bands_all)

    # Per region.
    ttff, ttff_region = session_ttffs(table)
    region_views: list[dict[str, Any]] = []
    for v in verdicts:
        bands = _incident_bands(incidents, numbers, span.t1, region=v.region)
        ri = table.regions.index(v.region) if v.region in table.regions else -1
        rt = ttff[ttff_region == ri]
        region_views.append({
            "name": v.region,
            "verdict": v,
            "charts": _region_charts(table, v.region, span, bands, th),
            "ttff_p50": _pctl(rt, 50), "ttff_p90": _pctl(rt, 90),
            "ttff_max": float(rt.max()) if len(rt) else None, "sessions": len(rt),
            "slow": int((rt > th.ttff_ms).sum()),
            "probes": sorted({table.probes[p] for p in
                              np.unique(table.probe_idx[table.region_idx == ri]).tolist()}),
        })
    ttff_chart = charts.cdf_chart(
        [(r["name"], ttff[ttff_region == (table.regions.index(r["name"])
                                          if r["name"] in table.regions else -1)])
         for r in region_views],
        title="time to first frame, per region", unit="time to first frame (ms)",
        threshold=Threshold(th.ttff_ms, f"slow > {charts.fmt_num(th.ttff_ms)} ms"),
    )

    # Incidents.
    incident_views = []
    for inc in incidents:
        n = numbers[inc.incident_id]
        label, meaning = CAUSE_TEXT.get(inc.cause, (str(inc.cause), ""))
        end = inc.end_ts
        incident_views.append({
            "n": n, "id": inc.incident_id, "anchor": f"incident-{n}",
            "cause": label, "cause_key": str(inc.cause), "meaning": meaning,
            "severity": str(inc.severity), "summary": inc.summary,
            "start": utc_time(inc.start_ts), "into": charts.fmt_clock(inc.start_ts - span.t0),
            "end": utc_time(end) if end is not None else "still open at the end",
            "duration": duration_text((end if end is not None else span.t1) - inc.start_ts),
            "detected_after": (None if inc.detected_ts is None
                               else max(0.0, inc.detected_ts - inc.start_ts)),
            "scope": [(k, v) for k, v in inc.scope.items()] or [("scope", "whole show")],
            "probes": inc.probes, "skus": [(s, next((k.name for k in show.skus if k.sku == s), ""))
                                            for s in inc.skus],
            "evidence": _evidence_views(inc, data, table, span, th),
            "viewers_lost": inc.viewers_lost, "orders_lost": inc.orders_lost,
            "alerts": _alert_views(inc, data.deliveries),
            "local": inc.cause == Cause.PROBE_LOCAL,
        })

    # Probes.
    probe_rows = []
    n_s = max(1, math.ceil(span.seconds))
    for p_i, probe in enumerate(table.probes):
        m = table.probe_idx == p_i
        region, isp, edge = table.probe_labels[probe]
        conn = table.connected[m]
        rtt = table.rtt_ms[m]
        rtt = rtt[~np.isnan(rtt)]
        local_here = [i for i in local if probe in i.probes]
        probe_rows.append({
            "probe": probe, "region": region, "isp": isp, "edge": edge,
            "samples": int(m.sum()), "coverage_pct": 100.0 * int(m.sum()) / n_s,
            "connected_pct": 100.0 * float(conn.mean()) if len(conn) else None,
            "rtt_p50": float(np.median(rtt)) if len(rtt) else None,
            "excluded_s": int((excl & m).sum()),
            "local": [numbers[i.incident_id] for i in local_here],
            "up": bool(len(conn)) and float(conn.mean()) >= 0.95 and int(m.sum()) >= 0.9 * n_s,
        })
    local_views = [v for v in incident_views if v["local"]]

    found = _found_vs_injected(data.injected, numbers, span) if data.injected else None

    headline = {
        "show_id": show.show_id, "title": show.title, "start_ts": span.t0,
        "start": utc(span.t0), "duration_s": span.seconds,
        "duration": duration_text(span.seconds), "peak_viewers": peak_viewers,
        "orders": total_orders, "incidents": len(stream_incidents),
        "stock_incidents": len(stock_incidents),
        "verdicts": {v.region: {"overall": v.overall, "good_pct": round(v.pct("good"), 1),
                                "degraded_pct": round(v.pct("degraded"), 1),
                                "failed_pct": round(v.pct("failed"), 1),
                                "unknown_pct": round(v.pct("unknown"), 1)}
                     for v in verdicts},
    }
    html = _get_env().get_template("report.html.j2").render(
        show=show, span=span, headline=headline, th=th, version=__version__,
        end=utc(span.t1), peak_at=charts.fmt_clock(peak_at - span.t0) if peak_at else None,
        lost_viewers=lost_viewers, lost_orders=lost_orders,
        verdicts=verdicts, verdict_lanes=verdict_lanes, defs=charts.svg_defs(),
        viewers_chart=viewers_chart, orders_chart=orders_chart, orders_caption=orders_caption,
        stock_chart=stock_chart,
        on_screen_lanes=on_screen_lanes, heat=heat,
        # Levels whose suggestion asks someone to act now; "watch" ones are folded.
        actions=[a for a in actions if a["level"].urgent],
        watch_actions=[a for a in actions if not a["level"].urgent],
        regions=region_views, ttff_chart=ttff_chart, incidents=incident_views,
        probes=probe_rows, local_incidents=local_views, found=found,
        level_legend=[(lv, charts.LEVEL_FILL[lv]) for lv in StockLevel],
        level_swatch=charts.LEVEL_SWATCH,
        status_legend=[(s, charts.STATUS_FILL[s]) for s in
                       ("good", "degraded", "failed", "unknown")],
        n_probes=len(table.probes), n_samples=len(table),
    )
    return html, headline


def _found_vs_injected(
    injected: list[InjectedFault], numbers: dict[str, int], span: Span
) -> list[dict[str, Any]]:
    """Each injected fault as its scoring judged it: where it was, and the
    incidents that named it (linked when they are in this report)."""
    rows = []
    for f in sorted(injected, key=lambda f: f.index):
        rows.append({
            "kind": f.kind, "where": f.where, "ok": f.ok,
            "window": (f"{charts.fmt_clock(f.start_ts - span.t0)}–"
                       f"{charts.fmt_clock(f.end_ts - span.t0)}"),
            "found": [(numbers.get(x.incident_id), x.incident_id, CAUSE_TEXT[x.cause][0])
                      for x in f.found],
            "expected": CAUSE_TEXT[f.expected_cause][0],
            "detect": None if f.detect_s is None else f"{f.detect_s:.1f} s",
        })
    return rows


def render_report(data: ShowData, thresholds: ReportThresholds | None = None) -> str:
    """One self-contained HTML document for the show."""
    return build_report(data, thresholds)[0]


# --------------------------------------------------------------------------
# files


def report_filename(show_id: str) -> str:
    """A file name that is safe on any file system and cannot leave the
    folder; ids that had to be changed get a short hash to stay distinct."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", show_id).lstrip(".")[:100] or "show"
    if safe != show_id:
        safe += "-" + hashlib.sha256(show_id.encode()).hexdigest()[:8]
    if safe == "index":
        safe = "index-show"
    return f"{safe}.html"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    data: ShowData, out_dir: Path, thresholds: ReportThresholds | None = None
) -> Path:
    """Write ``<out_dir>/<show_id>.html`` and refresh the folder's index."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html, headline = build_report(data, thresholds)
    name = report_filename(data.show.show_id)
    path = out_dir / name
    _atomic_write(path, html)
    headline["file"] = name
    entries = _read_index(out_dir)
    entries[name] = headline
    _write_index(out_dir, entries)
    return path


def _read_index(out_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        raw = json.loads((out_dir / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or not isinstance(raw.get("reports"), list):
        return {}
    out = {}
    for e in raw["reports"]:
        if isinstance(e, dict) and isinstance(e.get("file"), str) and (
            out_dir / e["file"]
        ).is_file() and e["file"] == report_filename(str(e.get("show_id", ""))):
            out[e["file"]] = e
    return out


def _write_index(out_dir: Path, entries: dict[str, dict[str, Any]]) -> None:
    rows = sorted(entries.values(), key=lambda e: -float(e.get("start_ts") or 0))
    _atomic_write(out_dir / "index.json",
                  json.dumps({"version": 1, "reports": rows}, indent=1, sort_keys=True))
    html = _get_env().get_template("index.html.j2").render(
        reports=rows, version=__version__, status_fill=charts.STATUS_FILL, defs=charts.svg_defs(),
    )
    _atomic_write(out_dir / "index.html", html)
