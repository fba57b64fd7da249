"""The probe's link to the collector: samples in batches, heartbeats.

Contract (the collector's HTTP API):

- ``POST {url}/api/v1/samples`` with a ``ProbeBatch`` and ``Authorization:
  Bearer <token>``: 200 ``{"stored": n, "duplicate": bool}``; 400/403/409/
  413/422 = the collector will never take this batch (malformed, labels
  this token may not post, an id reused with other content, too big):
  logged, set aside (``Spool.set_aside``), counted, not retried, so it does
  not block the batches behind it; 401 = our token is unknown (logged,
  batches stay spooled and are retried: the token may be fixed on the
  collector); 429/5xx/no answer = kept in the spool and retried with backoff.
- ``POST {url}/api/v1/probes/heartbeat`` with a ``Heartbeat``, same auth, so
  the collector can tell "probe down" from "stream down"; its
  ``spool_error`` says when the spool cannot write to disk.

Samples are batched every ``batch_interval_s`` into the spool first, so a
collector outage loses nothing until the spool is full. The three tasks
(batcher, sender, heartbeats) are supervised: one that fails is logged and
restarted, never left dead while the others make the probe look healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from probes.config import ProbeConfig
from probes.spool import Spool
from qosmon import __version__
from qosmon.model import Heartbeat, ProbeLabels, ProbeSample

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
POST_TIMEOUT_S = 10.0
# Answers that mean "never": sending the batch again cannot change them.
REFUSED_FOR_GOOD = frozenset({400, 403, 409, 413, 422})
# Samples waiting for the batcher; reaching it makes the batch now.
PENDING_MAX = 10_000
RESTART_DELAY_S = 1.0
TASK_ERROR_SHOWN_S = 300.0


class CollectorUplink:
    def __init__(
        self,
        url: str,
        token: str,
        labels: ProbeLabels,
        spool_dir: Path | None = None,
        spool_max_samples: int = 100_000,
        spool_memory_max_samples: int = 10_000,
        batch_interval_s: float = 1.0,
        heartbeat_interval_s: float = 5.0,
        streams: list[str] | None = None,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.url = url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self.labels = labels
        self.spool = Spool(labels.probe_id, spool_max_samples, spool_dir,
                           memory_max_samples=spool_memory_max_samples)
        self.batch_interval_s = batch_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.streams = list(streams or [])
        self.retry_max_s = retry_max_s
        self._pending: list[ProbeSample] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._closing = False
        # Counters, for logs and tests.
        self.sent_samples = 0
        self.rejected_samples = 0
        self.auth_failures = 0
        self.task_failures = 0
        self.last_error: str | None = None
        self._task_error: tuple[str, float] | None = None  # (what, when: monotonic)

    @classmethod
    def from_config(cls, config: ProbeConfig) -> CollectorUplink:
        if config.collector_url is None:
            raise ValueError("no collector_url in the probe config")
        return cls(
            config.collector_url, config.token, config.labels,
            spool_dir=Path(config.spool_dir) if config.spool_dir else None,
            spool_max_samples=config.spool_max_samples,
            spool_memory_max_samples=config.spool_memory_max_samples,
            batch_interval_s=config.batch_interval_s,
            heartbeat_interval_s=config.heartbeat_interval_s,
            streams=[f"{s.show_id}/{s.stream_id}" for s in config.streams],
        )

    def __repr__(self) -> str:  # never show the token
        return f"CollectorUplink({self.url!r}, probe={self.labels.probe_id!r})"

    async def start(self) -> None:
        if self._tasks:
            return
        self._http = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self._supervised(self._batcher), name="uplink-batcher"),
            asyncio.create_task(self._supervised(self._sender), name="uplink-sender"),
            asyncio.create_task(self._supervised(self._heartbeats), name="uplink-heartbeats"),
        ]

    async def _supervised(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.task_failures += 1
                self._task_error = (
                    f"{run.__name__.strip('_')} failed: {type(exc).__name__}: {exc}",
                    time.monotonic())
                log.exception("uplink task %s failed; restarting it", run.__name__)
                await asyncio.sleep(RESTART_DELAY_S)

    @property
    def spool_error(self) -> str:
        """What keeps samples from being spooled safely; "" when nothing.
        A task that failed (and was restarted) is reported for
        ``TASK_ERROR_SHOWN_S`` after."""
        task_error = ""
        if self._task_error and time.monotonic() - self._task_error[1] < TASK_ERROR_SHOWN_S:
            task_error = self._task_error[0]
        return (self.spool.error or task_error)[:300]

    async def put(self, sample: ProbeSample) -> None:
        if not self._tasks:
            await self.start()
        if len(self._pending) >= 2 * PENDING_MAX:
            # Spooling keeps failing (the batcher logs why): bounded, counted.
            del self._pending[:PENDING_MAX]
            self.spool.note_dropped(PENDING_MAX)
        self._pending.append(sample)
        if len(self._pending) >= PENDING_MAX:
            try:
                self._flush_pending()
            except Exception:
                log.exception("spooling failed; the batcher tries again")

    def _flush_pending(self) -> None:
        if self._pending:
            # The model caps a batch at 10 000 samples. A sample leaves
            # pending only once spooled: a failing add loses nothing.
            while self._pending:
                chunk = self._pending[:10_000]
                self.spool.add(chunk)
                del self._pending[:len(chunk)]
            self._wake.set()

    async def _batcher(self) -> None:
        while True:
            await asyncio.sleep(self.batch_interval_s)
            self._flush_pending()

    async def _post(self, path: str, body: str) -> tuple[int, str]:
        assert self._http is not None
        async with self._http.post(
            self.url + path,
            data=body,
            headers={**self._auth, "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
        ) as resp:
            return resp.status, (await resp.text())[:300]

    async def send_one(self) -> bool | None:
        """Try the oldest batch once. True: gone (sent or refused for good);
        False: keep and retry later; None: nothing to send."""
        batch = self.spool.oldest()
        if batch is None:
            return None
        try:
            status, text = await self._post("/api/v1/samples", batch.model_dump_json())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._note(f"collector unreachable: {type(exc).__name__}: {exc}")
            return False
        if status == 200:
            self.spool.done(batch)
            self.sent_samples += len(batch.samples)
            if self.last_error is not None:
                log.info("collector reachable again; %d batches spooled", len(self.spool))
            self.last_error = None
            return True
        if status in REFUSED_FOR_GOOD:
            log.error("collector refused batch %s (%d samples) for good, set aside: %d %s",
                      batch.batch_id, len(batch.samples), status, text)
            self.spool.set_aside(batch)
            self.rejected_samples += len(batch.samples)
            return True
        if status == 401:
            self.auth_failures += 1
            self._note(f"collector refused our token ({status}); check the probe's token. "
                       f"Samples stay spooled ({self.spool.samples})", level=logging.ERROR)
            return False
        self._note(f"collector answered {status}: {text}")
        return False

    def _note(self, error: str, level: int = logging.WARNING) -> None:
        if error != self.last_error:
            log.log(level, "%s", error)
        self.last_error = error

    async def _sender(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            result = await self.send_one()
            if result is None:
                self._wake.clear()
                await self._wake.wait()
            elif result:
                delay = RETRY_FIRST_S
            else:
                await asyncio.sleep(delay)
                delay = min(self.retry_max_s, delay * 2)

    async def _heartbeats(self) -> None:
        while True:
            hb = Heartbeat(probe=self.labels, ts=time.time(), version=__version__,
                           streams=self.streams, spool_error=self.spool_error)
            try:
                # Defaults left out: a collector that predates a field
                # still takes the heartbeat while the field has nothing to say.
                status, text = await self._post("/api/v1/probes/heartbeat",
                                                hb.model_dump_json(exclude_defaults=True))
                if status != 200:
                    log.debug("heartbeat answered %d %s", status, text)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(self.heartbeat_interval_s)

    async def aclose(self, drain_timeout_s: float = 5.0) -> None:
        """Spool what is pending, try to send it for a while, then stop.
        Whatever is not sent stays in the spool directory for next time."""
        self._flush_pending()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self._http is None:
            return
        deadline = time.monotonic() + drain_timeout_s
        while len(self.spool) and time.monotonic() < deadline:
            try:
                result = await asyncio.wait_for(
                    self.send_one(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            if not result:
                break
        await self._http.close()
        self._http = None

