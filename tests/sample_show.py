"""A generated show that looks like a stored one, for the report's tests and
benchmark (not shipped: it lives with the tests).

Deterministic for a given seed. The faults it contains are known (and
returned as ``injected``), so a test can check that the report shows each:
a bandwidth squeeze behind one edge node, an edge node going down, a broken
chat channel, a SKU selling out on screen, and one probe with a problem of
its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qosmon.model import (
    AlertDelivery,
    AlertStatus,
    BusinessSample,
    Cause,
    ConnectionState,
    Evidence,
    FoundAs,
    Incident,
    InjectedFault,
    OnScreen,
    ProbeSample,
    Severity,
    Show,
    Sku,
    StockLevel,
    StockState,
    incident_alert_key,
)
from qosmon.report.data import ShowData
from tests.regions import REGIONS

START_TS = 1_717_000_000.0  # a fixed, plausible start time

# region, isp, edge node, warehouse
_REGIONS = [(r.name, r.isps[0], r.edge_node, r.warehouse) for r in REGIONS]


@dataclass(frozen=True)
class Fault:
    kind: str
    region: str
    start_s: float  # seconds from the show start
    end_s: float
    probe: str = ""
    sku: str = ""


def _faults(duration_s: float, regions: list[tuple[str, str, str, str]]) -> list[Fault]:
    d = duration_s
    r = [x[0] for x in regions]
    out = [
        Fault("bandwidth", r[1 % len(r)], 0.25 * d, 0.40 * d),
        Fault("node_down", r[2 % len(r)], 0.55 * d, 0.62 * d),
        Fault("chat", r[3 % len(r)], 0.15 * d, 0.28 * d),
        Fault("probe_local", r[0], 0.70 * d, 0.78 * d, probe=f"{r[0]}-2"),
        Fault("stock_out", r[1 % len(r)], 0.45 * d, d, sku="SKU-2"),
    ]
    return out


def generate_show(
    duration_s: int = 1800,
    n_regions: int = 4,
    probes_per_region: int = 2,
    seed: int = 7,
    title: str = "Summer gadgets live",
    sku_names: dict[str, str] | None = None,
    show_id: str = "show-demo-1",
    validate: bool = True,
) -> ShowData:
    """A show of ``duration_s`` seconds with one sample per probe per second.
    ``validate=False`` skips pydantic validation (the benchmark's half a
    million samples)."""
    rng = np.random.default_rng(seed)
    regions = [_REGIONS[i % len(_REGIONS)] for i in range(n_regions)]
    if n_regions > len(_REGIONS):
        regions = [
            (f"{reg}-{i // len(_REGIONS)}" if i >= len(_REGIONS) else reg, isp, f"{edge}", wh)
            for i, (reg, isp, edge, wh) in enumerate(regions)
        ]
    faults = _faults(duration_s, regions)
    t0 = START_TS
    t1 = t0 + duration_s
    names = {"SKU-1": "Wireless earbuds", "SKU-2": "Phone gimbal", "SKU-3": "LED ring light"}
    names.update(sku_names or {})
    show = Show(
        show_id=show_id,
        title=title,
        start_ts=t0,
        end_ts=t1,
        planned_end_ts=t1,
        regions=[r[0] for r in regions],
        skus=[Sku(sku=k, name=v, abc_class="A" if k == "SKU-2" else "B", price=29.9)
              for k, v in names.items()],
        region_warehouses={r[0]: [r[3]] for r in regions},
    )
    make = ProbeSample if validate else ProbeSample.model_construct

    samples: list[ProbeSample] = []
    secs = np.arange(1, duration_s + 1, dtype=np.float64)
    for region, isp, edge, _wh in regions:
        for k in range(1, probes_per_region + 1):
            probe = f"{region}-{k}"
            base_rtt = float(rng.uniform(40, 120))
            rtt = base_rtt + rng.gamma(2.0, 4.0, duration_s)
            loss = np.clip(rng.exponential(0.15, duration_s), 0, 100)
            bitrate = 1200 + rng.normal(0, 60, duration_s)
            fps = np.clip(30 + rng.normal(0, 0.5, duration_s), 0, 30)
            no_frame = rng.uniform(20, 60, duration_s)
            freeze_count = (rng.random(duration_s) < 0.002).astype(np.int64)
            chat_sent = (rng.random(duration_s) < 0.2).astype(np.int64)
            chat_lost = np.zeros(duration_s, np.int64)
            chat_rtt = np.where(chat_sent > 0, rng.uniform(80, 200, duration_s), np.nan)
            connected = np.ones(duration_s, bool)
            ttff = np.full(duration_s, float(rng.uniform(120, 400)))
            for f in faults:
                w = (secs > f.start_s) & (secs <= f.end_s)
                if f.kind == "bandwidth" and f.region == region:
                    n = int(w.sum())
                    bitrate[w] = 260 + rng.normal(0, 40, n)
                    rtt[w] = 300 + rng.gamma(3.0, 30.0, n)
                    loss[w] = rng.uniform(6, 14, n)
                    fps[w] = rng.uniform(6, 14, n)
                    freeze_count[w] = (rng.random(n) < 0.15).astype(np.int64)
                elif f.kind == "node_down" and f.region == region:
                    connected[w] = False
                    bitrate[w] = 0
                    fps[w] = 0
                    rtt[w] = np.nan
                    loss[w] = np.nan
                    no_frame[w] = (secs[w] - f.start_s) * 1000
                    # Rejoin after the node comes back: a new, slower first frame.
                    ttff[secs > f.end_s] = float(rng.uniform(900, 2600))
                elif f.kind == "chat" and f.region == region:
                    chat_lost[w] = chat_sent[w]
                    chat_rtt[w] = np.where(chat_sent[w] > 0, rng.uniform(2500, 4000), np.nan)
                elif f.kind == "probe_local" and f.probe == probe:
                    loss[w] = rng.uniform(20, 35, int(w.sum()))
                    rtt[w] = rng.uniform(300, 600, int(w.sum()))
            freeze_ms = freeze_count * rng.uniform(300, 1500, duration_s)
            # Real probes stamp each second on their own sub-second phase,
            # with scheduling jitter of a few hundredths (a quarter second
            # now and then).
            phase = float(rng.uniform(0.0, 1.0))
            jitter = np.clip(rng.normal(0.0, 0.04, duration_s), -0.3, 0.3)
            late = rng.random(duration_s) < 0.01
            jitter[late] = 0.27
            stamps = secs + phase + jitter - 1.0 + (phase < 0.5)
            for i in range(duration_s):
                c = bool(connected[i])
                samples.append(make(
                    ts=t0 + float(stamps[i]),
                    show_id=show_id,
                    stream_id="main",
                    probe_id=probe,
                    region=region,
                    isp=isp,
                    edge_node=edge,
                    state=ConnectionState.CONNECTED if c else ConnectionState.FAILED,
                    ttff_ms=float(ttff[i]) if c else None,
                    rtt_ms=None if np.isnan(rtt[i]) else float(rtt[i]),
                    packets_expected=110 if c else 0,
                    packets_received=int(110 * (1 - loss[i] / 100)) if c else 0,
                    loss_pct=None if np.isnan(loss[i]) else float(loss[i]),
                    bitrate_kbps=max(0.0, float(bitrate[i])),
                    fps=float(fps[i]),
                    freeze_count=int(freeze_count[i]),
                    freeze_ms=float(freeze_ms[i]),
                    no_frame_ms=float(no_frame[i]),
                    chat_sent=int(chat_sent[i]),
                    chat_lost=int(chat_lost[i]),
                    chat_rtt_ms=None if np.isnan(chat_rtt[i]) else float(chat_rtt[i]),
                ))
    samples.sort(key=lambda s: s.ts)

    business = _business(show_id, t0, duration_s, faults, [r[0] for r in regions], rng)
    on_screen, stock_states = _stock(show, t0, duration_s, faults, regions)
    incidents, deliveries = _incidents(show_id, t0, faults, regions)
    # Each fault has its own incident (in the same order), found right away.
    injected = [
        InjectedFault(index=i, kind=f.kind, regions=[f.region], probe=f.probe, sku=f.sku,
                      start_ts=t0 + f.start_s, end_ts=t0 + f.end_s, expected_cause=inc.cause,
                      found=[FoundAs(incident_id=inc.incident_id, cause=inc.cause)],
                      detect_s=(inc.detected_ts or inc.start_ts) - inc.start_ts)
        for i, (f, inc) in enumerate(zip(faults, incidents, strict=True))
    ]
    return ShowData(
        show=show, probe_samples=samples, business=business, stock_states=stock_states,
        on_screen=on_screen, incidents=incidents, deliveries=deliveries, injected=injected,
    )


def _business(
    show_id: str, t0: float, duration_s: int, faults: list[Fault], regions: list[str],
    rng: np.random.Generator,
) -> list[BusinessSample]:
    """Per region, once a second, each region's feed on its own sub-second
    offset (as the platform's per-region feeds arrive)."""
    out = []
    shares = rng.dirichlet(np.full(len(regions), 4.0))
    phases = rng.uniform(0.0, 1.0, len(regions))
    for s in range(1, duration_s + 1):
        x = s / duration_s
        whole = 800 + 4200 * min(1.0, x * 3) - 1500 * max(0.0, x - 0.8) * 5
        for r, region in enumerate(regions):
            viewers = whole * shares[r]
            for f in faults:
                if (f.kind in ("bandwidth", "node_down") and f.region == region
                        and f.start_s < s <= f.end_s + 120):
                    viewers *= 0.6
            viewers += rng.normal(0, 5)
            rate = viewers * 0.0004
            for f in faults:
                if f.kind == "stock_out" and f.region == region and s > f.start_s:
                    rate *= 0.3
            for f in faults:
                # The SKU that sells out is also counted on its own, every 5 s.
                if f.kind == "stock_out" and s % 5 == 0:
                    gone = f.region == region and s > f.start_s
                    out.append(BusinessSample(
                        ts=t0 + s, show_id=show_id, region=region, sku=f.sku,
                        orders=0 if gone else int(rng.poisson(viewers * 0.0006))))
            out.append(BusinessSample(
                ts=t0 + s - 1 + phases[r] + (phases[r] < 0.5), show_id=show_id, region=region,
                viewers_online=max(0, int(viewers)), joins=int(rng.poisson(viewers * 0.002)),
                leaves=int(rng.poisson(viewers * 0.002)), orders=int(rng.poisson(rate)),
                chat_messages=int(rng.poisson(viewers * 0.0004)),
            ))
    return out


def _stock(
    show: Show, t0: float, duration_s: int, faults: list[Fault],
    regions: list[tuple[str, str, str, str]],
) -> tuple[list[OnScreen], list[StockState]]:
    skus = [s.sku for s in show.skus]
    slots = len(skus)
    on_screen: list[OnScreen] = []
    for i, sku in enumerate(skus):
        a = duration_s * i / slots
        b = duration_s * (i + 1) / slots
        on_screen.append(OnScreen(ts=t0 + a + 1, show_id=show.show_id, sku=sku, on=True))
        on_screen.append(OnScreen(ts=t0 + b, show_id=show.show_id, sku=sku, on=False))
    # The sold-out SKU is the one on screen when it runs out.
    out_fault = next(f for f in faults if f.kind == "stock_out")
    states: list[StockState] = []
    step = 30
    warehouses = [r[3] for r in regions]
    for si, sku in enumerate(skus):
        for wi, wh in enumerate(warehouses):
            start_units = 400 + 150 * ((si + wi) % 3)
            for s in range(step, duration_s + 1, step):
                x = s / duration_s
                on_hand = start_units * (1 - 0.5 * x)
                if sku == out_fault.sku and wh == warehouses[1 % len(warehouses)]:
                    on_hand = max(0.0, start_units * (1 - x / (out_fault.start_s / duration_s)))
                remaining_min = max(0.0, (duration_s - s) / 60)
                velocity = start_units * 0.5 / (duration_s / 60)
                if sku == out_fault.sku and wh == warehouses[1 % len(warehouses)]:
                    velocity *= 3
                forecast = velocity * remaining_min
                ratio = on_hand / forecast if forecast > 0 else float("inf")
                if ratio <= 0.5:
                    level = StockLevel.RED
                    action = "delist now or switch to pre-sale; emergency refill"
                elif ratio <= 1:
                    level, action = StockLevel.ORANGE, "limit per order or reprice; request refill"
                elif ratio <= 3:
                    level, action = StockLevel.YELLOW, "watch the trend; prepare a fallback SKU"
                else:
                    level, action = StockLevel.GREEN, ""
                if wi == len(warehouses) - 1 and 0.3 * duration_s < s <= 0.36 * duration_s:
                    level, action = StockLevel.STALE, "warehouse data stale: check the sync"
                ts = t0 + s
                on = any(
                    e.sku == sku and e.on and e.ts <= ts
                    and not any(o.sku == sku and not o.on and e.ts < o.ts <= ts for o in on_screen)
                    for e in on_screen
                )
                states.append(StockState(
                    ts=ts, show_id=show.show_id, sku=sku, warehouse=wh, level=level,
                    on_hand=int(on_hand), velocity_per_min=round(velocity, 2),
                    forecast_units=round(forecast, 1),
                    minutes_left=round(on_hand / velocity, 1) if velocity else None,
                    data_age_s=4.0, on_screen=on, action=action,
                    refill_units=(int(max(0, forecast - on_hand))
                                  if level == StockLevel.RED else None),
                ))
    return on_screen, states


def _incidents(
    show_id: str, t0: float, faults: list[Fault], regions: list[tuple[str, str, str, str]]
) -> tuple[list[Incident], list[AlertDelivery]]:
    edge = {r[0]: r[2] for r in regions}
    isp = {r[0]: r[1] for r in regions}
    incidents: list[Incident] = []
    for n, f in enumerate(faults, start=1):
        iid = f"inc-{n:03d}"
        # Diagnosis dates an incident from its first bad second, and reports
        # it a little later (detected_ts).
        start = t0 + f.start_s
        end = t0 + f.end_s + 3
        probes = [f"{f.region}-1", f"{f.region}-2"]
        scope = {"region": f.region, "isp": isp[f.region], "edge_node": edge[f.region]}
        if f.kind == "bandwidth":
            inc = Incident(
                incident_id=iid, show_id=show_id, start_ts=start, end_ts=end,
                detected_ts=start + 12, severity=Severity.CRITICAL, cause=Cause.BANDWIDTH,
                scope=scope, probes=probes,
                evidence=[
                    Evidence(metric="bitrate_kbps", observed=260, baseline=1200, unit="kbps",
                             text="bitrate 260 kbps vs 1200 kbps before (-78%)"),
                    Evidence(metric="rtt_ms", observed=390, baseline=80, threshold=250,
                             unit="ms", text="RTT 390 ms vs 80 ms before: queueing"),
                    Evidence(metric="fps", observed=10, baseline=30, unit="fps",
                             text="frame rate 10 fps vs 30 fps"),
                ],
                summary=f"bandwidth squeeze behind {edge[f.region]}",
                viewers_lost=640, orders_lost=23,
            )
        elif f.kind == "node_down":
            inc = Incident(
                incident_id=iid, show_id=show_id, start_ts=start, end_ts=end,
                detected_ts=start + 6, severity=Severity.CRITICAL, cause=Cause.NODE_FAILURE,
                scope={"region": f.region, "edge_node": edge[f.region]}, probes=probes,
                evidence=[
                    Evidence(metric="no_frame_ms", observed=15000, threshold=5000, unit="ms",
                             text="no frame for 15 s on every probe behind the node"),
                    Evidence(metric="probes_without_media", observed=2, unit="probes",
                             text="2/2 probes lost media at once, others fine"),
                    Evidence(metric="disconnected_probes", observed=2, unit="probes",
                             text="2 probe(s) in state disconnected/failed"),
                ],
                summary=f"edge node {edge[f.region]} stopped serving media",
                viewers_lost=910, orders_lost=31,
            )
        elif f.kind == "chat":
            inc = Incident(
                incident_id=iid, show_id=show_id, start_ts=start, end_ts=end,
                detected_ts=start + 20, severity=Severity.WARNING, cause=Cause.CHAT_CHANNEL,
                scope={"region": f.region}, probes=probes,
                evidence=[
                    # Diagnosis reports the share lost as a 0-1 ratio.
                    Evidence(metric="chat_lost_ratio", observed=1.0, threshold=0.3, unit="",
                             text="4/4 chat messages not delivered in 5 s"),
                    Evidence(metric="bitrate_kbps", observed=1200, baseline=1200, unit="kbps",
                             text="media fine: bitrate unchanged"),
                ],
                summary="chat messages not delivered; video fine",
                viewers_lost=120, orders_lost=4,
            )
        elif f.kind == "probe_local":
            inc = Incident(
                incident_id=iid, show_id=show_id, start_ts=start, end_ts=end,
                detected_ts=start + 15, severity=Severity.INFO, cause=Cause.PROBE_LOCAL,
                scope={"region": f.region}, probes=[f.probe],
                evidence=[
                    Evidence(metric="loss_pct", observed=28, baseline=0.2, threshold=5,
                             unit="%", text="loss 28% on this probe only; others in region 0.2%"),
                ],
                summary=f"probe {f.probe} alone saw loss: its own network",
            )
        else:  # stock_out
            wh = regions[1 % len(regions)][3]
            inc = Incident(
                incident_id=iid, show_id=show_id, start_ts=start, end_ts=None,
                detected_ts=start + 2, severity=Severity.CRITICAL, cause=Cause.STOCK_OUT,
                scope={"region": f.region, "warehouse": wh}, skus=[f.sku],
                evidence=[
                    Evidence(metric="on_hand", observed=0, threshold=550, unit="units",
                             text=f"warehouse {wh}: 0 on hand (red), forecast 550"),
                    Evidence(metric="sku_orders_30s", observed=0, baseline=14.5, unit="orders",
                             text=f"orders of {f.sku} in {f.region}: 0 in the last 30 s vs "
                                  "14.5 per 30 s before"),
                ],
                summary=f"{f.sku} sold out in {wh} while on screen",
                orders_lost=48,
            )
        incidents.append(inc)
    deliveries: list[AlertDelivery] = []
    for inc in incidents:
        if inc.cause == Cause.PROBE_LOCAL:
            continue
        route = "slack" if inc.cause in (Cause.STOCK_OUT,) else "alertmanager"
        key = incident_alert_key(inc)
        fire = (inc.detected_ts or inc.start_ts) + 1
        deliveries.append(AlertDelivery(ts=fire, alert_key=key, show_id=show_id,
                                        incident_id=inc.incident_id, status=AlertStatus.FIRING,
                                        notifier=route, ok=True, attempt=1))
        if inc.end_ts is not None:
            deliveries.append(AlertDelivery(ts=inc.end_ts + 2, alert_key=key, show_id=show_id,
                                        incident_id=inc.incident_id,
                                            status=AlertStatus.RESOLVED, notifier=route,
                                            ok=False, attempt=1, error="HTTP 503"))
            deliveries.append(AlertDelivery(ts=inc.end_ts + 7, alert_key=key, show_id=show_id,
                                        incident_id=inc.incident_id,
                                            status=AlertStatus.RESOLVED, notifier=route,
                                            ok=True, attempt=2))
    return incidents, deliveries
