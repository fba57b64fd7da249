"""Forecast of a SKU's sales in one warehouse until the show ends.

Two estimates, blended (``docs/inventory.md`` has the derivation):

- velocity: ``v`` = orders in the last ``velocity_window_s`` / the window's
  span in minutes; forecast ``v x remaining_min``.
- traffic: ``viewers_now x conversion x remaining_min``, with conversion
  measured live as ``v / viewers_mean`` (orders per viewer-minute over the same
  window). This is the velocity scaled by how today's audience compares to the
  window's average, so it reacts at once when viewers pour in or leave.

``forecast = w x traffic + (1 - w) x velocity`` with ``w = traffic_weight``;
when one side is unknown the other stands alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from qosmon.inventory.config import InventoryConfig
from qosmon.model import Show


@dataclass(frozen=True)
class Demand:
    """What one show is expected to sell of one SKU from one warehouse."""

    velocity_per_min: float | None
    forecast_units: float | None

    def __add__(self, other: Demand) -> Demand:
        return Demand(_add(self.velocity_per_min, other.velocity_per_min),
                      _add(self.forecast_units, other.forecast_units))


def _add(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def remaining_minutes(show: Show, now: float, config: InventoryConfig) -> float:
    """Minutes of selling left in the show. Zero once it has ended; while it is
    live, never below ``min_horizon_min`` (shows overrun their plan)."""
    if show.end_ts is not None and now >= show.end_ts:
        return 0.0
    end = show.planned_end_ts
    if end is None:
        end = show.start_ts + config.assumed_show_min * 60.0
    if show.end_ts is not None:
        end = min(end, show.end_ts)
        return max(0.0, (end - now) / 60.0)
    return max((end - now) / 60.0, config.min_horizon_min)


def forecast_units(
    velocity_per_min: float | None,
    viewers_now: float | None,
    viewers_mean: float | None,
    remaining_min: float,
    config: InventoryConfig,
) -> float | None:
    """Blend of the traffic- and velocity-based forecasts; None when neither
    can be computed (no order data and no conversion prior)."""
    by_velocity = None if velocity_per_min is None else velocity_per_min * remaining_min
    by_traffic: float | None = None
    if viewers_now is not None:
        if velocity_per_min is not None:
            if viewers_mean:
                conversion = velocity_per_min / viewers_mean
                by_traffic = viewers_now * conversion * remaining_min
        elif config.conversion_prior_per_viewer_min is not None:
            by_traffic = viewers_now * config.conversion_prior_per_viewer_min * remaining_min
    if by_traffic is None:
        return by_velocity
    if by_velocity is None:
        return by_traffic
    w = config.traffic_weight
    return w * by_traffic + (1.0 - w) * by_velocity
