"""What every request handler of one collector shares: its config, store,
pipeline, tokens, rate limiter, fleet view and metrics, and the store calls
that keep the event loop free while the store works."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from qosmon.collector.assignment import ProbeRegistry
from qosmon.collector.auth import RateLimiter, TokenRegistry
from qosmon.collector.config import CollectorConfig
from qosmon.collector.fleet import Fleet
from qosmon.collector.metrics import CollectorMetrics
from qosmon.model import ProbeSample
from qosmon.pipeline import Pipeline
from qosmon.store.base import Store, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")


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
    # Probes that asked for work, and what they were given.
    assignments: ProbeRegistry = field(default_factory=ProbeRegistry)

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

    async def store_records(
        self, kind: str, write: Callable[[list[Any]], None], hook: Callable[[Any], None],
        records: list[Any],
    ) -> None:
        """The usual write: store ``records`` (``write_<kind>``), count them,
        then hand them to the pipeline."""
        await self.store_call(f"write_{kind}", write, records)
        self.metrics.records.labels(kind).inc(len(records))
        self.feed_pipeline(hook, records)

    def feed_pipeline(self, hook: Callable[[Any], None], data: Any) -> None:
        # The data is stored already; a pipeline bug must not turn the
        # acknowledgement into an error the client would retry.
        try:
            hook(data)
        except Exception:
            log.exception("pipeline hook %s failed", getattr(hook, "__name__", hook))


STATE = web.AppKey("qosmon_collector_state", CollectorState)
