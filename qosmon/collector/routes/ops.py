"""For whoever runs the collector: its metrics, a health check, and the
OpenAPI document of the whole API."""

from __future__ import annotations

from aiohttp import web

from qosmon.collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from qosmon.collector.request import auth_read, json_response, state_of

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
    return json_response({"status": "ok"})


@routes.get("/openapi.json")
async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=state_of(request).openapi, content_type="application/json")
