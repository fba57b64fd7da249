"""Central assignment: a probe registers (labels, capabilities) and pulls the
streams it should watch; operators see who was given what.

The streams are defined on the show (``Show.streams``, via
``PUT /api/v1/shows/{id}``); a probe polling every couple of seconds picks a
new show up, and drops an ended one, without any change on the probe host.
"""

from __future__ import annotations

import time

from aiohttp import web

from qosmon.collector.request import (
    PINNED_LABELS,
    auth_probe,
    auth_read,
    check_pinned,
    json_response,
    parse,
    read_body,
    state_of,
)
from qosmon.collector.wire import ApiError
from qosmon.model import ProbeRegistration

routes = web.RouteTableDef()


@routes.post("/api/v1/probes/assignment")
async def post_assignment(request: web.Request) -> web.Response:
    state = state_of(request)
    probe_id = auth_probe(request)
    reg = parse(ProbeRegistration, await read_body(request))
    if reg.probe.probe_id != probe_id:
        raise ApiError(403, f"this token belongs to probe {probe_id!r}", "probe.probe_id")
    check_pinned(state, probe_id, {n: {getattr(reg.probe, n)} for n in PINNED_LABELS},
                 "probe.{name}")
    registry = state.assignments
    now = time.time()
    shows = registry.cached_shows(now)
    if shows is None:
        shows = await state.store_call("list_shows", state.store.list_shows)
        registry.keep_shows(shows, now)
    pin = state.pins.get(probe_id)
    if pin is not None and pin.shows:
        # A token limited to some shows is given no stream of any other.
        shows = [s for s in shows if s.show_id in pin.shows]
    answer = registry.poll(reg, shows, now)
    return json_response(answer.model_dump(mode="json"))


@routes.get("/api/v1/assignments")
async def get_assignments(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_read(request)
    return json_response({"ts": time.time(), "probes": state.assignments.view()})
