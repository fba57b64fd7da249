"""The probe agent: watches every configured stream at once and emits one
sample per stream per second to its sink.

No process-wide state except the aioice host-address pin
(:mod:`probes.ice_host_pin`), so several agents can share a process. The
agent refuses to start (:class:`probes.rtc_seams.SeamError`) when aiortc or
aioice lack a private name the measuring relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp

from probes.config import ProbeConfig
from probes.ice_host_pin import pin_host_addresses
from probes.joins.base import Joiner
from probes.joins.demo import DemoJoiner
from probes.joins.janus import JanusJoiner
from probes.joins.whep import WhepJoiner
from probes.rtc_seams import check_seams
from probes.sinks import SampleSink
from probes.viewer import StreamWatcher


def default_joiners() -> dict[str, Joiner]:
    return {"whep": WhepJoiner(), "demo": DemoJoiner(), "janus": JanusJoiner()}


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
        self.watchers: list[StreamWatcher] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set. Never raises for a stream's failure;
        raises :class:`probes.rtc_seams.SeamError` at once if it cannot measure."""
        check_seams()
        if self.config.ice_host_addresses is not None:
            pin_host_addresses(self.config.ice_host_addresses)
        async with aiohttp.ClientSession() as http:
            self.watchers = [
                StreamWatcher(
                    target, self.config.labels, self.config,
                    self.joiners[target.join], self.sink, http,
                )
                for target in self.config.streams
            ]
            await asyncio.gather(*(w.run(stop) for w in self.watchers))
