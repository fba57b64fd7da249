"""The commerce series of one region (or of the whole show, region ""):
viewers online, orders, chat messages, orders per SKU; baseline-relative
detection of drops, and the history impact estimates read from.

Totals come from rows with an empty ``sku``; when a second has only per-SKU
rows, their orders are summed. A counter missing for a second while the series
is alive counts as 0 (the platform reports every interval); a series silent
for longer is unknown.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qosmon.detection.counts import CountDropResult
from qosmon.detection.levelshift import LevelShiftResult
from qosmon.detection.persistence import Persistence
from qosmon.detection.series import count_drop_detector, count_rise_detector, viewers_detector
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.probe_health import second_of
from qosmon.model import BusinessSample


@dataclass(frozen=True)
class BusinessStatus:
    region: str
    second: int
    viewers: LevelShiftResult | None
    orders: CountDropResult | None
    chat: CountDropResult | None
    anomalous: bool  # after persistence
    since: float | None
    leaves: CountDropResult | None = None  # viewers leaving per window (a rise)

    def what_moved(self) -> list[str]:
        out = []
        if self.leaves is not None and self.leaves.anomalous:
            out.append("viewers leaving")
        if self.viewers is not None and self.viewers.anomalous:
            out.append("viewers")
        if self.orders is not None and self.orders.anomalous:
            out.append("orders")
        if self.chat is not None and self.chat.anomalous:
            out.append("chat")
        return out


class RegionBusiness:
    def __init__(self, region: str, cfg: DiagnosisConfig) -> None:
        b = cfg.business
        self.region = region
        self.viewers: dict[int, int] = {}
        self.orders_total: dict[int, int] = {}
        self.chat: dict[int, int] = {}
        self.leaves: dict[int, int] = {}
        self.sku_orders: dict[str, dict[int, int]] = {}
        # The same detectors ``qosmon detect`` runs, built by the same functions.
        self._viewers_det = viewers_detector(b)
        self._orders_det = count_drop_detector(b)
        self._chat_det = count_drop_detector(b)
        self._leaves_det = count_rise_detector(b, short=True)
        self._persist = Persistence(b.min_duration_s, b.clear_s)
        self._seen_orders = False
        self._seen_chat = False
        self._history_s = b.history_s
        self._pruned_at = 0

    def prune(self, s: int) -> None:
        """Forget seconds older than the history kept (``history_s``), once
        a minute: the per-second dicts otherwise grow for as long as the
        show runs, and a late sample stamped far back cannot pin them."""
        if s - self._pruned_at < 60:
            return
        self._pruned_at = s
        cutoff = s - self._history_s
        series = [self.viewers, self.orders_total, self.chat, self.leaves,
                  *self.sku_orders.values()]
        for d in series:
            if d and min(d) < cutoff:
                for t in [t for t in d if t < cutoff]:
                    del d[t]
        for sku in [k for k, d in self.sku_orders.items() if not d]:
            del self.sku_orders[sku]

    def add(self, x: BusinessSample) -> None:
        s = second_of(x.ts)
        if x.sku:
            if x.orders is not None:
                per = self.sku_orders.setdefault(x.sku, {})
                per[s] = per.get(s, 0) + x.orders
            return
        if x.viewers_online is not None:
            self.viewers[s] = x.viewers_online
        if x.orders is not None:
            self.orders_total[s] = self.orders_total.get(s, 0) + x.orders
        if x.chat_messages is not None:
            self.chat[s] = self.chat.get(s, 0) + x.chat_messages
        if x.leaves is not None:
            self.leaves[s] = self.leaves.get(s, 0) + x.leaves

    def orders_at(self, s: int) -> int | None:
        if s in self.orders_total:
            return self.orders_total[s]
        per = [d[s] for d in self.sku_orders.values() if s in d]
        return sum(per) if per else None

    def _has_orders(self, s: int) -> bool:
        return s in self.orders_total or any(s in d for d in self.sku_orders.values())

    def evaluate(self, s: int) -> BusinessStatus:
        self.prune(s)
        viewers = None
        v = self.viewers.get(s)
        if v is not None:
            viewers = self._viewers_det.update(float(s), float(v))
        # Counters are judged only for seconds the region reported at all: a
        # second with no row is unknown (late or lost), not zero orders. Within
        # a reported second a missing counter is zero (sparse per-SKU rows).
        reported = s in self.viewers or self._has_orders(s) or s in self.chat
        orders = None
        if self._has_orders(s):
            self._seen_orders = True
        if reported and self._seen_orders:
            orders = self._orders_det.update(float(s), self.orders_at(s) or 0)
        chat = None
        if s in self.chat:
            self._seen_chat = True
        if reported and self._seen_chat:
            chat = self._chat_det.update(float(s), self.chat.get(s, 0))
        leaves = None
        if s in self.leaves:
            leaves = self._leaves_det.update(float(s), self.leaves[s])
        raw: bool | None = None
        parts = [r for r in (viewers, orders, chat, leaves) if r is not None]
        if parts:
            raw = any(r.anomalous for r in parts)
        active = self._persist.update(raw, s)
        return BusinessStatus(
            self.region, s, viewers, orders, chat, active, self._persist.since, leaves
        )

    # --- history for impact --------------------------------------------------
    def viewers_course(
        self, start: float, skip: Callable[[int], bool] = lambda s: False,
        span_s: int = 60, gap_s: int = 5,
    ) -> ViewerCourse | None:
        """The audience's course before ``start`` (level and trend), fitted to
        the ``span_s`` seconds ending ``gap_s`` before it, leaving out seconds
        ``skip`` names (an earlier incident and its aftermath are not the
        expected course)."""
        hi = second_of(start) - gap_s
        pts = [
            (t, self.viewers[t])
            for t in range(hi - 10 * span_s, hi)
            if t in self.viewers and not skip(t)
        ][-span_s:]
        if not pts:
            return None
        vals = [float(v) for _, v in pts]
        # A trend from a short stretch is mostly noise, and it is held for a minute.
        if len(pts) < 20:
            return ViewerCourse(second_of(start), float(statistics.median(vals)), 0.0)
        t = np.array([p[0] for p in pts], float) - hi
        slope, level = np.polyfit(t, np.array(vals), 1)
        return ViewerCourse(second_of(start), float(level + slope * gap_s), float(slope))

    def viewers_now(self, s: int, span_s: int = 5) -> float | None:
        vals = [self.viewers[t] for t in range(s - span_s + 1, s + 1) if t in self.viewers]
        return float(statistics.median(vals)) if vals else None

    def orders_lost(
        self, start: float, end: float, sku: str | None = None,
        skip: Callable[[int], bool] = lambda s: False, span_s: int = 120,
    ) -> float | None:
        """Expected orders (the usual rate before ``start``, seconds ``skip``
        names left out) minus orders seen until ``end``."""
        series = self.sku_orders.get(sku, {}) if sku else None
        s0, s1 = second_of(start), second_of(end)

        def at(t: int) -> int | None:
            if series is not None:
                return series.get(t, 0) if series else None
            return self.orders_at(t)

        before = [None if skip(t) else at(t) for t in range(s0 - 5 * span_s, s0)]
        # The last ``span_s`` usable seconds, looking back past earlier incidents.
        usable = [i for i, x in enumerate(before) if x is not None]
        if len(usable) < 15:
            return None
        before = before[usable[-min(span_s, len(usable))]:]
        rate = typical_rate(before)
        during = [at(t) for t in range(s0, s1 + 1)]
        seen = sum(x for x in during if x is not None)
        return max(0.0, rate * len(during) - seen)


@dataclass(frozen=True)
class ViewerCourse:
    """Viewers expected from ``start`` on: the level then and its trend, held
    for at most ``horizon_s`` (a show's swings are not straight lines)."""

    start: int
    level: float
    slope_per_s: float
    horizon_s: int = 60

    def at(self, s: int) -> float:
        return max(0.0, self.level + self.slope_per_s * min(max(0, s - self.start), self.horizon_s))


def typical_rate(counts: list[int | None], bucket_s: int = 10) -> float:
    """Orders per second of the usual course: the mean of 10 s buckets without
    the highest and lowest, so a flash of demand just before a sell-out (or a
    dead spell) does not set the expectation for the rest of the show."""
    rates = []
    for i in range(0, len(counts), bucket_s):
        known = [x for x in counts[i : i + bucket_s] if x is not None]
        if len(known) >= bucket_s // 2:
            rates.append(sum(known) / len(known))
    if len(rates) >= 5:
        rates = sorted(rates)[1:-1]
    if not rates:
        known = [x for x in counts if x is not None]
        return sum(known) / len(known) if known else 0.0
    return sum(rates) / len(rates)
