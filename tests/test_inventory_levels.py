"""The pure level rules: bands and their edges, the 2x-3x gap, the time-based
form, stock 0, and the forecast and refill arithmetic."""

from __future__ import annotations

import pytest

from qosmon.inventory.config import InventoryConfig
from qosmon.inventory.forecast import Demand, forecast_units, remaining_minutes
from qosmon.inventory.levels import (
    SOLD_OUT_ACTION,
    SOLD_OUT_IDLE_ACTION,
    action_for,
    band_level,
    minutes_left,
    stock_level,
    time_level,
)
from qosmon.inventory.refill import refill_units
from qosmon.model import Show, StockLevel

G, Y, OR, R = StockLevel.GREEN, StockLevel.YELLOW, StockLevel.ORANGE, StockLevel.RED
DEFAULT = InventoryConfig()


@pytest.mark.parametrize(
    ("on_hand", "forecast", "expected"),
    [
        (1, 100, R),
        (50, 100, R),  # exactly 0.5x: red (<=)
        (51, 100, OR),
        (100, 100, OR),  # exactly 1x: orange
        (101, 100, Y),
        (200, 100, Y),  # exactly 2x: yellow
        (201, 100, Y),  # the gap, default: yellow (watch)
        (300, 100, Y),  # exactly 3x is not "> 3x"
        (301, 100, G),
        (5, 10.5, R),  # 0.5 x 10.5 = 5.25
        (6, 10.5, OR),
        (1, 0, G),  # no demand: any stock is enough
    ],
)
def test_bands_and_edges(on_hand: int, forecast: float, expected: StockLevel) -> None:
    assert band_level(on_hand, forecast, DEFAULT) == expected


@pytest.mark.parametrize(
    ("gap_level", "previous", "on_hand", "expected"),
    [
        ("yellow", G, 250, Y),
        ("yellow", None, 250, Y),
        ("green", None, 250, G),
        ("green", OR, 250, G),
        ("hold", G, 250, G),  # was green: stays green inside the gap
        ("hold", Y, 250, Y),  # was yellow: needs > 3x to turn green
        ("hold", OR, 250, Y),
        ("hold", None, 250, Y),
        ("hold", Y, 301, G),
        ("hold", G, 200, Y),  # <= 2x is yellow whatever came before
        ("green", None, 200, Y),
    ],
)
def test_gap_between_2x_and_3x(
    gap_level: str, previous: StockLevel | None, on_hand: int, expected: StockLevel
) -> None:
    cfg = InventoryConfig(gap_level=gap_level)
    assert band_level(on_hand, 100, cfg, previous) == expected


def test_bands_are_configurable() -> None:
    cfg = InventoryConfig(green_above_x=4, yellow_at_x=3, orange_at_x=1.5, red_at_x=1)
    assert [band_level(n, 100, cfg) for n in (100, 101, 150, 151, 300, 400, 401)] == [
        R, OR, OR, Y, Y, Y, G,
    ]


@pytest.mark.parametrize(
    ("left", "expected"),
    [(None, G), (0.0, R), (29.9, R), (30.0, Y), (59.9, Y), (60.0, G), (600.0, G)],
)
def test_time_based_form(left: float | None, expected: StockLevel) -> None:
    assert time_level(left, DEFAULT) == expected


@pytest.mark.parametrize(
    ("left", "remaining", "expected"),
    [
        (27.0, 1.0, G),  # lasts 27 min, show ends in 1: outlasts the show
        (0.5, 1.0, R),  # sells out before the show ends
        (45.0, 50.0, Y),  # 50 min left: yellow threshold is min(60, 50)
        (55.0, 50.0, G),
        (20.0, 120.0, R),  # long show: the seed's thresholds as they are
    ],
)
def test_time_based_form_is_capped_at_the_show_left(
    left: float, remaining: float, expected: StockLevel
) -> None:
    assert time_level(left, DEFAULT, remaining) == expected


def test_time_thresholds_can_be_switched_off() -> None:
    cfg = InventoryConfig(red_minutes_left=None)
    assert time_level(10.0, cfg) == Y
    cfg = InventoryConfig(red_minutes_left=None, yellow_minutes_left=None)
    assert time_level(1.0, cfg) == G
    cfg = InventoryConfig(red_minutes_left=0, yellow_minutes_left=0)  # how TOML says "off"
    assert time_level(1.0, cfg) == G


@pytest.mark.parametrize(
    ("on_hand", "forecast", "velocity", "on_screen", "expected"),
    [
        (1000, 10, 20.0, False, Y),  # band green, lasts 50 min: yellow
        (500, 10, 20.0, False, R),  # band green, lasts 25 min: red
        (150, 100, 1.0, False, Y),  # band yellow, lasts 150 min
        (60, 100, 0.5, False, OR),  # band orange, lasts 120 min
        (60, 100, 3.0, False, R),  # band orange, lasts 20 min: red
        (0, 0, None, False, Y),  # sold out, nobody wants it now
        (0, 0, None, True, R),  # sold out on screen
        (0, 5, None, False, R),  # sold out with forecast demand
        (0, 0, 0.5, False, R),  # sold out while orders still come in
    ],
)
def test_level_is_the_worse_of_band_and_time(
    on_hand: int, forecast: float, velocity: float | None, on_screen: bool,
    expected: StockLevel,
) -> None:
    assert stock_level(on_hand, forecast, velocity, DEFAULT, on_screen=on_screen) == expected


def test_actions_follow_the_seed_table() -> None:
    assert action_for(G, 10) == "keep selling"
    assert "watch" in action_for(Y, 10)
    assert "limit" in action_for(OR, 10) and "refill" in action_for(OR, 10)
    assert "delist" in action_for(R, 10) and "emergency refill" in action_for(R, 10)
    assert action_for(R, 0) == SOLD_OUT_ACTION
    assert action_for(Y, 0) == SOLD_OUT_IDLE_ACTION


def test_minutes_left() -> None:
    assert minutes_left(100, 4.0) == 25.0
    assert minutes_left(100, 0.0) is None
    assert minutes_left(100, None) is None


# --- forecast ---------------------------------------------------------------

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("show", "now", "expected"),
    [
        (Show(show_id="s", start_ts=T0, planned_end_ts=T0 + 3600), T0 + 600, 50.0),
        (Show(show_id="s", start_ts=T0), T0 + 600, 110.0),  # assumed 120 min
        (Show(show_id="s", start_ts=T0, planned_end_ts=T0 + 3600), T0 + 3590, 5.0),  # overrun
        (Show(show_id="s", start_ts=T0, planned_end_ts=T0 + 3600, end_ts=T0 + 3000),
         T0 + 3000, 0.0),
        (Show(show_id="s", start_ts=T0, planned_end_ts=T0 + 3600, end_ts=T0 + 3000),
         T0 + 2400, 10.0),
    ],
)
def test_remaining_minutes(show: Show, now: float, expected: float) -> None:
    assert remaining_minutes(show, now, DEFAULT) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("velocity", "viewers_now", "viewers_mean", "weight", "prior", "expected"),
    [
        (None, None, None, 0.5, None, None),  # nothing known: no forecast
        (2.0, None, None, 0.5, None, 100.0),  # velocity alone
        (2.0, 1000, 1000, 0.5, None, 100.0),  # steady audience: both agree
        (2.0, 2000, 1000, 0.5, None, 150.0),  # audience doubled: traffic says 200
        (2.0, 2000, 1000, 1.0, None, 200.0),
        (2.0, 2000, 1000, 0.0, None, 100.0),
        (2.0, 500, 0, 0.5, None, 100.0),  # no mean audience: velocity alone
        (0.0, 1000, 1000, 0.5, None, 0.0),
        (None, 1000, None, 0.5, 0.001, 50.0),  # before orders: prior conversion
    ],
)
def test_forecast_blend(
    velocity: float | None, viewers_now: float | None, viewers_mean: float | None,
    weight: float, prior: float | None, expected: float | None,
) -> None:
    cfg = InventoryConfig(traffic_weight=weight, conversion_prior_per_viewer_min=prior)
    got = forecast_units(velocity, viewers_now, viewers_mean, 50.0, cfg)
    assert got == (None if expected is None else pytest.approx(expected))


def test_demand_adds_up_with_unknowns() -> None:
    assert Demand(1.0, 50.0) + Demand(None, None) == Demand(1.0, 50.0)
    assert Demand(1.0, 50.0) + Demand(0.5, 20.0) == Demand(1.5, 70.0)


# --- refill -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("tier", "abc", "expected"),
    [
        # forecast 100 + weeks x 7 x 10/day - on hand 20
        ("everyday", "A", 290),  # 3 weeks
        ("everyday", "B", 255),  # 2.5 weeks
        ("everyday", "C", 220),  # 2 weeks
        ("planned_show", "A", 430),  # 5 weeks
        ("planned_show", "B", 360),  # 4 weeks
        ("planned_show", "C", 220),  # long tail not raised
    ],
)
def test_refill_per_abc_class_and_tier(tier: str, abc: str, expected: int) -> None:
    got = refill_units(on_hand=20, forecast_units=100, daily_units=10, abc_class=abc,
                       tier=tier, config=DEFAULT)  # type: ignore[arg-type]
    assert got == expected


def test_refill_never_negative_and_rounds_up() -> None:
    kw = {"daily_units": 10.0, "abc_class": "A", "tier": "everyday", "config": DEFAULT}
    assert refill_units(on_hand=10_000, forecast_units=100, **kw) == 0  # type: ignore[arg-type]
    assert refill_units(on_hand=0, forecast_units=0.2, daily_units=0, abc_class="A",
                        tier="everyday", config=DEFAULT) == 1
