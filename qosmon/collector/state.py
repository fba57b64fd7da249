"""What every request handler of one collector shares: its config, store,
pipeline, tokens, rate limiter, fleet view and metrics, and the store calls
that keep the event loop free while the store works."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from qosmon.collector.assignment import ProbeRegistry
from qosmon.collector.auth import RateLimiter, TokenRegistry
from qosmon.collector.config import CollectorConfig, ProbeCredential
from qosmon.collector.fleet import Fleet
from qosmon.collector.metrics import CollectorMetrics
from qosmon.model import ProbeSample
from qosmon.pipeline import Pipeline
from qosmon.store.base import ReportsHealth, Store, StoreError

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
    # Reads without a token: a bucket per client address.
    open_limiter: RateLimiter | None = None
    # Series reads running at once (each may scan many rows).
    series_slots: asyncio.Semaphore | None = None
    # Show ids the store has, and recent misses (id -> when looked up), so
    # probe batches do not cost a store read each; both bounded.
    known_shows: set[str] = field(default_factory=set)
    # Probe id -> its entry in the config (pinned labels and shows).
    pins: dict[str, ProbeCredential] = field(default_factory=dict)
    missing_shows: dict[str, float] = field(default_factory=dict)
    # Probe samples refused for a show nobody created (yet), and the shows
    # already logged (bounded), so a wrong show id is said once, not per batch.
    unknown_show_samples: int = 0
    unknown_shows_logged: set[str] = field(default_factory=set)

    def count_unknown_show(self, show_id: str, n: int) -> None:
        self.unknown_show_samples += n
        if show_id not in self.unknown_shows_logged and len(self.unknown_shows_logged) < 1000:
            self.unknown_shows_logged.add(show_id)
            log.warning("samples for show %r, which does not exist: refused (404); the probes "
                        "send them again, and they are stored once the show is created",
                        show_id[:128])

    async def _bounded(self, op: str, work: Awaitable[T]) -> T:
        """``work`` within ``limits.store_timeout_s``, timed and counted."""
        t0 = time.perf_counter()
        timeout = self.config.limits.store_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await work
        except TimeoutError:
            self.metrics.store_errors.labels(op).inc()
            raise StoreError(f"store call {op} took longer than {timeout:g} s") from None
        except StoreError:
            self.metrics.store_errors.labels(op).inc()
            raise
        finally:
            self.metrics.store_seconds.labels(op).observe(time.perf_counter() - t0)

    async def store_call(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        if self.executor is None:
            raise StoreError("collector is not running")
        loop = asyncio.get_running_loop()
        return await self._bounded(
            op, loop.run_in_executor(self.executor, functools.partial(fn, *args)))

    async def store_submit(self, op: str, submit: Callable[..., Future[T]], *args: Any) -> T:
        """Like ``store_call`` for a store operation that queues itself and
        hands back a future (``SubmitsProbeBatches``): no worker thread. On
        a timeout the future is cancelled: the store then skips it if it
        had not started it."""
        if self.executor is None:
            raise StoreError("collector is not running")
        return await self._bounded(op, asyncio.wrap_future(submit(*args)))

    def store_health(self) -> dict[str, Any] | None:
        """The store writer's health, if the store reports one."""
        if isinstance(self.store, ReportsHealth):
            return self.store.health().as_dict()
        return None

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
