"""The collector's HTTP API (aiohttp). See ``docs/collector.md`` and the
OpenAPI document it serves at ``/openapi.json``.

Order of work for every write: authenticate, rate-limit, read the body
(size-capped), validate against the data model, store (in a worker thread,
or for probe batches on the store's own writer thread; returns once
durable), then hand to the live pipeline, then acknowledge. So
the pipeline never sees data that could still be lost, and a client that got
a 200 never has to send again.

The collector does not own the store or the pipeline: whoever created them
closes them after ``RunningCollector.stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import pydantic_core
from aiohttp import web
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from qosmon.collector.auth import RateLimiter, TokenRegistry, bearer_token, token_digest
from qosmon.collector.business_csv import parse_business_csv
from qosmon.collector.config import CollectorConfig
from qosmon.collector.fleet import Fleet
from qosmon.collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from qosmon.collector.metrics import CollectorMetrics
from qosmon.collector.openapi import SERIES_METRICS, build_openapi
from qosmon.collector.wire import (
    ApiError,
    BusinessPush,
    InventoryChanges,
    InventorySnapshot,
    ShowEnd,
    ShowPath,
    check_numbers,
    from_validation_error,
    samples_plainly_fine,
)
from qosmon.model import (
    BusinessSample,
    Heartbeat,
    OnScreen,
    ProbeBatch,
    ProbeSample,
    Show,
    StockRecord,
)
from qosmon.pipeline import NullPipeline, Pipeline
from qosmon.store.base import Store, StoreError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

SSE_KEEPALIVE_S = 15.0
_ON_SCREEN_LIST: TypeAdapter[list[OnScreen]] = TypeAdapter(
    Annotated[list[OnScreen], Field(max_length=100_000)]
)
_REJECT_REASONS = {
    400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method", 413: "too_large", 415: "content_type", 429: "rate_limited",
    503: "store_unavailable",
}


@dataclass
class CollectorState:
    config: CollectorConfig
    store: Store
    pipeline: Pipeline
    tokens: TokenRegistry
    limiter: RateLimiter
    fleet: Fleet
    metrics: CollectorMetrics
    openapi: bytes
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    executor: ThreadPoolExecutor | None = None
    # The store's non-blocking probe batch write, when it has one.
    submit_probe_batch: Callable[[str, Sequence[ProbeSample]], Future[bool]] | None = None

    async def store_call(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        if self.executor is None:
            raise StoreError("collector is not running")
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            return await loop.run_in_executor(self.executor, functools.partial(fn, *args))
        except StoreError:
            self.metrics.store_errors.labels(op).inc()
            raise
        finally:
            self.metrics.store_seconds.labels(op).observe(time.perf_counter() - t0)

    async def store_submit(self, op: str, submit: Callable[..., Future[T]], *args: Any) -> T:
        """Like ``store_call`` for a store operation that queues itself and
        hands back a future (``SubmitsProbeBatches``): no worker thread."""
        if self.executor is None:
            raise StoreError("collector is not running")
        t0 = time.perf_counter()
        try:
            return await asyncio.wrap_future(submit(*args))
        except StoreError:
            self.metrics.store_errors.labels(op).inc()
            raise
        finally:
            self.metrics.store_seconds.labels(op).observe(time.perf_counter() - t0)

    def feed_pipeline(self, hook: Callable[[Any], None], data: Any) -> None:
        # The data is stored already; a pipeline bug must not turn the
        # acknowledgement into an error the client would retry.
        try:
            hook(data)
        except Exception:
            log.exception("pipeline hook %s failed", getattr(hook, "__name__", hook))


STATE = web.AppKey("qosmon_collector_state", CollectorState)


# --- request plumbing --------------------------------------------------------

def _token(request: web.Request) -> str:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(
            401, "missing or malformed 'Authorization: Bearer <token>' header", "Authorization",
            headers={"WWW-Authenticate": 'Bearer realm="qosmon"'},
        )
    return token


def _limit(state: CollectorState, token: str) -> None:
    wait = state.limiter.acquire(token_digest(token), time.monotonic())
    if wait is not None:
        raise ApiError(
            429, f"too many requests for this token; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _auth_probe(request: web.Request) -> str:
    state = request.app[STATE]
    token = _token(request)
    probe_id = state.tokens.probe_for(token)
    if probe_id is None:
        if state.tokens.is_feed(token):
            raise ApiError(403, "a feed token cannot post probe data", "Authorization")
        raise ApiError(401, "unknown probe token", "Authorization",
                       headers={"WWW-Authenticate": 'Bearer realm="qosmon"'})
    _limit(state, token)
    return probe_id


def _auth_feed(request: web.Request) -> None:
    state = request.app[STATE]
    token = _token(request)
    if not state.tokens.is_feed(token):
        if state.tokens.probe_for(token) is not None:
            raise ApiError(403, "a probe token cannot post feed data", "Authorization")
        raise ApiError(401, "unknown feed token", "Authorization",
                       headers={"WWW-Authenticate": 'Bearer realm="qosmon"'})
    _limit(state, token)


def _auth_read(request: web.Request) -> None:
    state = request.app[STATE]
    if state.tokens.reads_open:
        return
    token = _token(request)
    if not state.tokens.may_read(token):
        raise ApiError(401, "unknown read token", "Authorization",
                       headers={"WWW-Authenticate": 'Bearer realm="qosmon"'})
    _limit(state, token)


async def _body(request: web.Request, media: str = "json") -> bytes:
    ctype = request.content_type
    if media == "json":
        ok = ctype == "application/json" or ctype.endswith("+json")
        expected = "application/json"
    else:
        ok = ctype in ("text/csv", "text/plain")
        expected = "text/csv"
    if not ok:
        raise ApiError(415, f"Content-Type must be {expected}, not {ctype}", "Content-Type")
    limit = request.app[STATE].config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body of {request.content_length} bytes exceeds {limit} bytes")
    return await request.read()


def _parse(model: type[M], body: bytes, check: bool = True) -> M:
    # Strict: the wire format is the documented JSON types; lax parsing would
    # turn ``true`` into 1 and "12" into 12, hiding a producer's bug.
    try:
        parsed = model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    if check:
        check_numbers(parsed)
    return parsed


def _show_id(request: web.Request) -> str:
    try:
        return ShowPath(show_id=request.match_info["show_id"]).show_id
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ApiError(400, err["msg"], "show_id") from None


def _not_future(ts: float, now: float, skew: float, path: str) -> None:
    if ts > now + skew:
        raise ApiError(
            400, f"{ts - now:.1f} s ahead of the collector's clock (limit {skew:g} s)", path
        )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":"), allow_nan=False).encode(),
        status=status, content_type="application/json",
    )


def _models(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in items]


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        return await handler(request)
    except ApiError as exc:
        err: ApiError = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = ApiError(exc.status, exc.reason)
        if "Allow" in exc.headers:
            err.headers["Allow"] = exc.headers["Allow"]
    except StoreError as exc:
        log.error("store error on %s %s: %s", request.method, request.path, exc)
        err = ApiError(503, "store unavailable; nothing was acknowledged, retry later",
                       headers={"Retry-After": "1"})
    reason = _REJECT_REASONS.get(err.status, str(err.status))
    state.metrics.rejects.labels(reason).inc()
    log.debug("%s %s -> %d %s", request.method, request.path, err.status, err.problem)
    resp = _json(err.body(), status=err.status)
    resp.headers.update(err.headers)
    return resp


# --- probes --------------------------------------------------------------------

async def post_samples(request: web.Request) -> web.Response:
    state = request.app[STATE]
    probe_id = _auth_probe(request)
    body = await _body(request)
    batch = _parse(ProbeBatch, body, check=False)
    now = time.time()
    samples = batch.samples
    if not samples_plainly_fine(batch, probe_id, now + state.config.max_future_skew_s):
        _check_samples(state, batch, probe_id, now)
    for s in samples:
        # Plain dict write: pydantic's __setattr__ costs ~1 µs a sample here.
        s.__dict__["received_ts"] = now
    # Batch ids are scoped by probe (batch ids cannot contain "/"), so one
    # probe can never shadow another's batch.
    batch_key = f"{probe_id}/{batch.batch_id}"
    if state.submit_probe_batch is not None:
        stored = await state.store_submit("write_probe_batch", state.submit_probe_batch,
                                          batch_key, samples)
    else:
        stored = await state.store_call("write_probe_batch", state.store.write_probe_batch,
                                        batch_key, samples)
    state.fleet.on_batch(probe_id, batch.sent_ts, now, len(samples) if stored else 0,
                         batch.dropped_samples if stored else 0)
    if stored:
        state.metrics.samples.inc(len(samples))
        state.metrics.batches.labels("stored").inc()
        state.feed_pipeline(state.pipeline.on_probe_samples, samples)
    else:
        state.metrics.batches.labels("duplicate").inc()
    return _json({"stored": len(samples) if stored else 0, "duplicate": not stored})


def _check_samples(state: CollectorState, batch: ProbeBatch, probe_id: str, now: float) -> None:
    """The checks ``samples_plainly_fine`` vouches for, one sample at a time,
    raising for the first problem found (field by field, in order)."""
    check_numbers(batch.model_copy(update={"samples": []}))
    if batch.probe_id != probe_id:
        raise ApiError(403, f"this token belongs to probe {probe_id!r}", "probe_id")
    skew = state.config.max_future_skew_s
    for i, s in enumerate(batch.samples):
        if s.probe_id != probe_id:
            raise ApiError(403, f"this token belongs to probe {probe_id!r}",
                           f"samples[{i}].probe_id")
        if s.ts > now + skew:
            _not_future(s.ts, now, skew, f"samples[{i}].ts")
        check_numbers(s, f"samples[{i}]")


async def post_heartbeat(request: web.Request) -> web.Response:
    state = request.app[STATE]
    probe_id = _auth_probe(request)
    hb = _parse(Heartbeat, await _body(request))
    if hb.probe.probe_id != probe_id:
        raise ApiError(403, f"this token belongs to probe {probe_id!r}", "probe.probe_id")
    now = time.time()
    state.fleet.on_heartbeat(hb, now)
    return _json({"ok": True, "received_ts": now})


async def get_fleet(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    now = time.time()
    return _json({"ts": now, "heartbeat_interval_s": state.config.heartbeat_interval_s,
                  "probes": state.fleet.view(now)})


# --- shows ----------------------------------------------------------------------

async def _existing_show(state: CollectorState, show_id: str) -> Show:
    show = await state.store_call("get_show", state.store.get_show, show_id)
    if show is None:
        raise ApiError(404, f"no show {show_id!r}", "show_id")
    return show


async def put_show(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    show_id = _show_id(request)
    show = _parse(Show, await _body(request))
    if show.show_id != show_id:
        raise ApiError(400, f"differs from the show id in the path ({show_id!r})", "show_id")
    await state.store_call("put_show", state.store.put_show, show)
    state.feed_pipeline(state.pipeline.on_show, show)
    return _json(show.model_dump(mode="json"))


async def post_show_end(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    show_id = _show_id(request)
    end = _parse(ShowEnd, await _body(request))
    show = await _existing_show(state, show_id)
    if end.ts < show.start_ts:
        raise ApiError(400, f"before the show's start_ts ({show.start_ts})", "ts")
    _not_future(end.ts, time.time(), state.config.max_future_skew_s, "ts")
    show = show.model_copy(update={"end_ts": end.ts})
    await state.store_call("put_show", state.store.put_show, show)
    state.feed_pipeline(state.pipeline.on_show, show)
    return _json(show.model_dump(mode="json"))


async def get_shows(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    shows = await state.store_call("list_shows", state.store.list_shows)
    return _json({"shows": _models(shows)})


async def get_show(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    show = await _existing_show(state, _show_id(request))
    return _json(show.model_dump(mode="json"))


async def post_on_screen(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    show_id = _show_id(request)
    body = await _body(request)
    try:
        events = _ON_SCREEN_LIST.validate_json(body, strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    now = time.time()
    for i, e in enumerate(events):
        check_numbers(e, f"[{i}]")
        if e.show_id != show_id:
            raise ApiError(400, f"differs from the show id in the path ({show_id!r})",
                           f"[{i}].show_id")
        _not_future(e.ts, now, state.config.max_future_skew_s, f"[{i}].ts")
    await _existing_show(state, show_id)
    await state.store_call("write_on_screen", state.store.write_on_screen, events)
    state.metrics.records.labels("on_screen").inc(len(events))
    state.feed_pipeline(state.pipeline.on_on_screen, events)
    return _json({"stored": len(events)})


async def get_incidents(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    show_id = _show_id(request)
    await _existing_show(state, show_id)
    incidents = await state.store_call("incidents", state.store.incidents, show_id)
    return _json({"show_id": show_id, "incidents": _models(incidents)})


async def get_inventory(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    show_id = _show_id(request)
    await _existing_show(state, show_id)
    return _json({"show_id": show_id, "states": _models(state.pipeline.current_stock(show_id))})


async def get_inventory_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the current stock states first, then each change."""
    state = request.app[STATE]
    _auth_read(request)
    show_id = _show_id(request)
    await _existing_show(state, show_id)
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


# --- business and inventory --------------------------------------------------------

async def _store_business(state: CollectorState, samples: list[BusinessSample]) -> None:
    await state.store_call("write_business", state.store.write_business, samples)
    state.metrics.records.labels("business").inc(len(samples))
    state.feed_pipeline(state.pipeline.on_business, samples)


async def post_business(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    push = _parse(BusinessPush, await _body(request))
    now = time.time()
    for i, s in enumerate(push.samples):
        _not_future(s.ts, now, state.config.max_future_skew_s, f"samples[{i}].ts")
    await _store_business(state, push.samples)
    return _json({"stored": len(push.samples)})


async def post_business_import(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    show_id = request.query.get("show_id") or None
    if show_id is not None:
        try:
            show_id = ShowPath(show_id=show_id).show_id
        except ValidationError as exc:
            raise ApiError(400, exc.errors(include_url=False)[0]["msg"], "show_id") from None
    samples = parse_business_csv(await _body(request, media="csv"), show_id)
    now = time.time()
    for i, s in enumerate(samples):
        if s.ts > now + state.config.max_future_skew_s:
            raise ApiError(400, f"row {i + 1}: ts is in the future", "ts", row=i + 1)
    await _store_business(state, samples)
    return _json({"stored": len(samples)})


async def _store_stock(state: CollectorState, records: list[StockRecord]) -> None:
    await state.store_call("write_stock", state.store.write_stock, records)
    state.metrics.records.labels("stock").inc(len(records))
    state.feed_pipeline(state.pipeline.on_stock, records)


async def post_inventory_snapshot(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    snap = _parse(InventorySnapshot, await _body(request))
    now = time.time()
    _not_future(snap.source_ts, now, state.config.max_future_skew_s, "source_ts")
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
    return _json({"stored": len(records)})


async def post_inventory_changes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_feed(request)
    body = await _body(request)
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
    try:
        changes = InventoryChanges.model_validate(raw, strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    check_numbers(changes)
    for i, r in enumerate(changes.records):
        _not_future(r.source_ts, now, state.config.max_future_skew_s, f"records[{i}].source_ts")
    await _store_stock(state, changes.records)
    return _json({"stored": len(changes.records)})


# --- live queries, metrics, health ------------------------------------------------------

async def get_series(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    q = request.query
    show_id = q.get("show_id")
    if not show_id:
        raise ApiError(400, "required", "show_id")
    try:
        show_id = ShowPath(show_id=show_id).show_id
    except ValidationError as exc:
        raise ApiError(400, exc.errors(include_url=False)[0]["msg"], "show_id") from None
    metric = q.get("metric", "")
    if metric not in SERIES_METRICS:
        raise ApiError(400, f"unknown metric {metric[:64]!r}; one of: {', '.join(SERIES_METRICS)}",
                       "metric")
    try:
        minutes = float(q.get("minutes", "5"))
    except ValueError:
        raise ApiError(400, "not a number", "minutes") from None
    if not (0 < minutes <= 24 * 60):
        raise ApiError(400, "must be > 0 and <= 1440", "minutes")
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
    return _json({"show_id": show_id, "metric": metric, "start_ts": now - minutes * 60.0,
                  "end_ts": now, "points": points})


async def get_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _auth_read(request)
    resp = web.Response(body=state.metrics.render())
    resp.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return resp


async def get_healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE].openapi, content_type="application/json")


# --- lifecycle ------------------------------------------------------------------

async def _tick_loop(state: CollectorState) -> None:
    while True:
        # Tick near whole seconds; sleep at least a little so a slow tick
        # cannot make ticks run back to back.
        await asyncio.sleep(max(0.05, 1.0 - time.time() % 1.0))
        try:
            await state.pipeline.tick(time.time())
        except Exception:
            log.exception("pipeline tick failed")


async def _retention_loop(state: CollectorState) -> None:
    cfg = state.config.retention
    apply = getattr(state.store, "apply_retention", None)
    if apply is None:
        return
    while True:
        try:
            done = await state.store_call(
                "apply_retention", apply, time.time(), cfg.raw_days, cfg.keep_days
            )
            if any(done.values()):
                log.info("retention: %s", done)
        except StoreError as exc:
            log.error("retention failed: %s", exc)
        await asyncio.sleep(cfg.check_interval_s)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.executor = ThreadPoolExecutor(state.config.store_threads, thread_name_prefix="store")
    tasks = [asyncio.create_task(_tick_loop(state), name="pipeline-tick")]
    if state.config.retention.enabled:
        tasks.append(asyncio.create_task(_retention_loop(state), name="retention"))
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        executor, state.executor = state.executor, None
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(executor.shutdown, wait=True)
        )


async def _on_shutdown(app: web.Application) -> None:
    app[STATE].shutdown.set()


def create_app(
    config: CollectorConfig, store: Store, pipeline: Pipeline | None = None
) -> web.Application:
    pipeline = pipeline if pipeline is not None else NullPipeline()
    tokens = TokenRegistry(
        [(p.probe_id, p.token) for p in config.probes], config.feed_tokens, config.read_tokens
    )
    fleet = Fleet(tokens.probe_ids, config.heartbeat_interval_s)
    state = CollectorState(
        config=config,
        store=store,
        pipeline=pipeline,
        tokens=tokens,
        limiter=RateLimiter(config.rate_limit.requests_per_s, config.rate_limit.burst),
        fleet=fleet,
        metrics=CollectorMetrics(lambda: fleet.up_count(time.time()),
                                 lambda: pipeline.live_qos(time.time()), pipeline.delivery_qos),
        openapi=json.dumps(build_openapi(reads_open=tokens.reads_open), indent=1).encode(),
        submit_probe_batch=getattr(store, "submit_probe_batch", None),
    )
    app = web.Application(middlewares=[_errors], client_max_size=config.max_body_bytes)
    app[STATE] = state
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
    r = app.router
    r.add_post("/api/v1/samples", post_samples)
    r.add_post("/api/v1/probes/heartbeat", post_heartbeat)
    r.add_get("/api/v1/fleet", get_fleet)
    r.add_get("/api/v1/shows", get_shows)
    r.add_put("/api/v1/shows/{show_id}", put_show)
    r.add_get("/api/v1/shows/{show_id}", get_show)
    r.add_post("/api/v1/shows/{show_id}/end", post_show_end)
    r.add_post("/api/v1/shows/{show_id}/on-screen", post_on_screen)
    r.add_get("/api/v1/shows/{show_id}/incidents", get_incidents)
    r.add_get("/api/v1/shows/{show_id}/inventory", get_inventory)
    r.add_get("/api/v1/shows/{show_id}/inventory/events", get_inventory_events)
    r.add_post("/api/v1/business", post_business)
    r.add_post("/api/v1/business/import", post_business_import)
    r.add_post("/api/v1/inventory/snapshot", post_inventory_snapshot)
    r.add_post("/api/v1/inventory/changes", post_inventory_changes)
    r.add_get("/api/v1/series", get_series)
    r.add_get("/metrics", get_metrics)
    r.add_get("/healthz", get_healthz)
    r.add_get("/openapi.json", get_openapi)
    return app


@dataclass
class RunningCollector:
    url: str
    app: web.Application
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_collector(
    config: CollectorConfig, store: Store, pipeline: Pipeline | None = None
) -> RunningCollector:
    """Serve the collector on ``config.host:config.port`` (port 0: a free
    one) until ``stop()``. ``url`` is where it listens."""
    app = create_app(config, store, pipeline)
    # No access log: at thousands of batches a second it would cost more
    # than the ingest; rejects are counted in /metrics and logged at debug.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    host, port = runner.addresses[0][:2]
    host_part = f"[{host}]" if ":" in host else host
    return RunningCollector(url=f"http://{host_part}:{port}", app=app, runner=runner)
