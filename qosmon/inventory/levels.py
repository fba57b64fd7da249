"""Stock alert levels: stock against the forecast (green above 3x, yellow,
orange, red at 0.5x), against time at the current velocity, and the action each level suggests.

Pure functions of numbers and config; the tracker feeds them.
"""

from __future__ import annotations

from qosmon.inventory.config import InventoryConfig
from qosmon.model import StockLevel, worse_level

# The level's suggested action (what sellers do at each level). Text stays constant per
# level so a change of action means a change a person should see; the refill
# quantity lives in its own field.
ACTIONS = {
    StockLevel.GREEN: "keep selling",
    StockLevel.YELLOW: "watch the trend, prepare a fallback product",
    StockLevel.ORANGE: "limit quantity per order or reprice; request a refill (respond within 1 h)",
    StockLevel.RED: (
        "delist now or switch to pre-sale; start an emergency refill (respond within 30 min)"
    ),
}
SOLD_OUT_ACTION = "sold out: delist now or switch to pre-sale; start an emergency refill"
SOLD_OUT_IDLE_ACTION = "sold out here, not selling now: refill before it goes on screen"
STALE_ACTION = "warehouse data too old: check the WMS sync before acting on this figure"
SYNC_FAULT_ACTION = (
    "stock dropped to 0 without matching orders: check the WMS sync; do not delist on this figure"
)
NO_STOCK_ACTION = "no stock figure from this warehouse yet"
NO_DEMAND_ACTION = "no recent sales data: cannot judge stock against demand"


def minutes_left(on_hand: int, velocity_per_min: float | None) -> float | None:
    """How long the stock lasts at the current velocity; None if nothing sells."""
    if velocity_per_min is None or velocity_per_min <= 0:
        return None
    return on_hand / velocity_per_min


def band_level(
    on_hand: int,
    forecast_units: float,
    config: InventoryConfig,
    previous: StockLevel | None = None,
) -> StockLevel:
    """Seed 000's bands: red <= 0.5x, orange <= 1x, yellow <= 2x, green > 3x
    the forecast; the gap between yellow and green per ``config.gap_level``.

    ``previous`` is the last stock level of the same SKU x warehouse, used by
    ``gap_level = "hold"``.
    """
    # Multiplying rather than dividing keeps forecast 0 well defined: any
    # stock beats no demand.
    if on_hand <= config.red_at_x * forecast_units:
        return StockLevel.RED
    if on_hand <= config.orange_at_x * forecast_units:
        return StockLevel.ORANGE
    if on_hand <= config.yellow_at_x * forecast_units:
        return StockLevel.YELLOW
    if on_hand > config.green_above_x * forecast_units:
        return StockLevel.GREEN
    if config.gap_level == "green":
        return StockLevel.GREEN
    if config.gap_level == "hold" and previous == StockLevel.GREEN:
        return StockLevel.GREEN
    return StockLevel.YELLOW


def time_level(
    left_min: float | None, config: InventoryConfig, remaining_min: float | None = None
) -> StockLevel:
    """The time-based form: lasts < red_minutes_left = red, < yellow_minutes_left
    = yellow (at least).

    Both thresholds are capped at the show's remaining minutes: stock that
    outlasts the show is not urgent because the show's pace would empty it an
    hour later (in the last minutes of a show every SKU "lasts < 30 min")."""
    if left_min is None:
        return StockLevel.GREEN

    def cap(threshold: float | None) -> float | None:
        if not threshold or remaining_min is None:
            return threshold
        return min(threshold, remaining_min)

    red, yellow = cap(config.red_minutes_left), cap(config.yellow_minutes_left)
    if red and left_min < red:
        return StockLevel.RED
    if yellow and left_min < yellow:
        return StockLevel.YELLOW
    return StockLevel.GREEN


def stock_level(
    on_hand: int,
    forecast_units: float,
    velocity_per_min: float | None,
    config: InventoryConfig,
    *,
    on_screen: bool = False,
    previous: StockLevel | None = None,
    remaining_min: float | None = None,
) -> StockLevel:
    """The alert level of a trusted stock figure: the worse of the band and the
    time-based form. Stock 0 is red when anyone wants it (forecast, velocity or
    the SKU on screen), yellow otherwise."""
    if on_hand == 0:
        demand = forecast_units > 0 or (velocity_per_min or 0) > 0 or on_screen
        return StockLevel.RED if demand else StockLevel.YELLOW
    by_band = band_level(on_hand, forecast_units, config, previous)
    by_time = time_level(minutes_left(on_hand, velocity_per_min), config, remaining_min)
    return worse_level(by_band, by_time)


def action_for(level: StockLevel, on_hand: int | None) -> str:
    """The suggested action for a stock level (not for data states)."""
    if on_hand == 0:
        return SOLD_OUT_ACTION if level == StockLevel.RED else SOLD_OUT_IDLE_ACTION
    return ACTIONS[level]
