"""A per-region network path in userspace: a UDP relay between viewers and the
origin that really delays, drops, queues and cuts packets.

The kernel here has no netem, and the demo must run without root, so the
region's "edge node" is a relay on 127.0.0.1. The origin rewrites the ICE
candidates in the SDP so that each viewer session runs through two relay
sockets::

    viewer  <->  [A] relay [B]  <->  origin

A faces the viewer (advertised to it as the origin's address), B faces the
origin (advertised to it as the viewer's address), so both ICE agents only
ever see the relay and no pair can bypass it. Everything on the session
crosses it: RTP, RTCP, STUN consent checks (so measured RTT includes the
queue) and the SCTP DataChannel that carries chat.

The shaping maths (``LinkShaper``) is pure and takes time as an argument.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast


@dataclass
class Impairment:
    """What the path does to packets now. Changed live by the scenario."""

    delay_ms: float = 0.0  # one-way, added in each direction
    jitter_ms: float = 0.0  # +- uniform around the delay, each direction
    loss_pct: float = 0.0  # random drop, each direction
    rate_kbps: float | None = None  # bottleneck towards the viewers, shared by the region
    queue_ms: float = 300.0  # bottleneck queue; beyond it packets are tail-dropped
    outage: bool = False  # the node is down: every packet dropped


@dataclass
class PathCounters:
    forwarded: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    dropped_outage: int = 0


_TICK_S = 1e-6  # deliveries on one link are at least this far apart


class LinkShaper:
    """Decides the fate of each packet on one direction of a link.

    The bottleneck is a FIFO drained at ``rate_kbps`` (what `tbf` does):
    a packet leaves when the ones before it have, and is dropped when it
    would wait longer than ``queue_ms``.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._queue_free_at = 0.0
        self._last_delivery = 0.0

    def admit(self, imp: Impairment, size_bytes: int, now: float, shaped: bool) -> float | str:
        """Seconds from ``now`` until delivery, or the reason for a drop."""
        if imp.outage:
            return "outage"
        if imp.loss_pct > 0 and self._rng.random() * 100 < imp.loss_pct:
            return "loss"
        wait = 0.0
        if shaped and imp.rate_kbps:
            start = max(now, self._queue_free_at)
            if start - now > imp.queue_ms / 1000:
                return "queue"
            self._queue_free_at = start + size_bytes * 8 / (imp.rate_kbps * 1000)
            wait = self._queue_free_at - now
        delay = imp.delay_ms
        if imp.jitter_ms:
            delay += self._rng.uniform(-imp.jitter_ms, imp.jitter_ms)
        # Jitter without reordering, as on most real paths: a packet never
        # overtakes the one before it (netem-style reordering would show up
        # as loss in per-second windows and is not what the demo injects).
        # Strictly after it, too: the event loop's timer heap does not keep
        # the order of timers due at the same instant, so packets clamped to
        # one delivery time would leave in any order.
        deliver = max(now + wait + max(0.0, delay) / 1000, self._last_delivery + _TICK_S)
        self._last_delivery = deliver
        return deliver - now


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data)


@dataclass
class _Session:
    viewer_addr: tuple[str, int]
    origin_addr: tuple[str, int] | None = None
    a: _Endpoint | None = None
    b: _Endpoint | None = None


@dataclass
class RegionPath:
    """One region's path (its edge node), shared by every viewer in it."""

    region: str
    host: str = "127.0.0.1"
    seed: int = 0
    impairment: Impairment = field(default_factory=Impairment)
    counters: PathCounters = field(default_factory=PathCounters)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self._down = LinkShaper(rng)  # origin -> viewers: the bottleneck
        self._up = LinkShaper(rng)
        self._sessions: list[_Session] = []

    async def open_session(self, viewer_addr: tuple[str, int]) -> tuple[int, int, _Session]:
        """Two relay sockets for one viewer: (port facing the viewer, port
        facing the origin). Call ``connect_origin`` once the origin's own
        address is known."""
        loop = asyncio.get_running_loop()
        session = _Session(viewer_addr=viewer_addr)
        a_tr, a = await loop.create_datagram_endpoint(
            lambda: _Endpoint(lambda d: self._forward(session, d, upstream=True)),
            local_addr=(self.host, 0),
        )
        b_tr, b = await loop.create_datagram_endpoint(
            lambda: _Endpoint(lambda d: self._forward(session, d, upstream=False)),
            local_addr=(self.host, 0),
        )
        session.a, session.b = a, b
        self._sessions.append(session)
        return a_tr.get_extra_info("sockname")[1], b_tr.get_extra_info("sockname")[1], session

    @staticmethod
    def connect_origin(session: _Session, origin_addr: tuple[str, int]) -> None:
        session.origin_addr = origin_addr

    def _forward(self, session: _Session, data: bytes, upstream: bool) -> None:
        loop = asyncio.get_running_loop()
        if upstream:
            out, dest, shaper = session.b, session.origin_addr, self._up
        else:
            out, dest, shaper = session.a, session.viewer_addr, self._down
        if out is None or out.transport is None or dest is None:
            return
        now = loop.time()
        fate = shaper.admit(self.impairment, len(data) + 28, now, shaped=not upstream)
        if isinstance(fate, str):
            if fate == "loss":
                self.counters.dropped_loss += 1
            elif fate == "queue":
                self.counters.dropped_queue += 1
            else:
                self.counters.dropped_outage += 1
            return
        self.counters.forwarded += 1
        transport = out.transport
        if fate <= 0:
            transport.sendto(data, dest)
        else:
            # At the instant admit() chose: call_later would add the time
            # passed since, differently for each packet.
            loop.call_at(now + fate, _send_if_open, transport, data, dest)

    def close_session(self, session: _Session) -> None:
        for ep in (session.a, session.b):
            if ep is not None and ep.transport is not None:
                ep.transport.close()
        if session in self._sessions:
            self._sessions.remove(session)

    def close(self) -> None:
        for s in list(self._sessions):
            self.close_session(s)


def _send_if_open(transport: asyncio.DatagramTransport, data: bytes, dest: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(data, dest)
