"""Drops in a count series (orders, chat messages per second).

Counts per second are small and Poisson-like, so a drop is tested on the sum
over a window against the rate of a longer reference window: anomalous when
the observed sum is improbably low for a Poisson variable with the expected
mean and is also far below it in relative terms. While anomalous the reference
rate is frozen (the expected course used for orders lost).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


def poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu)."""
    if k < 0:
        return 0.0
    if mu <= 0:
        return 1.0
    if mu > 500:
        # Normal approximation with continuity correction; exact sums underflow.
        z = (k + 0.5 - mu) / math.sqrt(mu)
        return 0.5 * math.erfc(-z / math.sqrt(2))
    term = math.exp(-mu)
    total = term
    for i in range(1, k + 1):
        term *= mu / i
        total += term
        if total >= 1.0:
            return 1.0
    return total


@dataclass(frozen=True)
class CountDropResult:
    ts: float
    observed: int  # sum over the window
    expected: float | None  # expected sum over the window
    rate_per_s: float | None  # expected rate
    p_value: float | None
    anomalous: bool


class _CountShift:
    """A window's sum against a reference rate, with the reference frozen
    while the shift lasts (hysteresis) and given up as the new normal after
    ``rebaseline_s``. Subclasses say which way, how the reference is taken,
    and when a shift starts and ends."""

    def __init__(self, *, window_s: int, reference_s: int, p_value: float,
                 min_expected: float, rebaseline_s: int) -> None:
        self.window_s = window_s
        self.reference_s = reference_s
        self.p_value = p_value
        self.min_expected = min_expected
        self.rebaseline_s = rebaseline_s
        self._points: deque[tuple[float, int]] = deque()
        self._frozen_rate: float | None = None
        self._frozen_since: float | None = None
        self._first_ts: float | None = None

    @property
    def rate_per_s(self) -> float | None:
        """Expected rate: frozen while a shift lasts, else the reference rate."""
        if self._frozen_rate is not None:
            return self._frozen_rate
        return self._reference_rate(self._points[-1][0]) if self._points else None

    def _reference_rate(self, now: float) -> float | None:
        raise NotImplementedError

    def _p(self, observed: int, expected: float) -> float:
        raise NotImplementedError

    def _enters(self, observed: int, expected: float, p: float) -> bool:
        raise NotImplementedError

    def _back(self, observed: int, expected: float) -> bool:
        raise NotImplementedError

    def update(self, ts: float, count: int) -> CountDropResult:
        if self._first_ts is None:
            self._first_ts = ts
        self._points.append((ts, count))
        while self._points and self._points[0][0] <= ts - self.window_s - self.reference_s:
            self._points.popleft()
        observed = sum(c for t, c in self._points if t > ts - self.window_s)
        rate = self._frozen_rate if self._frozen_rate is not None else self._reference_rate(ts)
        if rate is None:
            return CountDropResult(ts, observed, None, None, None, False)
        expected = rate * self.window_s
        p = self._p(observed, expected)
        if self._frozen_rate is not None:
            lasted = self._frozen_since is not None and ts - self._frozen_since >= self.rebaseline_s
            if self._back(observed, expected) or lasted:
                self._frozen_rate = None
                self._frozen_since = None
                if lasted:
                    self._first_ts = ts
                return CountDropResult(ts, observed, expected, rate, p, False)
            return CountDropResult(ts, observed, expected, rate, p, True)
        anomalous = self._enters(observed, expected, p)
        if anomalous:
            self._frozen_rate = rate
            self._frozen_since = ts
        return CountDropResult(ts, observed, expected, rate, p, anomalous)


class CountDrop(_CountShift):
    def __init__(
        self,
        *,
        window_s: int = 15,
        reference_s: int = 120,
        p_value: float = 1e-3,
        drop_rel: float = 0.5,
        min_expected: float = 8.0,
        rebaseline_s: int = 180,
    ) -> None:
        super().__init__(window_s=window_s, reference_s=reference_s, p_value=p_value,
                         min_expected=min_expected, rebaseline_s=rebaseline_s)
        self.drop_rel = drop_rel

    def _reference_rate(self, now: float) -> float | None:
        end = now - self.window_s
        start = end - self.reference_s
        if self._first_ts is None or self._first_ts > start + self.reference_s / 2:
            return None  # not enough history
        span = min(self.reference_s, end - self._first_ts)
        if span <= 0:
            return None
        # Only since the history began: after a lasting shift became the new
        # normal, the counts from before it are not this reference.
        lo = max(start, self._first_ts - 1)
        total = sum(c for t, c in self._points if lo < t <= end)
        return total / span

    def _p(self, observed: int, expected: float) -> float:
        return poisson_cdf(observed, expected)

    def _enters(self, observed: int, expected: float, p: float) -> bool:
        low = expected >= self.min_expected and observed <= (1 - self.drop_rel) * expected
        return low and p < self.p_value

    def _back(self, observed: int, expected: float) -> bool:
        # The drop ends when the window is back above half the entry bar.
        return observed > (1 - self.drop_rel / 2) * expected


def poisson_sf(k: int, mu: float) -> float:
    """P(X >= k) for X ~ Poisson(mu)."""
    return 1.0 - poisson_cdf(k - 1, mu) if k > 0 else 1.0


class CountRise(_CountShift):
    """Surges in a count series (viewers leaving per second): the window's sum
    is improbably high for a Poisson variable at the reference rate and at
    least ``ratio`` times it. A leave rate that jumps is seen within seconds,
    long before the audience level it drains has moved past a level-shift
    threshold. While a surge lasts the reference rate is frozen."""

    def __init__(
        self,
        *,
        window_s: int = 5,
        reference_s: int = 60,
        p_value: float = 1e-6,
        ratio: float = 2.0,
        min_expected: float = 5.0,
        min_history_s: int = 20,
        rebaseline_s: int = 180,
    ) -> None:
        super().__init__(window_s=window_s, reference_s=reference_s, p_value=p_value,
                         min_expected=min_expected, rebaseline_s=rebaseline_s)
        self.ratio = ratio
        self.min_history_s = min_history_s

    def _reference_rate(self, now: float) -> float | None:
        end = now - self.window_s
        if self._first_ts is None or end - self._first_ts < self.min_history_s:
            return None
        start = max(end - self.reference_s, self._first_ts - 1)
        pts = [c for t, c in self._points if start < t <= end]
        return sum(pts) / len(pts) if pts else None

    def _p(self, observed: int, expected: float) -> float:
        return poisson_sf(observed, expected)

    def _enters(self, observed: int, expected: float, p: float) -> bool:
        return (
            expected >= self.min_expected
            and observed >= self.ratio * expected
            and p < self.p_value
        )

    def _back(self, observed: int, expected: float) -> bool:
        return observed < (1 + self.ratio) / 2 * expected
