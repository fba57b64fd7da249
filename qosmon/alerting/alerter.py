"""The alerting runtime: rules in the caller's tick, delivery in the background.

``update()`` is called about once a second from the collector's pipeline. It
runs the pure rules (``rules.py``) and puts what they decided on one queue per
route, then returns at once; each route has its own worker task that delivers
in order, retrying with bounded exponential backoff while its receiver is
down. A slow or dead receiver therefore delays only its own route, never the
caller nor the other routes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import aiohttp

from qosmon.alerting.config import AlertingConfig, RouteConfig
from qosmon.alerting.notifiers import DeliveryError, Notifier, make_notifier
from qosmon.alerting.rules import AlertRules, Notification
from qosmon.model import Alert, AlertDelivery, Incident

__all__ = ["Alerter", "AlertingConfig"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Route:
    config: RouteConfig
    queue: asyncio.Queue[Notification]
    notifier: Notifier | None = None
    task: asyncio.Task[None] | None = None
    stats: RouteStats = dataclasses.field(default_factory=lambda: RouteStats(""))
    delivering: bool = False  # a notification taken off the queue, not yet done


@dataclasses.dataclass
class RouteStats:
    """Running totals of one route, for /metrics."""

    route: str
    sent: int = 0  # notifications delivered
    failed: int = 0  # notifications given up on (rejected or out of attempts)
    failed_attempts: int = 0  # attempts that failed, retried or not
    dropped: int = 0  # dropped because the route's queue was full
    pending: int = 0  # queued or being delivered now


class Alerter:
    """Turns a show's incidents into notifications on the configured routes."""

    def __init__(
        self,
        config: AlertingConfig,
        *,
        link: Callable[[str], str] | None = None,
        on_delivery: Callable[[AlertDelivery], None] | None = None,
    ) -> None:
        self.config = config
        self.rules = AlertRules(config)
        self._link = link
        self._on_delivery = on_delivery
        self._routes = [_Route(r, asyncio.Queue(), stats=RouteStats(r.name))
                        for r in config.routes]
        self._session: aiohttp.ClientSession | None = None
        self._unrouted_warned: set[str] = set()
        # The delivery log: every attempt on every route, newest last.
        self.deliveries: collections.deque[AlertDelivery] = collections.deque(maxlen=10_000)
        self.dropped = 0  # notifications dropped because a route's queue was full

    def route_stats(self) -> list[RouteStats]:
        """Per route: notifications sent, failed, dropped and pending now."""
        out = []
        for r in self._routes:
            pending = r.queue.qsize() + (1 if r.delivering else 0)
            out.append(dataclasses.replace(r.stats, pending=pending))
        return out

    async def start(self) -> None:
        """Open the HTTP session and start one delivery worker per route.

        Raises ``ConfigError`` if a route's secret or URL cannot be resolved."""
        if self._session is not None:
            return
        session = aiohttp.ClientSession()
        try:
            for route in self._routes:
                route.notifier = make_notifier(route.config, session)
        except BaseException:
            await session.close()
            raise
        self._session = session
        for route in self._routes:
            route.task = asyncio.create_task(self._work(route), name=f"alert-{route.config.name}")

    def update(self, show_id: str, incidents: Sequence[Incident], now: float) -> list[Alert]:
        """Evaluate the rules for one show at ``now`` and queue what is due.

        Never blocks and never raises for a receiver's sake; returns the alerts
        queued on at least one route."""
        return self._enqueue(self.rules.evaluate(show_id, incidents, now))

    def end_show(self, show_id: str, now: float) -> list[Alert]:
        """The show is over: resolve its open alerts now (no cool-off)."""
        return self._enqueue(self.rules.evaluate(show_id, [], now, show_ended=True))

    async def flush(self, timeout_s: float) -> None:
        """Wait until every queued notification was delivered or given up on,
        at most ``timeout_s`` (then log what is still waiting)."""
        joins = [r.queue.join() for r in self._routes if r.task is not None]
        if not joins:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*joins), timeout_s)
        except TimeoutError:
            waiting = {r.config.name: r.queue.qsize() for r in self._routes}
            log.warning("alert delivery not finished after %.1f s: %s", timeout_s, waiting)

    async def close(self) -> None:
        for route in self._routes:
            if route.task is not None:
                route.task.cancel()
        for route in self._routes:
            if route.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await route.task
                route.task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _enqueue(self, notifications: list[Notification]) -> list[Alert]:
        queued: dict[str, Alert] = {}
        for n in notifications:
            if self._link is not None:
                url = self._link(n.show_id)
                n = dataclasses.replace(
                    n, alerts=tuple(a.model_copy(update={"url": url}) for a in n.alerts)
                )
            routes = [r for r in self._routes if n.route in r.config.serves]
            if not routes and n.route not in self._unrouted_warned:
                self._unrouted_warned.add(n.route)
                log.warning("no route serves %r: its alerts are not sent", n.route)
            for route in routes:
                if route.queue.qsize() >= self.config.max_queue:
                    old = route.queue.get_nowait()
                    route.queue.task_done()
                    self.dropped += 1
                    route.stats.dropped += 1
                    log.error("route %s: queue full, dropped notification %s of %d alert(s)",
                              route.config.name, old.group_key, len(old.alerts))
                route.queue.put_nowait(n)
                for a in n.alerts:
                    queued[f"{a.key}/{a.status}"] = a
        return list(queued.values())

    async def _work(self, route: _Route) -> None:
        notifier = route.notifier
        assert notifier is not None
        while True:
            if notifier.resend_s is None:
                n = await route.queue.get()
            else:
                try:
                    n = await asyncio.wait_for(route.queue.get(), notifier.resend_s)
                except TimeoutError:
                    await self._resend(notifier)
                    continue
            route.delivering = True
            try:
                await self._deliver(route, notifier, n)
            except Exception:  # a bug must not kill the route for the rest of the show
                log.exception("route %s: unexpected error delivering %s", notifier.name,
                              n.group_key)
            finally:
                route.delivering = False
                route.queue.task_done()

    async def _resend(self, notifier: Notifier) -> None:
        try:
            await notifier.resend()
        except DeliveryError as exc:
            # The next period tries again; the receiver keeps the alert until
            # its lease (a few periods) runs out.
            log.warning("route %s: re-posting firing alerts failed: %s", notifier.name,
                        exc.reason)

    async def _deliver(self, route: _Route, notifier: Notifier, n: Notification) -> None:
        policy = route.config.retry
        stats = route.stats
        for attempt in range(1, policy.max_attempts + 1):
            try:
                await notifier.send(n)
            except DeliveryError as exc:
                self._record(notifier, n, ok=False, attempt=attempt, error=exc.reason)
                stats.failed_attempts += 1
                if not exc.retryable:
                    log.error("route %s: %s rejected, not retrying: %s", notifier.name,
                              n.group_key, exc.reason)
                    stats.failed += 1
                    return
                if attempt == policy.max_attempts:
                    log.error("route %s: giving up on %s after %d attempts: %s",
                              notifier.name, n.group_key, attempt, exc.reason)
                    stats.failed += 1
                    return
                wait_s = policy.backoff_s(attempt)
                log.warning("route %s: attempt %d for %s failed (%s); retrying in %.1f s",
                            notifier.name, attempt, n.group_key, exc.reason, wait_s)
                await asyncio.sleep(wait_s)
            else:
                self._record(notifier, n, ok=True, attempt=attempt, error="")
                stats.sent += 1
                log.info("route %s: sent %s (%d alert(s), attempt %d)", notifier.name,
                         n.group_key, len(n.alerts), attempt)
                return

    def _record(
        self, notifier: Notifier, n: Notification, *, ok: bool, attempt: int, error: str
    ) -> None:
        ts = time.time()
        for alert in n.alerts:
            entry = AlertDelivery(ts=ts, show_id=alert.show_id, alert_key=alert.key,
                                  incident_id=alert.incident_id, status=alert.status,
                                  notifier=notifier.name, ok=ok, attempt=attempt, error=error)
            self.deliveries.append(entry)
            if self._on_delivery is not None:
                try:
                    self._on_delivery(entry)
                except Exception:
                    log.exception("on_delivery callback failed")
