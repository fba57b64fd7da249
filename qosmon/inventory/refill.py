"""How many units to ask the warehouse for: enough for the show plus the
safety stock its ABC class and tier call for.

``refill = forecast until the show ends + safety stock - on hand``, never
negative, where safety stock = weeks x 7 x everyday units per day and the
weeks come from the tier (everyday or before a planned show) and the SKU's
ABC class (A = hot items, the most weeks).
"""

from __future__ import annotations

import math

from qosmon.inventory.config import InventoryConfig, RefillTier


def safety_units(daily_units: float, abc_class: str, tier: RefillTier,
                 config: InventoryConfig) -> float:
    weeks = getattr(config.safety_weeks, tier).for_class(abc_class)
    return weeks * 7.0 * daily_units


def refill_units(
    *,
    on_hand: int,
    forecast_units: float,
    daily_units: float,
    abc_class: str,
    tier: RefillTier,
    config: InventoryConfig,
) -> int:
    """Units to request so the show's forecast and the safety stock are both
    covered, rounded up to whole units."""
    need = forecast_units + safety_units(daily_units, abc_class, tier, config) - on_hand
    # Round away float noise before the ceiling so 20.000000001 is 20.
    return max(0, math.ceil(round(need, 6)))
