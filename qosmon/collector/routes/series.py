"""Recent probe figures of one show as time series, for dashboards."""

from __future__ import annotations

import math
import time
from typing import Any

from aiohttp import web

from qosmon.collector.openapi import SERIES_METRICS
from qosmon.collector.request import auth_read, json_response, query_show_id, state_of
from qosmon.collector.wire import ApiError
from qosmon.store.base import ReadsSeries, SeriesRead, Store

routes = web.RouteTableDef()

@routes.get("/api/v1/series")
async def get_series(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_read(request)
    q = request.query
    show_id = query_show_id(request, required=True)
    metric = q.get("metric", "")
    if metric not in SERIES_METRICS:
        raise ApiError(400, f"unknown metric {metric[:64]!r}; one of: {', '.join(SERIES_METRICS)}",
                       "metric")
    try:
        minutes = float(q.get("minutes", "5"))
    except ValueError:
        raise ApiError(400, "not a number", "minutes") from None
    lim = state.config.limits
    if not (0 < minutes <= lim.series_max_minutes):
        raise ApiError(400, f"must be > 0 and <= {lim.series_max_minutes:g}", "minutes")
    region = q.get("region") or None
    probe_id = q.get("probe_id") or None
    now = time.time()
    start = now - minutes * 60.0
    # A long read scans many rows: a few at a time, the rest told to retry.
    slots = state.series_slots
    assert slots is not None
    if slots.locked():
        state.metrics.limits_hit.labels("series_concurrency").inc()
        raise ApiError(429, f"{lim.series_concurrency} series reads already running; "
                            "retry shortly", headers={"Retry-After": "1"})
    async with slots:
        read = await state.store_call(
            "probe_series", _series, state.store, show_id, metric, start, region, probe_id,
            lim.series_max_points,
        )
    if read.bucket_s:
        state.metrics.limits_hit.labels("series_downsampled").inc()
    points = [
        {"ts": ts, "probe_id": pid, "region": reg, "stream_id": sid, "value": value}
        for ts, pid, reg, sid, value in read.points
    ]
    return json_response({"show_id": show_id, "metric": metric, "start_ts": start,
                          "end_ts": now, "bucket_s": read.bucket_s,
                          "truncated": read.truncated, "points": points})


def _series(store: Store, show_id: str, metric: str, start: float, region: str | None,
            probe_id: str | None, max_points: int) -> SeriesRead:
    """The store's own downsampled read if it has one; else every sample,
    averaged here (bounded answer, not bounded work: such a store keeps
    its samples on a server of its own)."""
    if isinstance(store, ReadsSeries):
        return store.probe_series(show_id, metric, start, None, region, probe_id, max_points)
    samples = store.probe_samples(show_id, start, None, region, probe_id)
    rows = [(s.ts, s.probe_id, s.region, s.stream_id, getattr(s, metric)) for s in samples]
    if len(rows) <= max_points:
        return SeriesRead(rows, 0.0, False)
    series = {(r[1], r[3]) for r in rows}
    bucket = float(max(1, math.ceil((rows[-1][0] - rows[0][0] + 1) * len(series) / max_points)))
    acc: dict[tuple[str, str, int], list[Any]] = {}
    for ts, pid, reg, sid, value in rows:
        a = acc.setdefault((pid, sid, int(ts // bucket)), [ts, pid, reg, sid, 0.0, 0])
        a[0] = ts
        if value is not None:
            a[4] += value
            a[5] += 1
    points = sorted(((a[0], a[1], a[2], a[3], a[4] / a[5] if a[5] else None)
                     for a in acc.values()), key=lambda p: p[0])
    return SeriesRead(points[-max_points:], bucket, len(points) > max_points)
