"""The probe agent: watches every stream at once and emits one sample per
stream per second to its sink.

The streams are those of its config, plus, with a collector, the ones the
collector assigns (``probes.assignment``): started when they appear in the
answer, stopped when they leave it. A stream in the config is watched
whatever the collector says.

No process-wide state except the aioice host-address pin
(:mod:`probes.ice_host_pin`) and the probe's codecs in aiortc's table
(:mod:`probes.joins.codecs`), so several agents can share a process. The
agent refuses to start (:class:`probes.rtc_seams.SeamError`) when aiortc or
aioice lack a private name the measuring relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from probes.assignment import AssignmentClient
from probes.config import ProbeConfig, StreamTarget
from probes.ice_host_pin import pin_host_addresses
from probes.joins.base import Joiner
from probes.joins.demo import DemoJoiner
from probes.joins.janus import JanusJoiner
from probes.joins.whep import WhepJoiner
from probes.rtc_seams import check_seams
from probes.sinks import SampleSink
from probes.starvation import ProbeHealth
from probes.uplink import CollectorUplink
from probes.viewer import StreamWatcher

log = logging.getLogger(__name__)

StreamKey = tuple[str, str]  # (show_id, stream_id)


def default_joiners() -> dict[str, Joiner]:
    return {"whep": WhepJoiner(), "demo": DemoJoiner(), "janus": JanusJoiner()}


@dataclass
class _Running:
    target: StreamTarget
    watcher: StreamWatcher
    stop: asyncio.Event
    task: asyncio.Task[None]


class ProbeAgent:
    def __init__(
        self,
        config: ProbeConfig,
        sink: SampleSink,
        joiners: Mapping[str, Joiner] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.joiners = dict(joiners) if joiners is not None else default_joiners()
        self.watchers: list[StreamWatcher] = []  # every watcher started, in order
        self._running: dict[StreamKey, _Running] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self._static = {(s.show_id, s.stream_id) for s in config.streams}
        # One loop-lag timer and one read of the socket counters a second
        # serve every stream this agent watches.
        self.health = ProbeHealth()

    @property
    def watching(self) -> list[StreamKey]:
        """The streams being watched now."""
        return sorted(self._running)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set. Never raises for a stream's failure;
        raises :class:`probes.rtc_seams.SeamError` at once if it cannot measure."""
        check_seams()
        if self.config.ice_host_addresses is not None:
            pin_host_addresses(self.config.ice_host_addresses)
        self.health.start()
        try:
            await self._watch(stop)
        finally:
            await self.health.stop()

    async def _watch(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            for target in self.config.streams:
                self._start(target, http)
            follow: asyncio.Task[None] | None = None
            if self.config.collector_url is not None and self.config.assignment:
                follow = asyncio.create_task(
                    self._follow(AssignmentClient(self.config, http), http, stop))
            await stop.wait()
            if follow is not None:
                follow.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follow
            for running in self._running.values():
                running.stop.set()
            await asyncio.gather(*(r.task for r in self._running.values()), *self._ending)

    def _start(self, target: StreamTarget, http: aiohttp.ClientSession) -> None:
        watcher = StreamWatcher(target, self.config.labels, self.config,
                                self.joiners[target.join], self.sink, http, self.health)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        self.watchers.append(watcher)
        self._running[(target.show_id, target.stream_id)] = _Running(target, watcher, stop, task)

    def _stop(self, key: StreamKey) -> None:
        running = self._running.pop(key)
        running.stop.set()
        self._ending.add(running.task)
        running.task.add_done_callback(self._ending.discard)

    def apply_assignment(self, targets: list[StreamTarget], http: aiohttp.ClientSession) -> None:
        """Watch exactly the config's streams plus ``targets``."""
        wanted = {(t.show_id, t.stream_id): t for t in targets
                  if (t.show_id, t.stream_id) not in self._static}
        for key in [k for k in self._running if k not in self._static]:
            if key not in wanted or wanted[key] != self._running[key].target:
                log.info("assignment: stop watching %s/%s", *key)
                self._stop(key)
        for key, target in wanted.items():
            if key not in self._running:
                if len(self._running) - len(self._static) >= self.config.max_streams:
                    log.warning("assignment: max_streams (%d) reached, %s/%s not watched",
                                self.config.max_streams, *key)
                    continue
                log.info("assignment: watch %s/%s (%s %s)", *key, target.join, target.url)
                self._start(target, http)
        if isinstance(self.sink, CollectorUplink):
            self.sink.streams = [f"{s}/{t}" for s, t in sorted(self._running)]

    async def _follow(self, client: AssignmentClient, http: aiohttp.ClientSession,
                      stop: asyncio.Event) -> None:
        while not stop.is_set():
            targets = await client.poll()
            if targets is not None:
                self.apply_assignment(targets, http)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.assignment_poll_s)
