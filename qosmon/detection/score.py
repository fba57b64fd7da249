"""An online anomaly score in 0..1 for any single series, with no look-ahead.

Each value is compared with a one-step forecast from a robust Holt model
(level + damped trend) whose updates use Huber-clipped residuals, so an
outlier barely moves the forecast and a slow trend is followed. The residual
is scaled by an exponentially weighted mean absolute deviation; the score maps
that z to 0..1 (0 up to ``z_floor``, 0.63 at ``z_floor + z_scale``, towards 1
beyond). A level shift scores high at first and fades as the model adopts the
new level, at the pace the clipping allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    expected: float | None
    z: float
    score: float


class OnlineScorer:
    def __init__(
        self,
        *,
        alpha: float = 0.1,
        beta: float = 0.01,
        damping: float = 0.98,
        scale_alpha: float = 0.05,
        clip_z: float = 3.0,
        z_floor: float = 3.0,
        z_scale: float = 3.0,
        warmup: int = 10,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.damping = damping
        self.scale_alpha = scale_alpha
        self.clip_z = clip_z
        self.z_floor = z_floor
        self.z_scale = z_scale
        self.warmup = warmup
        self._n = 0
        self._level = 0.0
        self._trend = 0.0
        self._mad = 0.0
        self._warm: list[float] = []

    def update(self, value: float) -> Score:
        self._n += 1
        if self._n <= self.warmup:
            # Start from the median and mean absolute deviation of the first
            # values, so one early outlier does not set the scale.
            self._warm.append(value)
            ws = sorted(self._warm)
            self._level = ws[len(ws) // 2]
            self._mad = sum(abs(v - self._level) for v in ws) / len(ws)
            return Score(None, 0.0, 0.0)
        forecast = self._level + self.damping * self._trend
        resid = value - forecast
        # Floor the scale so a perfectly flat series does not score every
        # tiny change as infinite.
        scale = max(1.25 * self._mad, 1e-9, 1e-6 * abs(forecast))
        z = abs(resid) / scale
        clipped = max(-self.clip_z * scale, min(self.clip_z * scale, resid))
        new_level = forecast + self.alpha * clipped
        self._trend = (1 - self.beta) * self.damping * self._trend + self.beta * (
            new_level - self._level
        )
        self._level = new_level
        self._mad += self.scale_alpha * (abs(clipped) - self._mad)
        score = 0.0 if z <= self.z_floor else 1.0 - math.exp(-(z - self.z_floor) / self.z_scale)
        return Score(forecast, z, score)
