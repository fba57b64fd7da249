"""The live pipeline behind the collector: per show, a diagnosis engine and an
inventory tracker fed with everything accepted; once a second their results
go to the store, to live subscribers and to alerting.

This is the only place that knows all three; each of them stays pure.

It outlives its process through the store: on ``start()`` it finds the shows
still live there and rebuilds each one's state by replaying the recent window
of stored samples, business figures and stock into a fresh engine and
tracker, and gives the incidents the replay finds back the identity of the
open ones stored before (same id, same start), so an incident open across a
restart stays one incident and its alert (restored by the alerter from its
outbox) is resolved once when it ends. A show created after samples for it
arrived is replayed the same way.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qosmon.alerting.alerter import Alerter
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.i18n import check_language
from qosmon.inventory.config import InventoryConfig
from qosmon.inventory.tracker import InventoryTracker
from qosmon.model import (
    STOCK_CAUSES,
    AlertDelivery,
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
from qosmon.pipeline import DeliveryQos, ProbeQos, ShowQos, StockFeed
from qosmon.store.base import LeasesShows, Store, StoreError, StoresViewerAggregates

log = logging.getLogger(__name__)

# A probe whose latest sample for a show is older than this is down for it:
# probes send every second, so this is several missed batches.
PROBE_UP_WITHIN_S = 10.0

# How far back stock records are read for a replayed show: warehouse
# snapshots come every few minutes, the tracker needs the last one.
_STOCK_LOOKBACK_S = 3600.0
# Replayed incidents that begin this close to the start of the replayed
# window were seen only in part: unless they continue a stored incident they
# are not reported again.
_PARTIAL_S = 30.0
# Show ids remembered as finished (samples for them are then not "unknown")
# and show ids counted as unknown: both bounded.
_REMEMBER_MAX = 10_000
# Batches of data held for a show while its stored window is read (normally
# until the next tick; longer only while the store keeps failing).
_BUFFER_MAX = 10_000


@dataclass(frozen=True)
class LiveSettings:
    """How the pipeline survives restarts and shows that are never ended."""

    # Stored data replayed into a show's engine on start (and for a show
    # created after its samples arrived).
    replay_s: float = 600.0
    # A replay reaches back to the start of the oldest incident still open,
    # but never further than this.
    max_replay_s: float = 3600.0
    # A show with no end call ends at its planned end plus this.
    end_grace_s: float = 600.0
    # A show with neither an end call nor a planned end ends this long after
    # its start; on start, older shows not ended are left alone.
    max_show_age_s: float = 2 * 86400.0
    # After a restart a show's diagnosis waits this long, at most, for its
    # probes to post again before it goes on without them.
    resume_wait_s: float = 30.0
    # Unhealthy when no tick ended for this long, or when a notification has
    # waited for its receiver this long.
    tick_stalled_s: float = 10.0
    outbox_stuck_s: float = 900.0
    # Show leases (a store shared by several collectors): held this long
    # without renewal; renewed, and shows nobody holds looked for, this often.
    lease_ttl_s: float = 15.0
    lease_renew_s: float = 3.0


@dataclass
class _ShowState:
    show: Show
    engine: DiagnosisEngine
    tracker: InventoryTracker
    latest: dict[str, ProbeSample] = field(default_factory=dict)  # probe_id -> last sample
    # probe_id -> [frozen seconds, chat messages sent, chat messages lost],
    # summed over every sample accepted (duplicates never reach the pipeline).
    totals: dict[str, list[float]] = field(default_factory=dict)
    # probe_id -> datagrams the kernel dropped at its sockets, summed over
    # the samples that reported the figure.
    socket_drops: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    # Identity of replayed incidents: the stored incident each continues.
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # replayed history, already stored
    closed: list[Incident] = field(default_factory=list)  # stored open, gone in the replay
    # Replay to do (from this time) before the show is diagnosed; data that
    # arrives meanwhile waits in ``buffer``.
    replay_since: float | None = None
    recovered: bool = False
    leased: bool = False  # this collector holds the show's lease
    buffer: list[tuple[str, Sequence[Any]]] = field(default_factory=list)
    # After a restart: hold the engine until probes post again (or the wait
    # runs out) so the seconds the collector was down are not judged empty.
    replayed_until: float | None = None
    hold_until: float | None = None
    resume_ts: float | None = None
    started: float = field(default_factory=time.monotonic)

    def view(self, incidents: Sequence[Incident]) -> list[Incident]:
        out = []
        for i in incidents:
            if i.incident_id in self.hidden:
                continue
            update = self.overrides.get(i.incident_id)
            out.append(i.model_copy(update=update) if update else i)
        return out


@dataclass
class RecoveryStats:
    shows: int = 0
    samples: int = 0
    seconds: float = 0.0
    incidents_continued: int = 0
    incidents_closed: int = 0


class LivePipeline:
    def __init__(
        self,
        store: Store,
        alerter: Alerter | None = None,
        engine_config: DiagnosisConfig | None = None,
        inventory_config: InventoryConfig | None = None,
        report_dir: Path | None = None,
        settings: LiveSettings | None = None,
        owner: str = "",
        report_language: str = "en",
    ) -> None:
        self.store = store
        # Who this collector is in the store's show leases; the same after a
        # restart, so a restarted collector gets its own shows back at once.
        self.owner = owner or socket.gethostname()
        self.leases: LeasesShows | None = store if isinstance(store, LeasesShows) else None
        self._elsewhere: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._draining: set[str] = set()  # ended shows whose alerts are still being sent
        self._last_lease_round = -math.inf
        self.alerter = alerter
        self.report_dir = report_dir
        self.settings = settings or LiveSettings()
        self.report_language = check_language(report_language)
        self.stock_feed = StockFeed()
        self._engine_config = engine_config
        self._inventory_config = inventory_config
        self.shows: dict[str, _ShowState] = {}
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._unknown: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.unknown_show_samples = 0  # samples for shows not (yet) known, ever
        self._pending_deliveries: list[AlertDelivery] = []
        self._report_tasks: set[asyncio.Task[None]] = set()
        self.last_tick: float | None = None  # wall clock at the end of the last tick
        self.last_tick_s = 0.0  # how long the last tick took
        self.tick_error: str | None = None  # why the last tick failed, if it did
        self.recovery = RecoveryStats()
        # Seconds from start() until each recovered show's diagnosis resumed.
        self.resumed_after_s: dict[str, float] = {}
        self._t_start = time.monotonic()
        self._t_start_wall = time.time()

    # --- hooks the collector calls with accepted data ----------------------
    def on_show(self, show: Show) -> None:
        state = self.shows.get(show.show_id)
        if state is not None:
            state.show = show
            return
        if show.show_id in self._elsewhere:
            return  # another collector diagnoses it (and reads the change from the store)
        state = self._new_state(show)
        if self._unknown.pop(show.show_id, None) is not None:
            # Its samples came first: diagnose them too, as far back as the
            # replay window goes.
            state.replay_since = max(show.start_ts, time.time() - self.settings.replay_s)
        self._finished.pop(show.show_id, None)
        self.shows[show.show_id] = state

    def _new_state(self, show: Show) -> _ShowState:
        return _ShowState(
            show=show,
            engine=DiagnosisEngine(show, self._engine_config),
            tracker=InventoryTracker(show, self._inventory_config),
        )

    def on_probe_samples(self, samples: Sequence[ProbeSample]) -> None:
        if not samples:
            return
        # A probe's batch is nearly always one show's: skip the grouping then
        # (it showed in the collector's profile at 50k samples/s).
        first = samples[0].show_id
        by_show: dict[str, Sequence[ProbeSample]]
        if all(s.show_id == first for s in samples):
            by_show = {first: samples}
        else:
            grouped: dict[str, list[ProbeSample]] = {}
            for s in samples:
                grouped.setdefault(s.show_id, []).append(s)
            by_show = dict(grouped)
        for show_id, group in by_show.items():
            state = self.shows.get(show_id)
            if state is None:
                self._count_unknown(show_id, len(group))
                continue
            if state.finished:
                continue
            if state.replay_since is not None:
                self._hold(state, "probe", group)
                continue
            self._add_probe_samples(state, group)

    def _add_probe_samples(self, state: _ShowState, group: Sequence[ProbeSample]) -> None:
        state.engine.add_probe_samples(group)
        for s in group:
            prev = state.latest.get(s.probe_id)
            if prev is None or s.ts >= prev.ts:
                state.latest[s.probe_id] = s
            if s.freeze_ms or s.chat_sent or s.chat_lost or s.stuck_ms:
                tot = state.totals.setdefault(s.probe_id, [0.0, 0.0, 0.0, 0.0])
                tot[0] += s.freeze_ms / 1000.0
                tot[1] += s.chat_sent
                tot[2] += s.chat_lost
                tot[3] += s.stuck_ms / 1000.0
            if s.socket_drops is not None:
                state.socket_drops[s.probe_id] = (
                    state.socket_drops.get(s.probe_id, 0) + s.socket_drops)
            if (state.hold_until is not None and state.replayed_until is not None
                    and s.ts > state.replayed_until
                    and (state.resume_ts is None or s.ts < state.resume_ts)):
                state.resume_ts = s.ts

    @staticmethod
    def _hold(state: _ShowState, kind: str, items: Sequence[Any]) -> None:
        if len(state.buffer) >= _BUFFER_MAX:
            del state.buffer[0]
            log.error("show %s: replay still waiting, oldest held data dropped from diagnosis "
                      "(it is stored)", state.show.show_id)
        state.buffer.append((kind, items))

    def _count_unknown(self, show_id: str, n: int) -> None:
        if show_id in self._finished or show_id in self._elsewhere:
            return
        self.unknown_show_samples += n
        if show_id in self._unknown:
            self._unknown[show_id] += n
            return
        log.warning("samples for show %s, which this collector does not know: stored, and "
                    "diagnosed if the show is created within %.0f s", show_id,
                    self.settings.replay_s)
        self._unknown[show_id] = n
        if len(self._unknown) > _REMEMBER_MAX:
            self._unknown.popitem(last=False)

    def on_business(self, samples: Sequence[BusinessSample]) -> None:
        by_show: dict[str, list[BusinessSample]] = {}
        for s in samples:
            by_show.setdefault(s.show_id, []).append(s)
        for show_id, group in by_show.items():
            state = self.shows.get(show_id)
            if state is None or state.finished:
                continue
            if state.replay_since is not None:
                self._hold(state, "business", group)
                continue
            state.engine.add_business(group)
            state.tracker.add_business(group)

    def on_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None:
        for show_id, state in self.shows.items():
            group = [s for s in samples if s.show_id == show_id]
            if not group or state.finished:
                continue
            if state.replay_since is not None:
                self._hold(state, "viewer", group)
            else:
                state.engine.add_viewer_aggregates(group)

    def on_stock(self, records: Sequence[StockRecord]) -> None:
        # Stock belongs to warehouses, not shows: every live show served by
        # the warehouse sees it.
        for state in self.shows.values():
            if state.finished:
                continue
            served = {w for ws in state.show.region_warehouses.values() for w in ws}
            mine = [r for r in records if r.warehouse in served]
            if not mine:
                continue
            if state.replay_since is not None:
                self._hold(state, "stock", mine)
            else:
                state.tracker.add_stock(mine)

    def on_on_screen(self, events: Sequence[OnScreen]) -> None:
        for e in events:
            state = self.shows.get(e.show_id)
            if state is None or state.finished:
                continue
            if state.replay_since is not None:
                self._hold(state, "on_screen", [e])
            else:
                state.tracker.add_on_screen([e])

    def on_stock_heartbeat(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        # Only freshness: applied at once, also while a show's replay runs
        # (the tracker keeps the newest source_ts whatever the order).
        for state in self.shows.values():
            if not state.finished:
                state.tracker.add_heartbeat(warehouse, source_ts, received_ts)

    def watching(self, show_id: str) -> bool:
        state = self.shows.get(show_id)
        return state is not None and not state.finished

    def live_qos(self, now: float) -> list[ShowQos]:
        out = []
        for show_id, state in self.shows.items():
            if state.finished:
                continue  # its series leave /metrics with the show
            qos = ShowQos(show_id, open_incidents=dict.fromkeys(Cause, 0))
            for inc in self._incidents(state):
                if inc.end_ts is None:
                    qos.open_incidents[inc.cause] += 1
            for probe_id, s in sorted(state.latest.items()):
                tot = state.totals.get(probe_id, [0.0, 0.0, 0.0, 0.0])
                qos.probes.append(ProbeQos(
                    probe_id=probe_id, region=s.region, latest=s,
                    up=s.state == "connected" and now - s.ts <= PROBE_UP_WITHIN_S,
                    frozen_s=tot[0], chat_sent=int(tot[1]), chat_lost=int(tot[2]),
                    stuck_s=tot[3], socket_drops=state.socket_drops.get(probe_id),
                ))
            out.append(qos)
        return out

    def delivery_qos(self) -> list[DeliveryQos]:
        if self.alerter is None:
            return []
        return [DeliveryQos(notifier=r.route, sent=r.sent, failed=r.failed,
                            failed_attempts=r.failed_attempts, dropped=r.dropped,
                            pending=r.pending)
                for r in self.alerter.route_stats()]

    def current_stock(self, show_id: str) -> list[StockState]:
        state = self.shows.get(show_id)
        return state.tracker.states() if state is not None else []

    def latest_samples(self, show_id: str) -> list[ProbeSample]:
        state = self.shows.get(show_id)
        return list(state.latest.values()) if state is not None else []

    def incidents(self, show_id: str) -> list[Incident]:
        state = self.shows.get(show_id)
        return self._incidents(state) if state is not None else []

    @staticmethod
    def _incidents(state: _ShowState) -> list[Incident]:
        return state.view(state.engine.incidents) + state.closed

    def health(self, now: float) -> dict[str, Any]:
        """What ``/healthz`` reports about live analysis."""
        cfg = self.settings
        # Before the first tick, count from start (recovery included).
        since = self.last_tick if self.last_tick is not None else self._t_start_wall
        tick_age = now - since
        depth = self.alerter.depth() if self.alerter is not None else 0
        oldest = self.alerter.oldest_pending_s(now) if self.alerter is not None else 0.0
        problems = []
        if tick_age > cfg.tick_stalled_s:
            why = f": {self.tick_error}" if self.tick_error else ""
            problems.append(f"live tick not completed for {tick_age:.0f} s{why}")
        if oldest > cfg.outbox_stuck_s:
            problems.append(f"an alert notification has waited {oldest:.0f} s for its receiver")
        return {
            "tick_age_s": None if self.last_tick is None else round(tick_age, 3),
            "tick_s": round(self.last_tick_s, 3),
            "shows": sum(1 for s in self.shows.values() if not s.finished),
            "outbox_depth": depth,
            "outbox_oldest_s": round(oldest, 1),
            "recovered_shows": self.recovery.shows,
            "recovery_s": round(self.recovery.seconds, 3),
            "resumed_after_s": {k: round(v, 2) for k, v in self.resumed_after_s.items()},
            "unknown_show_samples": self.unknown_show_samples,
            "problems": problems,
        }

    # --- restart ------------------------------------------------------------
    async def recover(self, now: float) -> RecoveryStats:
        """Rebuild the live state of every show the store says is still
        live (not ended, started within ``max_show_age_s``)."""
        t0 = time.monotonic()
        shows = await asyncio.to_thread(self.store.list_shows)
        stats = self.recovery
        for show in shows:
            if show.end_ts is not None or show.show_id in self.shows:
                continue
            if show.start_ts < now - self.settings.max_show_age_s:
                continue
            if not await self._acquire(show.show_id):
                continue
            await self._adopt(show, now)
            stats.shows += 1
        self._last_lease_round = time.monotonic()
        await self._replay_pending(now)
        stats.seconds = time.monotonic() - t0
        if stats.shows:
            log.info("recovered %d live show(s) from the store in %.2f s: %d samples replayed, "
                     "%d open incident(s) continued, %d closed", stats.shows, stats.seconds,
                     stats.samples, stats.incidents_continued, stats.incidents_closed)
        return stats

    async def _adopt(self, show: Show, now: float) -> None:
        """Take a show whose live state is only in the store (a restart, or
        a takeover from a collector that stopped)."""
        state = self._new_state(show)
        state.recovered = True
        state.leased = True
        state.replay_since = max(show.start_ts, now - self.settings.replay_s)
        self.shows[show.show_id] = state
        self._elsewhere.pop(show.show_id, None)
        if self.alerter is not None and self.alerter.started:
            await self.alerter.adopt_show(show.show_id)

    async def _acquire(self, show_id: str) -> bool:
        if self.leases is None:
            return True
        got = await asyncio.to_thread(self.leases.acquire_lease, show_id, self.owner,
                                      self.settings.lease_ttl_s)
        if not got:
            self._elsewhere[show_id] = None
            if len(self._elsewhere) > _REMEMBER_MAX:
                self._elsewhere.popitem(last=False)
        return got

    def _let_go(self, show_id: str) -> None:
        log.warning("show %s: another collector holds its lease now; no longer diagnosed here",
                    show_id)
        self.shows.pop(show_id, None)
        self.resumed_after_s.pop(show_id, None)
        if self.alerter is not None:
            self.alerter.release_show(show_id)

    async def _lease_round(self, now: float) -> None:
        """Renew the leases of the shows held here, let go of those another
        collector took, and take live shows whose holder stopped renewing."""
        assert self.leases is not None
        self._last_lease_round = time.monotonic()
        for show_id, state in list(self.shows.items()):
            if state.finished:
                continue
            if await self._acquire(show_id):
                state.leased = True
            else:
                self._let_go(show_id)
        await self._drain(self.leases)
        shows = await asyncio.to_thread(self.store.list_shows)
        holders = await asyncio.to_thread(self.leases.lease_holders)
        for show in shows:
            held = self.shows.get(show.show_id)
            if held is not None:
                if show.end_ts is not None and held.show.end_ts is None:
                    held.show = show  # ended through another collector
                continue
            if (show.end_ts is not None or show.show_id in self._finished
                    or show.start_ts < now - self.settings.max_show_age_s):
                continue
            if holders.get(show.show_id, self.owner) != self.owner:
                self._elsewhere[show.show_id] = None
                continue
            if await self._acquire(show.show_id):
                log.warning("show %s: taking it over (its lease was free)", show.show_id)
                await self._adopt(show, now)
                self.recovery.shows += 1

    async def _drain(self, leases: LeasesShows) -> None:
        """Ended shows: keep the lease while their notifications wait, give
        it up once they are out; take those another collector left."""
        for show_id in list(self._draining):
            waiting = self.alerter.pending_for(show_id) if self.alerter is not None else 0
            if waiting and await self._acquire(show_id):
                continue
            self._draining.discard(show_id)
            await asyncio.to_thread(leases.release_lease, show_id, self.owner)
        if self.alerter is None:
            return
        for show_id in await asyncio.to_thread(leases.expired_leases):
            if show_id in self.shows or show_id in self._draining:
                continue
            show = await asyncio.to_thread(self.store.get_show, show_id)
            if show is None or show.end_ts is None:
                continue  # a live show: taken over below
            if await self._acquire(show_id):
                log.warning("show %s: sending what its last collector left in the outbox",
                            show_id)
                await self.alerter.adopt_show(show_id)
                self._draining.add(show_id)

    async def _replay_pending(self, now: float) -> None:
        for state in list(self.shows.values()):
            if state.replay_since is None or state.finished:
                continue
            try:
                await self._replay(state, now)
            except StoreError as exc:
                # Diagnosis goes on from live data; the next tick tries again.
                log.error("show %s: replaying stored data failed: %s", state.show.show_id, exc)
                continue

    async def _replay(self, state: _ShowState, now: float) -> None:
        assert state.replay_since is not None
        show = state.show
        show_id = show.show_id
        stored: list[Incident] = []
        since = state.replay_since
        if state.recovered:
            stored = await asyncio.to_thread(self.store.incidents, show_id)
            open_starts = [i.start_ts for i in stored if i.end_ts is None]
            if open_starts:
                # Reach back before the oldest open incident so its probes'
                # baselines are rebuilt, bounded.
                baseline_s = float(state.engine.cfg.media.baseline_s)
                since = max(show.start_ts, now - self.settings.max_replay_s,
                            min(since, min(open_starts) - baseline_s))

        def read() -> tuple[list[ProbeSample], list[BusinessSample], list[StockRecord],
                            list[OnScreen]]:
            return (
                self.store.probe_samples(show_id, since, None),
                self.store.business(show_id, since, None),
                self.store.stock(min(since, show.start_ts) - _STOCK_LOOKBACK_S, None),
                self.store.on_screen(show_id),
            )

        samples, business, stock, on_screen = await asyncio.to_thread(read)
        viewer: list[ViewerAggregate] = []
        if isinstance(self.store, StoresViewerAggregates):
            viewer = await asyncio.to_thread(self.store.viewer_aggregates, show_id, since, None)
        state.engine.add_viewer_aggregates(viewer)
        served = {w for ws in show.region_warehouses.values() for w in ws}
        engine, tracker = state.engine, state.tracker
        self._add_probe_samples(state, samples)
        engine.add_business(business)
        tracker.add_business(business)
        tracker.add_stock([r for r in stock if r.warehouse in served])
        tracker.add_on_screen(on_screen)
        # What arrived while the store was read: probe samples and stock are
        # idempotent, business figures add up, so skip those already read.
        seen = {(b.ts, b.region, b.sku) for b in business}
        seen_viewer = {_viewer_key(v) for v in viewer}
        for kind, items in state.buffer:
            if kind == "probe":
                self._add_probe_samples(state, items)
            elif kind == "viewer":
                engine.add_viewer_aggregates(
                    [v for v in items if _viewer_key(v) not in seen_viewer])
            elif kind == "business":
                fresh = [b for b in items if (b.ts, b.region, b.sku) not in seen]
                engine.add_business(fresh)
                tracker.add_business(fresh)
            elif kind == "stock":
                tracker.add_stock(items)
            else:
                tracker.add_on_screen(items)
        state.buffer = []
        state.replay_since = None
        self.recovery.samples += len(samples)
        if not state.recovered:
            return  # a show created late: its data is continuous, go on as usual
        # Judge the stored past up to the last stored data, then hold.
        last = max((s.ts for s in samples), default=None)
        if business:
            last = max(last or 0.0, max(b.ts for b in business))
        changes = tracker.step(last if last is not None else now)
        engine.add_stock_states(changes)
        if last is not None:
            engine.step(last + engine.cfg.incident.lag_s)
        self._reconcile(state, stored, since, last if last is not None else now)
        if last is not None:
            state.replayed_until = last
            state.hold_until = now + self.settings.resume_wait_s
        written = self._incidents(state)
        if written:
            await asyncio.to_thread(self.store.put_incidents, show_id, written)

    def _reconcile(
        self, state: _ShowState, stored: list[Incident], since: float, last: float
    ) -> None:
        """Give each replayed incident the identity of the stored one it
        continues; keep replayed history that is stored already out of sight;
        close stored open incidents the replay no longer finds."""
        used: set[str] = set()
        for r in state.engine.incidents:
            match = _best_match(r, [s for s in stored if s.incident_id not in used])
            if match is not None:
                used.add(match.incident_id)
                if match.end_ts is not None:
                    state.hidden.add(r.incident_id)
                else:
                    state.overrides[r.incident_id] = {
                        "incident_id": match.incident_id, "start_ts": match.start_ts,
                        "detected_ts": match.detected_ts,
                    }
                    self.recovery.incidents_continued += 1
            elif r.start_ts < since + _PARTIAL_S or (r.end_ts is not None and r.end_ts <= last):
                # Seen in part at the window's edge, or over before the
                # restart without ever being stored: history, not news.
                state.hidden.add(r.incident_id)
        for s in stored:
            if s.end_ts is None and s.incident_id not in used:
                state.closed.append(s.model_copy(update={"end_ts": max(s.start_ts, last)}))
                self.recovery.incidents_closed += 1

    # --- once a second ------------------------------------------------------
    async def tick(self, now: float) -> None:
        try:
            await self._tick(now)
        except StoreError as exc:
            # /healthz says so; the next tick tries again.
            self.tick_error = str(exc)[:300]
            raise
        self.tick_error = None

    async def _tick(self, now: float) -> None:
        t0 = time.monotonic()
        if self.leases is not None:
            for show_id, state in list(self.shows.items()):
                if not state.leased and not state.finished:
                    # A show created here: diagnosed here unless another
                    # collector already holds it.
                    if await self._acquire(show_id):
                        state.leased = True
                    else:
                        self._let_go(show_id)
            if time.monotonic() - self._last_lease_round >= self.settings.lease_renew_s:
                await self._lease_round(now)
        await self._replay_pending(now)
        for show_id, state in list(self.shows.items()):
            if state.finished or state.replay_since is not None:
                continue
            await self._end_if_overdue(state, now)
            stock_changes = state.tracker.step(now)
            if stock_changes:
                state.engine.add_stock_states(stock_changes)
                self.stock_feed.publish(stock_changes)
                await asyncio.to_thread(self.store.write_stock_states, stock_changes)
            if state.hold_until is not None:
                self._maybe_resume(state, now)
            changed = state.view(state.engine.step(now)) if state.hold_until is None else []
            ended = state.show.end_ts is not None and now >= state.show.end_ts
            if ended:
                closed = {i.incident_id: i for i in changed}
                end_ts = state.show.end_ts or now
                closed.update((i.incident_id, i) for i in self._close_open(state, end_ts))
                changed = list(closed.values())
                state.finished = True
            if changed:
                await asyncio.to_thread(self.store.put_incidents, show_id, changed)
            if self.alerter is not None:
                incidents = self._incidents(state)
                if ended:
                    incidents = self._ended(incidents, state.show.end_ts or now)
                await self.alerter.update(show_id, incidents, now)
                if ended:
                    # Resolve at once rather than after the flap cool-off:
                    # the show is over, nothing can re-fire.
                    await self.alerter.end_show(show_id, now)
            if ended:
                self._forget(show_id)
                if self.leases is not None:
                    # Held while its last notifications are on their way, so
                    # another collector sends them if this one stops.
                    self._draining.add(show_id)
                # In the background: waiting for the last alert deliveries
                # must not hold up the other shows' diagnosis.
                task = asyncio.create_task(self._write_report(show_id, now))
                self._report_tasks.add(task)
                task.add_done_callback(self._report_tasks.discard)
        await self._write_deliveries()
        self.last_tick = time.time()
        self.last_tick_s = time.monotonic() - t0

    async def _end_if_overdue(self, state: _ShowState, now: float) -> None:
        show = state.show
        if show.end_ts is not None:
            return
        if show.planned_end_ts is not None:
            due = show.planned_end_ts + self.settings.end_grace_s
            why = f"its planned end + {self.settings.end_grace_s:.0f} s grace"
        else:
            # No planned end either: bounded all the same.
            due = show.start_ts + self.settings.max_show_age_s
            why = f"{self.settings.max_show_age_s / 3600:.0f} h after its start (no planned end)"
        if now < due:
            return
        log.warning("show %s: no end call by %s: ended at %.0f", show.show_id, why, due)
        state.show = show.model_copy(update={"end_ts": due})
        await asyncio.to_thread(self.store.put_show, state.show)

    def _maybe_resume(self, state: _ShowState, now: float) -> None:
        assert state.hold_until is not None
        lag = state.engine.cfg.incident.lag_s
        if state.resume_ts is not None:
            resume = state.resume_ts
        elif now >= state.hold_until:
            resume = now - lag
        else:
            return
        state.engine.resume_at(resume)
        state.hold_until = state.resume_ts = None
        took = time.monotonic() - self._t_start
        self.resumed_after_s[state.show.show_id] = took
        log.info("show %s: diagnosis resumed %.1f s after start", state.show.show_id, took)

    def _forget(self, show_id: str) -> None:
        """A finished show leaves memory; its id is remembered (bounded) so
        late samples for it are not taken for an unknown show's."""
        self.shows.pop(show_id, None)
        self.resumed_after_s.pop(show_id, None)
        self._finished[show_id] = None
        if len(self._finished) > _REMEMBER_MAX:
            self._finished.popitem(last=False)

    async def _write_report(self, show_id: str, now: float) -> None:
        """The ended show's summary (what history reads) and its report."""
        from qosmon.history.collect import refresh_history, store_summary
        from qosmon.report.data import load_show_data
        from qosmon.report.output import write_report

        if self.alerter is not None:
            await self.alerter.flush(timeout_s=10)
        await self._write_deliveries()
        report_dir, lang = self.report_dir, self.report_language

        def write() -> Path | None:
            data = load_show_data(self.store, show_id)
            store_summary(self.store, data, now)
            if report_dir is None:
                return None
            refresh_history(self.store, report_dir, now, lang)
            return write_report(data, report_dir, lang=lang)

        try:
            path = await asyncio.to_thread(write)
        except Exception:  # a report must never take the collector down
            log.exception("show %s: writing the summary or report failed", show_id)
        else:
            if path is not None:
                log.info("show %s ended: report at %s", show_id, path)

    def record_delivery(self, delivery: AlertDelivery) -> None:
        """The alerter's delivery log goes to the store on the next tick."""
        self._pending_deliveries.append(delivery)

    async def _write_deliveries(self) -> None:
        if not self._pending_deliveries:
            return
        pending, self._pending_deliveries = self._pending_deliveries, []
        by_show: dict[str, list[AlertDelivery]] = {}
        for d in pending:
            by_show.setdefault(d.show_id, []).append(d)
        for show_id, group in by_show.items():
            await asyncio.to_thread(self.store.write_alert_deliveries, show_id, group)

    @staticmethod
    def _ended(incidents: list[Incident], end_ts: float) -> list[Incident]:
        return [
            i if i.end_ts is not None else i.model_copy(update={"end_ts": end_ts})
            for i in incidents
        ]

    def _close_open(self, state: _ShowState, end_ts: float) -> list[Incident]:
        """At show end, incidents still open end with the show."""
        return [i.model_copy(update={"end_ts": end_ts}) for i in self._incidents(state)
                if i.end_ts is None]

    async def start(self) -> None:
        """Load the alerting state, then rebuild the shows still live."""
        self._t_start = time.monotonic()
        self._t_start_wall = time.time()
        others: frozenset[str] = frozenset()
        if self.leases is not None:
            holders = await asyncio.to_thread(self.leases.lease_holders)
            others = frozenset(s for s, o in holders.items() if o != self.owner)
        if self.alerter is not None:
            await self.alerter.start(exclude=others)
        await self.recover(time.time())

    async def close(self) -> None:
        if self._report_tasks:
            await asyncio.wait(self._report_tasks, timeout=30)
        if self.alerter is not None:
            await self.alerter.flush(timeout_s=10)
            await self.alerter.close()
        await self._write_deliveries()
        if self.leases is not None:
            # A clean stop hands the shows over at once rather than when
            # their leases run out; ended shows with notifications still
            # waiting keep theirs, so the next collector finds them expired.
            waiting = self.alerter.pending_for if self.alerter is not None else None
            for show_id in [*self.shows, *self._draining]:
                if waiting is not None and waiting(show_id):
                    continue
                try:
                    await asyncio.to_thread(self.leases.release_lease, show_id, self.owner)
                except StoreError as exc:
                    log.warning("show %s: lease not released (%s); it runs out by itself",
                                show_id, exc)


def _viewer_key(v: ViewerAggregate) -> tuple[Any, ...]:
    return (v.ts, v.region, v.isp, v.cdn, v.device, v.app_version)


def _kind(cause: Cause) -> str:
    if cause in STOCK_CAUSES:
        return "stock"
    if cause == Cause.NETWORK_FINE:
        return "business"
    return "stream"


def _best_match(replayed: Incident, stored: list[Incident]) -> Incident | None:
    """The stored incident a replayed one is: same place, same kind of
    problem (and SKU), overlapping in time; the same cause and the nearest
    start first."""
    r_end = replayed.end_ts if replayed.end_ts is not None else math.inf
    best: tuple[int, float, Incident] | None = None
    for s in stored:
        if s.scope != replayed.scope or _kind(s.cause) != _kind(replayed.cause):
            continue
        if _kind(s.cause) == "stock" and not set(s.skus) & set(replayed.skus):
            continue
        s_end = s.end_ts if s.end_ts is not None else math.inf
        if s.start_ts > r_end + _PARTIAL_S or replayed.start_ts > s_end + _PARTIAL_S:
            continue
        rank = (0 if s.cause == replayed.cause else 1, abs(s.start_ts - replayed.start_ts))
        if best is None or rank < best[:2]:
            best = (*rank, s)
    return best[2] if best is not None else None
