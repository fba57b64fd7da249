"""A finished show boiled down to what history compares across shows.

Written once when a show ends (the live pipeline, the demo) and kept by the
store after retention has aged the raw samples out; history reads only these.
Pure: takes the show's data and the time, returns a :class:`ShowSummary`.
"""

from __future__ import annotations

import numpy as np

from qosmon.model import (
    STOCK_CAUSES,
    BusinessSample,
    Cause,
    IncidentSummary,
    RegionSummary,
    ShowSummary,
    StockEvent,
    StockLevel,
    StockState,
)
from qosmon.report.data import ShowData
from qosmon.report.experience import SCORE_VERSION, experience_scores
from qosmon.report.sections.context import report_context
from qosmon.report.verdict import ReportThresholds


def _region_business(samples: list[BusinessSample], region: str) -> tuple[int | None, int | None]:
    """Peak viewers online and orders of one region (None when not sent)."""
    rows = [s for s in samples if s.region == region]
    totals = [s for s in rows if not s.sku]
    viewers = [s.viewers_online for s in totals if s.viewers_online is not None]
    order_rows = [s for s in totals if s.orders is not None] or [
        s for s in rows if s.sku and s.orders is not None
    ]
    orders = sum(s.orders or 0 for s in order_rows) if order_rows else None
    return (max(viewers) if viewers else None), orders


def _incident_regions(scope: dict[str, str], regions: list[str]) -> list[str]:
    """The regions an incident touched: its region, or all for the whole show."""
    r = scope.get("region")
    return [r] if r else list(regions)


def stock_events(states: list[StockState]) -> list[StockEvent]:
    """First time each SKU x warehouse sold out, went red, stale or out of
    sync, with the largest refill suggested for it during the show."""
    kinds: dict[tuple[str, str, str], StockEvent] = {}
    for st in sorted(states, key=lambda s: s.ts):
        if st.level == StockLevel.RED:
            kind = "sold_out" if st.on_hand == 0 else "red"
        elif st.level == StockLevel.STALE:
            kind = "stale"
        elif st.level == StockLevel.SYNC_FAULT:
            kind = "sync_fault"
        else:
            continue
        key = (st.sku, st.warehouse, kind)
        ev = kinds.get(key)
        refill = st.refill_units
        if ev is None:
            kinds[key] = StockEvent(sku=st.sku, warehouse=st.warehouse, kind=kind,
                                    first_ts=st.ts, refill_units=refill, action=st.action)
        elif refill is not None and (ev.refill_units is None or refill > ev.refill_units):
            kinds[key] = ev.model_copy(update={"refill_units": refill, "action": st.action})
    return sorted(kinds.values(), key=lambda e: (e.first_ts, e.sku, e.warehouse))


def summarize_show(
    data: ShowData, now: float, thresholds: ReportThresholds | None = None
) -> ShowSummary:
    """The summary of an ended show, on the same ground as its report (the
    report's context: its verdicts, its probe-local exclusions, its score)."""
    ctx = report_context(data, now, thresholds)
    t0, t1 = ctx.span.t0, ctx.span.t1
    regions = ctx.regions
    verdicts = {v.region: v for v in ctx.verdicts}
    scores = {s.region: s for s in experience_scores(ctx.table, regions, ctx.excluded)}

    incidents = [
        IncidentSummary(
            incident_id=i.incident_id, start_ts=i.start_ts,
            end_ts=i.end_ts if i.end_ts is not None else t1, cause=i.cause,
            severity=i.severity, scope=dict(i.scope), viewers_lost=i.viewers_lost,
            orders_lost=i.orders_lost, summary=i.summary,
        )
        for i in sorted(data.incidents, key=lambda i: (i.start_ts, i.incident_id))
        if i.cause != Cause.PROBE_LOCAL
    ]
    per_region: dict[str, list[float]] = {r: [0.0, 0.0, 0.0] for r in regions}
    for inc in incidents:
        if inc.cause in STOCK_CAUSES:
            continue  # minutes of a broken stream, not of stock trouble
        touched = _incident_regions(inc.scope, regions)
        for r in touched:
            acc = per_region.setdefault(r, [0.0, 0.0, 0.0])
            acc[0] += (inc.end_ts - inc.start_ts) / 60.0
            # A whole-show incident's losses are shared out, not counted per region.
            acc[1] += (inc.viewers_lost or 0.0) / len(touched)
            acc[2] += (inc.orders_lost or 0.0) / len(touched)

    region_rows = []
    for r in regions:
        sc = scores[r]
        v = verdicts[r]
        peak, orders = _region_business(data.business, r)
        minutes, v_lost, o_lost = per_region.get(r, [0.0, 0.0, 0.0])
        region_rows.append(RegionSummary(
            region=r, score=sc.score, parts=sc.parts(), probe_seconds=sc.probe_seconds,
            good_s=v.seconds.get("good", 0), degraded_s=v.seconds.get("degraded", 0),
            failed_s=v.seconds.get("failed", 0), incident_minutes=round(minutes, 2),
            viewers_lost=round(float(np.nan_to_num(v_lost)), 1),
            orders_lost=round(float(np.nan_to_num(o_lost)), 1),
            peak_viewers=peak, orders=orders,
        ))
    return ShowSummary(
        show_id=data.show.show_id, title=data.show.title, start_ts=t0, end_ts=t1, made_ts=now,
        score_version=SCORE_VERSION, regions=region_rows, incidents=incidents,
        stock=stock_events(data.stock_states),
    )
