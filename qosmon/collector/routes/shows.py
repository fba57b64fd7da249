"""Shows: create or replace, end, list and read; what was on screen when;
the incidents diagnosed for a show."""

from __future__ import annotations

import time
from typing import Annotated

from aiohttp import web
from pydantic import Field, TypeAdapter

from qosmon.collector.request import (
    auth_feed,
    auth_read,
    check_show_times,
    dump_models,
    existing_show,
    invalid_is_400,
    json_response,
    not_future,
    parse,
    path_show_id,
    read_body,
    remember_show,
    same_show,
    show_to_read,
    state_of,
)
from qosmon.collector.state import CollectorState
from qosmon.collector.wire import ApiError, ShowEnd, check_numbers
from qosmon.model import OnScreen, Show

routes = web.RouteTableDef()

_ON_SCREEN_LIST: TypeAdapter[list[OnScreen]] = TypeAdapter(
    Annotated[list[OnScreen], Field(max_length=100_000)]
)


@routes.get("/api/v1/shows")
async def get_shows(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_read(request)
    shows = await state.store_call("list_shows", state.store.list_shows)
    return json_response({"shows": dump_models(shows)})


@routes.put("/api/v1/shows/{show_id}")
async def put_show(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    show_id = path_show_id(request)
    show = parse(Show, await read_body(request))
    same_show(show.show_id, show_id, "show_id")
    return await _put_show(state, show)


async def _put_show(state: CollectorState, show: Show) -> web.Response:
    """Store a show (new, replaced or ended) and hand it to the pipeline,
    once its times make sense."""
    check_show_times(state, show, time.time())
    await state.store_call("put_show", state.store.put_show, show)
    remember_show(state, show.show_id)
    state.feed_pipeline(state.pipeline.on_show, show)
    return json_response(show.model_dump(mode="json"))


@routes.get("/api/v1/shows/{show_id}")
async def get_show(request: web.Request) -> web.Response:
    show = await show_to_read(request)
    return json_response(show.model_dump(mode="json"))


@routes.post("/api/v1/shows/{show_id}/end")
async def post_show_end(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    show_id = path_show_id(request)
    end = parse(ShowEnd, await read_body(request))
    show = await existing_show(state, show_id)
    if end.ts < show.start_ts:
        raise ApiError(400, f"before the show's start_ts ({show.start_ts})", "ts")
    not_future(state, end.ts, time.time(), "ts")
    return await _put_show(state, show.model_copy(update={"end_ts": end.ts}))


@routes.post("/api/v1/shows/{show_id}/on-screen")
async def post_on_screen(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    show_id = path_show_id(request)
    body = await read_body(request)
    with invalid_is_400():
        events = _ON_SCREEN_LIST.validate_json(body, strict=True)
    now = time.time()
    for i, e in enumerate(events):
        check_numbers(e, f"[{i}]")
        same_show(e.show_id, show_id, f"[{i}].show_id")
        not_future(state, e.ts, now, f"[{i}].ts")
    await existing_show(state, show_id)
    await state.store_records("on_screen", state.store.write_on_screen,
                              state.pipeline.on_on_screen, events)
    return json_response({"stored": len(events)})


@routes.get("/api/v1/shows/{show_id}/incidents")
async def get_incidents(request: web.Request) -> web.Response:
    state = state_of(request)
    show_id = (await show_to_read(request)).show_id
    incidents = await state.store_call("incidents", state.store.incidents, show_id)
    return json_response({"show_id": show_id, "incidents": dump_models(incidents)})
