"""Sudden level shifts in a level series (viewers online), robust to noise and
to the slow trends and swings of a show.

The reference is a straight line fitted to a past window (``reference_s`` long,
ending ``gap_s`` before the current window) and extrapolated to now, so a
steady ramp of the audience is expected, not anomalous. The current level is
the median of the last ``current_s`` seconds, so a one-second glitch is
ignored. A shift is anomalous when it exceeds both a relative change and a
multiple of the reference's own noise. While anomalous, the reference is
frozen at its pre-shift value (the "expected course"); a new level that lasts
``rebaseline_s`` is accepted as the new normal.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LevelShiftResult:
    ts: float
    observed: float  # median of the current window
    expected: float | None  # None while there is too little history
    rel_change: float | None  # (observed - expected) / expected
    anomalous: bool  # this evaluation alone (apply Persistence on top)


class LevelShift:
    def __init__(
        self,
        *,
        rel: float = 0.15,
        k_sigma: float = 6.0,
        current_s: int = 5,
        gap_s: int = 5,
        reference_s: int = 40,
        rebaseline_s: int = 180,
        direction: str = "down",
    ) -> None:
        if direction not in ("down", "up", "both"):
            raise ValueError("direction must be down, up or both")
        self.rel = rel
        self.k_sigma = k_sigma
        self.current_s = current_s
        self.gap_s = gap_s
        self.reference_s = reference_s
        self.rebaseline_s = rebaseline_s
        self.direction = direction
        self._points: deque[tuple[float, float]] = deque()
        self._frozen: float | None = None
        self._frozen_since: float | None = None
        self._min_ref_points = max(5, reference_s // 2)

    @property
    def frozen_expected(self) -> float | None:
        """The pre-shift level while a shift lasts, else None."""
        return self._frozen

    def _reference(self, now: float) -> tuple[float, float] | None:
        end = now - self.current_s - self.gap_s
        start = end - self.reference_s
        pts = [(t - end, v) for t, v in self._points if start < t <= end]
        n = len(pts)
        if n < self._min_ref_points:
            return None
        # Least-squares line, in closed form: this runs on every tick.
        mt = sum(p[0] for p in pts) / n
        mv = sum(p[1] for p in pts) / n
        stt = sum((p[0] - mt) ** 2 for p in pts)
        slope = sum((p[0] - mt) * (p[1] - mv) for p in pts) / stt if stt > 0 else 0.0
        intercept = mv - slope * mt
        resid = [v - (slope * t + intercept) for t, v in pts]
        med = statistics.median(resid)
        sigma = 1.4826 * statistics.median(abs(r - med) for r in resid)
        # Extrapolate to the middle of the current window.
        at = (now - self.current_s / 2) - end
        return slope * at + intercept, sigma

    def update(self, ts: float, value: float) -> LevelShiftResult:
        self._points.append((ts, value))
        horizon = self.current_s + self.gap_s + self.reference_s + 1
        while self._points and self._points[0][0] <= ts - horizon:
            self._points.popleft()
        cur_vals = [v for t, v in self._points if t > ts - self.current_s]
        observed = float(statistics.median(cur_vals))
        if self._frozen is not None:
            expected = self._frozen
            change = (observed - expected) / expected if expected else 0.0
            # Leave the shift at half the entry threshold (hysteresis), or
            # accept a level that has lasted as the new normal.
            back = self._passes(change, self.rel / 2, 0.0) is False
            lasted = self._frozen_since is not None and ts - self._frozen_since >= self.rebaseline_s
            if back or lasted:
                if lasted and self._frozen_since is not None:
                    # The new level is the reference from now on: keep what
                    # was seen since the shift began (at most one current
                    # window before it was confirmed), so the next change is
                    # judged at once instead of after a blind relearning.
                    began = self._frozen_since - self.current_s
                    self._points = deque(p for p in self._points if p[0] > began)
                self._frozen = None
                self._frozen_since = None
                return LevelShiftResult(ts, observed, expected, change, False)
            return LevelShiftResult(ts, observed, expected, change, True)
        ref = self._reference(ts)
        if ref is None:
            return LevelShiftResult(ts, observed, None, None, False)
        expected, sigma = ref
        if expected <= 0:
            return LevelShiftResult(ts, observed, expected, None, False)
        change = (observed - expected) / expected
        anomalous = self._passes(change, self.rel, self.k_sigma * sigma / expected)
        if anomalous:
            self._frozen = expected
            self._frozen_since = ts
        return LevelShiftResult(ts, observed, expected, change, bool(anomalous))

    def _passes(self, change: float, rel: float, noise_rel: float) -> bool:
        bar = max(rel, noise_rel)
        if self.direction == "down":
            return change <= -bar
        if self.direction == "up":
            return change >= bar
        return abs(change) >= bar
