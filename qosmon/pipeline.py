"""The live pipeline the collector feeds: what it accepted goes here, and
once a second ``tick`` turns it into incidents, stock states and alerts.

The collector only knows this interface; diagnosis, inventory and alerting
plug in behind it (see ``qosmon.live``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from qosmon.model import (
    BusinessSample,
    Cause,
    Incident,
    OnScreen,
    ProbeSample,
    Show,
    StockRecord,
    StockState,
    ViewerAggregate,
)


@dataclass
class ProbeQos:
    """What one probe last reported for one show, and its running totals."""

    probe_id: str
    region: str
    latest: ProbeSample
    up: bool  # its latest sample is recent and its connection is up
    frozen_s: float = 0.0  # W3C freezes that ended, summed
    stuck_s: float = 0.0  # freezes and pauses, counted while they last
    # Datagrams the kernel dropped at the probe's sockets, summed; None
    # while the probe has not reported the figure (an older probe).
    socket_drops: int | None = None
    chat_sent: int = 0
    chat_lost: int = 0


@dataclass
class ShowQos:
    """A live show as /metrics exposes it; finished shows are not listed."""

    show_id: str
    probes: list[ProbeQos] = field(default_factory=list)
    open_incidents: dict[Cause, int] = field(default_factory=dict)


@dataclass
class DeliveryQos:
    """One alert route's notifications: sent, failed, dropped, pending."""

    notifier: str
    sent: int
    failed: int
    failed_attempts: int
    dropped: int
    pending: int


class StockFeed:
    """Fan-out of stock state changes to live subscribers (e.g. the SSE
    endpoint behind a live-room screen). A slow subscriber loses its oldest
    pending changes rather than holding up the pipeline."""

    def __init__(self, max_pending: int = 1000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[StockState]]] = {}
        self._max_pending = max_pending

    def publish(self, states: Sequence[StockState]) -> None:
        for state in states:
            for q in self._subscribers.get(state.show_id, ()):
                if q.full():
                    q.get_nowait()
                q.put_nowait(state)

    @contextlib.asynccontextmanager
    async def subscribe(self, show_id: str) -> AsyncIterator[asyncio.Queue[StockState]]:
        q: asyncio.Queue[StockState] = asyncio.Queue(self._max_pending)
        self._subscribers.setdefault(show_id, set()).add(q)
        try:
            yield q
        finally:
            self._subscribers[show_id].discard(q)


class Pipeline(Protocol):
    stock_feed: StockFeed

    def current_stock(self, show_id: str) -> list[StockState]:
        """The latest stock state per SKU x warehouse for a live show."""
        ...

    def on_show(self, show: Show) -> None: ...

    def on_probe_samples(self, samples: Sequence[ProbeSample]) -> None: ...

    def on_business(self, samples: Sequence[BusinessSample]) -> None: ...

    def on_stock(self, records: Sequence[StockRecord]) -> None: ...

    def on_on_screen(self, events: Sequence[OnScreen]) -> None: ...

    def on_stock_heartbeat(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        """A warehouse feed says it has sent every change up to ``source_ts``."""
        ...

    def live_qos(self, now: float) -> list[ShowQos]:
        """Per live show: each probe's latest measures and totals, and the
        open incidents by cause."""
        ...

    def delivery_qos(self) -> list[DeliveryQos]:
        """Per alert route: notifications sent, failed, pending."""
        ...

    def watching(self, show_id: str) -> bool:
        """Is the show live here (known and not yet ended)?"""
        ...

    def incidents(self, show_id: str) -> list[Incident]:
        """The show's incidents as diagnosis sees them now (open and closed)."""
        ...

    async def tick(self, now: float) -> None:
        """Called about once a second by the collector, never concurrently."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class ReportsHealth(Protocol):
    """Optional: a pipeline that says how it is doing, for ``/healthz`` and
    ``/metrics``."""

    # Probe samples accepted for shows the pipeline did not know (yet).
    unknown_show_samples: int

    def health(self, now: float) -> dict[str, Any]:
        """At least ``tick_age_s`` (seconds since the last tick ended, None
        before the first), ``outbox_depth``, ``outbox_oldest_s`` and
        ``problems``: what is wrong, one phrase each (empty: healthy)."""
        ...


@runtime_checkable
class TakesViewerAggregates(Protocol):
    """Optional: a pipeline that diagnoses from the platform's viewer-side
    aggregates too (the live one)."""

    def on_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None: ...


class NullPipeline:
    """A collector with no live analysis (store only)."""

    def __init__(self) -> None:
        self.stock_feed = StockFeed()

    def current_stock(self, show_id: str) -> list[StockState]:
        return []

    def on_show(self, show: Show) -> None:
        pass

    def on_probe_samples(self, samples: Sequence[ProbeSample]) -> None:
        pass

    def on_business(self, samples: Sequence[BusinessSample]) -> None:
        pass

    def on_stock(self, records: Sequence[StockRecord]) -> None:
        pass

    def on_on_screen(self, events: Sequence[OnScreen]) -> None:
        pass

    def on_stock_heartbeat(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        pass

    def live_qos(self, now: float) -> list[ShowQos]:
        return []

    def delivery_qos(self) -> list[DeliveryQos]:
        return []

    def watching(self, show_id: str) -> bool:
        return False

    def incidents(self, show_id: str) -> list[Incident]:
        return []

    async def tick(self, now: float) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
