"""The live pipeline behind the collector: per show, a diagnosis engine and an
inventory tracker fed with everything accepted; once a second their results
go to the store, to live subscribers and to alerting.

This is the only place that knows all three; each of them stays pure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qosmon.alerting.alerter import Alerter
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.i18n import check_language
from qosmon.inventory.config import InventoryConfig
from qosmon.inventory.tracker import InventoryTracker
from qosmon.model import (
    AlertDelivery,
    BusinessSample,
    Cause,
    Incident,
    OnScreen,
    ProbeSample,
    Show,
    StockRecord,
    StockState,
)
from qosmon.pipeline import DeliveryQos, ProbeQos, ShowQos, StockFeed
from qosmon.store.base import Store

log = logging.getLogger(__name__)

# A probe whose latest sample for a show is older than this is down for it:
# probes send every second, so this is several missed batches.
PROBE_UP_WITHIN_S = 10.0


@dataclass
class _ShowState:
    show: Show
    engine: DiagnosisEngine
    tracker: InventoryTracker
    latest: dict[str, ProbeSample] = field(default_factory=dict)  # probe_id -> last sample
    # probe_id -> [frozen seconds, chat messages sent, chat messages lost],
    # summed over every sample accepted (duplicates never reach the pipeline).
    totals: dict[str, list[float]] = field(default_factory=dict)
    finished: bool = False


class LivePipeline:
    def __init__(
        self,
        store: Store,
        alerter: Alerter | None = None,
        engine_config: DiagnosisConfig | None = None,
        inventory_config: InventoryConfig | None = None,
        report_dir: Path | None = None,
        report_language: str = "en",
    ) -> None:
        self.store = store
        self.alerter = alerter
        self.report_dir = report_dir
        self.report_language = check_language(report_language)
        self.stock_feed = StockFeed()
        self._engine_config = engine_config
        self._inventory_config = inventory_config
        self.shows: dict[str, _ShowState] = {}
        self._pending_deliveries: list[AlertDelivery] = []
        self._report_tasks: set[asyncio.Task[None]] = set()

    # --- hooks the collector calls with accepted data ----------------------
    def on_show(self, show: Show) -> None:
        state = self.shows.get(show.show_id)
        if state is None:
            state = _ShowState(
                show=show,
                engine=DiagnosisEngine(show, self._engine_config),
                tracker=InventoryTracker(show, self._inventory_config),
            )
            self.shows[show.show_id] = state
        else:
            state.show = show

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
            if state is None or state.finished:
                continue
            state.engine.add_probe_samples(group)
            for s in group:
                prev = state.latest.get(s.probe_id)
                if prev is None or s.ts >= prev.ts:
                    state.latest[s.probe_id] = s
                if s.freeze_ms or s.chat_sent or s.chat_lost:
                    tot = state.totals.setdefault(s.probe_id, [0.0, 0.0, 0.0])
                    tot[0] += s.freeze_ms / 1000.0
                    tot[1] += s.chat_sent
                    tot[2] += s.chat_lost

    def on_business(self, samples: Sequence[BusinessSample]) -> None:
        by_show: dict[str, list[BusinessSample]] = {}
        for s in samples:
            by_show.setdefault(s.show_id, []).append(s)
        for show_id, group in by_show.items():
            state = self.shows.get(show_id)
            if state is None or state.finished:
                continue
            state.engine.add_business(group)
            state.tracker.add_business(group)

    def on_stock(self, records: Sequence[StockRecord]) -> None:
        # Stock belongs to warehouses, not shows: every live show served by
        # the warehouse sees it.
        for state in self.shows.values():
            if state.finished:
                continue
            served = {w for ws in state.show.region_warehouses.values() for w in ws}
            mine = [r for r in records if r.warehouse in served]
            if mine:
                state.tracker.add_stock(mine)

    def on_stock_heartbeat(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        for state in self.shows.values():
            if not state.finished:
                state.tracker.add_heartbeat(warehouse, source_ts, received_ts)

    def on_on_screen(self, events: Sequence[OnScreen]) -> None:
        for e in events:
            state = self.shows.get(e.show_id)
            if state is not None and not state.finished:
                state.tracker.add_on_screen([e])

    def current_stock(self, show_id: str) -> list[StockState]:
        state = self.shows.get(show_id)
        return state.tracker.states() if state is not None else []

    def latest_samples(self, show_id: str) -> list[ProbeSample]:
        state = self.shows.get(show_id)
        return list(state.latest.values()) if state is not None else []

    def live_qos(self, now: float) -> list[ShowQos]:
        out = []
        for show_id, state in self.shows.items():
            if state.finished:
                continue  # its series leave /metrics with the show
            qos = ShowQos(show_id, open_incidents=dict.fromkeys(Cause, 0))
            for inc in state.engine.incidents:
                if inc.end_ts is None:
                    qos.open_incidents[inc.cause] += 1
            for probe_id, s in sorted(state.latest.items()):
                tot = state.totals.get(probe_id, [0.0, 0.0, 0.0])
                qos.probes.append(ProbeQos(
                    probe_id=probe_id, region=s.region, latest=s,
                    up=s.state == "connected" and now - s.ts <= PROBE_UP_WITHIN_S,
                    frozen_s=tot[0], chat_sent=int(tot[1]), chat_lost=int(tot[2]),
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

    def watching(self, show_id: str) -> bool:
        state = self.shows.get(show_id)
        return state is not None and not state.finished

    def incidents(self, show_id: str) -> list[Incident]:
        state = self.shows.get(show_id)
        return state.engine.incidents if state is not None else []

    # --- once a second ------------------------------------------------------
    async def tick(self, now: float) -> None:
        for show_id, state in list(self.shows.items()):
            if state.finished:
                continue
            stock_changes = state.tracker.step(now)
            if stock_changes:
                state.engine.add_stock_states(stock_changes)
                self.stock_feed.publish(stock_changes)
                await asyncio.to_thread(self.store.write_stock_states, stock_changes)
            changed = state.engine.step(now)
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
                incidents = state.engine.incidents
                if ended:
                    incidents = self._ended(incidents, state.show.end_ts or now)
                self.alerter.update(show_id, incidents, now)
                if ended:
                    # Resolve at once rather than after the flap cool-off:
                    # the show is over, nothing can re-fire.
                    self.alerter.end_show(show_id, now)
            if ended:
                # In the background: waiting for the last alert deliveries
                # must not hold up the other shows' diagnosis.
                task = asyncio.create_task(self._write_report(show_id, now))
                self._report_tasks.add(task)
                task.add_done_callback(self._report_tasks.discard)
        await self._write_deliveries()

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
        return [i.model_copy(update={"end_ts": end_ts}) for i in state.engine.incidents
                if i.end_ts is None]

    async def start(self) -> None:
        if self.alerter is not None:
            await self.alerter.start()

    async def close(self) -> None:
        if self._report_tasks:
            await asyncio.wait(self._report_tasks, timeout=30)
        if self.alerter is not None:
            await self.alerter.flush(timeout_s=10)
            await self.alerter.close()
        await self._write_deliveries()
