"""Recent probe figures of one show as time series, for dashboards."""

from __future__ import annotations

import time

from aiohttp import web

from qosmon.collector.openapi import SERIES_METRICS
from qosmon.collector.request import auth_read, json_response, query_show_id, state_of
from qosmon.collector.wire import ApiError

routes = web.RouteTableDef()

MAX_MINUTES = 24 * 60


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
    if not (0 < minutes <= MAX_MINUTES):
        raise ApiError(400, f"must be > 0 and <= {MAX_MINUTES}", "minutes")
    region = q.get("region") or None
    probe_id = q.get("probe_id") or None
    now = time.time()
    samples = await state.store_call(
        "probe_samples", state.store.probe_samples, show_id, now - minutes * 60.0, None,
        region, probe_id,
    )
    points = [
        {"ts": s.ts, "probe_id": s.probe_id, "region": s.region, "stream_id": s.stream_id,
         "value": getattr(s, metric)}
        for s in samples
    ]
    return json_response({"show_id": show_id, "metric": metric, "start_ts": now - minutes * 60.0,
                          "end_ts": now, "points": points})
