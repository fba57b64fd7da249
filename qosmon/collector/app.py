"""The collector's HTTP API (aiohttp): this module assembles the application
from the route modules (``qosmon.collector.routes``) and runs its lifecycle.
See ``docs/collector.md`` and the OpenAPI document it serves at
``/openapi.json``.

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
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from qosmon.collector.auth import RateLimiter, TokenRegistry
from qosmon.collector.config import CollectorConfig
from qosmon.collector.fleet import Fleet
from qosmon.collector.metrics import CollectorMetrics
from qosmon.collector.openapi import build_openapi
from qosmon.collector.request import errors_middleware
from qosmon.collector.routes import ROUTE_MODULES
from qosmon.collector.routes.live import PAGES, LivePages
from qosmon.collector.state import STATE, CollectorState
from qosmon.history.collect import backfill_summaries
from qosmon.pipeline import NullPipeline, Pipeline, ReportsHealth
from qosmon.store.base import AppliesRetention, Store, StoreError, SubmitsProbeBatches

__all__ = ["CollectorConfig", "RunningCollector", "create_app", "start_collector"]

log = logging.getLogger(__name__)


async def _tick_loop(state: CollectorState) -> None:
    while True:
        # Tick near whole seconds; sleep at least a little so a slow tick
        # cannot make ticks run back to back.
        delay = max(0.05, 1.0 - time.time() % 1.0)
        due = time.time() + delay
        await asyncio.sleep(delay)
        try:
            await state.pipeline.tick(time.time())
        except Exception:
            log.exception("pipeline tick failed")
        # How long after its second the tick was done: a busy event loop
        # or a slow analysis shows here before ticks start to be skipped.
        state.metrics.observe_tick_lag(time.time() - due)


async def _retention_loop(state: CollectorState, store: AppliesRetention) -> None:
    cfg = state.config.retention
    while True:
        try:
            # History reads summaries, not raw samples: make sure every ended
            # show has one before its raw samples can be aged out.
            await state.store_call(
                "backfill_summaries", backfill_summaries, state.store, time.time())
            done = await state.store_call(
                "apply_retention", store.apply_retention, time.time(), cfg.raw_days,
                cfg.keep_days, cfg.batch_id_days,
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
    # Retention is the embedded store's: a time-series server keeps its own.
    if state.config.retention.enabled and isinstance(state.store, AppliesRetention):
        tasks.append(asyncio.create_task(_retention_loop(state, state.store), name="retention"))
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
        [(p.probe_id, p.secret) for p in config.probes], config.feed_tokens, config.read_tokens
    )
    fleet = Fleet(tokens.probe_ids, config.heartbeat_interval_s)
    state = CollectorState(
        config=config,
        store=store,
        pipeline=pipeline,
        tokens=tokens,
        limiter=RateLimiter(config.rate_limit.requests_per_s, config.rate_limit.burst),
        fleet=fleet,
        metrics=CollectorMetrics(
            lambda: fleet.up_count(time.time()),
            # Refused here (no such show) plus stored but unknown to live
            # analysis (a show created elsewhere, or after a restart).
            lambda: state.unknown_show_samples + (
                pipeline.unknown_show_samples if isinstance(pipeline, ReportsHealth) else 0),
            lambda: pipeline.live_qos(time.time()), pipeline.delivery_qos,
        ),
        openapi=json.dumps(build_openapi(reads_open=tokens.reads_open), indent=1).encode(),
        submit_probe_batch=(
            store.submit_probe_batch if isinstance(store, SubmitsProbeBatches) else None
        ),
        open_limiter=RateLimiter(config.rate_limit.open_reads_per_s,
                                 config.rate_limit.open_reads_burst),
        series_slots=asyncio.Semaphore(config.limits.series_concurrency),
        pins={p.probe_id: p for p in config.probes},
    )
    app = web.Application(middlewares=[errors_middleware], client_max_size=config.max_body_bytes)
    app[STATE] = state
    app[PAGES] = LivePages()
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
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
    # keepalive_timeout also closes a connection that has not sent a whole
    # request head this long after opening (or after its last answer): a
    # client trickling headers a byte at a time is cut off.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0,
                           keepalive_timeout=config.limits.header_timeout_s)
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
