"""The alerting runtime: rules in the caller's tick, delivery in the background.

``update()`` is called about once a second from the collector's pipeline. It
runs the pure rules (``rules.py``) and writes what they decided to the
durable outbox (``outbox.py``), one entry per route, together with the
rules' state; only then is anything sent. Each route has its own worker task
that delivers its entries in the order they were queued and retries with
bounded exponential backoff while its receiver is down. When the retry
budget is spent the entry is kept (marked late) and tried again every
``max_backoff_s`` until the receiver takes it: an alert counts as sent only
on a 2xx. A slow or dead receiver delays only its own route, never the
caller nor the other routes.

On ``start()`` the outbox and the rules' state are loaded: what a previous
process queued and did not deliver is sent now, and an alert that was
already sent is not sent again but resolved when its incidents end. A
receiver never gets a resolve for an alert it was not sent firing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence

import aiohttp

from qosmon.alerting.config import AlertingConfig, RouteConfig
from qosmon.alerting.notifiers import DeliveryError, Notifier, make_notifier
from qosmon.alerting.outbox import (
    EntryState,
    MemoryOutbox,
    Outbox,
    OutboxEntry,
    new_delivery_id,
    next_seq,
)
from qosmon.alerting.rules import AlertRules, Notification
from qosmon.model import Alert, AlertDelivery, AlertStatus, Incident
from qosmon.store.base import StoreError

__all__ = ["Alerter", "AlertingConfig"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclasses.dataclass
class _Route:
    config: RouteConfig
    pending: list[OutboxEntry] = dataclasses.field(default_factory=list)  # by seq
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Alert keys this receiver was last sent firing (and not resolved since).
    firing: dict[str, Alert] = dataclasses.field(default_factory=dict)
    in_flight: str | None = None
    notifier: Notifier | None = None
    task: asyncio.Task[None] | None = None
    stats: RouteStats = dataclasses.field(default_factory=lambda: RouteStats(""))


@dataclasses.dataclass
class RouteStats:
    """Running totals of one route since this process started, for /metrics."""

    route: str
    sent: int = 0  # notifications delivered
    failed: int = 0  # notifications the receiver rejected (not retried)
    failed_attempts: int = 0  # attempts that failed, retried or not
    dropped: int = 0  # dropped because too many were waiting
    pending: int = 0  # waiting for the receiver now


class Alerter:
    """Turns a show's incidents into notifications on the configured routes."""

    def __init__(
        self,
        config: AlertingConfig,
        *,
        link: Callable[[str], str] | None = None,
        on_delivery: Callable[[AlertDelivery], None] | None = None,
        outbox: Outbox | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.rules = AlertRules(config)
        self._link = link
        self._on_delivery = on_delivery
        self.outbox: Outbox = outbox if outbox is not None else MemoryOutbox()
        self._clock = clock
        self._routes = {r.name: _Route(r, stats=RouteStats(r.name)) for r in config.routes}
        self._session: aiohttp.ClientSession | None = None
        self._unrouted_warned: set[str] = set()
        # The delivery log: every attempt on every route, newest last.
        self.deliveries: collections.deque[AlertDelivery] = collections.deque(maxlen=10_000)
        self.dropped = 0  # notifications dropped because a route's queue was full
        self.restored_shows: set[str] = set()  # shows whose alert state was loaded

    async def start(self, exclude: frozenset[str] = frozenset()) -> None:
        """Load the outbox (but not the shows in ``exclude``: another
        collector holds them), open the HTTP session and start one delivery
        worker per route.

        Raises ``ConfigError`` if a route's secret or URL cannot be resolved,
        ``StoreError`` if the outbox cannot be read."""
        if self._session is not None:
            return
        entries, states = await asyncio.to_thread(self.outbox.outbox_load)
        entries = [e for e in entries if e.show_id not in exclude]
        states = {k: v for k, v in states.items() if k not in exclude}
        session = aiohttp.ClientSession()
        try:
            for route in self._routes.values():
                route.notifier = make_notifier(route.config, session)
        except BaseException:
            await session.close()
            raise
        self._session = session
        self._restore(entries, states)
        for route in self._routes.values():
            route.task = asyncio.create_task(self._work(route), name=f"alert-{route.config.name}")

    async def adopt_show(self, show_id: str) -> None:
        """Take over one show from another collector: its alert state and
        what its outbox still holds (sent from here on, in order)."""
        entries, states = await asyncio.to_thread(self.outbox.outbox_load, [show_id])
        known = {e.delivery_id for r in self._routes.values() for e in r.pending}
        self._restore([e for e in entries if e.delivery_id not in known], states)
        for route in self._routes.values():
            route.pending.sort(key=lambda e: e.seq)
            route.wake.set()

    def release_show(self, show_id: str) -> None:
        """Another collector holds the show now: stop sending for it."""
        self.rules.restore_show(show_id, {})
        self.restored_shows.discard(show_id)
        for route in self._routes.values():
            route.pending = [e for e in route.pending
                             if e.show_id != show_id or e.delivery_id == route.in_flight]

    def _restore(self, entries: list[OutboxEntry], states: dict[str, str]) -> None:
        for show_id, body in states.items():
            try:
                self.rules.restore_show(show_id, json.loads(body))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("show %s: saved alert state unreadable, starting afresh: %s",
                          show_id, exc)
                continue
            self.restored_shows.add(show_id)
        restored = 0
        for e in entries:  # oldest first
            route = self._routes.get(e.route)
            if route is None:
                if e.pending:
                    log.warning("outbox entry %s is for route %s, which is no longer "
                                "configured: not sent", e.delivery_id, e.route)
                continue
            if e.state == EntryState.DELIVERED:
                self._note_delivered(route, e.alerts)
            elif e.pending:
                # Queued by an earlier process: whatever happens now is late.
                e.late = True
                route.pending.append(e)
                restored += 1
        for route in self._routes.values():
            if route.notifier is not None and route.firing:
                route.notifier.restore(list(route.firing.values()))
        if restored:
            log.info("alert outbox: %d notification(s) left by the previous process will be "
                     "sent", restored)

    async def update(self, show_id: str, incidents: Sequence[Incident], now: float) -> list[Alert]:
        """Evaluate the rules for one show at ``now``, write what is due to
        the outbox and wake the routes.

        Waits only for the outbox write, never for a receiver; returns the
        alerts queued on at least one route."""
        return await self._enqueue(show_id, self.rules.evaluate(show_id, incidents, now))

    async def end_show(self, show_id: str, now: float) -> list[Alert]:
        """The show is over: resolve its open alerts now (no cool-off)."""
        return await self._enqueue(
            show_id, self.rules.evaluate(show_id, [], now, show_ended=True), ended=True
        )

    @property
    def started(self) -> bool:
        return self._session is not None

    def route_stats(self) -> list[RouteStats]:
        """Per route: notifications sent, failed, dropped and waiting now."""
        return [dataclasses.replace(r.stats, pending=len(r.pending))
                for r in self._routes.values()]

    def depth(self) -> int:
        """Notifications waiting for their receivers, all routes together."""
        return sum(len(r.pending) for r in self._routes.values())

    def pending_for(self, show_id: str) -> int:
        """Notifications of one show still waiting for their receivers."""
        return sum(1 for r in self._routes.values() for e in r.pending if e.show_id == show_id)

    def oldest_pending_s(self, now: float) -> float:
        """Age of the oldest notification still waiting (0 if none)."""
        oldest = min((e.created_ts for r in self._routes.values() for e in r.pending),
                     default=now)
        return max(0.0, now - oldest)

    async def flush(self, timeout_s: float) -> None:
        """Wait until nothing is waiting to be delivered, at most
        ``timeout_s`` (then log what is still waiting: it stays queued)."""
        deadline = time.monotonic() + timeout_s
        while self.depth() and time.monotonic() < deadline:
            if not any(r.task is not None for r in self._routes.values()):
                break
            await asyncio.sleep(0.05)
        if self.depth():
            waiting = {r.config.name: len(r.pending) for r in self._routes.values() if r.pending}
            log.warning("alert delivery not finished after %.1f s (kept in the outbox): %s",
                        timeout_s, waiting)

    async def close(self) -> None:
        for route in self._routes.values():
            if route.task is not None:
                route.task.cancel()
        for route in self._routes.values():
            if route.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await route.task
                route.task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- queueing ------------------------------------------------------------
    async def _enqueue(
        self, show_id: str, notifications: list[Notification], ended: bool = False
    ) -> list[Alert]:
        if not notifications and not ended:
            return []
        now = self._clock()
        queued: dict[str, Alert] = {}
        new: list[OutboxEntry] = []
        changed: list[OutboxEntry] = []
        placed: list[tuple[_Route, OutboxEntry]] = []
        for n in notifications:
            alerts = n.alerts
            if self._link is not None:
                url = self._link(n.show_id)
                alerts = tuple(a.model_copy(update={"url": url}) for a in alerts)
            routes = [r for r in self._routes.values() if n.route in r.config.serves]
            if not routes and n.route not in self._unrouted_warned:
                self._unrouted_warned.add(n.route)
                log.warning("no route serves %r: its alerts are not sent", n.route)
            for route in routes:
                entry = OutboxEntry(
                    delivery_id=new_delivery_id(), seq=next_seq(), route=route.config.name,
                    show_id=n.show_id, group_key=n.group_key, audience=n.route,
                    region=n.region, alerts=list(alerts), created_ts=now,
                )
                changed += self._supersede(route, entry)
                changed += self._bound(route, placed)
                new.append(entry)
                placed.append((route, entry))
                for a in alerts:
                    queued[f"{a.key}/{a.status}"] = a
        state = self.rules.export_show(show_id)
        body = json.dumps(state) if state["alerts"] or state["groups"] else None
        try:
            await asyncio.to_thread(self.outbox.outbox_add, new, changed, (show_id, body))
        except StoreError as exc:
            # Still sent from memory; only a restart before delivery loses it.
            log.error("alert outbox write failed (%s): %d notification(s) not durable",
                      exc, len(new))
        for route, entry in placed:
            route.pending.append(entry)
            route.wake.set()
        return list(queued.values())

    def _supersede(self, route: _Route, entry: OutboxEntry) -> list[OutboxEntry]:
        """A waiting firing whose alerts all fire again in ``entry`` (a repeat
        or an escalation) need not be sent: the new one says it all."""
        if not entry.all_firing():
            return []
        keys = {a.key for a in entry.alerts}
        out = []
        for old in route.pending:
            if (old.group_key == entry.group_key and old.delivery_id != route.in_flight
                    and old.all_firing() and {a.key for a in old.alerts} <= keys):
                old.state = EntryState.SUPERSEDED
                old.done_ts = entry.created_ts
                out.append(old)
        if out:
            route.pending = [e for e in route.pending if e.pending]
        return out

    def _bound(self, route: _Route, placed: list[tuple[_Route, OutboxEntry]]) -> list[OutboxEntry]:
        waiting = len(route.pending) + sum(1 for r, _ in placed if r is route)
        if waiting < self.config.max_queue or not route.pending:
            return []
        candidates = [e for e in route.pending if e.delivery_id != route.in_flight]
        if not candidates:
            return []
        old = candidates[0]
        old.state = EntryState.DROPPED
        old.done_ts = self._clock()
        route.pending.remove(old)
        self.dropped += 1
        route.stats.dropped += 1
        log.error("route %s: %d notifications waiting, dropped the oldest (%s, %d alert(s))",
                  route.config.name, waiting, old.group_key, len(old.alerts))
        return [old]

    # --- delivery ------------------------------------------------------------
    async def _work(self, route: _Route) -> None:
        notifier = route.notifier
        assert notifier is not None
        last_resend = time.monotonic()
        while True:
            entry = route.pending[0] if route.pending else None
            wait_s: float | None = None
            if entry is None:
                wait_s = None
            elif entry.next_try_ts > self._clock():
                wait_s = entry.next_try_ts - self._clock()
            if entry is None or wait_s is not None:
                if notifier.resend_s is not None:
                    until_resend = notifier.resend_s - (time.monotonic() - last_resend)
                    if until_resend <= 0:
                        await self._resend(notifier)
                        last_resend = time.monotonic()
                        continue
                    wait_s = until_resend if wait_s is None else min(wait_s, until_resend)
                route.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(route.wake.wait(), wait_s)
                continue
            assert entry is not None
            try:
                await self._attempt(route, notifier, entry)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the route for the rest of the show
                log.exception("route %s: unexpected error delivering %s", notifier.name,
                              entry.group_key)
                entry.next_try_ts = self._clock() + route.config.retry.max_backoff_s

    async def _resend(self, notifier: Notifier) -> None:
        try:
            await notifier.resend()
        except DeliveryError as exc:
            # The next period tries again; the receiver keeps the alert until
            # its lease (a few periods) runs out.
            log.warning("route %s: re-posting firing alerts failed: %s", notifier.name,
                        exc.reason)

    async def _attempt(self, route: _Route, notifier: Notifier, entry: OutboxEntry) -> None:
        policy = route.config.retry
        # A resolve is only news to a receiver that was told the alert fired.
        alerts = [a for a in entry.alerts
                  if a.status == AlertStatus.FIRING or a.key in route.firing]
        if not alerts:
            entry.state = EntryState.SKIPPED
            entry.done_ts = self._clock()
            log.warning("route %s: not sending %s: it only resolves alerts this receiver was "
                        "never sent firing", notifier.name, entry.group_key)
            await self._finish(route, entry)
            return
        entry.attempts += 1
        route.in_flight = entry.delivery_id
        try:
            await notifier.send(entry.notification(alerts))
        except DeliveryError as exc:
            self._record(notifier, entry, alerts, ok=False, error=exc.reason)
            entry.last_error = exc.reason
            route.stats.failed_attempts += 1
            if not exc.retryable:
                route.stats.failed += 1
                log.error("route %s: %s rejected, not retrying: %s", notifier.name,
                          entry.group_key, exc.reason)
                entry.state = EntryState.REJECTED
                entry.done_ts = self._clock()
                await self._finish(route, entry)
                return
            if entry.attempts >= policy.max_attempts:
                if not entry.late:
                    log.error("route %s: %s not delivered after %d attempts (%s); kept, "
                              "retrying every %g s", notifier.name, entry.group_key,
                              entry.attempts, exc.reason, policy.max_backoff_s)
                entry.late = True
                wait_s = policy.max_backoff_s
            else:
                wait_s = policy.backoff_s(entry.attempts)
                log.warning("route %s: attempt %d for %s failed (%s); retrying in %.1f s",
                            notifier.name, entry.attempts, entry.group_key, exc.reason, wait_s)
            entry.next_try_ts = self._clock() + wait_s
            await self._persist(entry)
        else:
            entry.state = EntryState.DELIVERED
            entry.done_ts = self._clock()
            entry.last_error = ""
            self._note_delivered(route, alerts)
            route.stats.sent += 1
            self._record(notifier, entry, alerts, ok=True, error="")
            log.info("route %s: sent %s (%d alert(s), attempt %d%s)", notifier.name,
                     entry.group_key, len(alerts), entry.attempts, ", late" if entry.late else "")
            await self._finish(route, entry)
        finally:
            route.in_flight = None

    async def _finish(self, route: _Route, entry: OutboxEntry) -> None:
        # Recorded before it leaves the queue, so flush() waits for it.
        await self._persist(entry)
        with contextlib.suppress(ValueError):
            route.pending.remove(entry)

    async def _persist(self, entry: OutboxEntry) -> None:
        try:
            await asyncio.to_thread(self.outbox.outbox_update, [entry])
        except StoreError as exc:
            log.error("alert outbox: cannot record the state of %s: %s", entry.delivery_id, exc)

    @staticmethod
    def _note_delivered(route: _Route, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            if a.status == AlertStatus.FIRING:
                route.firing[a.key] = a
            else:
                route.firing.pop(a.key, None)

    def _record(
        self, notifier: Notifier, entry: OutboxEntry, alerts: Sequence[Alert], *, ok: bool,
        error: str,
    ) -> None:
        ts = self._clock()
        for alert in alerts:
            record = AlertDelivery(ts=ts, show_id=alert.show_id, alert_key=alert.key,
                                   incident_id=alert.incident_id, status=alert.status,
                                   notifier=notifier.name, ok=ok, attempt=entry.attempts,
                                   error=error, delivery_id=entry.delivery_id,
                                   late=entry.late)
            self.deliveries.append(record)
            if self._on_delivery is not None:
                try:
                    self._on_delivery(record)
                except Exception:
                    log.exception("on_delivery callback failed")
