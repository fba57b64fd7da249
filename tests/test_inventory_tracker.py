"""The tracker fed as the pipeline feeds it: stock records, business samples
and on-screen events, judged at ``step(now)``."""

from __future__ import annotations

import pytest

from qosmon.inventory import InventoryConfig, InventoryTracker, paging_route
from qosmon.inventory.forecast import Demand
from qosmon.model import (
    BusinessSample,
    OnScreen,
    Show,
    Sku,
    StockLevel,
    StockRecord,
    StockState,
)

T0 = 1_700_000_000.0
NOW = T0 + 600  # 50 minutes before the planned end
SHOW = Show(
    show_id="show-1",
    start_ts=T0,
    planned_end_ts=T0 + 3600,
    regions=["US", "DE"],
    skus=[Sku(sku="A1", abc_class="A"), Sku(sku="B1", abc_class="B"),
          Sku(sku="C1", abc_class="C")],
    region_warehouses={"US": ["US-W", "US-E"], "DE": ["DE"]},
)


def stock(wh: str, sku: str, on_hand: int, source_ts: float = NOW - 1, *,
          lag_s: float = 0.5, full: bool = False) -> StockRecord:
    return StockRecord(ts=source_ts + lag_s, source_ts=source_ts, warehouse=wh, sku=sku,
                       on_hand=on_hand, full_snapshot=full)


def orders(region: str, sku: str, n: int, ts: float) -> BusinessSample:
    return BusinessSample(ts=ts, show_id="show-1", region=region, sku=sku, orders=n)


def viewers(region: str, n: int, ts: float) -> BusinessSample:
    return BusinessSample(ts=ts, show_id="show-1", region=region, viewers_online=n)


def selling(tracker: InventoryTracker, region: str, sku: str, per_min: float,
            now: float = NOW) -> None:
    """Orders at ``per_min`` over the whole 5-minute window before ``now``
    (and an empty order sample at the show start so the window is full)."""
    tracker.add_business([orders(region, "B1", 0, T0 + 1)])
    tracker.add_business(
        orders(region, sku, int(per_min), now - 300 + 60 * (i + 1)) for i in range(5)
    )


def state(tracker: InventoryTracker, sku: str, wh: str) -> StockState:
    [st] = [s for s in tracker.states() if s.sku == sku and s.warehouse == wh]
    return st


def tracker_with(config: InventoryConfig | None = None) -> InventoryTracker:
    return InventoryTracker(SHOW, config or InventoryConfig(traffic_weight=0.0))


# --- levels through the tracker ---------------------------------------------

@pytest.mark.parametrize(
    ("on_hand", "level"),
    [
        # 2/min for 50 min left: forecast 100 units
        (0, StockLevel.RED),
        (50, StockLevel.RED),
        (51, StockLevel.ORANGE),
        (100, StockLevel.ORANGE),
        (101, StockLevel.YELLOW),
        (200, StockLevel.YELLOW),
        (300, StockLevel.YELLOW),  # the 2x-3x gap
        (301, StockLevel.GREEN),
    ],
)
def test_level_from_live_orders(on_hand: int, level: StockLevel) -> None:
    # Time-based form off: at 2/min, anything under 60 units is red by time.
    t = tracker_with(InventoryConfig(traffic_weight=0.0, yellow_minutes_left=None,
                                     red_minutes_left=None))
    t.add_stock([stock("US-W", "A1", on_hand)])
    selling(t, "US", "A1", 2)
    t.step(NOW)
    st = state(t, "A1", "US-W")
    assert st.velocity_per_min == pytest.approx(2.0)
    assert st.forecast_units == pytest.approx(100.0)
    assert (st.level, st.on_hand) == (level, on_hand)
    if on_hand == 0:
        assert st.action.startswith("sold out")


def test_time_based_form_through_the_tracker() -> None:
    # 20/min: forecast 1000; 3500 in stock is green by the bands but lasts
    # 175 min; 1100 lasts 55 min, which would be yellow, but the show ends in
    # 50: the time-based form is capped at the show's remaining time.
    t = tracker_with(InventoryConfig(traffic_weight=0.0, green_above_x=1.0, yellow_at_x=1.0,
                                     orange_at_x=0.6, red_at_x=0.5))
    t.add_stock([stock("US-W", "A1", 1100), stock("US-W", "B1", 3500),
                 stock("US-W", "C1", 550)])
    selling(t, "US", "A1", 20)
    t.add_business(orders("US", "B1", 20, NOW - 300 + 60 * (i + 1)) for i in range(5))
    t.add_business(orders("US", "C1", 20, NOW - 300 + 60 * (i + 1)) for i in range(5))
    t.step(NOW)
    assert state(t, "B1", "US-W").level == StockLevel.GREEN
    assert state(t, "A1", "US-W").level == StockLevel.GREEN
    assert state(t, "A1", "US-W").minutes_left == pytest.approx(55.0)
    assert state(t, "C1", "US-W").level == StockLevel.RED  # 27.5 min left


def test_forecast_follows_orders_and_viewers_as_they_arrive() -> None:
    t = InventoryTracker(SHOW, InventoryConfig(traffic_weight=0.5))
    t.add_stock([stock("US-W", "A1", 150)])
    t.add_business([viewers("US", 1000, NOW - 250), viewers("US", 1000, NOW - 150)])
    selling(t, "US", "A1", 2)
    t.add_business([viewers("US", 1000, NOW - 5)])
    t.step(NOW)
    first = state(t, "A1", "US-W")
    assert first.forecast_units == pytest.approx(100.0)  # steady audience
    assert first.level == StockLevel.YELLOW

    # The audience quadruples: mean over the window (1000,1000,1000,4000)
    # is 1750, so the traffic side says 2 x 4000/1750 x 49.75 min.
    t.add_business([viewers("US", 4000, NOW + 10)])
    t.step(NOW + 15)
    second = state(t, "A1", "US-W")
    remaining = (3600 - 615) / 60
    traffic = 2.0 * 4000 / 1750 * remaining
    assert second.forecast_units == pytest.approx(0.5 * traffic + 0.5 * 2.0 * remaining,
                                                  abs=1e-3)
    assert second.level == StockLevel.ORANGE  # 150 <= 1x of ~163

    # More orders arrive: the velocity itself rises.
    t.add_business([orders("US", "A1", 10, NOW + 20)])
    t.step(NOW + 25)
    third = state(t, "A1", "US-W")
    assert third.velocity_per_min == pytest.approx(2.0 + 10 / 5, abs=0.01)
    assert third.forecast_units is not None and third.forecast_units > 2 * 100


def test_velocity_early_in_the_show_is_not_a_rush() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 40, T0 + 10)])
    t.add_business([orders("US", "A1", 1, T0 + 5)])
    t.step(T0 + 10)
    # One order in the first 5 s is 1/min (divided by at least 60 s), not 12/min.
    assert state(t, "A1", "US-W").velocity_per_min == pytest.approx(1.0)


def test_no_sales_data_is_unknown_not_green() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 10), stock("US-W", "B1", 0)])
    t.add_on_screen([OnScreen(ts=NOW - 10, show_id="show-1", sku="B1", on=True)])
    t.step(NOW)
    assert state(t, "A1", "US-W").level == StockLevel.UNKNOWN
    # Sold out on screen needs no forecast to be red.
    assert state(t, "B1", "US-W").level == StockLevel.RED
    # No stock figure at all: unknown, with the reason.
    st = state(t, "A1", "DE")
    assert st.level == StockLevel.UNKNOWN and st.on_hand is None and "no stock" in st.action


def test_sales_feed_going_quiet_makes_demand_unknown() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 500)])
    selling(t, "US", "A1", 2)
    t.step(NOW)
    assert state(t, "A1", "US-W").level == StockLevel.GREEN
    later = NOW + 150  # last business sample at NOW, feed silent for 150 s
    t.add_stock([stock("US-W", "A1", 500, later - 1)])
    t.step(later)
    st = state(t, "A1", "US-W")
    assert st.level == StockLevel.UNKNOWN and st.forecast_units is None


# --- step: changes only --------------------------------------------------------

def test_step_reports_changes_and_the_first_state_of_each_pair() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 500), stock("US-W", "B1", 500)])
    selling(t, "US", "A1", 2)
    first = t.step(NOW)
    assert len(first) == len(t.states()) == 3 * 3  # 3 SKUs x 3 warehouses
    assert t.step(NOW + 1) == []
    t.add_stock([stock("US-W", "A1", 40, NOW + 1)])
    changed = t.step(NOW + 2)
    assert [(s.sku, s.warehouse, s.level) for s in changed] == [
        ("A1", "US-W", StockLevel.RED)
    ]
    assert changed[0].refill_units is not None and changed[0].refill_units > 0


def test_older_figure_does_not_overwrite_newer() -> None:
    t = tracker_with()
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - 2), stock("US-W", "A1", 10, NOW - 30)])
    t.step(NOW)
    assert state(t, "A1", "US-W").on_hand == 500


# --- sync fault -------------------------------------------------------------------

def _faulted() -> InventoryTracker:
    t = tracker_with()
    selling(t, "US", "A1", 2)  # 10 orders in the window, all before the figures
    t.add_stock([stock("US-W", "A1", 400, NOW - 20)])
    t.add_business([orders("US", "A1", 2, NOW - 15)])
    t.add_stock([stock("US-W", "A1", 0, NOW - 10)])
    return t


def test_drop_to_zero_without_orders_is_a_sync_fault() -> None:
    t = _faulted()
    [st] = [s for s in t.step(NOW) if s.sku == "A1" and s.warehouse == "US-W"]
    assert st.level == StockLevel.SYNC_FAULT
    assert st.on_hand == 0 and "WMS sync" in st.action
    assert paging_route(st.model_copy(update={"on_screen": True})) == "merchandising"


@pytest.mark.parametrize(
    ("then", "level"),
    [
        # The next figure shows stock again: the zero was a glitch.
        ([stock("US-W", "A1", 396, NOW - 5)], StockLevel.GREEN),
        # Another increment still reads 0: still unexplained.
        ([stock("US-W", "A1", 0, NOW - 5)], StockLevel.SYNC_FAULT),
        # The full reconciliation confirms the zero: it is real.
        ([stock("US-W", "A1", 0, NOW - 5, full=True)], StockLevel.RED),
        # Orders arrive late and cover half the drop: a real sell-out.
        ([orders("US", "A1", 198, NOW - 5)], StockLevel.RED),
        ([orders("US", "A1", 150, NOW - 5)], StockLevel.SYNC_FAULT),
    ],
)
def test_sync_fault_recovery(then: list[StockRecord | BusinessSample],
                             level: StockLevel) -> None:
    t = _faulted()
    t.step(NOW)
    t.add_stock(r for r in then if isinstance(r, StockRecord))
    t.add_business(r for r in then if isinstance(r, BusinessSample))
    t.step(NOW + 1)
    assert state(t, "A1", "US-W").level == level


@pytest.mark.parametrize(
    ("before", "sold", "level"),
    [
        (400, 200, StockLevel.RED),  # orders cover half the drop: real
        (4, 0, StockLevel.RED),  # too small a drop to call a fault
        (5, 0, StockLevel.SYNC_FAULT),
    ],
)
def test_drop_to_zero_with_matching_orders(before: int, sold: int, level: StockLevel) -> None:
    t = tracker_with()
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", before, NOW - 20)])
    t.add_business([orders("US", "A1", sold, NOW - 15)])
    t.add_stock([stock("US-W", "A1", 0, NOW - 10)])
    t.step(NOW)
    assert state(t, "A1", "US-W").level == level


# --- stale ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("age_s", "lag_s", "level"),
    [
        (60.0, 0.5, StockLevel.GREEN),  # exactly the limit: still fresh
        (61.0, 0.5, StockLevel.STALE),
        (5.0, 10.0, StockLevel.GREEN),
        (5.0, 11.0, StockLevel.STALE),  # arrived 11 s after the warehouse wrote it
    ],
)
def test_stale_warehouse(age_s: float, lag_s: float, level: StockLevel) -> None:
    t = tracker_with()
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - age_s, lag_s=lag_s)])
    t.step(NOW)
    st = state(t, "A1", "US-W")
    assert st.level == level
    assert st.data_age_s == pytest.approx(age_s)
    if level == StockLevel.STALE:
        assert st.on_hand == 500 and "WMS sync" in st.action


def test_stale_recovers_when_the_warehouse_speaks_again() -> None:
    t = tracker_with()
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - 90)])
    t.step(NOW)
    assert state(t, "A1", "US-W").level == StockLevel.STALE
    # Any figure from the same warehouse shows its sync is alive; A1 did not
    # change, so its figure stands.
    t.add_stock([stock("US-W", "B1", 80, NOW)])
    changed = t.step(NOW + 1)
    assert state(t, "A1", "US-W").level == StockLevel.GREEN
    assert ("A1", "US-W") in {(s.sku, s.warehouse) for s in changed}


def test_stale_age_is_configurable() -> None:
    t = tracker_with(InventoryConfig(traffic_weight=0.0, stale_after_s=10, max_sync_lag_s=0))
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - 11, lag_s=30)])
    t.step(NOW)
    assert state(t, "A1", "US-W").level == StockLevel.STALE


def test_a_feed_that_stops_heartbeating_is_stale_within_10_s() -> None:
    # The feed sends its figures once, then a heartbeat a second while
    # nothing changes; after the last heartbeat it goes silent.
    t = tracker_with()
    selling(t, "US", "A1", 2, now=NOW)
    t.add_stock([stock("US-W", "A1", 500, NOW - 30)])
    for i in range(30):
        t.add_heartbeat("US-W", NOW - 29 + i, NOW - 29 + i + 0.2)
    last_beat = NOW
    t.step(NOW + 0.5)
    assert state(t, "A1", "US-W").level == StockLevel.GREEN
    assert t.stale_after_s("US-W") == 10.0
    stale_at = None
    for k in range(1, 31):  # the pipeline steps once a second
        t.step(last_beat + 0.5 + k)
        if state(t, "A1", "US-W").level == StockLevel.STALE:
            stale_at = last_beat + 0.5 + k
            break
    assert stale_at is not None
    # The first missing heartbeat was due a second after the last one.
    assert stale_at - (last_beat + 1) <= 10.0
    assert state(t, "A1", "US-W").on_hand == 500
    # Another warehouse that never heartbeated keeps the snapshot-feed limit.
    assert t.stale_after_s("DE") == 60.0
    # A heartbeat again: fresh again, figure unchanged.
    t.add_heartbeat("US-W", stale_at, stale_at + 0.1)
    t.step(stale_at + 1)
    assert state(t, "A1", "US-W").level == StockLevel.GREEN
    assert state(t, "A1", "US-W").on_hand == 500


def test_a_snapshot_feed_without_heartbeats_keeps_the_long_limit() -> None:
    t = tracker_with()
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - 30)])
    t.step(NOW)
    assert state(t, "A1", "US-W").level == StockLevel.GREEN  # 30 s between snapshots is fine


def test_a_late_heartbeat_is_a_sync_lag_and_a_heartbeat_for_another_show_is_ignored() -> None:
    t = tracker_with()
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - 5)])
    t.add_heartbeat("US-W", NOW - 12, NOW - 0.5)  # older than the figure: no effect
    t.add_heartbeat("US-W", NOW - 1, NOW - 1 + 11)  # took 11 s to arrive
    t.add_heartbeat("ELSEWHERE", NOW, NOW)
    t.step(NOW + 1)  # 2 s old, but it took 11 s to reach us
    assert state(t, "A1", "US-W").level == StockLevel.STALE
    assert "ELSEWHERE" not in {s.warehouse for s in t.states()}


def test_a_warehouse_can_have_its_own_age_limit() -> None:
    t = tracker_with(InventoryConfig(traffic_weight=0.0, warehouse_stale_after_s={"US-W": 30}))
    selling(t, "US", "A1", 2)
    t.add_stock([stock("US-W", "A1", 500, NOW - 31), stock("DE", "A1", 500, NOW - 31)])
    t.add_heartbeat("DE", NOW - 31, NOW - 31)
    t.step(NOW)
    assert state(t, "A1", "US-W").level == StockLevel.STALE
    assert state(t, "A1", "DE").level == StockLevel.STALE  # heartbeating: 10 s
    assert t.stale_after_s("US-E") == 60.0


# --- regions and warehouses ---------------------------------------------------------

def test_orders_are_served_by_the_regions_first_warehouse() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 500), stock("US-E", "A1", 500), stock("DE", "A1", 500)])
    selling(t, "US", "A1", 2)
    t.add_business([orders("FR", "A1", 7, NOW - 10)])  # no warehouse for FR
    t.step(NOW)
    assert state(t, "A1", "US-W").velocity_per_min == pytest.approx(2.0)
    assert state(t, "A1", "US-E").velocity_per_min == 0
    assert state(t, "A1", "DE").velocity_per_min == 0
    assert t.unattributed_orders == 7


def test_region_view_serving_warehouse_empty_while_total_is_not() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 0), stock("US-E", "A1", 340), stock("DE", "A1", 120),
                 stock("US-W", "B1", 90), stock("US-E", "B1", 10)])
    selling(t, "US", "A1", 2)
    t.step(NOW)
    view = {v.sku: v for v in t.region_view("US")}
    a1 = view["A1"]
    assert a1.serving_warehouse == "US-W"
    assert a1.serving is not None and a1.serving.level == StockLevel.RED
    assert a1.serving.on_hand == 0
    assert [s.warehouse for s in a1.warehouses] == ["US-W", "US-E"]
    assert (a1.region_on_hand, a1.total_on_hand) == (340, 460)
    assert a1.serving_empty_elsewhere_stocked
    b1 = view["B1"]
    assert (b1.region_on_hand, b1.total_on_hand) == (100, 100)
    assert b1.unknown_warehouses == ["DE"] and not b1.serving_empty_elsewhere_stocked
    c1 = view["C1"]
    assert c1.serving is not None and c1.serving.level == StockLevel.UNKNOWN
    assert c1.total_on_hand is None
    de = {v.sku: v for v in t.region_view("DE")}["A1"]
    assert de.serving is not None and de.serving.on_hand == 120
    with pytest.raises(KeyError, match="FR"):
        t.region_view("FR")


# --- on screen and paging ---------------------------------------------------------

def test_on_screen_changes_paging() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 40), stock("US-W", "C1", 0)])
    selling(t, "US", "A1", 2)
    t.step(NOW)
    a1 = state(t, "A1", "US-W")
    assert a1.level == StockLevel.RED and not a1.on_screen
    assert paging_route(a1) == "merchandising"
    c1 = state(t, "C1", "US-W")  # sold out, nobody buying, off screen
    assert (c1.level, paging_route(c1)) == (StockLevel.YELLOW, "none")

    t.add_on_screen([OnScreen(ts=NOW, show_id="show-1", sku="A1", on=True),
                     OnScreen(ts=NOW, show_id="show-1", sku="C1", on=True),
                     OnScreen(ts=NOW, show_id="other-show", sku="B1", on=True)])
    changed = {(s.sku, s.warehouse): s for s in t.step(NOW + 1)}
    # Same level, now on screen: reported again so alerting can page.
    assert paging_route(changed[("A1", "US-W")]) == "oncall"
    assert changed[("C1", "US-W")].level == StockLevel.RED
    assert paging_route(changed[("C1", "US-W")]) == "oncall"
    assert not state(t, "B1", "US-W").on_screen

    # An older "off" event does not undo a newer "on".
    t.add_on_screen([OnScreen(ts=NOW - 5, show_id="show-1", sku="A1", on=False)])
    t.step(NOW + 2)
    assert state(t, "A1", "US-W").on_screen
    t.add_on_screen([OnScreen(ts=NOW + 2, show_id="show-1", sku="A1", on=False)])
    t.step(NOW + 3)
    assert paging_route(state(t, "A1", "US-W")) == "merchandising"


@pytest.mark.parametrize(
    ("level", "on_screen", "route"),
    [
        (StockLevel.RED, True, "oncall"),
        (StockLevel.RED, False, "merchandising"),
        (StockLevel.ORANGE, True, "merchandising"),
        (StockLevel.STALE, True, "merchandising"),
        (StockLevel.SYNC_FAULT, False, "merchandising"),
        (StockLevel.YELLOW, True, "none"),
        (StockLevel.GREEN, True, "none"),
        (StockLevel.UNKNOWN, True, "none"),
    ],
)
def test_paging_route(level: StockLevel, on_screen: bool, route: str) -> None:
    st = StockState(ts=NOW, show_id="s", sku="A1", warehouse="W", level=level,
                    on_screen=on_screen)
    assert paging_route(st) == route


# --- refill quantities in the tracker -----------------------------------------------

@pytest.mark.parametrize(
    ("sku", "tier", "daily", "stand_in", "expected"),
    [
        # forecast 100, on hand 40, velocity 2/min
        ("A1", "everyday", {"A1": 10.0}, None, 100 + 210 - 40),
        ("A1", "planned_show", {"A1": 10.0}, None, 100 + 350 - 40),
        ("C1", "planned_show", {"C1": 10.0}, None, 100 + 140 - 40),
        # No everyday figure: the show's shortfall only, no invented safety stock.
        ("B1", "everyday", {}, None, 100 - 40),
        # ... unless the stand-in is asked for: 2/min x 60 minutes = 120/day.
        ("B1", "everyday", {}, 60.0, 100 + 2.5 * 7 * 120 - 40),
    ],
)
def test_refill_units_by_class_and_tier(sku: str, tier: str, daily: dict[str, float],
                                        stand_in: float | None, expected: float) -> None:
    cfg = InventoryConfig(traffic_weight=0.0, refill_tier=tier,
                          daily_units=daily, selling_min_per_day=stand_in)
    t = InventoryTracker(SHOW, cfg)
    t.add_stock([stock("US-W", sku, 40)])
    selling(t, "US", sku, 2)
    t.step(NOW)
    st = state(t, sku, "US-W")
    assert st.level == StockLevel.RED
    assert st.refill_units == pytest.approx(expected)


def test_no_refill_suggested_while_green() -> None:
    t = tracker_with()
    t.add_stock([stock("US-W", "A1", 5000)])
    selling(t, "US", "A1", 2)
    t.step(NOW)
    assert state(t, "A1", "US-W").refill_units is None


# --- several live rooms on one warehouse ------------------------------------------------

def test_rooms_selling_from_one_warehouse_add_up() -> None:
    other_show = SHOW.model_copy(update={"show_id": "show-2"})
    mine, theirs = tracker_with(), InventoryTracker(other_show, InventoryConfig(traffic_weight=0))
    for t in (mine, theirs):
        t.add_stock([stock("US-W", "A1", 80)])
    selling(mine, "US", "A1", 1)
    theirs.add_business([b.model_copy(update={"show_id": "show-2"}) for b in [
        orders("US", "A1", 1, NOW - 300 + 60 * (i + 1)) for i in range(5)]
        + [orders("US", "B1", 0, T0 + 1)]])
    mine.step(NOW)
    theirs.step(NOW)
    # Alone: 80 against a forecast of 50 is yellow.
    assert state(mine, "A1", "US-W").level == StockLevel.YELLOW
    assert theirs.demand()[("A1", "US-W")] == Demand(1.0, 50.0)
    mine.set_shared_demand("show-2", theirs.demand())
    mine.step(NOW + 1)
    st = state(mine, "A1", "US-W")
    assert st.forecast_units == pytest.approx(100.0, abs=0.1)
    assert st.level == StockLevel.ORANGE
    # Shared demand is not fed back as this room's own.
    assert mine.demand()[("A1", "US-W")].forecast_units == pytest.approx(50.0, abs=1)


def test_show_end_drops_demand() -> None:
    ended = SHOW.model_copy(update={"end_ts": NOW})
    t = InventoryTracker(ended, InventoryConfig(traffic_weight=0.0, yellow_minutes_left=None,
                                                red_minutes_left=None))
    t.add_stock([stock("US-W", "A1", 40)])
    selling(t, "US", "A1", 2)
    t.step(NOW)
    st = state(t, "A1", "US-W")
    assert st.forecast_units == 0 and st.level == StockLevel.GREEN


# --- a hot SKU sells out mid-show ---------------------------------------------------

def test_hot_sku_sells_out_mid_show() -> None:
    """A one-hour show; HOT goes on screen after a minute and sells 24/min
    from ID's warehouse (1000 units) while SG's warehouse still holds 300.
    Fed every 5 s as the pipeline would: orders and viewers from the
    platform, stock increments from the WMS a second late."""
    show = Show(show_id="show-1", start_ts=T0, planned_end_ts=T0 + 3600, regions=["ID"],
                skus=[Sku(sku="HOT", abc_class="A")],
                region_warehouses={"ID": ["ID-WH", "SG-WH"]})
    t = InventoryTracker(show, InventoryConfig(daily_units={"HOT": 100}))
    t.add_stock([stock("ID-WH", "HOT", 1000, T0), stock("SG-WH", "HOT", 300, T0)])
    on_hand = 1000
    seen: list[StockState] = []
    for i in range(1, 3600 // 5):
        now = T0 + 5 * i
        if now == T0 + 60:
            t.add_on_screen([OnScreen(ts=now, show_id="show-1", sku="HOT", on=True)])
        sold = min(2, on_hand) if now > T0 + 60 else 0
        on_hand -= sold
        t.add_business([viewers("ID", 5000, now),
                        orders("ID", "HOT", sold, now)])
        t.add_stock([stock("ID-WH", "HOT", on_hand, now - 1),
                     stock("SG-WH", "HOT", 300, now - 1)])
        seen += [s for s in t.step(now) if s.warehouse == "ID-WH"]
        if on_hand == 0 and seen[-1].on_hand == 0:
            break
    levels_seen = [s.level for s in seen]
    # Never mistaken for a data fault on the way down.
    assert StockLevel.SYNC_FAULT not in levels_seen and StockLevel.STALE not in levels_seen
    # Green before it sells; yellow then orange as the velocity window fills
    # (the first minute had no sales); red once it lasts under 30 min at
    # 24/min (about 720 units); then sold out, still red, new action.
    assert levels_seen == [StockLevel.GREEN, StockLevel.GREEN, StockLevel.YELLOW,
                           StockLevel.ORANGE, StockLevel.RED, StockLevel.RED]
    assert not seen[0].on_screen and seen[1].on_screen
    first_red = next(s for s in seen if s.level == StockLevel.RED)
    assert first_red.on_hand is not None and 690 <= first_red.on_hand <= 720
    assert first_red.minutes_left is not None and first_red.minutes_left < 30
    last = seen[-1]
    assert (last.on_hand, last.on_screen) == (0, True)
    assert last.action.startswith("sold out")
    assert paging_route(last) == "oncall"
    assert last.refill_units is not None and last.refill_units > 3 * 7 * 100
    # Sold out where ID's viewers buy, though the company still has stock.
    [view] = t.region_view("ID")
    assert view.serving_empty_elsewhere_stocked and view.total_on_hand == 300
