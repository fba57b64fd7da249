"""Business figures from the commerce platform: JSON pushes and CSV imports,
both stored as ``BusinessSample``s (one per show, region, SKU and interval)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from qosmon.collector.business_csv import parse_business_csv
from qosmon.collector.request import (
    auth_feed,
    json_response,
    not_future,
    parse,
    query_show_id,
    read_body,
    state_of,
)
from qosmon.collector.state import CollectorState
from qosmon.collector.wire import BusinessPush
from qosmon.model import BusinessSample
from qosmon.store.base import StoreError

routes = web.RouteTableDef()


async def _store_business(state: CollectorState, samples: list[BusinessSample]) -> None:
    await state.store_records("business", state.store.write_business, state.pipeline.on_business,
                              samples)


@routes.post("/api/v1/business")
async def post_business(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    push = parse(BusinessPush, await read_body(request))
    now = time.time()
    for i, s in enumerate(push.samples):
        not_future(state, s.ts, now, f"samples[{i}].ts")
    await _store_business(state, push.samples)
    return json_response({"stored": len(push.samples)})


@routes.post("/api/v1/business/import")
async def post_business_import(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    show_id = query_show_id(request, required=False)
    body = await read_body(request, media="csv")
    # Parsing 200 000 rows takes about a second: off the event loop, which
    # meanwhile answers probes and ticks the live analysis.
    if state.executor is None:
        raise StoreError("collector is not running")
    samples = await asyncio.get_running_loop().run_in_executor(
        state.executor, parse_business_csv, body, show_id)
    now = time.time()
    for i, s in enumerate(samples):
        not_future(state, s.ts, now, "ts", row=i + 1)
    await _store_business(state, samples)
    return json_response({"stored": len(samples)})
