"""Stored shows with known patterns, for the history tests and bench.

Twelve ten-minute shows over six weeks, on Tuesday mornings and Friday
evenings (UTC 02:00 and 12:30), two regions with two probes each:
- TH breaks on every Friday show (packet loss on AIS's edge node bkk-2),
  which is Friday 19:30 in Bangkok;
- ID breaks on every show before ``CHANGE_TS`` (a CDN switch) and never after;
- SKU-LAMP sells out in WH-TH in two shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qosmon.model import (
    Cause,
    ConnectionState,
    Incident,
    ProbeSample,
    Severity,
    Show,
    StockLevel,
    StockState,
)
from qosmon.report.data import ShowData

FIRST_TUESDAY = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)  # a Tuesday
CHANGE_TS = (FIRST_TUESDAY + timedelta(weeks=3)).timestamp()
DURATION_S = 600
PROBES = {  # probe -> (region, isp, edge node)
    "th-1": ("TH", "AIS", "bkk-2"), "th-2": ("TH", "AIS", "bkk-2"),
    "id-1": ("ID", "Telkomsel", "jkt-1"), "id-2": ("ID", "Telkomsel", "jkt-1"),
}


def _samples(show_id: str, t0: float, bad: dict[str, tuple[float, float]],
             probes: dict[str, tuple[str, str, str]], duration_s: int) -> list[ProbeSample]:
    out = []
    for probe, (region, isp, node) in probes.items():
        window = bad.get(region)
        for k in range(1, duration_s + 1):
            ts = t0 + k
            broken = window is not None and window[0] <= k < window[1]
            out.append(ProbeSample(
                ts=ts, show_id=show_id, stream_id="main", probe_id=probe, region=region,
                isp=isp, edge_node=node, state=ConnectionState.CONNECTED, ttff_ms=300.0,
                rtt_ms=90.0, packets_expected=100, packets_received=80 if broken else 100,
                loss_pct=20.0 if broken else 0.0, bitrate_kbps=800.0, fps=12.0 if broken else 25.0,
                freeze_ms=500.0 if broken else 0.0, freeze_count=1 if broken else 0,
                no_frame_ms=0.0, chat_sent=1, chat_lost=0, chat_rtt_ms=120.0,
            ))
    return out


def make_show(
    show_id: str, t0: float, bad: dict[str, tuple[float, float, Cause, dict[str, str]]],
    sold_out: bool = False, probes: dict[str, tuple[str, str, str]] | None = None,
    duration_s: int = DURATION_S,
) -> ShowData:
    """One ended show; ``bad``: region -> (start s, end s, cause, scope)."""
    probes = probes or PROBES
    regions = list(dict.fromkeys(r for r, _, _ in probes.values()))
    show = Show(show_id=show_id, title=f"Show {show_id}", start_ts=t0, end_ts=t0 + duration_s,
                regions=regions)
    incidents = [
        Incident(incident_id=f"{show_id}-{region}", show_id=show_id, start_ts=t0 + a,
                 end_ts=t0 + b, detected_ts=t0 + a + 5, severity=Severity.CRITICAL, cause=cause,
                 scope=scope, summary=f"{cause} in {region}", viewers_lost=40.0,
                 orders_lost=3.0)
        for region, (a, b, cause, scope) in bad.items()
    ]
    states = []
    if sold_out:
        states.append(StockState(ts=t0 + 300, show_id=show_id, sku="SKU-LAMP",
                                 warehouse="WH-TH", level=StockLevel.RED, on_hand=0,
                                 action="sold out: delist now", refill_units=420))
    states.append(StockState(ts=t0 + 10, show_id=show_id, sku="SKU-CASE", warehouse="WH-TH",
                             level=StockLevel.GREEN, on_hand=900))
    return ShowData(
        show=show,
        probe_samples=_samples(show_id, t0, {r: (w[0], w[1]) for r, w in bad.items()},
                               probes, duration_s),
        business=[], stock_states=states, on_screen=[], incidents=incidents, deliveries=[],
    )


def pattern_shows() -> list[ShowData]:
    shows = []
    for week in range(6):
        for day, hours in (("tue", 0), ("fri", 3 * 24 + 10.5)):
            start = FIRST_TUESDAY + timedelta(weeks=week, hours=hours)
            show_id = f"w{week}-{day}"
            bad: dict[str, tuple[float, float, Cause, dict[str, str]]] = {}
            if day == "fri":
                bad["TH"] = (200, 380, Cause.PACKET_LOSS,
                             {"region": "TH", "isp": "AIS", "edge_node": "bkk-2"})
            if start.timestamp() < CHANGE_TS:
                bad["ID"] = (100, 220, Cause.BANDWIDTH, {"region": "ID"})
            shows.append(make_show(show_id, start.timestamp(), bad,
                                   sold_out=show_id in ("w1-fri", "w4-tue")))
    return shows
