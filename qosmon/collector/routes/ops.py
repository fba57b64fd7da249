"""For whoever runs the collector: its metrics, a health check, and the
OpenAPI document of the whole API."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from qosmon.collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from qosmon.collector.request import auth_read, json_response, state_of
from qosmon.pipeline import ReportsHealth

routes = web.RouteTableDef()


@routes.get("/metrics")
async def get_metrics(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_read(request)
    resp = web.Response(body=state.metrics.render())
    resp.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return resp


@routes.get("/healthz")
async def get_healthz(request: web.Request) -> web.Response:
    """``ok`` (200) or ``unhealthy`` (503) with the problems found: the
    store's writer dead, stuck longer than its timeout or its last write
    failed; live analysis' tick stalled (age of the last one) or its alert
    outbox stuck."""
    state = state_of(request)
    body: dict[str, Any] = {"status": "ok"}
    problems: list[str] = []
    store = state.store_health()
    if store is not None:
        body["store"] = store
        if not store["ok"]:
            problems.append("store_failing")
    if isinstance(state.pipeline, ReportsHealth):
        live = state.pipeline.health(time.time())
        problems += live.get("problems", [])
        body["live"] = live
    if problems:
        body["status"] = "unhealthy"
        body["problems"] = problems
        return json_response(body, status=503)
    return json_response(body)


@routes.get("/openapi.json")
async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=state_of(request).openapi, content_type="application/json")
