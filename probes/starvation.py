"""Whether the probe itself kept up: how late its event loop ran, and which
datagrams the kernel dropped at its sockets because nobody read them in time.

A probe whose host is overloaded (CPU taken by other processes, too many
streams on one event loop) reads its sockets late. Packets pile up in the
kernel's receive buffer; once it is full the kernel drops the next ones and
counts them per socket. To the probe's loss accounting those packets look
exactly like path loss, and a late loop also stamps frames late (a freeze
that never reached the viewer). Each sample therefore says how healthy the
probe was in its second, so diagnosis can leave those seconds out rather
than blame the region's network.

Linux only: ``/proc/net/udp`` and ``/proc/net/udp6`` list every UDP socket
of the network namespace with its inode and a ``drops`` counter (the last
column). Elsewhere, or when the tables cannot be read, the figures are
unknown (None), never an exception.

The parsing and the lateness bookkeeping are pure (text and times passed
in); :class:`LoopLagMonitor` and :class:`UdpDropTable` are the thin parts
that read the clock and ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

UDP_TABLES = ("/proc/self/net/udp", "/proc/self/net/udp6")
# A line of /proc/net/udp is about 130 bytes (udp6: 170): 4 MiB is tens of
# thousands of sockets, far more than a probe host has, and bounds what a
# host with a runaway socket count makes each read cost.
MAX_TABLE_BYTES = 4 << 20
# The event-loop monitor's period: short enough that a 300 ms block shows as
# at least 250 ms of lateness, long enough to cost nothing measurable (20
# wakeups a second against the thousands the media packets cause).
LAG_TICK_MS = 50.0
# Lateness kept per monitor: two seconds of ticks and some to spare.
_LAG_KEEP = 64


@dataclass(frozen=True)
class UdpSocketRow:
    """One socket of /proc/net/udp{,6}: its local port, inode and drops."""

    local_port: int
    inode: int
    drops: int


def parse_udp_table(text: str) -> list[UdpSocketRow]:
    """The sockets of one /proc/net/udp or /proc/net/udp6 table. Lines that
    do not parse (a truncated last line, a header) are skipped."""
    rows = []
    for line in text.splitlines():
        cols = line.split()
        # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        if len(cols) < 13 or ":" not in cols[1]:
            continue
        try:
            port = int(cols[1].rsplit(":", 1)[1], 16)
            rows.append(UdpSocketRow(port, int(cols[9]), int(cols[12])))
        except ValueError:
            continue
    return rows


def _read_bounded(path: str, max_bytes: int) -> str:
    with open(path, "rb") as f:
        return f.read(max_bytes).decode("ascii", "replace")


def read_udp_drops(
    tables: Iterable[str] = UDP_TABLES, max_bytes: int = MAX_TABLE_BYTES
) -> dict[int, int] | None:
    """Socket inode -> datagrams the kernel dropped at it since it was
    opened, over the namespace's UDP sockets; None when no table can be read
    (not Linux, /proc not mounted or not readable)."""
    out: dict[int, int] = {}
    read_any = False
    for path in tables:
        try:
            text = _read_bounded(path, max_bytes)
        except OSError:
            continue
        read_any = True
        for row in parse_udp_table(text):
            out[row.inode] = row.drops
    return out if read_any else None


def own_udp_drops(tables: Iterable[str] = UDP_TABLES) -> int | None:
    """Datagrams dropped at all of this process's UDP sockets so far (what a
    benchmark compares before and after a run); None when unknown."""
    drops = read_udp_drops(tables)
    if drops is None:
        return None
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/self/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    return sum(d for inode, d in drops.items() if inode in inodes)


def socket_inode(fileno: int) -> int | None:
    """The inode /proc/net/udp lists an open socket under."""
    try:
        return os.fstat(fileno).st_ino
    except OSError:
        return None


class UdpDropTable:
    """The namespace's drop counters, read at most once per ``every_ms``
    however many streams ask (one read serves every stream of the process)."""

    def __init__(self, every_ms: float = 950.0,
                 read: Callable[[], dict[int, int] | None] = read_udp_drops) -> None:
        self._every_ms = every_ms
        self._read = read
        self._at_ms: float | None = None
        self._drops: dict[int, int] | None = None

    def drops(self, now_ms: float) -> dict[int, int] | None:
        if self._at_ms is None or now_ms - self._at_ms >= self._every_ms:
            self._drops = self._read()
            self._at_ms = now_ms
        return self._drops


class StreamDrops:
    """One stream's share of the counters: datagrams dropped at its own
    sockets since the last call. A socket first seen counts from 0 (it was
    opened by this stream's session, moments ago); sockets gone are forgotten."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def take(self, inodes: Iterable[int], table: dict[int, int] | None) -> int | None:
        """Drops since the previous call at ``inodes``; None when the table
        is unknown or none of the stream's sockets is in it."""
        if table is None:
            return None
        seen = {i: table[i] for i in inodes if i in table}
        if not seen:
            self._last = {}
            return None
        new = sum(max(0, d - self._last.get(i, 0)) for i, d in seen.items())
        self._last = seen
        return new


class LagWindow:
    """How late a periodic timer fired, kept for the last seconds. Pure: the
    monitor passes in when each tick was due and when it ran (ms)."""

    def __init__(self, keep: int = _LAG_KEEP) -> None:
        # (due_ms, late_ms): lateness is stamped at the time the tick was
        # due, where the loop stopped answering, so a block is reported by
        # the sample that follows it and not again by the next one.
        self._late: deque[tuple[float, float]] = deque(maxlen=keep)
        self._due_ms: float | None = None

    def due(self, due_ms: float) -> None:
        """The next tick is due at ``due_ms``."""
        self._due_ms = due_ms

    def fired(self, now_ms: float) -> None:
        if self._due_ms is None:
            return
        self._late.append((self._due_ms, max(0.0, now_ms - self._due_ms)))
        self._due_ms = None

    def max_late_ms(self, now_ms: float, span_ms: float = 1000.0) -> float:
        """The worst lateness due in the ``span_ms`` before ``now_ms``, and
        that of a tick overdue now (the loop is only just back from a block
        and the monitor has not run yet)."""
        worst = max((late for due, late in self._late if now_ms - span_ms < due <= now_ms),
                    default=0.0)
        if self._due_ms is not None and now_ms > self._due_ms:
            worst = max(worst, now_ms - self._due_ms)
        return worst


def _monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class LoopLagMonitor:
    """A ``LAG_TICK_MS`` timer on the running loop measuring its own
    overshoot: one per process (or agent) serves every stream on the loop."""

    def __init__(self, tick_ms: float = LAG_TICK_MS,
                 clock: Callable[[], float] = _monotonic_ms) -> None:
        self.tick_ms = tick_ms
        self._clock = clock
        self.window = LagWindow()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            self.window.due(self._clock() + self.tick_ms)
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.window.fired(self._clock())

    def lag_ms(self, now_ms: float) -> float | None:
        """The loop's worst lateness in the second before ``now_ms`` (on the
        monitor's clock, ``time.monotonic`` in ms); None when not running."""
        if not self.running:
            return None
        return self.window.max_late_ms(now_ms)


class ProbeHealth:
    """What one probe process knows of its own health, shared by its streams:
    the loop's lateness and the namespace's socket drop counters."""

    def __init__(self, lag: LoopLagMonitor | None = None,
                 drops: UdpDropTable | None = None) -> None:
        self.lag = lag or LoopLagMonitor()
        self.drops = drops or UdpDropTable()

    def start(self) -> None:
        self.lag.start()

    async def stop(self) -> None:
        await self.lag.stop()
