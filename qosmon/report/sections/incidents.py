"""The incidents section: each incident with where, why, the evidence
diagnosis gave (drawn around the incident from the show's own data) and
the alerts sent about it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from qosmon.model import (
    AlertDelivery,
    AlertStatus,
    Cause,
    Incident,
    Metric,
    StockState,
    incident_alert_key,
)
from qosmon.report import charts
from qosmon.report.charts import Band, Series, Threshold
from qosmon.report.sections.context import ReportContext
from qosmon.report.signals import (
    Grid,
    ProbeTable,
    bucket_ratio,
    bucket_series,
    bucket_sum,
    grid_for,
    nice_width,
    second_slots,
)
from qosmon.report.timing import Span, Translate, duration_text, english, rate_unit, utc_time
from qosmon.report.verdict import ReportThresholds
from qosmon.report.vocabulary import CAUSE_TEXT, METRIC_TEXT

# How each evidence metric is drawn. Probe signals: per probe, from the
# probe table's column of that name.
_PROBE_METRICS = frozenset({
    Metric.RTT_MS, Metric.LOSS_PCT, Metric.BITRATE_KBPS, Metric.FPS, Metric.NO_FRAME_MS,
    Metric.CHAT_RTT_MS, Metric.CHAT_LOST_RATIO, Metric.RECEIVED_KBPS, Metric.RTX_KBPS,
    Metric.STUCK_MS, Metric.AUDIO_STALLED_MS, Metric.AUDIO_LOSS_PCT,
})
# Counts of probes: drawn as how many of the incident's probes had no media.
_MEDIA_COUNT_METRICS = frozenset({Metric.PROBES_WITHOUT_MEDIA, Metric.DISCONNECTED_PROBES})
# The platform's figures for the incident's region.
_BUSINESS_METRICS = frozenset({
    Metric.VIEWERS_ONLINE, Metric.ORDERS, Metric.CHAT_MESSAGES, Metric.SKU_ORDERS_30S,
})
# Stock signals (StockState fields): per SKU x warehouse serving the region.
_STOCK_METRICS = frozenset({Metric.ON_HAND, Metric.DATA_AGE_S})
# Ratios diagnosis reports as 0-1 but charts show in %.
_RATIO_METRICS = frozenset({Metric.CHAT_LOST_RATIO})
# Which end of a signal is bad: the worst second is its max or its min.
_LOW_IS_BAD = frozenset({Metric.BITRATE_KBPS, Metric.FPS, Metric.RECEIVED_KBPS})
# Probe signals whose whole-incident median and worst second are worth a line.
_DURING_METRICS = frozenset({
    Metric.RTT_MS, Metric.LOSS_PCT, Metric.BITRATE_KBPS, Metric.FPS, Metric.NO_FRAME_MS,
    Metric.CHAT_RTT_MS, Metric.RECEIVED_KBPS, Metric.RTX_KBPS, Metric.STUCK_MS,
    Metric.AUDIO_STALLED_MS, Metric.AUDIO_LOSS_PCT,
})
# Resolves are sent after an incident ends (flap cool-off, group interval).
ALERT_AFTER_END_S = 300.0


@dataclass(frozen=True)
class IncidentRow:
    """An incident in a line: for the timeline's list and the probes section."""

    n: int
    id: str
    anchor: str
    cause: str  # label
    cause_key: str
    meaning: str
    severity: str  # the model's key (a style); severity_text is its word
    severity_text: str
    summary: str  # diagnosis's one line, as it wrote it
    start: str  # UTC time, with the region's local time when it has a zone
    into: str  # h:mm into the show
    end: str
    duration: str
    detected_after: float | None  # s from its start to when diagnosis reported it
    scope: list[tuple[str, str]]  # (dimension in words, value); ("scope", "whole show") when empty
    probes: list[str]
    skus: list[tuple[str, str]]  # (sku, name)
    viewers_lost: float | None
    orders_lost: float | None
    local: bool  # probe-local: left out of the verdicts


@dataclass(frozen=True)
class EvidenceView:
    text: str
    metric: Metric
    label: str
    bullet: Markup  # observed against before/limit; empty without either
    chart: Markup  # the signal around the incident; empty if not drawn
    window: str  # h:mm-h:mm into the show the chart covers
    per: str  # what a line of the chart is ("per probe", ...)
    during: str  # the incident's whole-length figure next to diagnosis's snapshot


@dataclass(frozen=True)
class DeliveryRow:
    time: str
    status: str  # in words
    notifier: str
    ok: bool
    attempt: int
    error: str
    # Delivered after the retry budget ran out or across a collector restart.
    late: bool = False


@dataclass(frozen=True)
class AlertsView:
    rows: list[DeliveryRow]
    first_sent: str | None
    first_after: str
    resolved: str | None
    resolve_after: str
    failed_attempts: int
    late_deliveries: int = 0


@dataclass(frozen=True)
class IncidentView(IncidentRow):
    evidence: list[EvidenceView]
    alerts: AlertsView


@dataclass(frozen=True)
class IncidentsView:
    incidents: list[IncidentView]


def _row(ctx: ReportContext, inc: Incident) -> IncidentRow:
    n = ctx.numbers[inc.incident_id]
    t = ctx.t
    label, meaning = CAUSE_TEXT[inc.cause]
    end = inc.end_ts
    open_text = t("still open") if ctx.live else t("still open at the end")
    names = {k.sku: k.name for k in ctx.data.show.skus}
    region = inc.scope.get("region")
    return IncidentRow(
        n=n, id=inc.incident_id, anchor=f"incident-{n}", cause=t(label),
        cause_key=str(inc.cause), meaning=t(meaning), severity=str(inc.severity),
        severity_text=t(str(inc.severity)), summary=inc.summary,
        start=ctx.clock(inc.start_ts, region), into=charts.fmt_clock(inc.start_ts - ctx.span.t0),
        end=ctx.clock(end, region) if end is not None else open_text,
        duration=duration_text(ctx.incident_end(inc) - inc.start_ts, t),
        detected_after=(None if inc.detected_ts is None
                        else max(0.0, inc.detected_ts - inc.start_ts)),
        scope=[(t(k.replace("_", " ")), v) for k, v in inc.scope.items()]
        or [(t("scope"), t("whole show"))],
        probes=list(inc.probes), skus=[(s, names.get(s, "")) for s in inc.skus],
        viewers_lost=inc.viewers_lost, orders_lost=inc.orders_lost,
        local=inc.cause == Cause.PROBE_LOCAL,
    )


def incident_rows(ctx: ReportContext) -> list[IncidentRow]:
    return [_row(ctx, inc) for inc in ctx.incidents]


def build(ctx: ReportContext) -> IncidentsView:
    out = []
    for inc in ctx.incidents:
        row = _row(ctx, inc)
        region = inc.scope.get("region")

        def clock(ts: float, region: str | None = region) -> str:
            return ctx.clock(ts, region)

        out.append(IncidentView(**vars(row), evidence=_evidence_views(ctx, inc),
                                alerts=_alert_view(inc, ctx.data.deliveries, ctx.t, clock)))
    return IncidentsView(incidents=out)


# --------------------------------------------------------------------------
# alerts


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


def _alert_view(inc: Incident, deliveries: list[AlertDelivery],
                t: Translate = english, clock: Callable[[float], str] = utc_time) -> AlertsView:
    """The alerts sent about ``inc``; ``clock`` writes when the first went
    out and the resolve (UTC, with the region's local time in a report)."""
    rows = _deliveries_for(inc, deliveries)
    fired = [d for d in rows if d.status == AlertStatus.FIRING and d.ok]
    resolved = [d for d in rows if d.status == AlertStatus.RESOLVED and d.ok]
    resolve_after = ""
    if resolved and inc.end_ts is not None:
        lag = resolved[-1].ts - inc.end_ts
        resolve_after = (
            t("{d} after it ended").format(d=duration_text(lag, t)) if lag >= 0.5 else
            t("{d} before it ended").format(d=duration_text(-lag, t)) if lag <= -0.5 else
            t("as it ended"))
    return AlertsView(
        rows=[DeliveryRow(time=utc_time(d.ts), status=t(str(d.status)), notifier=d.notifier,
                          ok=d.ok, attempt=d.attempt, error=d.error, late=d.late)
              for d in rows],
        first_sent=clock(fired[0].ts) if fired else None,
        first_after=(duration_text(max(0.0, fired[0].ts - inc.start_ts), t) if fired
                     else ""),
        resolved=clock(resolved[-1].ts) if resolved else None,
        resolve_after=resolve_after,
        failed_attempts=sum(1 for d in rows if not d.ok),
        late_deliveries=sum(1 for d in rows if d.ok and d.late),
    )


# --------------------------------------------------------------------------
# evidence


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
    table: ProbeTable, probes: list[str], grid: Grid, th: ReportThresholds,
    t: Translate = english,
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
        Series(name=t("of {n} probes without media").format(n=len(idx)), t=one_s.starts + 0.5,
               v=v, step=True, colour=charts.SERIES_COLOURS[5]),
    ]


def _business_window_series(
    ctx: ReportContext, metric: Metric, inc: Incident, grid: Grid
) -> tuple[list[Series], str]:
    """The platform's series for the incident's region (or the whole show)
    around the incident; counters summed per bucket."""
    data, span, t = ctx.data, ctx.span, ctx.t
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
    name = "orders" if metric is Metric.SKU_ORDERS_30S else metric.value
    vals = np.array([np.nan if getattr(b, name) is None else getattr(b, name) for b in rows],
                    dtype=float)
    where = region or t("whole show")
    if metric is Metric.VIEWERS_ONLINE:
        b = bucket_series(sec, vals, grid)
        return [Series.from_buckets(t("viewers online, {where}").format(where=where), b,
                                    charts.SERIES_COLOURS[0])], ""
    width = nice_width(grid.n_s, 30, min_s=5)
    g = Grid(grid.t0, grid.first_s, grid.n_s, width)
    counts = bucket_sum(sec, vals, g)
    rate = rate_unit(width, t)
    label = t("{what} {rate}, {where}").format(what=t(name.replace("_", " ")), rate=rate,
                                               where=where)
    if metric is Metric.SKU_ORDERS_30S:
        label = t("orders of {skus} {rate}, {where}").format(skus=", ".join(inc.skus),
                                                            rate=rate, where=where)
    return [Series(name=label, t=g.starts + width / 2, v=counts, base=np.zeros(g.n),
                   bar_s=width, colour=charts.SERIES_COLOURS[1])], rate


def _stock_window_series(
    ctx: ReportContext, inc: Incident, metric: Metric, t0: float, t1: float
) -> list[Series]:
    """Per SKU x warehouse that serves the incident's region (all of the
    SKU's warehouses when the incident names none), held to the window end."""
    data = ctx.data
    wh = inc.scope.get("warehouse")
    region = inc.scope.get("region")
    serving = set(data.show.region_warehouses.get(region, [])) if region else set()
    field = metric.value  # both stock metrics are StockState fields
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


def _during(table: ProbeTable, metric: Metric, inc: Incident, span: Span, unit: str,
            t: Translate = english) -> str:
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
    v = getattr(table, metric)[m]
    v = v[~np.isnan(v)]
    if not len(v):
        return t("during the incident: no {what} measured").format(
            what=t(METRIC_TEXT[metric][0]))
    worst = float(v.min()) if metric in _LOW_IS_BAD else float(v.max())
    fmt = charts.fmt_num
    return t("during the incident: median {median} {unit}, worst second {worst} {unit}").format(
        median=fmt(float(np.median(v))), worst=fmt(worst), unit=unit)


def _evidence_views(ctx: ReportContext, inc: Incident) -> list[EvidenceView]:
    span, table, th, t = ctx.span, ctx.table, ctx.th, ctx.t
    end = ctx.incident_end(inc)
    pad = max(60.0, 0.5 * (end - inc.start_ts))
    w0 = max(span.t0, inc.start_ts - pad)
    w1 = min(span.t1, end + pad)
    grid = grid_for(w0, w1, 160, show_t0=span.t0)
    band = [Band(inc.start_ts, end, "", title=t("incident"))]
    # Limits of the region verdict, in chart units, where diagnosis gave none.
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
        label_en, unit_en = METRIC_TEXT[ev.metric]
        label, unit = t(label_en), t(unit_en)
        observed = None if ev.observed is None else ev.observed * scale
        baseline = None if ev.baseline is None else ev.baseline * scale
        limit = None if ev.threshold is None else ev.threshold * scale
        # A bar needs something to compare with; a lone count reads better as text.
        bullet = (charts.bullet_chart(ev.metric, observed, baseline, limit, unit, t=t)
                  if baseline is not None or limit is not None else Markup(""))
        series: list[Series] = []
        ths: list[Threshold] = []
        key: str = ev.metric
        y_max = None
        per, during = t("per probe"), ""
        if ev.metric in _PROBE_METRICS:
            series = _probe_window_series(table, ev.metric, inc.probes,
                                          inc.scope.get("region"), grid)
            during = _during(table, ev.metric, inc, span, unit, t)
            lim = limit if limit is not None else thresholds_for.get(ev.metric)
            if lim is not None:
                ths.append(Threshold(lim, t("limit {v}").format(v=charts.fmt_num(lim))))
            if baseline is not None:
                ths.append(Threshold(baseline, t("before {v}").format(v=charts.fmt_num(baseline)),
                                     label_left=True, colour=charts.INK))
            if unit_en.startswith("%"):
                y_max = 100.0 if max((np.nanmax(s.v) for s in series if np.isfinite(
                    s.v).any()), default=0) > 20 else None
        elif ev.metric in _MEDIA_COUNT_METRICS:
            key = "media_count"
            series = _media_count_series(table, inc.probes, grid, th, t)
            label, unit = t("probes without media"), t("probes")
            per = t("of the incident's probes")
            y_max = float(max(1, len(inc.probes)))
        elif ev.metric in _BUSINESS_METRICS:
            series, rate = _business_window_series(ctx, ev.metric, inc, grid)
            per = t("{where}, from the platform").format(
                where=inc.scope.get("region") or t("whole show"))
            if rate:
                unit = f"{unit} {rate}"
            elif baseline is not None:
                ths.append(Threshold(baseline,
                                     t("expected {v}").format(v=charts.fmt_num(baseline)),
                                     label_left=True, colour=charts.INK))
                if limit is not None:
                    ths.append(Threshold(limit,
                                         t("alarm below {v}").format(v=charts.fmt_num(limit)),
                                         bad_above=False))
        elif ev.metric in _STOCK_METRICS:
            key = "stock" if ev.metric is Metric.ON_HAND else "data_age_s"
            series = _stock_window_series(ctx, inc, ev.metric, w0, w1)
            per = t("per SKU and warehouse serving the region")
        chart, window = Markup(""), ""
        if series and key not in drawn:
            drawn.add(key)
            chart = charts.time_chart(
                w0, w1, series,
                title=t("{metric} around incident {id}").format(metric=ev.metric,
                                                               id=inc.incident_id),
                unit=unit, thresholds=ths, bands=band, height=150, width=charts.W_HALF + 80,
                origin=span.t0, y_max=y_max, t=t,
            )
            window = f"{charts.fmt_clock(w0 - span.t0)}–{charts.fmt_clock(w1 - span.t0)}"
        out.append(EvidenceView(text=ev.text, metric=ev.metric, label=label, bullet=bullet,
                                chart=chart, window=window, per=per, during=during))
    return out
