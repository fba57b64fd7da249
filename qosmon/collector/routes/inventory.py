"""Stock: warehouse snapshots, changes and heartbeats in, a show's current
stock states out (as JSON, and as server-sent events that follow each
change).

A heartbeat (or a change set marked with its warehouse and ``source_ts``)
says the warehouse's feed has sent every change up to ``source_ts``: its
figures are current, and from then on it is held to the short heartbeat age
limit (``heartbeat_stale_after_s``, see ``docs/inventory.md``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pydantic_core
from aiohttp import web

from qosmon.collector.request import (
    auth_feed,
    dump_models,
    invalid_is_400,
    json_response,
    not_future,
    parse,
    read_body,
    show_to_read,
    state_of,
    streams,
)
from qosmon.collector.state import CollectorState
from qosmon.collector.wire import (
    ApiError,
    InventoryChanges,
    InventoryHeartbeat,
    InventorySnapshot,
    check_numbers,
)
from qosmon.model import StockRecord

routes = web.RouteTableDef()

SSE_KEEPALIVE_S = 15.0


async def _store_stock(state: CollectorState, records: list[StockRecord]) -> None:
    await state.store_records("stock", state.store.write_stock, state.pipeline.on_stock, records)


@routes.post("/api/v1/inventory/snapshot")
async def post_inventory_snapshot(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    snap = parse(InventorySnapshot, await read_body(request))
    now = time.time()
    not_future(state, snap.source_ts, now, "source_ts")
    seen: set[str] = set()
    for i, item in enumerate(snap.items):
        if item.sku in seen:
            raise ApiError(400, "SKU listed twice in one snapshot", f"items[{i}].sku")
        seen.add(item.sku)
    records = [
        StockRecord(ts=now, source_ts=snap.source_ts, warehouse=snap.warehouse, sku=item.sku,
                    on_hand=item.on_hand, full_snapshot=True)
        for item in snap.items
    ]
    await _store_stock(state, records)
    return json_response({"stored": len(records)})


@routes.post("/api/v1/inventory/changes")
async def post_inventory_changes(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    body = await read_body(request)
    now = time.time()
    try:
        raw = pydantic_core.from_json(body)
    except ValueError as exc:
        raise ApiError(400, f"Invalid JSON: {exc}", "(body)") from None
    # ts is the receipt time (StockRecord's contract); a sender need not send it.
    if isinstance(raw, dict) and isinstance(raw.get("records"), list):
        for i, rec in enumerate(raw["records"]):
            if isinstance(rec, dict):
                sent = rec.get("ts", 0.0)
                if isinstance(sent, bool) or not isinstance(sent, int | float):
                    raise ApiError(400, "must be a number (it is replaced by the receipt time)",
                                   f"records[{i}].ts")
                rec["ts"] = now
    with invalid_is_400():
        changes = InventoryChanges.model_validate(raw, strict=True)
    check_numbers(changes)
    for i, r in enumerate(changes.records):
        not_future(state, r.source_ts, now, f"records[{i}].source_ts")
    if changes.source_ts is not None:
        not_future(state, changes.source_ts, now, "source_ts")
    await _store_stock(state, changes.records)
    if changes.warehouse is not None and changes.source_ts is not None:
        state.feed_pipeline(_heartbeat(state, now), (changes.warehouse, changes.source_ts))
    return json_response({"stored": len(changes.records)})


def _heartbeat(state: CollectorState, now: float) -> Callable[[tuple[str, float]], None]:
    def on_heartbeat(beat: tuple[str, float]) -> None:
        state.pipeline.on_stock_heartbeat(beat[0], beat[1], now)

    return on_heartbeat


@routes.post("/api/v1/inventory/heartbeat")
async def post_inventory_heartbeat(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_feed(request)
    beat = parse(InventoryHeartbeat, await read_body(request))
    now = time.time()
    not_future(state, beat.source_ts, now, "source_ts")
    state.metrics.records.labels("stock_heartbeat").inc()
    state.feed_pipeline(_heartbeat(state, now), (beat.warehouse, beat.source_ts))
    return json_response({"ok": True, "received_ts": now})


@routes.get("/api/v1/shows/{show_id}/inventory")
async def get_inventory(request: web.Request) -> web.Response:
    state = state_of(request)
    show_id = (await show_to_read(request)).show_id
    return json_response(
        {"show_id": show_id, "states": dump_models(state.pipeline.current_stock(show_id))}
    )


@routes.get("/api/v1/shows/{show_id}/inventory/events")
@streams
async def get_inventory_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the current stock states first, then each change."""
    state = state_of(request)
    show_id = (await show_to_read(request)).show_id
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                 "X-Accel-Buffering": "no"},
    )
    await resp.prepare(request)
    stop = asyncio.create_task(state.shutdown.wait())
    try:
        async with state.pipeline.stock_feed.subscribe(show_id) as queue:
            for st in state.pipeline.current_stock(show_id):
                await resp.write(f"data: {st.model_dump_json()}\n\n".encode())
            while not state.shutdown.is_set():
                get = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {get, stop}, timeout=SSE_KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if get not in done:
                    get.cancel()
                    if stop in done:
                        break
                    await resp.write(b": keepalive\n\n")
                    continue
                await resp.write(f"data: {get.result().model_dump_json()}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        stop.cancel()
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp
