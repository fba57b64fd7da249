"""Labelled synthetic shows for tests and benchmarks (not shipped with qosmon):
per-second probe, business and stock streams with realistic noise, and one
known fault (or none).

Pure and deterministic per seed. The figures follow what probes see on a real
path (see ``docs/diagnosis.md``): 500-900 kbps at 15-25 fps, region-dependent
RTT with jitter and missing answers, background loss with short bursts,
occasional short freezes; a bandwidth cap (token bucket) cuts bitrate and fps
and adds queueing delay and drops; random loss raises loss with RTT intact;
added delay raises RTT only; an outage stops media; a chat stall stops echoes.
Audiences swing slowly on clean shows (that is not an incident) and leave in a
region when its stream is bad.

The figures newer probes add (received rate with retransmissions, the
retransmitted part, goodput, picture stuck, audio) come from a second random
stream of their own, so adding them left every older figure as it was. Two
faults need them: a sender with congestion control under a squeeze (it
lowers its bitrate: little loss, few repairs, what arrives falls; ``variant
= "adaptive"`` of a bandwidth scenario) and audio stopping while video
flows; a lossy path keeps its received rate (the sender repairs).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import (
    BusinessSample,
    Cause,
    ConnectionState,
    ProbeSample,
    Show,
    Sku,
    StockLevel,
    StockState,
)

SHOW_ID = "synthetic"
T0 = 1_700_000_000.0

# region -> (edge node, [ISPs], warehouse, base RTT ms)
REGIONS: dict[str, tuple[str, list[str], str, float]] = {
    "ID": ("jkt-1", ["telkomsel", "indosat"], "wh-id", 95.0),
    "TH": ("bkk-1", ["ais", "true"], "wh-th", 80.0),
    "US": ("sfo-1", ["att", "comcast"], "wh-usw", 150.0),
    "DE": ("fra-1", ["dtag", "vodafone"], "wh-nl", 170.0),
}
HOT_SKU = "sku-hot"
SKUS = [HOT_SKU, "sku-b", "sku-c"]

# Causes a scenario can inject, besides None (a clean show).
REGIONAL_CAUSES = (
    Cause.NODE_FAILURE,
    Cause.BANDWIDTH,
    Cause.PACKET_LOSS,
    Cause.HIGH_LATENCY,
    Cause.STOCK_OUT,
    Cause.LOW_STOCK,
    Cause.STALE_INVENTORY,
    Cause.NETWORK_FINE,
    Cause.PROBE_LOCAL,
)
SHOW_WIDE_CAUSES = (Cause.NODE_FAILURE, Cause.CHAT_CHANNEL, Cause.NETWORK_FINE)
# Faults only the newer figures tell apart: (cause, variant, show-wide too).
NEW_FIGURE_FAULTS: tuple[tuple[Cause, str, bool], ...] = (
    (Cause.BANDWIDTH, "adaptive", False),
    (Cause.AUDIO_STALLED, "", True),
    (Cause.PACKET_LOSS, "", False),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    cause: Cause | None  # None: a clean show
    region: str | None  # None: whole show (or clean)
    strength: float  # 0 (mild) .. 1 (severe)
    seed: int
    duration_s: int = 260
    onset_s: int = 130
    fault_s: int = 75
    # "adaptive": a bandwidth squeeze met by a sender that lowers its rate.
    variant: str = ""

    @property
    def key(self) -> str:
        """What the scenario tests, e.g. "bandwidth/adaptive", "clean"."""
        label = self.cause.value if self.cause else "clean"
        return label + (f"/{self.variant}" if self.variant else "")

    @property
    def onset_ts(self) -> float:
        return T0 + self.onset_s

    @property
    def expected_scope(self) -> dict[str, str]:
        if self.cause is None or self.region is None:
            return {}
        if self.cause == Cause.NODE_FAILURE:
            return {"region": self.region, "edge_node": REGIONS[self.region][0]}
        if self.cause == Cause.PROBE_LOCAL:
            return {"probe_id": self.local_probe}
        return {"region": self.region}

    @property
    def local_probe(self) -> str:
        assert self.region is not None
        return f"{self.region.lower()}-{1 + self.seed % 2}"


@dataclass
class Second:
    """What arrives for one second of the show; ``arrive_ts`` per probe sample
    models delivery delay (samples reach the engine late and out of order)."""

    ts: float
    probes: list[tuple[float, ProbeSample]] = field(default_factory=list)
    business: list[BusinessSample] = field(default_factory=list)
    stock: list[StockState] = field(default_factory=list)

    def feed(self, engine: DiagnosisEngine) -> None:
        """Hand this second's data to ``engine``, every probe sample on time."""
        engine.add_probe_samples(x for _, x in self.probes)
        engine.add_business(self.business)
        engine.add_stock_states(self.stock)


def make_show(regions: list[str]) -> Show:
    return Show(
        show_id=SHOW_ID,
        title="synthetic show",
        start_ts=T0,
        regions=regions,
        skus=[Sku(sku=s, abc_class="A" if s == HOT_SKU else "B") for s in SKUS],
        region_warehouses={r: [REGIONS[r][2]] for r in regions},
    )


@dataclass
class _Probe:
    probe_id: str
    region: str
    isp: str
    edge_node: str
    rtt_ms: float
    bitrate_kbps: float
    fps: float
    no_frame_ms: float = 40.0
    down_since: float | None = None


def scenarios(
    seeds: int = 2, strengths: tuple[float, ...] = (0.2, 0.8), regions: list[str] | None = None
) -> list[Scenario]:
    """Every cause, in every region, at every strength, for several seeds."""
    regions = regions or list(REGIONS)
    out: list[Scenario] = []
    for seed in range(seeds):
        for strength in strengths:
            for cause in REGIONAL_CAUSES:
                for r in regions:
                    out.append(
                        Scenario(
                            f"{cause.value}-{r}-s{strength:g}-{seed}",
                            cause,
                            r,
                            strength,
                            seed * 1000 + len(out),
                        )
                    )
            for cause in SHOW_WIDE_CAUSES:
                out.append(
                    Scenario(
                        f"{cause.value}-all-s{strength:g}-{seed}",
                        cause,
                        None,
                        strength,
                        seed * 1000 + len(out),
                    )
                )
    return out


def new_figure_scenarios(
    seeds: int = 2, strengths: tuple[float, ...] = (0.2, 0.8), regions: list[str] | None = None
) -> list[Scenario]:
    """The faults told apart by the newer figures, in every region (and
    show-wide where that is a fault of its own), seeds apart from
    :func:`scenarios`'."""
    regions = regions or list(REGIONS)
    out: list[Scenario] = []
    for seed in range(seeds):
        for strength in strengths:
            for cause, variant, show_wide in NEW_FIGURE_FAULTS:
                for r in [*regions, *([None] if show_wide else [])]:
                    name = f"{cause.value}{'-' + variant if variant else ''}-{r or 'all'}"
                    out.append(Scenario(f"{name}-s{strength:g}-{seed}-new", cause, r, strength,
                                        50_000 + seed * 1000 + len(out), variant=variant))
    return out


def starved_scenarios(
    seeds: int = 2, strengths: tuple[float, ...] = (0.2, 0.8), regions: list[str] | None = None
) -> list[Scenario]:
    """No fault at all: the probes of one region (or of every region) are
    starved on their own hosts for the fault's span. Their samples show the
    loss a lossy path would, and the kernel drops at their sockets that
    caused it; nothing should be raised."""
    regions = regions or list(REGIONS)
    out: list[Scenario] = []
    for seed in range(seeds):
        for strength in strengths:
            for r in [*regions, None]:
                out.append(Scenario(f"starved-{r or 'all'}-s{strength:g}-{seed}", None, r,
                                    strength, 70_000 + seed * 1000 + len(out),
                                    variant="starved"))
    return out


def clean_shows(n: int = 6, duration_s: int = 900) -> list[Scenario]:
    return [
        Scenario(f"clean-{i}", None, None, 0.0, 10_000 + i, duration_s=duration_s) for i in range(n)
    ]


def generate(sc: Scenario, regions: list[str] | None = None) -> tuple[Show, Iterator[Second]]:
    regions = regions or list(REGIONS)
    return make_show(regions), _stream(sc, regions)


def _stream(sc: Scenario, regions: list[str]) -> Iterator[Second]:
    rnd = random.Random(sc.seed)
    # The newer figures' own stream: the older ones draw exactly as before.
    rnd2 = random.Random(sc.seed * 7919 + 17)
    # And the probe's own health, from a third one.
    rnd3 = random.Random(sc.seed * 104_729 + 5)
    probes: list[_Probe] = []
    for r in regions:
        node, isps, _, rtt = REGIONS[r]
        for i, isp in enumerate(isps):
            probes.append(
                _Probe(
                    f"{r.lower()}-{i + 1}",
                    r,
                    isp,
                    node,
                    rtt_ms=rtt * rnd.uniform(0.8, 1.2),
                    bitrate_kbps=rnd.uniform(600, 880),
                    fps=rnd.uniform(20, 25),
                )
            )
    viewers0 = {r: rnd.uniform(1500, 6000) for r in regions}
    # Slow swings of the audience: a few S-curves per region of +-10..35 %
    # over 1.5-4 min, plus the show's overall trend.
    swings = {
        r: [
            (rnd.uniform(0, sc.duration_s), rnd.uniform(-0.3, 0.35), rnd.uniform(30, 60))
            for _ in range(rnd.randint(1, 3))
        ]
        for r in regions
    }
    trend = rnd.uniform(-0.0004, 0.0008)  # per second
    conversion = {r: rnd.uniform(1.2, 3.0) / viewers0[r] for r in regions}  # orders/s
    stock = {(s, REGIONS[r][2]): rnd.randint(4000, 8000) for s in SKUS for r in regions}
    leave = {r: 1.0 for r in regions}  # share of the audience still watching
    faulty = set()
    if sc.cause in (Cause.NODE_FAILURE, Cause.BANDWIDTH, Cause.PACKET_LOSS, Cause.HIGH_LATENCY,
                    Cause.AUDIO_STALLED):
        faulty = {p.probe_id for p in probes if sc.region is None or p.region == sc.region}
    elif sc.cause == Cause.PROBE_LOCAL:
        faulty = {sc.local_probe}
    local_kind = rnd.choice([Cause.PACKET_LOSS, Cause.NODE_FAILURE, Cause.BANDWIDTH])
    for k in range(sc.duration_s):
        ts = T0 + k
        sec = Second(ts)
        in_fault = sc.cause is not None and sc.onset_s <= k < sc.onset_s + sc.fault_s
        since = k - sc.onset_s
        for p in probes:
            kind = None
            if in_fault and p.probe_id in faulty:
                kind = local_kind if sc.cause == Cause.PROBE_LOCAL else sc.cause
            # A starved probe loses packets at its own socket: drawn as loss.
            starve = (sc.variant == "starved" and sc.onset_s <= k < sc.onset_s + sc.fault_s
                      and sc.region in (None, p.region))
            if starve:
                kind = Cause.PACKET_LOSS
            chat_stall = in_fault and sc.cause == Cause.CHAT_CHANNEL
            # Faults the older figures cannot show draw those as a clean second.
            old_kind = None if (kind == Cause.AUDIO_STALLED or (sc.variant and not starve)) \
                else kind
            x = _probe_second(rnd, p, ts, old_kind, sc.strength, since, chat_stall)
            x = _newer_figures(rnd2, p, x, kind, "" if starve else sc.variant, sc.strength,
                               since)
            x = _own_health(rnd3, x, starve)
            sec.probes.append((ts + rnd.uniform(0.05, 1.8), x))
        # --- audience -----------------------------------------------------
        for r in regions:
            bad_stream = (
                in_fault
                and any(p.region == r and p.probe_id in faulty for p in probes)
                and sc.cause != Cause.PROBE_LOCAL
            )
            target = 1.0
            if bad_stream:
                target = {Cause.NODE_FAILURE: 0.55}.get(
                    sc.cause or Cause.UNKNOWN, 0.9 - 0.1 * sc.strength
                )
            if in_fault and sc.cause == Cause.NETWORK_FINE and sc.region in (None, r):
                target = 0.72 - 0.2 * sc.strength
            # Viewers leave over seconds to tens of seconds and come back slowly.
            fast = sc.cause == Cause.NETWORK_FINE
            rate = 0.35 if (fast and target < 1) else (0.05 if target < leave[r] else 0.01)
            leave[r] += (target - leave[r]) * rate
            level = viewers0[r] * (1 + trend * k)
            for at, amp, width in swings[r]:
                level *= 1 + amp / (1 + math.exp(-(k - at) / width))
            viewers = max(0, int(level * leave[r] * (1 + rnd.gauss(0, 0.004))))
            conv = conversion[r] * (
                0.3
                if (in_fault and sc.cause == Cause.NETWORK_FINE and sc.region in (None, r))
                else 1.0
            )
            rate_orders = conv * viewers
            sku_orders = {}
            for s_i, sku in enumerate(SKUS):
                share = (0.5, 0.3, 0.2)[s_i]
                sold_out = stock[(sku, REGIONS[r][2])] <= 0
                n = 0 if sold_out else _poisson(rnd, rate_orders * share)
                if (
                    sc.cause == Cause.STOCK_OUT
                    and sku == HOT_SKU
                    and r == sc.region
                    and k >= sc.onset_s
                ):
                    n = 0
                sku_orders[sku] = n
            chat = _poisson(rnd, viewers * 0.0008)
            sec.business.append(
                BusinessSample(
                    ts=ts,
                    show_id=SHOW_ID,
                    region=r,
                    viewers_online=viewers,
                    orders=sum(sku_orders.values()),
                    chat_messages=chat,
                )
            )
            for sku, n in sku_orders.items():
                sec.business.append(
                    BusinessSample(ts=ts, show_id=SHOW_ID, region=r, sku=sku, orders=n)
                )
            # --- stock ----------------------------------------------------
            wh = REGIONS[r][2]
            for s_i, sku in enumerate(SKUS):
                stock[(sku, wh)] = max(0, stock[(sku, wh)] - sku_orders[sku])
                on_screen = sku == HOT_SKU or (k // 120) % 2 == s_i - 1
                on_hand = stock[(sku, wh)]
                velocity = rate_orders * (0.5, 0.3, 0.2)[s_i] * 60
                remaining_min = max(1.0, (sc.duration_s - k) / 60)
                forecast = velocity * remaining_min
                stock_level = _level(on_hand, forecast)
                age = rnd.uniform(1, 5)
                if r == sc.region and sku == HOT_SKU and sc.onset_s <= k:
                    if sc.cause == Cause.STOCK_OUT:
                        on_hand, stock_level = 0, StockLevel.RED
                    elif sc.cause == Cause.LOW_STOCK and in_fault:
                        on_hand = max(1, int(forecast * 0.3 * (1 - sc.strength) + 3))
                        stock_level = StockLevel.RED
                    elif sc.cause == Cause.STALE_INVENTORY and in_fault:
                        stock_level = StockLevel.STALE if sc.seed % 2 else StockLevel.SYNC_FAULT
                        age = 600 + since
                sec.stock.append(
                    StockState(
                        ts=ts,
                        show_id=SHOW_ID,
                        sku=sku,
                        warehouse=wh,
                        level=stock_level,
                        on_hand=on_hand,
                        velocity_per_min=round(velocity, 2),
                        forecast_units=round(forecast, 1),
                        minutes_left=round(on_hand / velocity, 1) if velocity > 0 else None,
                        data_age_s=round(age, 1),
                        on_screen=on_screen,
                    )
                )
        yield sec


def _newer_figures(
    rnd: random.Random, p: _Probe, x: ProbeSample, fault: Cause | None, variant: str,
    strength: float, since: int,
) -> ProbeSample:
    """The figures newer probes add, for second ``x`` (and, for the faults
    only they show, what those do to the older ones)."""
    bitrate, fps, loss = x.bitrate_kbps or 0.0, x.fps, x.loss_pct or 0.0
    rtt = x.rtt_ms
    # Repairs: most of what the path lost comes again as retransmissions.
    rtx = bitrate * min(loss, 50.0) / 100 * rnd.uniform(0.6, 0.9)
    if fault == Cause.PACKET_LOSS:
        # The sender repairs a lossy path: what arrives holds near what it
        # sent, the originals that got through fall with the loss.
        received = p.bitrate_kbps * rnd.gauss(1, 0.05)
        rtx = max(0.0, received - bitrate)
    elif fault == Cause.BANDWIDTH and variant == "adaptive":
        # Congestion control meets the squeeze: a lower rate, no queue, no
        # loss to speak of, a few repairs; fps may give a little.
        cap = 0.6 - 0.2 * strength
        bitrate = p.bitrate_kbps * cap * rnd.gauss(1, 0.05)
        fps = p.fps * (1 - 0.25 * strength) * rnd.gauss(1, 0.05)
        loss = abs(rnd.gauss(0, 0.5))
        rtx = bitrate * loss / 100 * rnd.uniform(0.6, 0.9)
        if rtt is not None:
            rtt = rtt + abs(rnd.gauss(0, 8))
        received = bitrate + rtx
    else:
        received = bitrate + rtx
    # An outage stops the audio with the video.
    audio_stalled = fault in (Cause.AUDIO_STALLED, Cause.NODE_FAILURE) and since >= 1
    audio_loss = None if audio_stalled else min(100.0, loss * rnd.uniform(0.6, 1.2))
    stuck = 1000.0 if fault == Cause.NODE_FAILURE and since >= 1 else x.freeze_ms
    return x.model_copy(update={
        "bitrate_kbps": max(0.0, bitrate),
        "fps": None if fps is None else max(0.0, fps),
        "loss_pct": min(100.0, max(0.0, loss)),
        "rtt_ms": rtt,
        "received_kbps": max(0.0, received),
        "rtx_kbps": max(0.0, rtx),
        "goodput_kbps": max(0.0, bitrate * rnd.uniform(0.97, 1.0)),
        "stuck_ms": stuck,
        "audio_kbps": 0.0 if audio_stalled else 32.0 * rnd.gauss(1, 0.03),
        "audio_loss_pct": audio_loss,
        "audio_jitter_ms": None if audio_stalled else abs(rnd.gauss(2, 0.5)),
        "audio_stalled": audio_stalled,
        "audio_stalled_ms": 1000.0 if audio_stalled else 0.0,
    })


def _own_health(rnd: random.Random, x: ProbeSample, starved: bool) -> ProbeSample:
    """The probe's own health: a few ms of loop lateness and no drops when
    it keeps up; when starved, the loop late (not always past diagnosis's
    threshold) and the kernel dropping most of what the second lost."""
    if not starved:
        return x.model_copy(update={"probe_lag_ms": abs(rnd.gauss(3, 2)), "socket_drops": 0})
    packets = (x.received_kbps or x.bitrate_kbps or 0.0) * 1000 / 8 / 1100
    lost = packets * (x.loss_pct or 0.0) / 100
    return x.model_copy(update={"probe_lag_ms": rnd.uniform(60, 900),
                                "socket_drops": max(1, round(lost * rnd.uniform(0.85, 1.0)))})


def _level(on_hand: int, forecast: float) -> StockLevel:
    if forecast <= 0 or on_hand > 3 * forecast:
        return StockLevel.GREEN
    if on_hand > forecast:
        return StockLevel.YELLOW
    if on_hand > 0.5 * forecast:
        return StockLevel.ORANGE
    return StockLevel.RED


def _poisson(rnd: random.Random, mu: float) -> int:
    if mu <= 0:
        return 0
    if mu > 50:
        return max(0, round(rnd.gauss(mu, math.sqrt(mu))))
    limit, k, prod = math.exp(-mu), 0, rnd.random()
    while prod > limit:
        k += 1
        prod *= rnd.random()
    return k


def _probe_second(
    rnd: random.Random,
    p: _Probe,
    ts: float,
    fault: Cause | None,
    strength: float,
    since: int,
    chat_stall: bool,
) -> ProbeSample:
    state = ConnectionState.CONNECTED
    rtt: float | None = p.rtt_ms * math.exp(rnd.gauss(0, 0.12))
    if rnd.random() < 0.01:
        rtt = (rtt or 0) * rnd.uniform(1.5, 2.5)  # a lone spike
    loss = abs(rnd.gauss(0, 0.4))
    if rnd.random() < 0.02:
        loss = rnd.uniform(4, 15)  # a one-second burst
    bitrate = p.bitrate_kbps * rnd.gauss(1, 0.06)
    fps = p.fps * rnd.gauss(1, 0.05)
    no_frame = rnd.uniform(30, 90)
    freeze_count, freeze_ms = 0, 0.0
    if rnd.random() < 0.01:
        no_frame = rnd.uniform(300, 1500)
        freeze_count, freeze_ms = 1, no_frame
    chat_rtt: float | None = (rtt or p.rtt_ms) + rnd.uniform(15, 60)
    chat_lost = 1 if rnd.random() < 0.003 else 0
    if fault == Cause.NODE_FAILURE:
        p.down_since = p.down_since if p.down_since is not None else ts
        rtt, loss, bitrate, fps = None, 100.0, 0.0, 0.0
        no_frame = (ts - p.down_since) * 1000 + rnd.uniform(0, 900)
        if since >= 3 + sum(map(ord, p.probe_id)) % 3:
            state = ConnectionState.DISCONNECTED
        chat_rtt, chat_lost = None, 1 if since >= 3 else 0
    else:
        p.down_since = None
    if fault == Cause.BANDWIDTH:
        cap = 0.6 - 0.3 * strength
        bitrate = p.bitrate_kbps * cap * rnd.gauss(1, 0.05)
        fps = p.fps * min(1.0, cap**1.2) * rnd.gauss(1, 0.08)
        rtt = (
            None if rnd.random() < 0.15 else p.rtt_ms + (150 + 250 * strength) * rnd.gauss(1, 0.15)
        )
        loss = (3 + 15 * strength) * abs(rnd.gauss(1, 0.3))
        chat_rtt = (rtt or p.rtt_ms + 300) + rnd.uniform(50, 200)
    elif fault == Cause.PACKET_LOSS:
        pct = 7 + 23 * strength
        loss = max(0.0, pct * rnd.gauss(1, 0.2))
        bitrate = p.bitrate_kbps * (1 - pct / 100 * 0.6) * rnd.gauss(1, 0.06)
        fps = p.fps * (1 - pct / 100 * 0.8) * rnd.gauss(1, 0.06)
        rtt = None if rnd.random() < pct / 50 else p.rtt_ms * math.exp(rnd.gauss(0, 0.12))
        chat_rtt = (rtt or p.rtt_ms) + rnd.uniform(20, 400)
    elif fault == Cause.HIGH_LATENCY:
        delay = 200 + 300 * strength
        rtt = p.rtt_ms + delay + rnd.gauss(0, 15 + 30 * strength)
        loss = abs(rnd.gauss(0, 0.8))
        chat_rtt = rtt + rnd.uniform(20, 80)
    if chat_stall and fault is None:
        chat_rtt = None
        chat_lost = 1 if since >= 3 else 0
    return ProbeSample(
        ts=ts,
        show_id=SHOW_ID,
        stream_id="main",
        probe_id=p.probe_id,
        region=p.region,
        isp=p.isp,
        edge_node=p.edge_node,
        state=state,
        ttff_ms=150.0,
        rtt_ms=None if rtt is None else max(0.0, rtt),
        loss_pct=min(100.0, max(0.0, loss)),
        bitrate_kbps=max(0.0, bitrate),
        fps=max(0.0, fps),
        freeze_count=freeze_count,
        freeze_ms=freeze_ms,
        no_frame_ms=no_frame,
        chat_sent=1,
        chat_lost=chat_lost,
        chat_rtt_ms=chat_rtt,
    )
