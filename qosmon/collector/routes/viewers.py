"""The platform's own player reports (viewer-side aggregates): sessions,
failures, watched and stalled seconds per audience slice and interval, stored
and handed to the live pipeline, whose engine localizes failure rate and
rebuffer ratio from them."""

from __future__ import annotations

import time

from aiohttp import web

from qosmon.collector.request import (
    auth_feed,
    json_response,
    not_future,
    parse,
    read_body,
    state_of,
)
from qosmon.collector.wire import ApiError, ViewerAggregatePush
from qosmon.pipeline import TakesViewerAggregates
from qosmon.store.base import StoresViewerAggregates

routes = web.RouteTableDef()


@routes.post("/api/v1/viewer-aggregates")
async def post_viewer_aggregates(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    push = parse(ViewerAggregatePush, await read_body(request))
    now = time.time()
    for i, s in enumerate(push.samples):
        not_future(state, s.ts, now, f"samples[{i}].ts")
        if s.failures > s.sessions:
            raise ApiError(400, "more failures than sessions", f"samples[{i}].failures")
    store = state.store
    if not isinstance(store, StoresViewerAggregates):
        raise ApiError(501, "this store does not keep viewer aggregates (use the embedded store)")
    await state.store_call("write_viewer_aggregates", store.write_viewer_aggregates, push.samples)
    state.metrics.records.labels("viewer_aggregates").inc(len(push.samples))
    if isinstance(state.pipeline, TakesViewerAggregates):
        state.feed_pipeline(state.pipeline.on_viewer_aggregates, push.samples)
    return json_response({"stored": len(push.samples)})
