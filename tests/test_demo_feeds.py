"""The demo's commerce and warehouse feeds react to faults as viewers would."""

from pathlib import Path

from qosmon.demo.feeds import ShowFeeds
from qosmon.demo.scenario import FaultKind, load_scenario

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "demo-scenario.toml"
T0 = 1_700_000_000.0


def _run(seconds: int):
    sc = load_scenario(SHIPPED)
    feeds = ShowFeeds(sc, T0)
    steps = [feeds.step(t, T0 + t) for t in range(seconds)]
    return sc, feeds, steps


def _region(steps, region: str, field: str) -> list[int]:
    return [next(getattr(b, field) for b in s.business if b.region == region and not b.sku)
            for s in steps]


def test_outage_region_loses_viewers_and_others_do_not() -> None:
    _, _, steps = _run(95)
    de = _region(steps, "DE", "viewers_online")
    th = _region(steps, "TH", "viewers_online")
    assert de[89] < 0.7 * de[69]  # outage 70-90 s in DE
    assert abs(th[89] - th[69]) < 0.1 * th[69]


def test_chat_stall_silences_chat_in_its_region_only() -> None:
    _, _, steps = _run(125)
    th = _region(steps, "TH", "chat_messages")
    idn = _region(steps, "ID", "chat_messages")
    assert sum(th[100:120]) == 0 and sum(th[80:100]) > 0
    assert sum(idn[100:120]) > 0


def test_sell_out_empties_the_warehouse_with_matching_orders() -> None:
    _, feeds, steps = _run(160)
    assert feeds.stock["WH-US-LAX"]["SKU-EARBUDS"] == 0
    sold = sum(b.orders or 0 for s in steps for b in s.business
               if b.region == "US-W" and b.sku == "SKU-EARBUDS")
    assert sold == 700  # every unit that left the warehouse was an order
    last = [b.orders for b in steps[-1].business if b.region == "US-W" and b.sku == "SKU-EARBUDS"]
    assert last == [0]


def test_stale_warehouse_stops_reporting() -> None:
    sc = load_scenario(SHIPPED)
    sc.faults = [f.model_copy(update={"kind": FaultKind.STALE_INVENTORY, "warehouse": "WH-TH-BKK",
                                      "region": None, "at_s": 10, "duration_s": 20})
                 for f in sc.faults[:1]]
    feeds = ShowFeeds(sc, T0)
    steps = [feeds.step(t, T0 + t) for t in range(40)]
    seen = [{r.warehouse for r in (st.stock_changes + st.snapshot)} for st in steps]
    beats = [{wh for wh, _ in st.heartbeats} for st in steps]
    assert all("WH-TH-BKK" not in s for s in seen[10:30])
    assert all("WH-TH-BKK" not in b for b in beats[10:30])  # silent: no heartbeat either
    assert any("WH-TH-BKK" in s for s in seen[30:])


def test_every_warehouse_says_something_every_second() -> None:
    sc, _, steps = _run(40)
    warehouses = {w.id for w in sc.warehouses}
    for st in steps:
        talked = {r.warehouse for r in st.stock_changes + st.snapshot}
        beats = {wh for wh, _ in st.heartbeats}
        assert talked | beats == warehouses
        assert not talked & beats  # a heartbeat only when there is nothing else to send


def test_same_seed_same_show() -> None:
    a = _run(30)[2]
    b = _run(30)[2]
    assert [x.business for x in a] == [x.business for x in b]
