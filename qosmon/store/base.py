"""The storage interface: the collector writes through it, diagnosis, reports
and the CLI read through it. Implementations: ``sqlite`` (embedded, default)
and ``influx`` (influxdb-client, for teams that run a time-series server).

The interface is synchronous on purpose: both backends are blocking libraries,
and the collector calls them from a worker thread so the event loop never
waits on a disk or a socket. Probe batches, the bulk of the traffic, may
skip that thread: see ``SubmitsProbeBatches``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

# Defined with the other errors; the store modules import them from here.
from qosmon.errors import BatchConflictError as BatchConflictError
from qosmon.errors import NoSuchStore as NoSuchStore
from qosmon.errors import StoreError as StoreError
from qosmon.model import (
    AlertDelivery,
    BusinessSample,
    Incident,
    OnScreen,
    ProbeSample,
    Show,
    ShowSummary,
    StockRecord,
    StockState,
    ViewerAggregate,
)


class Store(Protocol):
    # --- writes; each returns only once the data is durable -----------------
    def write_probe_batch(self, batch_id: str, samples: Sequence[ProbeSample]) -> bool:
        """Store a probe batch once. Returns False (and stores nothing) if a
        batch with this id was stored before."""
        ...

    def write_business(self, samples: Sequence[BusinessSample]) -> None: ...

    def write_stock(self, records: Sequence[StockRecord]) -> None: ...

    def write_stock_states(self, states: Sequence[StockState]) -> None: ...

    def put_show(self, show: Show) -> None:
        """Create or replace a show's metadata."""
        ...

    def write_on_screen(self, events: Sequence[OnScreen]) -> None: ...

    def put_incidents(self, show_id: str, incidents: Sequence[Incident]) -> None:
        """Create or update incidents by ``incident_id``."""
        ...

    def write_alert_deliveries(self, show_id: str, deliveries: Sequence[AlertDelivery]) -> None: ...

    def put_show_summary(self, summary: ShowSummary) -> None:
        """Create or replace a finished show's summary (what history reads;
        kept after retention ages out the raw samples)."""
        ...

    # --- reads ------------------------------------------------------------
    def get_show(self, show_id: str) -> Show | None: ...

    def list_shows(self) -> list[Show]: ...

    def probe_samples(
        self,
        show_id: str,
        start_ts: float | None = None,
        end_ts: float | None = None,
        region: str | None = None,
        probe_id: str | None = None,
    ) -> list[ProbeSample]:
        """Samples ordered by ``ts``."""
        ...

    def business(
        self, show_id: str, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[BusinessSample]: ...

    def stock(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[StockRecord]: ...

    def stock_states(self, show_id: str) -> list[StockState]: ...

    def on_screen(self, show_id: str) -> list[OnScreen]: ...

    def incidents(self, show_id: str) -> list[Incident]: ...

    def alert_deliveries(self, show_id: str) -> list[AlertDelivery]: ...

    def show_summaries(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[ShowSummary]:
        """Summaries of shows that started in [start_ts, end_ts), oldest first."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SubmitsProbeBatches(Protocol):
    """Optional: a store that can take a probe batch without blocking the
    caller (the embedded store queues it to its writer thread). The
    collector awaits the future on its event loop instead of parking a
    worker thread on ``write_probe_batch``. Same contract: the result is
    ``write_probe_batch``'s, and comes only once the batch is durable; the
    samples must not change before then."""

    def submit_probe_batch(self, batch_id: str, samples: Sequence[ProbeSample]) -> Future[bool]:
        ...


@runtime_checkable
class AppliesRetention(Protocol):
    """Optional: a store that downsamples and forgets old shows itself (the
    embedded store; a time-series server has retention of its own). Returns
    counts of what was done, by kind."""

    def apply_retention(
        self, now: float, raw_days: float, keep_days: float | None,
        batch_id_days: float | None = None,
    ) -> dict[str, int]: ...


@dataclass(frozen=True)
class StoreHealth:
    """A store's writer as ``/healthz`` reports it. ``ok``: the writer is
    alive, its last write committed, and nothing has waited longer than
    the store's timeout."""

    ok: bool
    writer_alive: bool
    queued: int
    # Seconds the write in progress has taken so far (0: idle).
    busy_s: float
    failed_groups: int
    last_error: str | None
    last_error_ts: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "writer_alive": self.writer_alive, "queued": self.queued,
            "busy_s": round(self.busy_s, 3), "failed_groups": self.failed_groups,
            "last_error": self.last_error, "last_error_ts": self.last_error_ts,
        }


@runtime_checkable
class ReportsHealth(Protocol):
    """Optional: a store that can say whether its writes go through."""

    def health(self) -> StoreHealth: ...


@dataclass(frozen=True)
class SeriesRead:
    """One metric of a show's probe samples, at most ``max_points`` points
    (``ts``, ``probe_id``, ``region``, ``stream_id``, ``value``). With more
    rows than that, values are averaged per probe and stream over buckets
    of ``bucket_s`` seconds (0: raw samples); ``truncated``: even then the
    cap cut the answer short (the newest points were kept)."""

    points: list[tuple[float, str, str, str, float | None]]
    bucket_s: float
    truncated: bool


@runtime_checkable
class ReadsSeries(Protocol):
    """Optional: a store that downsamples a series itself, so a long read
    never loads every sample into the collector."""

    def probe_series(
        self, show_id: str, metric: str, start_ts: float, end_ts: float | None,
        region: str | None, probe_id: str | None, max_points: int,
    ) -> SeriesRead: ...


@runtime_checkable
class LeasesShows(Protocol):
    """Optional: who diagnoses a show is decided in the store, by a lease
    that its holder renews and another collector takes once it has run out
    (the holder stopped: crashed, killed, cut off). Lease times are the
    store's own clock, so collectors' clocks need not agree."""

    def acquire_lease(self, show_id: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease of ``show_id`` for ``ttl_s`` seconds;
        False if another owner holds it and it has not run out."""
        ...

    def release_lease(self, show_id: str, owner: str) -> None:
        """Give the lease up (only if ``owner`` holds it)."""
        ...

    def lease_holders(self) -> dict[str, str]:
        """Unexpired leases: show id -> owner."""
        ...

    def expired_leases(self) -> list[str]:
        """Shows whose lease ran out without being released (their holder
        stopped), e.g. an ended show whose last notifications were still
        being sent."""
        ...


@runtime_checkable
class StoresViewerAggregates(Protocol):
    """Optional: a store that keeps the platform's viewer-side aggregates
    (the embedded store; the InfluxDB backend in its side store). Same
    contract as the other writes: returns once durable."""

    def write_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None: ...

    def viewer_aggregates(
        self, show_id: str, start: float | None = None, end: float | None = None
    ) -> list[ViewerAggregate]: ...
